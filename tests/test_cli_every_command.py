"""Every command of the CLI, enumerated from the Typer app, given bad input and run in an empty folder (no data
folder configured, no server): it ends with a sentence and a non-zero exit status, never a Python traceback.
A command added later is swept too, so it cannot escape the rule."""

from __future__ import annotations

import csv
import inspect
import json
import socket
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from gpulease import cli
from gpulease.cli import app
from gpulease.settings import get_settings
from tests.conftest import Facility, free_port

runner = CliRunner()
BIG = "99999999999"  # no 32-bit id
LONG_RUNNING = {("serve",), ("demo",)}  # given a busy port below instead


def _commands() -> list[tuple[tuple[str, ...], Any]]:
    """(path, function) of every leaf command of the app."""
    found: list[tuple[tuple[str, ...], Any]] = []

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, (*path, name))
        else:
            found.append((path, inspect.unwrap(cmd.callback)))

    walk(typer.main.get_command(app), ())
    return found


COMMANDS = _commands()


def _arguments(fn: Any, junk: Path, *, ints: str) -> list[str]:
    """A bad value for each positional argument of the command, by its type."""
    hints = typing.get_type_hints(fn)
    out: list[str] = []
    for name, p in inspect.signature(fn).parameters.items():
        if name == "ctx":
            continue
        is_argument = p.default is inspect.Parameter.empty or "Argument" in repr(
            getattr(fn, "__annotations__", {}).get(name, "")
        )
        if not is_argument:
            continue
        t = hints[name]
        text = repr(t)
        if t is int or text in ("int | None", "typing.Optional[int]"):
            out.append(ints)
        elif "Path" in text:
            out.append(str(junk))
        else:
            out.append("bad\x00value")
    return out


def _no_traceback(r: Result, args: list[str]) -> None:
    assert r.exception is None or isinstance(r.exception, SystemExit), (args, repr(r.exception), r.output)
    assert "Traceback" not in r.output, (args, r.output)


def _refused(r: Result, args: list[str]) -> None:
    _no_traceback(r, args)
    assert r.exit_code != 0, (args, r.output)
    said = r.output.lower()
    assert "error" in said or "invalid value" in said or "usage" in said, (args, r.output)


@pytest.fixture
def empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """cwd = an empty folder; GPULEASE_DATA_DIR and GPULEASE_DATABASE_URL unset: the embedded store's default."""
    where = tmp_path / "empty"
    where.mkdir()
    monkeypatch.chdir(where)
    for var in ("GPULEASE_DATA_DIR", "GPULEASE_DATABASE_URL", "GPULEASE_API_KEY", "GPULEASE_API_URL"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    yield where
    get_settings.cache_clear()


def _junk(folder: Path) -> Path:
    junk = folder.parent / "junk.csv"
    junk.write_bytes(b'name,country\n"Acme, Inc,US\n\xff\xfe\x00garbage,,,\n')
    return junk


def _invoke(path: tuple[str, ...], args: list[str]) -> tuple[list[str], Result]:
    argv = [*path, *args]
    if path == ("run",):
        argv += ["--", "true"]
    get_settings.cache_clear()
    return argv, runner.invoke(app, argv)


def test_the_sweep_finds_every_command() -> None:
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"screen", "screen-file", "lists status", "audit verify", "keys create", "leases list", "run"} <= names
    assert len(COMMANDS) > 40


def test_every_command_argument_and_option_says_what_it_takes() -> None:
    """`--help` is the CLI's manual: a command listed without a line, or an argument or option listed with its type
    alone, leaves the user guessing (which id? which country code?)."""
    import typer

    silent: list[str] = []

    def walk(command: Any, path: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])
        if not (command.help or command.short_help):
            silent.append(" ".join(path))
        for param in getattr(command, "params", []):
            if not getattr(param, "help", None):
                silent.append(f"{' '.join(path)} {param.opts[0]}")

    walk(typer.main.get_command(app), [])
    assert not silent


def _id(x: Any) -> str:
    return " ".join(x) if isinstance(x, tuple) else ""


@pytest.mark.parametrize(("path", "fn"), [c for c in COMMANDS if c[0] not in LONG_RUNNING], ids=_id)
def test_every_command_in_an_empty_folder_without_a_server(empty_folder: Path, path: tuple[str, ...], fn: Any) -> None:
    """No data folder, no API key, no server: a store command makes the embedded store and runs; an API command
    says what to set; bad input is refused with a sentence."""
    junk = _junk(empty_folder)
    for ints in (BIG, "x"):
        args = _arguments(fn, junk, ints=ints)
        argv, r = _invoke(path, args)
        if args:
            _refused(r, argv)
        else:
            _no_traceback(r, argv)


def test_api_commands_with_bad_input_against_a_server(
    empty_folder: Path, live_server: str, facility: Facility, monkeypatch: pytest.MonkeyPatch
) -> None:
    facility.nodes(1)
    facility.prices()
    facility.customer()
    monkeypatch.setenv("GPULEASE_API_URL", live_server)
    monkeypatch.setenv("GPULEASE_API_KEY", facility.k.operator)
    junk = _junk(empty_folder)
    for path, fn in COMMANDS:
        if path in LONG_RUNNING:
            continue
        args = _arguments(fn, junk, ints=BIG)
        argv, r = _invoke(path, args)
        (_refused if args else _no_traceback)(r, argv)


@pytest.mark.parametrize("command", sorted(LONG_RUNNING))
def test_servers_on_a_busy_port_say_so_before_anything_else(empty_folder: Path, command: tuple[str, ...]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv, r = _invoke(command, ["--port", str(port)])
    _refused(r, argv)
    assert f"port {port}" in r.output and "in use" in r.output, r.output
    assert "key" not in r.output.lower(), r.output  # nothing minted, nothing printed
    assert not (empty_folder / ".gpulease").exists()


def test_several_workers_on_sqlite_are_refused_with_the_reason(empty_folder: Path) -> None:
    r = runner.invoke(app, ["serve", "--port", str(free_port()), "--workers", "2"])
    _refused(r, ["serve", "--workers", "2"])
    assert "needs PostgreSQL" in r.output, r.output
    assert not (empty_folder / ".gpulease").exists()  # refused before anything was made


def test_screening_in_a_fresh_folder_makes_the_embedded_store_on_first_use(empty_folder: Path) -> None:
    r = runner.invoke(app, ["screen", "Wagner Group", "--country", "RU", "--json"])
    _no_traceback(r, ["screen"])
    assert r.exit_code == 0, r.output
    assert '"decision": "denied"' in r.output or '"decision": "review"' in r.output, r.output[:500]
    assert (empty_folder / ".gpulease" / "gpulease.db").stat().st_size > 0


def test_screen_file_reads_csv_with_the_csv_module_and_names_the_bad_line(empty_folder: Path) -> None:
    good = empty_folder / "names.csv"
    good.write_text('name,country\n"Acme Robotics, Inc.",US\nWagner Group,RU\n')
    r = runner.invoke(app, ["screen-file", str(good), "--out", str(empty_folder / "out.csv")])
    _no_traceback(r, ["screen-file"])
    assert r.exit_code == 0, r.output
    written = (empty_folder / "out.csv").read_text().splitlines()
    assert written[0] == "name,country,decision,top_score,top_entry,top_list"
    assert written[1].startswith('"Acme Robotics, Inc.",US,') and len(written) == 3

    bad = empty_folder / "bad.csv"
    bad.write_text("name,country\nAcme Robotics Inc.,US\nAcme, Inc.,US\n")
    r = runner.invoke(app, ["screen-file", str(bad), "--out", str(empty_folder / "out2.csv")])
    _refused(r, ["screen-file"])
    said = " ".join(r.output.split())  # the console wraps at its width, wherever the temporary path ends
    assert "line 3" in said and "double quotes" in said, r.output

    nameless = empty_folder / "nameless.csv"
    nameless.write_text("company,country\nAcme,US\n")
    r = runner.invoke(app, ["screen-file", str(nameless), "--out", str(empty_folder / "out3.csv")])
    _refused(r, ["screen-file"])
    assert "no 'name' column" in r.output, r.output


def test_screen_file_reads_what_spreadsheets_export(empty_folder: Path) -> None:
    """Excel writes "Name" with a capital, a byte-order mark, CRLF, and in countries where the comma is the decimal
    separator a semicolon between fields: such a file is screened, and the results come back in its dialect so
    that they open in the same spreadsheet."""
    cases = {
        "excel-de.csv": ("\ufeffName;Country\r\nRosoboronexport;RU\r\nAcme Widgets GmbH;DE\r\n", ";"),
        "excel-us.csv": ("\ufeffName,Country\r\nRosoboronexport,RU\r\nAcme Widgets GmbH,DE\r\n", ","),
        "tabs.tsv": (" NAME \tCOUNTRY\tnote\nRosoboronexport\tRU\tx\nAcme Widgets GmbH\tDE\ty\n", "\t"),
    }
    for file, (text, sep) in cases.items():
        src = empty_folder / file
        src.write_bytes(text.encode())
        out = empty_folder / f"{file}.out"
        r = runner.invoke(app, ["screen-file", str(src), "--out", str(out)])
        _no_traceback(r, ["screen-file"])
        assert r.exit_code == 0, (file, r.output)
        with out.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter=sep))
        assert rows[0][-4:] == ["decision", "top_score", "top_entry", "top_list"], (file, rows[0])
        assert rows[0][0].strip().lower() == "name"  # the header as written, the input's columns kept
        assert [r[0] for r in rows[1:]] == ["Rosoboronexport", "Acme Widgets GmbH"]
        decisions = {r[0]: r[-4] for r in rows[1:]}
        assert decisions == {"Rosoboronexport": "denied", "Acme Widgets GmbH": "cleared"}, (file, rows)


def test_demo_names_the_customer_and_a_second_run_shows_the_same_keys(
    empty_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    served: list[int] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: served.append(kw["port"]))
    monkeypatch.setattr(cli, "configure_logging", lambda *a: None)  # not onto the runner's stream, closed after
    monkeypatch.setenv("COLUMNS", "200")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    first = runner.invoke(app, ["demo", "--port", str(port)])
    _no_traceback(first, ["demo"])
    assert first.exit_code == 0 and served == [port], first.output
    assert "for customer 1 (Acme Robotics Inc.)" in first.output, first.output
    keys_file = empty_folder / ".gpulease" / "demo-keys.json"
    assert keys_file.stat().st_mode & 0o077 == 0
    get_settings.cache_clear()
    second = runner.invoke(app, ["demo", "--port", str(port)])
    assert second.exit_code == 0, second.output
    for role, key in json.loads(keys_file.read_text()).items():
        assert key in first.output and key in second.output, role
    assert second.output.count("kept from an earlier run") == 3, second.output


def test_make_demo_takes_port_and_host() -> None:
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        ["make", "-n", "-W", "pyproject.toml", "demo", "PORT=8123", "HOST=0.0.0.0"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "gpulease demo --host '0.0.0.0' --port '8123'" in out, out
