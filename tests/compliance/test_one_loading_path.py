"""One loading path: the index the running server screens with is the one tests and the benchmark measure,
and list loads through it (a newer SDN file, a truncated one) do what an operator expects."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any

import pytest
from benchmarks.screening import seeded_store, server_index

from gpulease.compliance.index import ScreeningIndex, bundled_index
from gpulease.compliance.lists.changes import ListShrinkError
from gpulease.compliance.model import ListFormatError
from gpulease.runtime import Runtime
from gpulease.services import screening
from gpulease.services.context import SYSTEM
from gpulease.services.screening import ScreeningRegistry
from tests.conftest import Clock, Facility

DATA = Path(__file__).parent / "data"


def _shape(index: ScreeningIndex) -> dict[str, tuple[Any, ...]]:
    """What screening sees of each entry: names, aliases (published and enrichment), addresses, known subsidiaries."""
    return {
        e.id: (
            e.list,
            e.type,
            e.name,
            e.aliases,
            e.addresses,
            tuple(a.alias for a in e.enrichment),
            tuple((s.alias, s.relation) for s in e.subsidiaries),
        )
        for e in index.entries
    }


def test_the_server_screens_with_what_tests_and_the_benchmark_measure(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test store was seeded by services.screening.seed_bundled_lists, as `gpulease serve` seeds it.
    # Build the server's index from the store itself, not from an index cached by an earlier load.
    monkeypatch.setattr(ScreeningRegistry, "_cache", {})
    served = _shape(runtime.screening.index())
    assert served == _shape(bundled_index())  # what tests/compliance use
    with seeded_store() as folder:
        monkeypatch.setattr(ScreeningRegistry, "_cache", {})
        assert _shape(server_index(folder)) == served  # what benchmarks/screening.py measures
    wagner = served["SDN-22543"]
    assert "WAGNER GROUP" in wagner[3] and wagner[4]  # aliases and addresses reach the server
    assert ("China Harbour Engineering Company Ltd.", "wholly_owned") in served["CMIC-30930"][6]  # subsidiaries too


def _sdn_2024_05(folder: Path) -> Path:
    """OFAC's sdn.csv of 2024-05-03 alone (no alias or address files of that date exist)."""
    path = folder / "sdn.csv"
    with gzip.open(DATA / "ofac-sdn-2024-05-sdn.csv.gz", "rb") as packed, path.open("wb") as out:
        shutil.copyfileobj(packed, out)
    return path


def test_a_newer_sdn_file_adds_and_removes_entries_and_rescreens_customers(
    facility: Facility, runtime: Runtime, clock: Clock, tmp_path: Path
) -> None:
    newly_listed = facility.customer("Wuhan Global Sensor Technology Co., Ltd.", country="CN")
    assert newly_listed["compliance_status"] == "cleared"  # not on the 2023-12 lists
    sdn = _sdn_2024_05(tmp_path)
    with pytest.raises(ListFormatError, match=r"not found beside sdn\.csv"):
        runtime.perform(screening.load_lists, actor=SYSTEM, paths=[str(sdn)])
    result = runtime.perform(screening.load_lists, actor=SYSTEM, paths=[str(sdn)], allow_partial=True)
    (change,) = [c for c in result.changes if c.list == "SDN"]
    assert (change.before, change.after, len(change.added), len(change.removed)) == (13821, 14965, 1256, 112)
    assert ("SDN-7480", "MUGABE, Robert Gabriel") in change.removed
    assert result.newly_hit == [newly_listed["id"]]
    body = facility.c.get(f"/api/v1/customers/{newly_listed['id']}", headers=facility.k.op).json()
    assert body["compliance_status"] == "review"
    index = runtime.screening.index()
    assert not any(h.entry_id == "SDN-7480" for h in index.screen("Robert Gabriel Mugabe"))
    assert index.screen("Wuhan Global Sensor Technology")[0].entry_id == "SDN-46633"


def test_a_truncated_list_is_refused_and_the_lists_in_force_stay(
    runtime: Runtime, clock: Clock, tmp_path: Path
) -> None:
    sdn = _sdn_2024_05(tmp_path)
    sdn.write_bytes(b"".join(sdn.read_bytes().splitlines(keepends=True)[:10]))
    with runtime.store.transaction() as s:
        before = screening.in_force(s)
        assert before is not None
        before_id = before.id
    with pytest.raises(ListShrinkError) as refused:
        runtime.perform(screening.load_lists, actor=SYSTEM, paths=[str(sdn)], allow_partial=True)
    (change,) = refused.value.changes
    assert (change.list, change.before, change.after) == ("SDN", 13821, 10)
    assert "would remove" in str(refused.value) and "99.9%" in str(refused.value)
    with runtime.store.transaction() as s:
        now = screening.in_force(s)
        assert now is not None and now.id == before_id


def test_the_lists_endpoint_gives_publication_dates_and_warns_about_old_lists(facility: Facility) -> None:
    versions = facility.c.get("/api/v1/lists", headers=facility.k.op).json()
    lists = {row["list"]: row for row in versions[0]["lists"] if row["source"] in ("ofac", "ofac-cons", "un")}
    assert lists["SDN"]["published"] == "2023-12-28" and lists["SDN"]["stale"] is True
    assert "days old" in lists["SDN"]["warning"]
    assert lists["CMIC"]["source"] == "ofac-cons" and lists["UN"]["published"] == "2026-02-27"
