from __future__ import annotations

import pytest

from gpulease.compliance.normalize import normalize_name


def test_legal_forms_are_weak() -> None:
    name = normalize_name("iFlytek Co., Ltd.")
    assert name.strong == ("iflytek",)
    assert name.weak == ("co", "ltd")
    assert normalize_name("IFLYTEK LLC").key == normalize_name("Iflytek GmbH").key == "iflytek"


def test_accents_case_and_punctuation() -> None:
    assert normalize_name("Société Générale S.A.").strong == ("societe", "generale")
    assert normalize_name("ＡＢＣ　Trading").strong == ("abc", "trading")  # full-width (NFKC)


def test_chinese_brand_transliterated_and_legal_form_weak() -> None:
    name = normalize_name("科大讯飞股份有限公司")
    assert name.display == ("kedaxunfei",)
    assert name.strong == ("kedaksunfey",)  # canonical form: x and ks, final -ei and -ey are one romanisation
    assert name.weak == ("co", "ltd")
    assert any("transliterated from Chinese" in note for note in name.notes)


def test_chinese_terms_mapped_to_english_list_forms() -> None:
    name = normalize_name("北京商汤科技开发有限公司")
    assert name.strong == ("beijing", "shangtang", "technology", "development")
    assert normalize_name("北京市商汤科技开发有限公司").key == name.key
    assert normalize_name("中芯国际集成电路制造有限公司").strong[1:] == (
        "international",
        "integrated",
        "circuit",
        "manufacturing",
    )


def test_traditional_same_as_simplified() -> None:
    traditional = normalize_name("商湯集團有限公司")
    assert traditional.key == normalize_name("商汤集团有限公司").key == "shangtang"
    assert any("traditional Chinese" in note for note in traditional.notes)


def test_split_place_names_joined() -> None:
    assert normalize_name("Hang Zhou Hikvision").display == ("hangzhou", "hikvision")
    assert normalize_name("Hong Kong Trading").display == ("hongkong", "trading")


def test_only_common_words_still_a_name() -> None:
    assert normalize_name("Group Co., Ltd.").display == ("group", "co", "ltd")


def test_pinyin_company_words_read_like_their_chinese() -> None:
    # The SDN writes Chinese company names in pinyin: "... Keji Youxian Gongsi" is "... Technology Co., Ltd.".
    pinyin = normalize_name("Shenzhen Xunfei Keji Youxian Gongsi")
    assert (
        pinyin.key
        == normalize_name("深圳讯飞科技有限公司").key
        == normalize_name("Shenzhen Xunfei Technology Co Ltd").key
    )
    assert pinyin.weak == ("co", "ltd")
    assert normalize_name("Zhongguo Dianzi Jituan").display == ("china", "electronics")
    assert any("pinyin company words" in n for n in pinyin.notes)


def test_wade_giles_read_as_pinyin() -> None:
    name = normalize_name("Chung-hsing T'ung-hsun")  # 中兴通讯, ZTE: "t'ung" is tong, "tung" would be dong
    # The syllables a hyphen joins are one word, as the Chinese name's pinyin is.
    assert name.display == ("zhongxing", "communications")
    assert name.strong == normalize_name("中兴通讯").strong
    assert any("Wade-Giles" in n for n in name.notes)
    assert normalize_name("Pei-ching Kuang-shih").display[0] == "beijing"
    assert normalize_name("Hua Wei").display == ("hua", "wei")  # pinyin already: left alone


def test_other_scripts_transliterated() -> None:
    cyrillic = normalize_name("Рособоронэкспорт")
    assert cyrillic.key == normalize_name("Rosoboronexport").key
    assert any("Cyrillic" in n for n in cyrillic.notes)
    assert normalize_name("Ροσομπορονεξπορτ").notes[0].startswith("transliterated from Greek")
    persian = normalize_name("بانک مرکزی ایران")
    assert persian.display == ("bnk", "mrkzy", "yrn") and all(persian.abjad)


def test_romanisation_variants_and_plurals_fold_together() -> None:
    for a, b in [
        ("Dmitriy Utkin", "Dmitry Utkin"),
        ("Wagner", "Vagner"),
        ("Bank Markazi Jomhouri", "Bank Markazi Jomhuri"),
        ("Khamenei", "Hamenei"),
        ("Mohammad", "Mohamad"),
        ("Huawei Technologies", "Huawei Technology"),
        ("Yitu Networks", "Yitu Network"),
    ]:
        assert normalize_name(a).key == normalize_name(b).key, (a, b)


def test_stock_code_in_brackets_set_aside_and_initials_joined() -> None:
    name = normalize_name("Hangzhou Hikvision Digital Technology Co., Ltd. (002415.SZ)")
    assert name.display == ("hangzhou", "hikvision", "digital", "technology")
    assert "002415" in name.weak
    assert normalize_name("Iflytek (SZ: 002230)").display == ("iflytek",)
    assert normalize_name("Z.T.E. Corporation").display == normalize_name("Z T E Corp").display == ("zte",)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("ALROSA (MOEX: ALRS)", "ALRS"),
        ("Semiconductor Manufacturing International Corp (HKG: 0981)", "0981"),
        ("Pingtan Marine Enterprise Ltd. (NASDAQ: PME)", "PME"),
        ("CNOOC Limited (NYSE: CEO)", "CEO"),
    ],
)
def test_a_ticker_with_its_exchange_in_brackets_is_set_aside(name: str, code: str) -> None:
    norm = normalize_name(name)
    assert code in norm.weak
    assert code.lower() not in norm.strong
    assert any("stock code" in note for note in norm.notes)


def test_a_bare_mainland_code_after_a_name_is_set_aside() -> None:
    norm = normalize_name("中国移动 600941")
    assert norm.strong == ("china", "mobile")
    assert "600941" in norm.weak
    assert normalize_name("Qihoo 360").strong[-1] == "360"  # a number in the name stays


@pytest.mark.parametrize(
    "name",
    [
        "GAZPROMBANK JOINT STOCK COMPANY",
        "Gazprombank Open Joint-Stock Company",
        "PUBLIC JOINT STOCK COMPANY GAZPROMBANK",
    ],
)
def test_joint_stock_company_is_a_legal_form(name: str) -> None:
    assert normalize_name(name).strong == ("gazprombank",)


def test_the_persian_ezafe_is_no_word_of_the_name() -> None:
    assert normalize_name("Bank-e Melli-ye Iran").strong == normalize_name("Bank Melli Iran").strong
    assert "ye" not in normalize_name("Sherkat-e Melli-ye Naft-e Iran").strong


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Almaz-Antej", "Almaz-Antey"),  # -ей as -ej / -ey / -ei
        ("Almaz-Antei", "Almaz-Antey"),
        ("Korporacija", "Korporatsiya"),  # ц as c / ts, я as ja / ya after i
        ("Aviakompaniia", "Aviakompaniya"),
        ("Lukaschenko", "Lukashenko"),  # German sch
        ("Tschemesow", "Chemesov"),  # German tsch, w
        ("Obshchestvo", "Obschestvo"),  # щ as shch / sch
    ],
)
def test_romanisation_variants_of_russian_names_fold_to_one_token(one: str, other: str) -> None:
    assert normalize_name(one).strong == normalize_name(other).strong


def test_wade_giles_wei_is_wei_and_the_apostrophe_counts_where_it_is_written() -> None:
    huawei = normalize_name("Hua-wei Chi-shu Yu-hsien Kung-ssu")
    assert huawei.strong == (normalize_name("Huawei").strong[0], "technology")  # "hua-wei": one word, wei not wai
    # "K'ung" (aspirated) is kong, "Kung" in the same name is gong: read position by position.
    avic = normalize_name("Chung-kuo Hang-k'ung Kung-yeh Chi-t'uan Yu-hsien Kung-ssu")
    assert avic.strong == ("china", "aviation", "industry")
    assert "group" in avic.weak


@pytest.mark.parametrize(
    ("one", "other"),
    [("Kontsern", "Concern"), ("Kommercheskiy", "Commercheskiy"), ("Kalashnikov", "Calashnikov")],
)
def test_a_hard_c_at_the_start_of_a_word_is_a_k(one: str, other: str) -> None:
    assert normalize_name(one).strong == normalize_name(other).strong


def test_a_patronymic_ending_in_ic_keeps_its_c() -> None:
    assert normalize_name("Borisovic").strong == ("borisovic",)


@pytest.mark.parametrize(
    ("rr", "mr"),
    [
        ("Air Goryeo", "Air Koryo"),
        ("Joseon", "Choson"),
        ("Chosun", "Choson"),
        ("Pyeongyang", "Pyongyang"),
        ("Kim Jong-eun", "Kim Jong Un"),
        ("Geumgang", "Kumgang"),
        ("Gwangseon", "Kwangson"),
        ("Daeseong", "Taesong"),
        ("Ryeonbong", "Ryonbong"),
    ],
)
def test_revised_romanization_and_mccune_reischauer_fold_to_one_spelling(rr: str, mr: str) -> None:
    assert normalize_name(rr).strong == normalize_name(mr).strong


@pytest.mark.parametrize("word", ["bank", "sun", "chong", "huawei", "rossiya", "sepah", "data", "kim"])
def test_words_that_show_no_revised_romanization_keep_their_letters(word: str) -> None:
    from gpulease.compliance.romanize import korean_fold

    assert korean_fold(word) == word


def test_pinyin_is_not_read_as_korean() -> None:
    assert normalize_name("Hua-wei Chi-shu Yu-hsien Kung-ssu").display[0] == "huawei"
    assert normalize_name("ZHU, Hailun").strong == ("zhu", "hailun")


def test_hangul_is_romanised_with_its_sound_changes() -> None:
    from gpulease.compliance.romanize import to_latin

    # 고려: ㄹ between vowels is r (a letter-by-letter table writes "golyeo")
    assert to_latin("고려항공") == "goryeohanggong"
    assert normalize_name("고려항공").strong == normalize_name("Koryohanggong").strong
    assert any("transliterated from Hangul" in n for n in normalize_name("조선중앙은행").notes)
