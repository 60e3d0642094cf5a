"""The curated Chinese alias file shipped with the product: its shape, and that every row names a real list entry."""

from __future__ import annotations

import collections
import csv
import functools
import re
import unicodedata
from importlib.resources import as_file, files
from pathlib import Path

import opencc
import pytest

from gpulease.compliance.lists import load_file

HEADER = ["list", "entry_id", "listed_name", "alias", "alias_kind", "script", "source_url", "source_note"]
LISTS = {"SDN", "CMIC", "SSI", "PLC", "CAP", "MBS", "EL", "UVL", "MEU"}
KINDS = {
    "legal_name",
    "short_name",
    "brand",
    "stock_code",
    "english_trade_name",
    "former_name",
    "pinyin",
    "wade_giles",
}
SCRIPTS = {"Hans", "Hant", "Latn"}
# OFAC non-SDN programmes -> the list code of their family (the README's mapping).
CONS_CODES = {
    "CMIC-EO13959": "CMIC",
    "NS-CMIC": "CMIC",
    "UKRAINE-EO13662": "SSI",
    "NS-PLC": "PLC",
    "561-Related": "CAP",
    "RUSSIA-EO14024": "MBS",
}
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
STOCK_CODE = re.compile(r"^(\d{4}\.HK|\d{6}\.(SH|SZ))$")

PACKAGE_LISTS = files("gpulease") / "data" / "lists"
ALIASES = PACKAGE_LISTS / "enrichment" / "cn_aliases.csv"
# The list files are being bundled into the package; until then the shared copies stand in (tests only).
SHARED_LISTS = Path("/work/shared/data")


@functools.cache
def alias_rows() -> list[dict[str, str]]:
    with as_file(ALIASES) as path, open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def list_file(relative: str) -> Path:
    """A bundled list file, from the package if it ships there, else from the shared data folder; or skip."""
    with as_file(PACKAGE_LISTS.joinpath(*relative.split("/"))) as packaged:
        if Path(packaged).exists():
            return Path(packaged)
    shared = SHARED_LISTS / relative
    if shared.exists():
        return shared
    pytest.skip(f"{relative} is neither in the package nor in {SHARED_LISTS}")


def test_header_is_the_documented_one() -> None:
    with as_file(ALIASES) as path, open(path, encoding="utf-8", newline="") as f:
        assert next(csv.reader(f)) == HEADER


def test_every_value_is_one_the_loader_understands() -> None:
    rows = alias_rows()
    assert len(rows) > 500
    for row in rows:
        assert row["list"] in LISTS, row
        assert row["alias_kind"] in KINDS, row
        assert row["script"] in SCRIPTS, row
        assert row["listed_name"].strip() and row["alias"].strip(), row
        assert row["alias"] == row["alias"].strip(), row
        if row["list"] == "SDN":
            assert re.fullmatch(r"SDN-\d+", row["entry_id"]), row
        elif row["entry_id"]:
            assert re.fullmatch(r"CONS-\d+", row["entry_id"]), row


def test_no_alias_is_repeated_for_one_entry() -> None:
    keys = collections.Counter((r["list"], r["entry_id"], r["listed_name"], r["alias"]) for r in alias_rows())
    assert [key for key, n in keys.items() if n > 1] == []


def test_no_alias_merely_repeats_the_listed_name() -> None:
    def folded(text: str) -> str:
        return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).casefold())

    assert [r for r in alias_rows() if folded(r["alias"]) == folded(r["listed_name"])] == []


def test_script_matches_the_characters() -> None:
    to_simplified = opencc.OpenCC("t2s")
    for row in alias_rows():
        alias = row["alias"]
        if row["script"] == "Latn":
            assert not CJK.search(alias), row
        else:
            assert CJK.search(alias), row
            # A simplified alias is unchanged by t2s; a traditional one is not (identical forms get one Hans row).
            if row["script"] == "Hans":
                assert to_simplified.convert(alias) == alias, row
            else:
                assert to_simplified.convert(alias) != alias, row


def test_stock_codes_name_their_exchange() -> None:
    codes = [r for r in alias_rows() if r["alias_kind"] == "stock_code"]
    assert codes
    assert [r["alias"] for r in codes if not STOCK_CODE.match(r["alias"])] == []


def test_every_row_cites_a_public_source() -> None:
    for row in alias_rows():
        assert re.match(r"https?://[^\s/]+\.[^\s/]+", row["source_url"]), row
        assert len(row["source_note"]) >= 10, row


def test_key_chinese_firms_carry_their_chinese_names() -> None:
    aliases = {(r["list"], r["alias"]) for r in alias_rows()}
    for expected in [
        ("CMIC", "华为技术有限公司"),
        ("CMIC", "中芯国际集成电路制造有限公司"),
        ("CMIC", "0981.HK"),
        ("CMIC", "688981.SH"),
        ("CMIC", "杭州海康威视数字技术股份有限公司"),
        ("CMIC", "002415.SZ"),
        ("CMIC", "曙光信息产业股份有限公司"),
        ("CMIC", "旷视科技有限公司"),
        ("CMIC", "商湯集團股份有限公司"),
        ("EL", "浙江大华技术股份有限公司"),
        ("EL", "科大訊飛股份有限公司"),
        ("EL", "海光信息技术股份有限公司"),
        ("SDN", "新疆生产建设兵团"),
    ]:
        assert expected in aliases, expected


def test_ofac_sdn_rows_resolve_against_the_sdn_file() -> None:
    dataset = load_file(list_file("ofac-sdn-2023-12/sdn.csv"))
    names = {entry.id: entry.name for entry in dataset.entries}
    rows = [r for r in alias_rows() if r["list"] == "SDN"]
    assert rows
    for row in rows:
        assert names.get(row["entry_id"]) == row["listed_name"], row


def test_ofac_non_sdn_rows_resolve_against_the_consolidated_file() -> None:
    # The product has no loader for the non-SDN set yet, so the file is read here as OFAC publishes it.
    entries: dict[str, tuple[str, set[str]]] = {}
    with open(list_file("ofac-cons-2025/cons_prim.csv"), encoding="utf-8", errors="replace", newline="") as f:
        for cells in csv.reader(f):
            if len(cells) > 3 and cells[0].strip().isdigit():
                programs = {p.strip(" []") for p in cells[3].split("] [")}
                entries[f"CONS-{cells[0].strip()}"] = (cells[1].strip(), {CONS_CODES.get(p, p) for p in programs})
    rows = [r for r in alias_rows() if r["entry_id"].startswith("CONS-")]
    assert rows
    for row in rows:
        name, codes = entries[row["entry_id"]]
        assert name == row["listed_name"], row
        assert row["list"] in codes, row


def test_entity_list_and_csl_rows_resolve_by_list_and_name() -> None:
    listed: set[tuple[str, str]] = set()
    for relative in ("entity-list-supplement/entity_list_supplement_v2.csv", "csl-sample/consolidated_sample.csv"):
        listed |= {(entry.list, entry.name) for entry in load_file(list_file(relative)).entries}
    rows = [r for r in alias_rows() if not r["entry_id"]]
    assert rows
    assert [r for r in rows if (r["list"], r["listed_name"]) not in listed] == []
