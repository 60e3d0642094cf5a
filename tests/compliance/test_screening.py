from __future__ import annotations

from datetime import date
from typing import Any

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.redflags import KycProfile, RedFlagRules, evaluate
from gpulease.compliance.screening import screen_customer, screen_rows

TODAY = date(2025, 6, 1)
CLEAN: dict[str, Any] = dict(
    country="US",
    incorporated_on=date(2001, 1, 1),
    owners=(("Public shareholders", 100.0),),
    end_use="fine-tuning open language models for customer support chat products",
    requested_gpus=8,
)


def test_iflytek_legal_and_local_name_denied(index: ScreeningIndex) -> None:
    profile = KycProfile(
        legal_name="iFlytek Co., Ltd.", local_name="科大讯飞股份有限公司", **{**CLEAN, "country": "CN"}
    )
    result = screen_customer(profile, index, today=TODAY)
    assert result.status == "denied"
    legal, local = result.name_hits[0], result.name_hits[1]
    assert legal.hits[0].entry_id == local.hits[0].entry_id == "EL-supplement-001"
    assert local.decision.decision == "denied"


def test_subsidiary_denied_through_declared_parent(index: ScreeningIndex) -> None:
    profile = KycProfile(
        legal_name="Shenzhen Xunfei Cloud Computing Co., Ltd.",
        country="CN",
        parent="iFlytek Co., Ltd.",
        end_use="speech recognition model training for call centres",
        requested_gpus=16,
    )
    result = screen_customer(profile, index, today=TODAY)
    assert result.status == "denied"
    # Its own name is on no list, but it carries iFlytek's short name (讯飞, Xunfei, an enrichment alias): review.
    own = result.name_hits[0]
    assert own.decision.decision == "review" and own.hits[0].entry_id == "EL-supplement-001"
    assert own.hits[0].matched_kind == "enrichment alias"
    assert result.ownership.treated_as_listed
    (path,) = result.ownership.paths
    assert path.names == ("Shenzhen Xunfei Cloud Computing Co., Ltd.", "iFlytek Co., Ltd.")
    assert path.listed.entry_id == "EL-supplement-001"
    assert any("50% rule" in r and "iFlytek" in r for r in result.reasons)
    data = result.to_dict()
    assert data["ownership"]["paths"][0]["listed_entry"] == "EL-supplement-001"


def test_chain_of_three_through_known_parties(index: ScreeningIndex) -> None:
    profile = KycProfile(
        legal_name="Lotus Vision Analytics Pte Ltd",
        owners=(("Orchid Holdings Ltd", 60.0),),
        **{k: v for k, v in CLEAN.items() if k != "owners"},
    )
    el_holding = KycProfile(legal_name="Orchid Holdings Ltd", country="SG", owners=(("Megvii Technology", 100.0),))
    result = screen_customer(profile, index, known_parties={"Orchid Holdings Ltd": el_holding}, today=TODAY)
    assert result.status == "denied"
    assert result.ownership.paths[0].names == (
        "Lotus Vision Analytics Pte Ltd",
        "Orchid Holdings Ltd",
        "Megvii Technology",
    )


def test_nvidia_cleared(index: ScreeningIndex) -> None:
    result = screen_customer(KycProfile(legal_name="Nvidia Corporation", **CLEAN), index, today=TODAY)
    assert result.status == "cleared", result.reasons
    assert result.red_flags == ()


def test_alibaba_cloud_no_name_hit(index: ScreeningIndex) -> None:
    profile = KycProfile(legal_name="Alibaba Cloud", **{**CLEAN, "country": "CN"})
    result = screen_customer(profile, index, today=TODAY)
    assert all(n.decision.decision == "cleared" for n in result.name_hits)
    assert result.status == "cleared"


def test_red_flags(index: ScreeningIndex) -> None:
    profile = KycProfile(
        legal_name="Fresh Compute LLC",
        country="US",
        address="Zweierstrasse 35, Zurich CH-8022",  # Banco Nacional de Cuba's listed branch
        incorporated_on=date(2025, 3, 1),
        email_domain="mail.iflytek.com",
        website="https://www.example.org",
        parent="Fresh Parent Ltd",
        owners=(("Alice", 40.0),),
        end_use="AI",
        requested_gpus=128,
    )
    known = {"Fresh Parent Ltd": KycProfile(legal_name="Fresh Parent Ltd", country="HK")}
    flags = {f.rule: f for f in evaluate(profile, index, RedFlagRules(), TODAY, known)}
    assert set(flags) == {
        "shared_address",
        "new_company_large_request",
        "undisclosed_owners",
        "listed_domain",
        "parent_in_country_of_concern",
        "vague_end_use",
    }
    assert "SDN-306" in flags["shared_address"].evidence
    assert flags["listed_domain"].severity == "deny"
    assert "HK" in flags["parent_in_country_of_concern"].evidence
    result = screen_customer(profile, index, known, today=TODAY)
    assert result.status == "denied"


def test_red_flag_knobs(index: ScreeningIndex) -> None:
    profile = KycProfile(
        legal_name="Young Labs Inc",
        incorporated_on=date(2025, 1, 1),
        requested_gpus=32,
        owners=(("Founder", 100.0),),
        end_use="training vision models for crop disease detection",
    )
    assert evaluate(profile, index, RedFlagRules(), TODAY) == []
    flags = evaluate(profile, index, RedFlagRules(large_request_gpus=32), TODAY)
    assert [f.rule for f in flags] == ["new_company_large_request"]
    assert evaluate(profile, index, RedFlagRules(large_request_gpus=32, enabled=frozenset()), TODAY) == []


def test_review_on_red_flag_only(index: ScreeningIndex) -> None:
    profile = KycProfile(legal_name="Quiet River Analytics Inc", **{**CLEAN, "end_use": "research"})
    result = screen_customer(profile, index, today=TODAY)
    assert result.status == "review"
    assert any("vague_end_use" in r for r in result.reasons)


def test_screen_rows(index: ScreeningIndex) -> None:
    rows = [
        {"name": "iFlytek Co., Ltd.", "country": ""},
        {"name": "Nvidia Corporation", "country": "US"},
        {"name": "Iflytec"},
    ]
    out = list(screen_rows(rows, index))
    assert [r["decision"] for r in out] == ["denied", "cleared", "review"]
    assert out[0]["top_list"] == "EL" and out[0]["top_score"] >= 98
    assert out[0]["top_entry"].startswith("EL-supplement-001")
