from __future__ import annotations

from dataclasses import dataclass

import pytest

from gpulease.compliance.match import Hit
from gpulease.compliance.model import ListEntry
from gpulease.compliance.ownership import listed_share


@dataclass(frozen=True)
class Party:
    owners: tuple[tuple[str, float], ...] = ()
    parent: str | None = None


def _hit(name: str) -> Hit:
    entry = ListEntry(id=f"T-{name}", list="EL", list_name="Entity List", type="entity", name=name)
    return Hit(entry.id, "EL", name, name, 100.0, (), entry)


def _listed(*names: str):  # type: ignore[no-untyped-def]
    return lambda name: _hit(name) if name in names else None


def test_chain_of_three() -> None:
    known = {"B": Party(owners=(("C", 100.0),))}
    result = listed_share(Party(owners=(("B", 60.0),)), "A", known, _listed("C"))
    assert result.share == pytest.approx(0.6)
    assert result.treated_as_listed
    (path,) = result.paths
    assert path.names == ("A", "B", "C")
    assert path.percents == (60.0, 100.0)
    assert "A → owned 60% by B → owned 100% by C" in path.describe()


def test_two_minority_listed_owners_add_up() -> None:
    result = listed_share(Party(owners=(("X", 30.0), ("Y", 25.0), ("Z", 45.0))), "A", {}, _listed("X", "Y"))
    assert result.share == pytest.approx(0.55)
    assert result.treated_as_listed
    assert len(result.paths) == 2


def test_below_half_not_listed() -> None:
    result = listed_share(Party(owners=(("X", 30.0), ("Z", 70.0))), "A", {}, _listed("X"))
    assert result.share == pytest.approx(0.3)
    assert not result.treated_as_listed


def test_parent_counts_as_controlling_owner() -> None:
    result = listed_share(Party(parent="P"), "A", {}, _listed("P"))
    assert result.share == 1.0 and result.treated_as_listed
    with_percent = listed_share(Party(parent="P", owners=(("P", 40.0),)), "A", {}, _listed("P"))
    assert with_percent.share == pytest.approx(0.4)


def test_intermediate_owned_half_counts_whole() -> None:
    # B is 50% owned by listed C, so B is itself blocked and its 60% stake in A counts in full.
    known = {"B": Party(owners=(("C", 50.0), ("D", 50.0)))}
    result = listed_share(Party(owners=(("B", 60.0),)), "A", known, _listed("C"))
    assert result.share == pytest.approx(0.6)
    assert result.treated_as_listed


def test_multiply_along_chain_when_intermediate_minority() -> None:
    known = {"B": Party(owners=(("C", 40.0),))}
    result = listed_share(Party(owners=(("B", 100.0),)), "A", known, _listed("C"))
    assert result.share == pytest.approx(0.4)
    assert not result.treated_as_listed


def test_cycles_end() -> None:
    known = {"B": Party(owners=(("C", 100.0),)), "C": Party(owners=(("B", 100.0), ("A", 10.0)))}
    result = listed_share(Party(owners=(("B", 100.0),)), "A", known, _listed())
    assert result.share == 0.0
    assert result.paths == ()
    known_listed = {**known, "C": Party(owners=(("B", 50.0), ("L", 50.0)))}
    result = listed_share(Party(owners=(("B", 100.0),)), "A", known_listed, _listed("L"))
    assert result.share == pytest.approx(1.0)  # B 100% owned by C, C 50% by listed L
