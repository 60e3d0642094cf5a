"""Classes of screening error fixed in the screen-recall12 round (issue 9), a positive and a negative case each.

Each name here is written for the test (not taken from the evaluation set or benchmarks' dev_extra.csv); each positive
case was cleared before this round.
"""

from __future__ import annotations

from gpulease.compliance.index import ScreeningIndex, _two_common_words
from gpulease.compliance.match import typo_apart
from gpulease.compliance.normalize import normalize_name
from gpulease.compliance.screening import screen_name
from tests.compliance.screening_checks import found

HIKVISION_EL = "EL-supplement-004"  # Hangzhou Hikvision Digital Technology Co., Ltd.
DJI = "CMIC-33111"  # SZ DJI TECHNOLOGY CO., LTD.
LUKOIL = "SSI-17248"  # LUKOIL OAO
BRAND_FEATURE = "listed brand among other words"


def _brand_hits(index: ScreeningIndex, name: str, country: str | None) -> list[str]:
    """The entries a query is a possible affiliate of by a listed brand among other words."""
    return [hit.entry_id for hit in index.screen(name, country) if any(f.name == BRAND_FEATURE for f in hit.features)]


def test_a_listed_brand_among_words_of_its_own_is_a_possible_affiliate(index: ScreeningIndex) -> None:
    # A partner's name in front, a word of trade or words the lists do not have after the brand.
    assert found(index, "Zenobia Hikvision India Private Limited", "IN", HIKVISION_EL)
    assert found(index, "DJI Creative Labs LLC", "US", DJI)
    assert found(index, "Lukoil Lubricants Asia Pte. Ltd.", "SG", LUKOIL)  # (LUKOIL's enrichment rows, this round)
    result = screen_name(index, "DJI Creative Labs LLC", "US")
    assert result.decision == "review"  # an affiliate is reviewed, never denied
    hit = next(h.hit for h in result.hits if h.hit.entry_id == DJI)
    assert hit.affiliate and "the brand the listed party is known by" in hit.reasons[0]


def test_a_brand_with_a_name_another_word_or_no_company_word_is_not_an_affiliate(index: ScreeningIndex) -> None:
    assert _brand_hits(index, "Hikvision Smith Trading LLC", "US") == []  # a person's name beside the brand
    assert _brand_hits(index, "Hikvision Almaz Antey LLC", "US") == []  # another listed party's words
    assert _brand_hits(index, "Zenobia Hikvision", None) == []  # no legal form, no word of trade or place
    # The brand with a word of trade alone, in another country: a namesake there (as the affiliate rule holds).
    assert screen_name(index, "Novatek Microelectronics Corp.", "TW").decision == "cleared"


def test_brands_are_rare_words_of_curated_parties_only(index: ScreeningIndex) -> None:
    brands = index._brand_words
    assert {"hikvision", "lukoil", "dji", "novatek"} <= brands.keys()
    # A city the lists give in an address, a word of a listed individual's name, two common words joined.
    assert not {"tabriz", "mahan", "tasnim", "postbank"} & brands.keys()
    assert _two_common_words("postbank") and not _two_common_words("hikvision")


def test_a_dubai_free_zone_company_of_a_listed_brand_is_a_possible_affiliate(index: ScreeningIndex) -> None:
    assert found(index, "Lukoil Zenobia Lubricants DMCC", "AE", LUKOIL)
    # DMCC stays a word of the name elsewhere: an unlisted firm is not the listed ALPHABET INTERNATIONAL DMCC.
    assert "dmcc" in normalize_name("Alphabet International DMCC").strong
    assert screen_name(index, "Alphabet Inc.", None).decision == "cleared"
    assert screen_name(index, "Emirates Lubricants DMCC", "AE").decision == "cleared"


def test_a_brand_that_is_also_pinyin_counts_abroad_only(index: ScreeningIndex) -> None:
    # 华为 (Huawei) is a Chinese word: at home the Chinese-name rules read it, abroad it is the group's brand.
    assert "huavey" in index._pinyin_brands
    assert found(index, "Huawei Zenobia Creative Labs Ltd", "GB", "CMIC-30947")
    assert _brand_hits(index, "Huawei Zenobia Creative Labs Ltd", "CN") == []
    assert _brand_hits(index, "Huawei Zenobia Creative Labs Ltd", None) == []


def test_a_curated_acronym_first_and_in_capitals_is_a_group_brand(index: ScreeningIndex) -> None:
    # CCCC (China Communications Construction Company, the enrichment's English trade name) names its members.
    assert "cccc" in index._acronym_brands
    assert found(index, "CCCC Zenobia Highway Engineering Co., Ltd.", "CN", "CMIC-30930")
    # Not in lower case, not after another word.
    assert _brand_hits(index, "Cccc Zenobia Highway Engineering Co., Ltd.", "CN") == []
    assert _brand_hits(index, "Zenobia CCCC Highway Engineering Co., Ltd.", "CN") == []


def test_an_acronym_the_list_gives_counts_in_the_party_s_country_only(index: ScreeningIndex) -> None:
    # NITC: an alias of the listed NATIONAL IRANIAN TANKER COMPANY, and its initials.
    assert "nitc" in index._listed_acronyms
    assert found(index, "NITC Zenobia Ship Management Company", "IR", "SDN-15117")
    assert _brand_hits(index, "NITC Zenobia Ship Management Company", "FR") == []
    assert _brand_hits(index, "NITC Zenobia Ship Management Company", None) == []


def test_a_two_word_name_with_two_neighbouring_letters_swapped_is_a_typo(index: ScreeningIndex) -> None:
    # SAMAN BANK and BANK REFAH: a bank word as listed, the other word with two neighbours swapped, the first kept.
    assert found(index, "Bank Smaan", "IR", "SDN-13135")
    assert found(index, "Bank Rfeah", "IR", "SDN-4635")
    assert typo_apart("ari", "air") and not typo_apart("ria", "air")  # (three letters: a swap, the first kept)


def test_a_changed_letter_or_a_swapped_first_letter_in_a_two_word_name_is_no_typo(index: ScreeningIndex) -> None:
    assert screen_name(index, "Bank Samal", "IR").decision == "cleared"  # a letter changed, not swapped
    assert screen_name(index, "Bank Asman", "IR").decision == "cleared"  # the first letter swapped


def test_another_company_name_the_party_traded_under_is_no_brand(index: ScreeningIndex) -> None:
    # AZIMUT LLC: an a.k.a. of the Internet Research Agency with a legal form of its own, not its brand.
    assert "azimut" not in index._brand_words
    assert screen_name(index, "Azimut Zenobia Yachts S.p.A.", "IT").decision == "cleared"
    # ROSTVERTOL PAO is one too, but the curated Роствертол confirms it as the party's own short name.
    assert "rostvertol" in index._brand_words
