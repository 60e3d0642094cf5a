"""The cases of issue 9, as a compliance officer would try them: decisions, rules and explanations."""

from __future__ import annotations

from typing import Any

import pytest

from gpulease.compliance.decide import decide_name, rule_for
from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.model import Address, ListEntry
from gpulease.compliance.screening import ScreeningResult, screen_name

SENSETIME = "EL-supplement-002"
HIKVISION = "EL-supplement-004"


def _top(result: ScreeningResult, entry_id: str) -> dict[str, Any]:
    return next(h.to_dict() for h in result.hits if h.hit.entry_id == entry_id)


@pytest.mark.parametrize(
    ("name", "country", "entry"),
    [
        ("Wagner Group", "RU", "SDN-22543"),  # an OFAC alias: the server used to drop every alias
        ("Rosoboronexport", None, "SDN-18782"),  # listed as ROSOBORONEKSPORT OAO: x and ks are one spelling
        ("Bank Markazi Iran", None, "SDN-4632"),
        ("北京商汤科技开发有限公司", "CN", SENSETIME),
        ("北京商湯科技開發有限公司", "CN", SENSETIME),
        ("Beijing Shangtang Keji Kaifa Youxian Gongsi", "CN", SENSETIME),  # pinyin, as the SDN writes Chinese
        ("Pei-ching Shang-t'ang K'o-chi K'ai-fa", "CN", SENSETIME),  # Wade-Giles
        ("Рособоронэкспорт", None, "SDN-18782"),  # Cyrillic
        ("ЧВК Вагнер", "RU", "SDN-22543"),
        ("بانک مرکزی ایران", "IR", "SDN-4632"),  # Persian: consonants against the listed spelling
        ("Hangzhou Hikvision Digital Technology Co., Ltd. (002415.SZ)", "CN", HIKVISION),  # stock code in brackets
        ("Hik-Vision", None, HIKVISION),  # hyphenated brand
        ("Megvii Technologies Limited", "CN", "EL-supplement-003"),  # plural
    ],
)
def test_listed_parties_in_real_world_forms_are_denied(
    index: ScreeningIndex, name: str, country: str | None, entry: str
) -> None:
    result = screen_name(index, name, country)
    assert result.decision == "denied", result.reasons
    hit = _top(result, entry)
    assert hit["outcome"] == "denied" and str(hit["rule"]).startswith("blocking list")


@pytest.mark.parametrize(
    ("name", "country"),
    [
        ("Nvidia Corporation", "US"),
        ("Microsoft Corporation", "US"),
        ("Alibaba Cloud", "CN"),
        ("Tencent Holdings", "CN"),
    ],
)
def test_unlisted_companies_cleared(index: ScreeningIndex, name: str, country: str) -> None:
    assert screen_name(index, name, country).decision == "cleared"


@pytest.mark.parametrize(
    ("name", "country", "entry"),
    [
        ("Hikvision USA Inc.", "US", HIKVISION),
        ("Hikvision Europe B.V.", "NL", HIKVISION),
        ("Iflytek Russia", "RU", "EL-supplement-001"),
        ("华为技术有限公司北京分公司", "CN", "EL-supplement-009"),  # a branch, written in Chinese
    ],
)
def test_affiliate_names_go_to_review_with_the_affiliates_rule(
    index: ScreeningIndex, name: str, country: str, entry: str
) -> None:
    result = screen_name(index, name, country)
    assert result.decision == "review", result.reasons
    hit = _top(result, entry)
    assert hit["affiliate"] is True and hit["outcome"] == "review"
    assert "affiliates rule" in str(hit["rule"]) and "50% rule" in str(hit["rule"])
    assert any(f["name"] == "affiliate pattern" for f in hit["features"])


def test_non_blocking_lists_review_with_their_meaning(index: ScreeningIndex) -> None:
    result = screen_name(index, "China Telecom Corporation Limited", "CN")
    assert result.decision == "review"
    hit = _top(result, "CMIC-30882")
    assert hit["outcome"] == "review" and hit["blocking"] is False
    assert "securities" in str(hit["restriction"]) and "not a blocking list" in str(hit["rule"])
    ssi = ListEntry(
        id="SSI-1",
        list="SSI",
        list_name="Sectoral Sanctions Identifications List",
        type="entity",
        name="Volga Credit Bank",
    )
    found = ScreeningIndex.build([ssi]).screen("Volga Credit Bank")
    assert decide_name(found).decision == "review"
    assert "financing" in rule_for(found[0]).rule


def test_an_individual_is_denied_only_when_an_identifier_agrees(index: ScreeningIndex) -> None:
    # SDN-39758 IVANOV, Aleksandr Aleksandrovich: DOB 14 Jun 1960, nationality Russia.
    bare = screen_name(index, "Aleksandr Aleksandrovich Ivanov")
    assert bare.decision == "review"
    hit = _top(bare, "SDN-39758")
    assert "namesake" in str(hit["rule"]) and hit["dates_of_birth"] == ["14 Jun 1960"]
    agreeing = screen_name(index, "Aleksandr Aleksandrovich Ivanov", date_of_birth="1960-06-14", nationality="RU")
    assert agreeing.decision == "denied"
    features = {f["name"] for f in _top(agreeing, "SDN-39758")["features"]}
    assert {"date of birth agrees", "nationality agrees"} <= features
    other = screen_name(index, "Aleksandr Aleksandrovich Ivanov", date_of_birth="1985-03-02")
    assert other.decision != "denied"
    assert all(h.hit.score < 90 for h in other.hits if h.hit.entry_id == "SDN-39758")
    # A Denied Persons List individual on a bare name: a person decides.
    assert screen_name(index, "Aaron Abraham Villa", "US").decision == "review"


def test_every_hit_is_explained_for_a_compliance_officer(index: ScreeningIndex) -> None:
    result = screen_name(index, "iFlytek Co., Ltd.", "CN")
    hit = _top(result, "EL-supplement-001")
    assert hit["list_name"] == "Entity List (EL) - Bureau of Industry and Security"
    assert hit["federal_register"] == "84 FR 54002" and hit["listing_date"] == "2019-10-09"
    assert hit["license_requirement"] == "For all items subject to the EAR."
    assert "presumption of denial" in str(hit["license_policy"])
    assert hit["addresses"] == [
        {"street": None, "city": "Hefei", "state": "Anhui", "postal_code": None, "country": "CN"}
    ]
    assert hit["matched_kind"] in ("primary name", "alias") and hit["enrichment"] is None
    features = hit["features"]
    assert isinstance(features, list)
    assert sum(f["points"] for f in features) == pytest.approx(hit["score"], abs=0.2)  # the score is its features
    assert {"entry_id", "list", "name", "matched_name", "score", "reasons", "rule", "programs"} <= set(hit)


def test_individual_identifiers_in_the_explanation(index: ScreeningIndex) -> None:
    hit = _top(screen_name(index, "Aleksandr Aleksandrovich Ivanov"), "SDN-39758")
    assert hit["nationalities"] == ["RU"]
    assert {"kind": "Tax ID No.", "value": "771873416848", "country": "RU"} in hit["identifiers"]


@pytest.mark.parametrize(
    "name", ["Sugon USA Inc.", "Sugon UK Limited", "Sugons", "Chinese Sugon", "Sugon Computing Technologies"]
)
def test_a_listed_name_plus_a_place_legal_form_or_plural_is_still_found(index: ScreeningIndex, name: str) -> None:
    result = screen_name(index, name)
    assert result.decision != "cleared", name
    assert any(h.hit.entry_id == "EL-supplement-010" for h in result.hits)


def test_common_words_only_listed_name_needs_the_whole_name(index: ScreeningIndex) -> None:
    assert screen_name(index, "Beijing Technology Development Co., Ltd.", "CN").decision == "cleared"


def test_country_evidence_raises_score_and_is_a_named_feature() -> None:
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
    same = index.screen("Orion Quantum Compute Lab", country="Russia", address="Moscow")[0]
    assert [f.name for f in same.features] == ["name similarity", "same country", "same city"]
