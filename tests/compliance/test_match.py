from __future__ import annotations

import pytest

from gpulease.compliance.decide import Thresholds, decide_name
from gpulease.compliance.index import COUNTRY_DIFFERS, ScreeningIndex
from gpulease.compliance.model import Address, ListEntry

IFLYTEK = "EL-supplement-001"
SENSETIME = "EL-supplement-002"


def test_iflytek_denied_top_hit(index: ScreeningIndex) -> None:
    hits = index.screen("iFlytek Co., Ltd.")
    assert hits[0].entry_id == IFLYTEK
    assert hits[0].list == "EL"
    assert hits[0].score >= 98
    assert "tokens matched: iflytek" in hits[0].reasons
    assert decide_name(hits).decision == "denied"


@pytest.mark.parametrize("country", [None, "CN"])
def test_iflytek_chinese_name(index: ScreeningIndex, country: str | None) -> None:
    hits = index.screen("科大讯飞股份有限公司", country=country)
    assert hits[0].entry_id == IFLYTEK
    assert any("transliterated from Chinese" in r for r in hits[0].reasons)
    assert decide_name(hits).decision == "denied"


@pytest.mark.parametrize(
    "name",
    [
        "Beijing SenseTime Technology Development Co., Ltd.",
        "北京商汤科技开发有限公司",
        "北京商湯科技開發有限公司",
    ],
)
def test_sensetime(index: ScreeningIndex, name: str) -> None:
    hits = index.screen(name, country="CN")
    assert hits[0].entry_id == SENSETIME
    assert hits[0].score >= 98
    assert decide_name(hits).decision == "denied"


@pytest.mark.parametrize(
    ("name", "country"),
    [
        ("Nvidia Corporation", "US"),
        ("Alibaba Cloud", "CN"),
        ("Microsoft Corporation", "US"),
        ("Tencent Holdings", "CN"),
    ],
)
def test_unlisted_companies_cleared(index: ScreeningIndex, name: str, country: str) -> None:
    hits = index.screen(name, country=country)
    assert all(h.score < Thresholds().review for h in hits)
    assert decide_name(hits).decision == "cleared"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Iflytec", IFLYTEK),  # typo
        ("Hangzhou Hikvison Digital Technology", "EL-supplement-004"),  # typo in the brand
        ("Digital Technology Hangzhou Hikvision", "EL-supplement-004"),  # reordered
        ("Hikvision Digital Technology Co., Ltd. Hang Zhou", "EL-supplement-004"),  # spacing
        ("Zhejiang Dahua Technology Limited", "EL-supplement-005"),  # other legal form
        ("Banco Nacional de Cuba S.A.", "SDN-306"),
        ("National Bank of Cuba", "SDN-306"),  # alias
        ("Hik Vision", "EL-supplement-004"),  # split brand
    ],
)
def test_variants_found(index: ScreeningIndex, query: str, expected: str) -> None:
    hits = index.screen(query)
    assert expected in [h.entry_id for h in hits[:3]]
    top = next(h for h in hits if h.entry_id == expected)
    assert top.score >= Thresholds().review


def test_common_words_alone_do_not_match(index: ScreeningIndex) -> None:
    hits = index.screen("Beijing Technology Development Co., Ltd.")
    # Place and industry words alone must not bring up SenseTime (whose name adds only "SenseTime").
    assert all(h.score < Thresholds().review for h in hits if h.entry_id == SENSETIME)
    assert all(h.score < 90 for h in hits)


def test_country_evidence_raises_score() -> None:
    entries = [
        ListEntry(
            id="X-1",
            list="EL",
            list_name="Entity List",
            type="entity",
            name="Orion Quantum Compute Labs",
            countries=("RU",),
            addresses=(Address(city="Moscow", country="RU"),),
        )
    ]
    index = ScreeningIndex.build(entries)
    plain = index.screen("Orion Quantum Compute Lab")[0]
    same = index.screen("Orion Quantum Compute Lab", country="Russia")[0]
    other = index.screen("Orion Quantum Compute Lab", country="DE", min_score=0.0)[0]
    city = index.screen("Orion Quantum Compute Lab", country="RU", address="Moscow")[0]
    assert same.score > plain.score
    assert same.country_agrees is True and other.country_agrees is False
    assert "same country: RU" in same.reasons
    assert city.score > same.score
    # A similar name (not the listed one itself) in another country is more likely another party.
    assert other.score == plain.score + COUNTRY_DIFFERS
    assert any("more likely another party" in r for r in other.reasons)


def test_hit_serialises(index: ScreeningIndex) -> None:
    data = index.screen("iFlytek")[0].to_dict()
    assert data["entry_id"] == IFLYTEK
    assert data["list_name"].startswith("Entity List")


def test_decision_thresholds_configurable(index: ScreeningIndex) -> None:
    hits = index.screen("Iflytec")
    assert 80 <= hits[0].score < 92
    assert decide_name(hits).decision == "review"  # a typo of a listed name goes to a person
    assert decide_name(hits, Thresholds(deny=85, exact=85)).decision == "denied"
    assert decide_name(hits, Thresholds(review=99, deny=99.5, exact=99.9)).decision == "cleared"


def test_exact_name_other_country_goes_to_review(index: ScreeningIndex) -> None:
    hits = index.screen("iFlytek Co., Ltd.", country="US")
    assert hits[0].entry_id == IFLYTEK
    assert decide_name(hits).decision == "review"


def test_two_neighbouring_letters_swapped_in_a_short_word_are_a_typo() -> None:
    from gpulease.compliance.match import TOKEN_SIMILARITY, _similarity

    assert _similarity("yiut", "yitu") == TOKEN_SIMILARITY
    assert _similarity("hnaa", "hana") == TOKEN_SIMILARITY
    assert _similarity("yitu", "iytu") == 0.0  # the first letter stays put
    assert _similarity("sugon", "sugar") == 0.0  # a letter changed in a short word is another word


def test_a_swap_in_a_short_distinctive_word_finds_the_listed_party(index: ScreeningIndex) -> None:
    hits = index.screen("Yiut Technologies", country="CN")
    assert hits and hits[0].name == "Yitu Technologies"
    assert any("yiut≈yitu" in r for r in hits[0].reasons)
