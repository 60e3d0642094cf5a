"""Known subsidiaries of listed parties (enrichment/subsidiaries.csv): the file's shape, that every row names a real
parent entry and no listed party, that the loader attaches them beside the party's names (not among them), and that
a match on a subsidiary is a review of the parent as a possible affiliate, never a denial."""

from __future__ import annotations

import functools
from importlib.resources import as_file, files
from pathlib import Path

import pytest

from gpulease.compliance.index import KNOWN_SUBSIDIARY, ScreeningIndex, bundled_index
from gpulease.compliance.lists import build_dataset, bundled_dataset, bundled_sources, read_enrichment_file
from gpulease.compliance.lists.enrichment import RELATIONS, SUBSIDIARY_COLUMNS, EnrichmentRow
from gpulease.compliance.model import SUBSIDIARY, ListEntry, ListFormatError
from gpulease.compliance.normalize import normalize_name
from gpulease.compliance.screening import screen_name

SUBSIDIARIES = files("gpulease") / "data" / "lists" / "enrichment" / "subsidiaries.csv"
CCCC = "CMIC-30930"  # CHINA COMMUNICATIONS CONSTRUCTION COMPANY LIMITED
QIHOO = {"EL-supplement-022", "EL-supplement-023"}


@functools.cache
def rows() -> tuple[EnrichmentRow, ...]:
    """The file's rows as the product reads them."""
    with as_file(SUBSIDIARIES) as path:
        return read_enrichment_file(path).rows


def test_header_values_and_sources() -> None:
    with as_file(SUBSIDIARIES) as path:
        assert tuple(path.read_text(encoding="utf-8").splitlines()[0].split(",")) == SUBSIDIARY_COLUMNS
    assert len(rows()) >= 300
    seen: set[tuple[str, str | None, str, str]] = set()
    for row in rows():
        owned = row.alias
        assert owned.kind == SUBSIDIARY and owned.relation in RELATIONS, row
        assert (owned.source_url or "").startswith(("http://", "https://")) and owned.source_note, row
        assert owned.script in {"Latn", "Hans", "Hant", "Cyrl"}, row
        key = (row.list, row.entry_id, row.listed_name, owned.alias)
        assert key not in seen, row
        seen.add(key)


def test_every_row_resolves_to_its_parent_and_names_no_listed_party() -> None:
    dataset = bundled_dataset()
    report = dataset.enrichment
    assert report is not None and "subsidiaries.csv" in (report.file or "")
    assert not report.unresolved, report.unresolved[:5]
    attached = sum(len(e.subsidiaries) for e in dataset.entries)
    assert attached == len(rows())
    # A listed subsidiary is caught as itself: the file is for those the lists do not name.
    listed = {normalize_name(n).key for e in dataset.entries for n in (e.name, *e.aliases)}
    assert not [r.alias.alias for r in rows() if normalize_name(r.alias.alias).key in listed]


def test_subsidiaries_are_not_names_of_the_listed_party() -> None:
    cccc = bundled_index().by_id[CCCC]
    assert "China Harbour Engineering Company Ltd." in {s.alias for s in cccc.subsidiaries}
    assert "China Harbour Engineering Company Ltd." not in cccc.names
    assert all(s.kind == SUBSIDIARY and s.relation in RELATIONS for s in cccc.subsidiaries)
    # ... and they travel with the entry through the store (ListEntry.to_dict / from_dict).
    assert ListEntry.from_dict(cccc.to_dict()) == cccc


def test_a_subsidiary_is_a_review_of_its_parent_with_the_relation_and_the_source() -> None:
    result = screen_name(bundled_index(), "China Harbour Engineering Company Ltd.", "CN")
    assert result.decision == "review"
    top = result.hits[0]
    assert top.hit.entry_id == CCCC and top.hit.affiliate and top.hit.matched_kind == KNOWN_SUBSIDIARY
    assert top.ruling.outcome == "review"
    body = top.to_dict()
    assert body["enrichment"]["kind"] == SUBSIDIARY and body["enrichment"]["source_url"]
    reason = next(r for r in body["reasons"] if "subsidiary" in r)
    assert "China Harbour Engineering Company Ltd. is a wholly owned subsidiary (100%)" in reason
    assert "CHINA COMMUNICATIONS CONSTRUCTION COMPANY LIMITED" in reason and "50% rule" in reason
    assert "source: https://" in reason
    # The decision's summary says whose subsidiary matched, not the subsidiary as if it were the listed name.
    assert any(
        "'China Harbour Engineering Company Ltd.', a known subsidiary of CMIC entry" in r
        and "'CHINA COMMUNICATIONS CONSTRUCTION COMPANY LIMITED'" in r
        for r in result.reasons
    )


@pytest.mark.parametrize(
    ("name", "country", "parents"),
    [
        ("三六零安全科技股份有限公司", "CN", QIHOO),  # the A-share successor of Qihoo 360
        ("三六零安全科技股份有限公司", None, QIHOO),
        ("中國港灣工程有限責任公司", "HK", {CCCC}),  # traditional script
        ("China Harbour Engineering (Hong Kong) Ltd", "HK", {CCCC}),  # the name plus a place
        ("China Harbour Engineering Company Nigeria Branch", "NG", {CCCC}),  # ... plus a branch
        ("Nexen Energy ULC", "CA", {"CMIC-30926"}),
        ("Novatek Gas & Power GmbH", "CH", {"SSI-17064"}),
    ],
)
def test_subsidiary_names_reach_the_parent_and_are_never_denied(
    name: str, country: str | None, parents: set[str]
) -> None:
    result = screen_name(bundled_index(), name, country)
    assert result.decision == "review", (name, [h.to_dict() for h in result.hits[:3]])
    found = {h.hit.entry_id for h in result.hits if h.hit.matched_kind == KNOWN_SUBSIDIARY}
    assert parents <= found, found
    assert all(h.hit.affiliate and h.ruling.outcome == "review" for h in result.hits if h.hit.entry_id in parents)


@pytest.mark.parametrize(
    "name",
    [
        "Harbour Engineering Ltd",  # a part of China Harbour Engineering: many firms' names
        "Hubble Technology",  # a part of Huawei's Hubble Technology Investment
        "Great Wall Industry",
        "China Railway First Group Co., Ltd.",  # CREC's bureau, not CRCC's
        "China Harbour Group",
    ],
)
def test_a_part_of_a_subsidiarys_name_is_no_hit(name: str) -> None:
    result = screen_name(bundled_index(), name, None)
    assert all(h.hit.matched_kind != KNOWN_SUBSIDIARY for h in result.hits), [h.to_dict() for h in result.hits]


def test_a_subsidiary_does_not_hide_a_hit_on_the_partys_own_name() -> None:
    # China Unicom's known subsidiaries score high against a unit of China Unicom abroad, but as no whole name:
    # the hit on the listed name itself (an affiliate pattern) still comes.
    result = screen_name(bundled_index(), "China Unicom (Europe) Operations Limited", "GB")
    assert "CMIC-30924" in {h.hit.entry_id for h in result.hits}


def test_without_the_file_the_subsidiary_clears() -> None:
    plain = ScreeningIndex.build(build_dataset(bundled_sources()).entries)
    assert screen_name(plain, "China Harbour Engineering Company Ltd.", "CN").decision == "cleared"


def test_malformed_subsidiary_rows_are_refused_with_their_line(tmp_path: Path) -> None:
    header = ",".join(SUBSIDIARY_COLUMNS) + "\n"
    bad = tmp_path / "subsidiaries.csv"
    bad.write_text(header + "CMIC,,CNOOC LIMITED,Nexen Inc.,Latn,CA,sister,,https://x.example,note\n", encoding="utf-8")
    with pytest.raises(ListFormatError) as caught:
        read_enrichment_file(bad)
    assert caught.value.line == 2 and "relation 'sister'" in caught.value.reason
    bad.write_text(header + "CMIC,,CNOOC LIMITED,Nexen Inc.,Latn,CA,wholly_owned,all,https://x.example,n\n")
    with pytest.raises(ListFormatError) as caught:
        read_enrichment_file(bad)
    assert "share 'all'" in caught.value.reason
    bad.write_text(header + "CMIC,,CNOOC LIMITED,Nexen Inc.,Latn,CA,wholly_owned,100%,,\n", encoding="utf-8")
    with pytest.raises(ListFormatError) as caught:
        read_enrichment_file(bad)
    assert "no source" in caught.value.reason
    bad.write_text(header + "CMIC,,NO SUCH PARTY,Nexen Inc.,Latn,CA,wholly_owned,,https://x.example,n\n")
    dataset = build_dataset(bundled_sources(), read_enrichment_file(bad))
    assert dataset.enrichment is not None and [u.listed_name for u in dataset.enrichment.unresolved] == [
        "NO SUCH PARTY"
    ]
