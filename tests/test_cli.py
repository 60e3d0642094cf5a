"""The command line, in-process with Typer's runner, against the test store."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpulease.cli import app
from gpulease.runtime import Runtime
from gpulease.services import keys
from gpulease.settings import get_settings
from tests.conftest import Facility

runner = CliRunner()


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("GPULEASE_DATABASE_URL", db_url)
    monkeypatch.setenv("GPULEASE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield db_url
    get_settings.cache_clear()


def test_db_upgrade_and_keys_create_prints_the_key_alone(cli_env: str, runtime: Runtime) -> None:
    r = runner.invoke(app, ["db", "upgrade"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["keys", "create", "--role", "operator"])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip()
    assert key.startswith("gl_") and "\n" not in key
    with runtime.store.transaction() as s:
        actor = keys.authenticate(s, key, runtime.clock())
    assert actor is not None and actor.role == "operator"
    r = runner.invoke(app, ["keys", "create", "--role", "customer"])
    assert r.exit_code == 1 and "choose the customer" in r.output


def test_screen_json_matches_the_api_shape(cli_env: str) -> None:
    r = runner.invoke(app, ["screen", "北京商汤科技开发有限公司", "--country", "CN", "--json"])
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["decision"] == "denied"
    top = body["hits"][0]
    assert {"entry_id", "list", "name", "matched_name", "score", "reasons"} <= set(top)
    assert "sensetime" in (top["name"] + top["matched_name"]).lower().replace(" ", "")


def test_screen_as_text_explains_what_the_listing_means(cli_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    r = runner.invoke(app, ["screen", "讯飞", "--country", "CN"])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert text.startswith("denied 讯飞") and "EL EL-supplement-001 IFLYTEK: score" in text
    assert "'讯飞' (enrichment alias): short_name, source https://www.iflytek.com/" in text
    assert "Federal Register 84 FR 54002" in text and "listed on 2019-10-09" in text
    assert "licence For all items subject to the EAR." in text and "licence policy Case-by-case review" in text
    assert "addresses Hefei, Anhui, CN" in text and "outcome denied: blocking list" in text


def test_screen_file_adds_the_decision_columns(cli_env: str, tmp_path: Path) -> None:
    src = tmp_path / "customers.csv"
    src.write_text("name,country\niFlytek Co. Ltd,CN\nNvidia Corporation,US\n")
    out = tmp_path / "results.csv"
    r = runner.invoke(app, ["screen-file", str(src), "--out", str(out)])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(out.open()))
    assert [row["decision"] for row in rows] == ["denied", "cleared"]
    assert rows[0]["top_list"] == "EL" and float(rows[0]["top_score"]) >= 92 and rows[0]["top_entry"]
    assert set(rows[0]) >= {"name", "country", "decision", "top_score", "top_entry", "top_list"}
    bad = tmp_path / "bad.csv"
    bad.write_text("company\nx\n")
    r = runner.invoke(app, ["screen-file", str(bad), "--out", str(out)])
    assert r.exit_code == 1 and "no 'name' column" in r.output


def test_lists_status_and_load_refuses_a_malformed_file(cli_env: str, tmp_path: Path) -> None:
    r = runner.invoke(app, ["lists", "status"])
    assert r.exit_code == 0, r.output
    assert "SDN" in r.output and "yes" in r.output
    bad = tmp_path / "consolidated.csv"
    bad.write_text("_id,source,name\n1,EL\n")
    r = runner.invoke(app, ["lists", "load", str(bad)])
    assert r.exit_code == 1
    assert "line" in r.output and "lists in force stay in force" in r.output


def test_lists_load_a_csl_json(cli_env: str, tmp_path: Path) -> None:
    f = tmp_path / "consolidated.json"
    f.write_text(
        json.dumps(
            {
                "results": [
                    {
                        "id": "x1",
                        "source": "Entity List (EL) - Bureau of Industry and Security",
                        "name": "Kestrel Vector AI",
                        "type": "Entity",
                        "addresses": [{"city": "Shenzhen", "country": "CN"}],
                        "alt_names": ["KVAI"],
                        "programs": [],
                        "start_date": "2026-11-20",
                        "source_list_url": "https://www.bis.doc.gov/",
                    }
                ]
            }
        )
    )
    r = runner.invoke(app, ["lists", "load", str(f)])
    # One record in place of the bundled CSL's 115: refused, and the report says what would go.
    assert r.exit_code == 1
    assert "would remove" in r.output and "--allow-shrink" in r.output and "nothing was changed" in r.output
    r = runner.invoke(app, ["lists", "load", str(f), "--allow-shrink"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "in force" in out and "22 → 1 entries, 1 added, 22 removed" in out
    r = runner.invoke(app, ["screen", "Kestrel Vector AI Co., Ltd.", "--json"])
    assert json.loads(r.stdout)["decision"] == "denied"


def test_audit_verify_exit_status(cli_env: str) -> None:
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 0 and "intact" in r.output


def test_gpu_ranges_are_compact() -> None:
    from gpulease.cli import _ranges

    assert _ranges([0, 1, 2, 3, 6]) == "0-3,6"
    assert _ranges([1, 3, 4, 5, 7]) == "1,3-5,7"
    assert _ranges([5]) == "5"


def test_run_streams_the_logs_and_exits_with_the_runs_code(
    cli_env: str, live_server: str, facility: Facility, monkeypatch: pytest.MonkeyPatch
) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    key = facility.customer_key(cust["id"])["Authorization"].split()[1]
    monkeypatch.setenv("GPULEASE_API_URL", live_server)
    monkeypatch.setenv("GPULEASE_API_KEY", key)
    r = runner.invoke(app, ["leases", "create", "A100-80GB", "2", "--json"])
    assert r.exit_code == 0, r.output
    lease = json.loads(r.stdout)
    want = ",".join(str(g["index"]) for g in lease["gpus"])
    r = runner.invoke(app, ["run", str(lease["id"]), "--", "sh", "-c", 'echo "gpus=$CUDA_VISIBLE_DEVICES"; exit 4'])
    assert r.exit_code == 4, r.output
    assert f"gpus={want}" in r.stdout
    r = runner.invoke(app, ["leases", "end", str(lease["id"]), "--json"])
    assert json.loads(r.stdout)["state"] == "ended"
    r = runner.invoke(app, ["run", str(lease["id"]), "--", "true"])
    assert r.exit_code == 1 and "active" in r.output


def test_lists_load_the_ofac_file_set(cli_env: str) -> None:
    from importlib.resources import as_file, files

    root = files("gpulease") / "data/lists/ofac-sdn-2023-12"
    with as_file(root) as folder:
        paths = [str(Path(folder) / n) for n in ("sdn.csv", "add.csv", "alt.csv", "sdn_comments.csv")]
        r = runner.invoke(app, ["lists", "load", *paths, "--published", "2023-12-28"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())  # Rich wraps long lines
    assert "in force" in out and "SDN 13849" in out and "{" not in out  # 13,821 OFAC + 28 CSL sample
    assert "3 remarks rows in sdn_comments.csv" in out  # detail rows whose entry is missing, reported
    r = runner.invoke(app, ["lists", "status"])
    assert r.exit_code == 0 and "sdn.csv" in r.output and r.output.count("yes") == 1  # one version in force
    out = " ".join(r.output.split())
    assert "2023-12-28" in out and "published more than 30 days ago" in out  # old lists are warned about
    assert "sdn.csv (+3)" in out  # the set by its main file, its alias, address and remarks files counted


def test_lists_status_of_an_empty_store_names_the_store_it_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GPULEASE_DATABASE_URL", raising=False)
    monkeypatch.setenv("GPULEASE_DATA_DIR", str(tmp_path / "empty"))
    get_settings.cache_clear()
    try:
        r = runner.invoke(app, ["lists", "status"])
    finally:
        get_settings.cache_clear()
    out = " ".join(r.output.split())
    assert r.exit_code == 1 and "Traceback" not in out
    # The path may be broken across lines (longer than the terminal: pytest-xdist's tmp_path is), so compared
    # without any whitespace.
    expected = f"no lists loaded yet in the store at sqlite:///{tmp_path / 'empty'}"
    assert "".join(expected.split()) in "".join(out.split()), out
    assert "not the server at GPULEASE_API_URL" in out and "GPULEASE_DATA_DIR" in out


def test_lists_load_refuses_an_sdn_file_without_its_siblings(cli_env: str, tmp_path: Path) -> None:
    from importlib.resources import as_file, files

    with as_file(files("gpulease") / "data/lists/ofac-sdn-2023-12/sdn.csv") as sdn:
        lone = tmp_path / "sdn.csv"
        lone.write_bytes(Path(sdn).read_bytes())
    r = runner.invoke(app, ["lists", "load", str(lone)])
    assert r.exit_code == 1
    assert "alt.csv" in r.output and "aliases" in r.output and "lists in force stay in force" in r.output


def test_lists_load_refuses_a_truncated_sdn_file(cli_env: str, tmp_path: Path) -> None:
    from importlib.resources import as_file, files

    with as_file(files("gpulease") / "data/lists/ofac-sdn-2023-12") as folder:
        lines = (Path(folder) / "sdn.csv").read_bytes().splitlines(keepends=True)
        (tmp_path / "sdn.csv").write_bytes(b"".join(lines[:10]))  # 13,821 entries cut to 10
        for name in ("add.csv", "alt.csv", "sdn_comments.csv"):
            (tmp_path / name).write_bytes((Path(folder) / name).read_bytes())
    r = runner.invoke(app, ["lists", "load", str(tmp_path / "sdn.csv")])
    assert r.exit_code == 1
    out = " ".join(r.output.split())
    assert "SDN (ofac): 13821 → 10 entries" in out and "would remove" in out and "nothing was changed" in out
    r = runner.invoke(app, ["screen", "Wagner Group", "--country", "RU", "--json"])
    assert json.loads(r.stdout)["decision"] == "denied"  # the lists in force stayed


def test_the_cli_retries_a_change_under_one_idempotency_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 503 or a dropped connection is retried with the same key, so the server does the change once."""
    import httpx

    from gpulease import cli

    seen: list[str] = []
    answers: Iterator[httpx.Response | httpx.ConnectError] = iter(
        [
            httpx.Response(503, json={"title": "Unavailable"}),
            httpx.ConnectError("reset"),
            httpx.Response(201, json={"id": 7}),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Idempotency-Key"])
        answer = next(answers)
        if isinstance(answer, httpx.Response):
            return answer
        raise answer

    monkeypatch.setenv("GPULEASE_API_KEY", "gl_test")
    monkeypatch.setattr("gpulease.cli.time.sleep", lambda _s: None)
    api = cli.Api()
    api.client = httpx.Client(base_url="http://test/api/v1", transport=httpx.MockTransport(handler))
    assert api.call("POST", "/leases", json={}) == {"id": 7}
    assert len(seen) == 3 and len(set(seen)) == 1 and seen[0].startswith("cli-")
