"""Curated aliases attached to listed entries: loaded, resolved, reported, and explained as enrichment."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.lists import build_dataset, bundled_sources, read_enrichment_file
from gpulease.compliance.model import ListFormatError, ListSource
from gpulease.compliance.screening import screen_name

FIXTURE = Path(__file__).parent / "data" / "enrichment_fixture.csv"
HIKVISION = "EL-supplement-004"


def test_aliases_attach_by_entry_id_or_listed_name_and_unresolved_rows_are_reported() -> None:
    dataset = build_dataset(bundled_sources(), read_enrichment_file(FIXTURE))
    report = dataset.enrichment
    assert report is not None and report.file == "enrichment_fixture.csv"
    assert report.rows == 6
    assert report.attached == 3  # 海康威视 by id, the legal name by listed name, the stock code
    assert report.already_listed == 1  # "Hikvision" is a published alias: kept as published
    assert {u.listed_name for u in report.unresolved} == {"NO SUCH PARTY LIMITED", "Not A Listed Name"}
    summary = report.summary()
    assert summary["unresolved"] == 2 and "NO SUCH PARTY LIMITED" in summary["unresolved_names"]
    hikvision = next(e for e in dataset.entries if e.id == HIKVISION)
    assert [a.alias for a in hikvision.enrichment] == ["海康威视", "杭州海康威视数字技术股份有限公司", "002415"]
    assert "海康威视" in hikvision.names and "海康威视" not in hikvision.aliases


def test_a_hit_on_an_enrichment_alias_says_so_with_its_source() -> None:
    dataset = build_dataset(bundled_sources(), read_enrichment_file(FIXTURE))
    index = ScreeningIndex.build(dataset.entries)
    result = screen_name(index, "杭州海康威视数字技术股份有限公司", "CN")
    assert result.decision == "denied"
    top = result.hits[0]
    assert top.hit.entry_id == HIKVISION and top.hit.matched_kind == "enrichment alias"
    body = top.to_dict()
    assert body["enrichment"]["kind"] == "legal_name" and body["enrichment"]["source_url"] == "https://www.szse.cn/"
    assert any("enrichment alias (legal_name), source: https://www.szse.cn/" in r for r in body["reasons"])
    # Without the file the same name is only as close as the list's own names make it.
    plain = screen_name(ScreeningIndex.build(build_dataset(bundled_sources()).entries), "海康威视", "CN")
    assert all(h.hit.matched_kind != "enrichment alias" for h in plain.hits)


def test_reloading_replaces_earlier_enrichment() -> None:
    # A later load rebuilds the version from entries that carry the aliases attached before: they are
    # replaced by what the file in force says (here: no file, so none).
    once = build_dataset(bundled_sources(), read_enrichment_file(FIXTURE))
    kept = ListSource("csl-supplement", ("kept",), once.entries, "v")
    again = build_dataset([kept])
    assert again.enrichment is None
    assert all(not e.enrichment for e in again.entries)


def test_malformed_enrichment_rows_are_refused_with_their_line(tmp_path: Path) -> None:
    bad = tmp_path / "aliases.csv"
    bad.write_text(
        "list,entry_id,listed_name,alias,alias_kind,script,source_url,source_note\n"
        "EL,EL-supplement-004,,海康,nickname,Hans,,\n",
        encoding="utf-8",
    )
    with pytest.raises(ListFormatError) as caught:
        read_enrichment_file(bad)
    assert caught.value.line == 2 and "alias_kind 'nickname'" in caught.value.reason
    bad.write_text("list,alias\nEL,x\n", encoding="utf-8")
    with pytest.raises(ListFormatError) as caught:
        read_enrichment_file(bad)
    assert "header lacks" in caught.value.reason
