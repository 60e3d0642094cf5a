"""Bad input to the CLI ends in `error: …` and exit status 1, never a traceback: the admin commands (which run
the use cases in a Runtime of their own) and the ones that call the API alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gpulease.cli import app
from gpulease.settings import get_settings
from tests.conftest import Facility

runner = CliRunner()
BIG = "99999999999"


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("GPULEASE_DATABASE_URL", db_url)
    monkeypatch.setenv("GPULEASE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield db_url
    get_settings.cache_clear()


def _refused(r: Result, says: str) -> None:
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert "error:" in r.output and says in r.output, r.output


ADMIN = [
    (["keys", "create", "--role", "customer", "--customer", BIG], "no customer with id"),
    (["keys", "create", "--role", "operator", "--label", "ops\x00"], "the label must be one line"),
    (["keys", "create", "--role", "operator", "--label", "x" * 201], "longer than 200"),
    (["screen", "Acme\x00Corp"], "must be one line of text"),
    (["screen", "A" * 600], "at most 500 characters"),
    (["screen", "Acme", "--country", "中国"], "ISO 3166-1"),
    (["screen", "Acme", "--address", "1 Main St\x00"], "the address must be text"),
    (["invoices", "verify", "--period", "2026-13"], "period must look like YYYY-MM"),
    (["invoices", "verify", "--period", "2026-11\n"], "period must look like YYYY-MM"),
]


@pytest.mark.parametrize(("args", "says"), ADMIN, ids=[" ".join(a)[:40] for a, _ in ADMIN])
def test_admin_commands_refuse_bad_input_with_a_sentence(cli_env: str, args: list[str], says: str) -> None:
    _refused(runner.invoke(app, args), says)


def test_client_side_parsing_refuses_bad_input_before_calling_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPULEASE_API_KEY", "gl_unused")
    monkeypatch.setenv("GPULEASE_API_URL", "http://127.0.0.1:9")  # nothing listens: parsing fails first
    _refused(runner.invoke(app, ["customers", "add", "X", "US", "--owner", "Acme Holdings=lots"]), "NAME=PERCENT")
    _refused(runner.invoke(app, ["run", "1", "--env", "NOVALUE", "--", "true"]), "KEY=VALUE")


def test_commands_that_call_the_api_print_its_problem(
    cli_env: str, live_server: str, facility: Facility, monkeypatch: pytest.MonkeyPatch
) -> None:
    facility.nodes(1)
    facility.prices()
    facility.customer()
    monkeypatch.setenv("GPULEASE_API_URL", live_server)
    monkeypatch.setenv("GPULEASE_API_KEY", facility.k.operator)
    _refused(runner.invoke(app, ["leases", "show", BIG]), "(422)")
    _refused(
        runner.invoke(app, ["leases", "create", "A100-80GB", "1", "--customer", "1", "--start", "9999-12-31T00:00Z"]),
        "start must be between",
    )
    _refused(runner.invoke(app, ["leases", "create", "A100-80GB", "1", "--customer", "1", "--duration-s", "-5"]), "")
    _refused(runner.invoke(app, ["customers", "add", "Acme\x00", "US"]), "the legal name must be one line")
    _refused(runner.invoke(app, ["nodes", "add", "s1", "c1", "n" * 81, "A100-80GB"]), "at most 80 characters")
    _refused(runner.invoke(app, ["prices", "set", "A100-80GB", "on_demand", "1e400"]), "rate must be a decimal")
    _refused(runner.invoke(app, ["invoices", "show", "1", "--period", "\x00"]), "period must look like YYYY-MM")
    _refused(runner.invoke(app, ["nodes", "state", BIG, "down"]), "(422)")
