"""Classes of screening error fixed in the screen-recall8 round (issue 9), a positive and a negative case each.

Each name here is written for the test (not taken from the evaluation set or benchmarks' dev_extra.csv); each positive
case was screened wrongly before.
"""

from __future__ import annotations

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.screening import screen_name
from tests.compliance.screening_checks import found

HUAWEI = "CMIC-30947"  # HUAWEI TECHNOLOGIES CO., LTD. (enrichment short name 华为)
DJI = "CMIC-33111"  # SZ DJI TECHNOLOGY CO., LTD. (大疆)
IFLYTEK = "EL-supplement-001"  # IFLYTEK (讯飞)
XPCC = "SDN-29299"  # XINJIANG PRODUCTION AND CONSTRUCTION CORPS (兵团)
KALASHNIKOV = "SDN-16911"  # JOINT STOCK COMPANY CONCERN KALASHNIKOV
IZHMEKH = "SDN-18317"  # IZHEVSKY MEKHANICHESKY ZAVOD JSC
CHINA_SATCOM = "CMIC-32069"  # CHINA SATELLITE COMMUNICATIONS CO., LTD.
FTB = "UN-KPe.047"  # FOREIGN TRADE BANK (FTB), DPRK


def test_a_listed_chinese_brand_inside_a_longer_chinese_name_is_a_possible_affiliate(index: ScreeningIndex) -> None:
    # 华为 + 终端 (devices): the romanisation joins them into one word the lists do not have.
    result = screen_name(index, "华为终端有限公司", "CN")
    assert result.decision == "review"
    hit = next(h.hit for h in result.hits if h.hit.entry_id == HUAWEI)
    assert hit.affiliate and hit.score >= 80
    assert any("字号" in reason for reason in hit.reasons)
    assert hit.enrichment is not None and hit.enrichment.source_url  # the alias's source is in the explanation
    # After a region only, in traditional script too.
    assert found(index, "深圳市大疆百旺科技有限公司", "CN", DJI)
    assert found(index, "訊飛智元信息科技有限公司", "CN", IFLYTEK)


def test_a_listed_chinese_brand_after_another_word_or_with_another_trade_is_not(index: ScreeningIndex) -> None:
    # Not after a place alone: the characters are part of other words (中华 + 为).
    assert not found(index, "中华为民服务有限公司", "CN", HUAWEI)
    # Another trade, which no name of the listed party has (catering; real estate): another firm sharing two characters.
    assert not found(index, "北京华为餐饮有限公司", "CN", HUAWEI)
    assert not found(index, "深圳市大疆房地产开发有限公司", "CN", DJI)


def test_a_two_character_brand_that_is_an_everyday_word_is_no_sign(index: ScreeningIndex) -> None:
    # 兵团 (corps) is XPCC's short name and an everyday word; 华为 is frequent too, but HUAWEI spells it.
    assert "兵团" not in index._chinese_brands
    assert "华为" in index._chinese_brands
    assert not found(index, "新疆兵团物流有限公司", "CN", XPCC)


def test_english_trade_names_from_the_enrichment(index: ScreeningIndex) -> None:
    assert found(index, "Kalashnikov Group", "RU", KALASHNIKOV)  # was a namesake review of an individual
    assert found(index, "Izhevsk Mechanical Plant", "RU", IZHMEKH)
    assert found(index, "ChinaSat", "CN", CHINA_SATCOM)


def test_trade_names_do_not_reach_other_firms(index: ScreeningIndex) -> None:
    assert screen_name(index, "Kalashnikov Tours Ltd", "GB").decision == "cleared"
    assert not found(index, "Izhevsk Motor Plant", "RU", IZHMEKH)


def test_dprk_is_a_word_of_place(index: ScreeningIndex) -> None:
    assert found(index, "Foreign Trade Bank of the DPRK", "KP", FTB)


def test_dprk_does_not_make_another_country_s_bank_the_listed_one(index: ScreeningIndex) -> None:
    assert screen_name(index, "Foreign Trade Bank of Cambodia", "KH").decision == "cleared"


HIKVISION_EL = "EL-supplement-004"
INSPUR = "CMIC-30949"  # INSPUR GROUP CO., LTD.
NOVATEK = "SSI-17064"  # OAO NOVATEK
SUNWAY = "SDN-22687"  # SUNWAY TECH CO., LTD


def test_a_listed_brand_with_a_legal_form_and_a_unit_word_abroad_is_a_possible_affiliate(
    index: ScreeningIndex,
) -> None:
    # "Systems", "Research" say what a unit does, not another trade: the group's subsidiary under its brand.
    result = screen_name(index, "Hikvision Systems Inc.", "US")
    assert result.decision == "review"  # not denied: not the listed name itself
    hit = next(h.hit for h in result.hits if h.hit.entry_id == HIKVISION_EL)
    assert hit.affiliate and any(f.name == "brand's unit abroad" for f in hit.features)
    assert found(index, "Inspur Research LLC", "US", INSPUR)


def test_a_brand_with_a_sector_word_or_its_own_trade_abroad_is_another_firm(index: ScreeningIndex) -> None:
    assert not found(index, "Novatek Microelectronics Corp.", "TW", NOVATEK)  # a sector, not a unit
    assert not found(index, "Sunway Technology Sdn Bhd", "MY", SUNWAY)  # the listed SUNWAY TECH's own trade word
    assert screen_name(index, "Panda Research Inc", "US").decision == "cleared"  # an English word, not a brand
    # A rare word of a party the enrichment does not cover (AVIA GROUP LLC) is no group's brand.
    assert screen_name(index, "Avia Solutions Group PLC", "LT").decision == "cleared"
    # No legal form: not a company incorporated under the brand.
    hits = screen_name(index, "Hikvision Research", "US").hits
    assert not any(f.name == "brand's unit abroad" for h in hits for f in h.hit.features)
