"""The adversarial screening evaluation set (benchmarks/data/screening_eval/) is well formed.

Listed rows must point at entries that really are on the bundled lists: a label naming an entry the list does not
have would count a correct "cleared" as a miss. The list files are read here with a reader of their own, not the
product's loaders, so a loader bug cannot hide a wrong label. Files are looked up in the package's bundled copy
first, then in the shared data folder beside the checkout.
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EVAL = REPO / "benchmarks" / "data" / "screening_eval"

LISTED_HEADER = ["name", "country", "expected_list", "expected_name", "category", "source"]
UNLISTED_HEADER = ["name", "country", "category", "source"]
LISTED_CATEGORIES = {
    "cn_legal_simplified", "cn_legal_traditional", "cn_short_brand", "stock_code", "pinyin", "wade_giles",
    "legal_form_variant", "affiliate", "cyrillic_native", "persian_arabic_native", "korean_native",
    "ru_latin_translit", "ir_latin_translit", "ko_latin_translit", "typo", "reorder", "hyphen_split_join",
    "exact", "individual", "former_name", "english_trade_name", "spelling_variant",
}  # fmt: skip
UNLISTED_CATEGORIES = {
    "cn_sector_peer", "cn_same_city", "cn_china_prefix", "cn_native", "hk_tw_company", "hk_tw_native",
    "ru_company", "cyrillic_native", "ir_company", "persian_arabic_native", "kr_company", "korean_native",
    "similar_name", "namesake",
}  # fmt: skip
LIST_CODES = {"SDN", "CMIC", "SSI", "MBS", "PLC", "EL", "DPL", "UN", "UVL", "ISN", "DTC", "CAP"}


def read(name: str) -> tuple[list[str], list[dict[str, str]]]:
    with (EVAL / name).open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def locate(relative: str) -> Path | None:
    for root in (
        REPO / "src" / "gpulease" / "data" / "lists",
        REPO.parent / "shared" / "data",
        Path("/work/shared/data"),
    ):
        if (root / relative).is_file():
            return root / relative
    return None


LIST_FILES = (
    "ofac-sdn-2023-12/sdn.csv",
    "ofac-cons-2025/cons_prim.csv",
    "entity-list-supplement/entity_list_supplement_v2.csv",
    "csl-sample/consolidated_sample.csv",
    "un/UN_consolidated.xml",
    "dpl.txt",
)


def _ofac(path: Path, names: dict[str, set[str]], non_sdn: bool) -> None:
    with path.open(encoding="utf-8", newline="") as fh:
        for cells in csv.reader(fh):
            if len(cells) <= 3:
                continue
            program = cells[3]
            codes = {"SDN"}
            if non_sdn:
                pairs = (("CMIC", "CMIC"), ("SSI", "UKRAINE-EO13662"), ("PLC", "NS-PLC"))
                codes = {code for code, key in pairs if key in program} or {"MBS"}
            for code in codes:
                names.setdefault(code, set()).add(cells[1].strip())


def _csl(path: Path, names: dict[str, set[str]]) -> None:
    with path.open(encoding="utf-8", newline="") as fh:
        for record in csv.DictReader(fh):
            match = re.search(r"\(([A-Z]+)\)", record["source"])
            names.setdefault(match.group(1) if match else record["source"], set()).add(record["name"].strip())


def _un(path: Path, names: dict[str, set[str]]) -> None:
    for node in ET.parse(path).getroot().iter():
        if node.tag in ("INDIVIDUAL", "ENTITY"):
            parts = [
                (node.findtext(tag) or "").strip() for tag in ("FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME")
            ]
            names.setdefault("UN", set()).add(" ".join(part for part in parts if part))


def _dpl(path: Path, names: dict[str, set[str]]) -> None:
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        names["DPL"] = {record["Name"].strip() for record in csv.DictReader(fh, delimiter="\t")}


def primary_names() -> dict[str, set[str]]:
    """Primary names per list code, from the bundled list files; skips when a file is nowhere to be found."""
    found = {relative: locate(relative) for relative in LIST_FILES}
    missing = [relative for relative, path in found.items() if path is None]
    if missing:
        pytest.skip(f"bundled list files not found: {missing}")
    paths = {relative: path for relative, path in found.items() if path is not None}
    names: dict[str, set[str]] = {}
    _ofac(paths["ofac-sdn-2023-12/sdn.csv"], names, non_sdn=False)
    _ofac(paths["ofac-cons-2025/cons_prim.csv"], names, non_sdn=True)
    _csl(paths["entity-list-supplement/entity_list_supplement_v2.csv"], names)
    _csl(paths["csl-sample/consolidated_sample.csv"], names)
    _un(paths["un/UN_consolidated.xml"], names)
    _dpl(paths["dpl.txt"], names)
    return names


def test_listed_file_has_the_agreed_shape() -> None:
    header, rows = read("listed.csv")
    assert header == LISTED_HEADER
    assert len(rows) >= 600
    assert {r["category"] for r in rows} <= LISTED_CATEGORIES
    assert {r["expected_list"] for r in rows} <= LIST_CODES
    assert all(re.fullmatch(r"[A-Z]{2}", r["country"]) for r in rows)
    assert all(r["name"].strip() and r["expected_name"].strip() and r["source"].strip() for r in rows)
    repeated = [k for k, n in Counter((r["name"].casefold(), r["expected_list"]) for r in rows).items() if n > 1]
    assert repeated == []


def test_synthetic_perturbations_stay_a_minority() -> None:
    _, rows = read("listed.csv")
    derived = [r for r in rows if r["source"].startswith("derived:")]
    assert len(derived) <= 0.25 * len(rows)
    # Every kind of evasion the issue names is represented by real forms, not only by generated ones.
    real = Counter(r["category"] for r in rows if not r["source"].startswith("derived:"))
    for category in ("cn_legal_simplified", "cn_short_brand", "stock_code", "affiliate", "cyrillic_native",
                     "persian_arabic_native", "ru_latin_translit", "ir_latin_translit", "individual"):  # fmt: skip
        assert real[category] >= 10, category


def test_unlisted_file_has_the_agreed_shape() -> None:
    header, rows = read("unlisted.csv")
    assert header == UNLISTED_HEADER
    assert len(rows) >= 300
    assert {r["category"] for r in rows} <= UNLISTED_CATEGORIES
    assert all(re.fullmatch(r"[A-Z]{2}", r["country"]) and r["source"].strip() for r in rows)
    repeated = [k for k, n in Counter(r["name"].casefold() for r in rows).items() if n > 1]
    assert repeated == []


def test_no_name_is_both_listed_and_unlisted() -> None:
    _, listed = read("listed.csv")
    _, unlisted = read("unlisted.csv")
    assert {r["name"].casefold() for r in listed} & {r["name"].casefold() for r in unlisted} == set()


def test_every_listed_row_names_an_entry_on_its_bundled_list() -> None:
    names = primary_names()
    _, rows = read("listed.csv")
    unknown = sorted(
        {(r["expected_list"], r["expected_name"]) for r in rows}
        - {(code, name) for code, listed in names.items() for name in listed}
    )
    assert unknown == []
