"""The server keeps the garbage collector off what it builds to last (and off it while it builds), and reports the
collector's pauses."""

from __future__ import annotations

import gc
from collections.abc import Sequence

import pytest
from starlette.testclient import TestClient

from gpulease import heap
from gpulease.api.app import create_app
from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.model import ListEntry
from gpulease.runtime import Runtime
from gpulease.services.screening import ScreeningRegistry
from tests.conftest import Facility


def _collected(obj: object) -> bool:
    """Whether a collection would walk `obj` (frozen objects are in no generation)."""
    return any(o is obj for o in gc.get_objects())


def test_what_start_up_built_is_out_of_every_later_collection(runtime: Runtime) -> None:
    built_at_start_up = [["a long-lived structure"]]
    assert _collected(built_at_start_up)
    with TestClient(create_app(runtime, background=False)) as c:
        assert c.get("/healthz").status_code == 200
        assert not _collected(built_at_start_up)
        made_per_request = [["short-lived"]]
        assert _collected(made_per_request)  # what requests make is collected as ever


def test_a_new_screening_index_is_out_of_every_later_collection(runtime: Runtime) -> None:
    entry = ListEntry(id="TEST-1", list="SDN", list_name="test list", type="Entity", name="Heap Test Trading Company")
    index = ScreeningRegistry(runtime.store).build("heap-test-version", [entry])
    assert not _collected(index)


def test_metrics_show_the_collectors_pauses(facility: Facility) -> None:
    gc.collect()
    r = facility.c.get("/metrics", headers=facility.k.op)
    assert r.status_code == 200
    counts = [
        line for line in r.text.splitlines() if line.startswith('gpulease_gc_pause_seconds_count{generation="2"}')
    ]
    assert counts and float(counts[0].split()[-1]) >= 1


def test_the_collector_is_paused_for_a_bulk_load_and_on_again_after(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    real_build = ScreeningIndex.build

    def build(entries: Sequence[ListEntry], version: str) -> ScreeningIndex:
        seen.append(gc.isenabled())
        return real_build(entries, version=version)

    monkeypatch.setattr(ScreeningIndex, "build", staticmethod(build))
    entry = ListEntry(id="TEST-2", list="SDN", list_name="test list", type="Entity", name="Paused Collector Company")
    assert gc.isenabled()
    ScreeningRegistry(runtime.store).build("heap-test-paused", [entry])
    assert seen == [False] and gc.isenabled()


def test_pauses_nest_and_leave_the_collector_as_they_found_it() -> None:
    with heap.collector_paused():
        with heap.collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer load is still going
    assert gc.isenabled()
    gc.disable()
    try:
        with heap.collector_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
