from __future__ import annotations

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
    assert name.strong == ("kedaxunfei",)
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
    assert normalize_name("Hang Zhou Hikvision").strong == ("hangzhou", "hikvision")
    assert normalize_name("Hong Kong Trading").strong == ("hongkong", "trading")


def test_only_common_words_still_a_name() -> None:
    assert normalize_name("Group Co., Ltd.").strong == ("group", "co", "ltd")
