"""The curated native-script alias file (Russian, Belarusian, Iranian, DPRK and other parties): its shape, that
every row names a real entry of the bundled lists, and that the names it carries screen as the party."""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from importlib.resources import as_file, files

import pytest

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.lists import bundled_dataset, read_enrichment_file
from gpulease.compliance.screening import screen_name

HEADER = ["list", "entry_id", "listed_name", "alias", "alias_kind", "script", "source_url", "source_note"]
KINDS = {"legal_name", "short_name", "english_trade_name", "former_name", "transliteration"}
SCRIPT_OF = {"CYRILLIC": "Cyrl", "ARABIC": "Arab", "HANGUL": "Hang"}
ALIASES = files("gpulease") / "data" / "lists" / "enrichment" / "intl_aliases.csv"


@functools.cache
def rows() -> list[dict[str, str]]:
    with as_file(ALIASES) as path, open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_header_values_and_sources() -> None:
    with as_file(ALIASES) as path, open(path, encoding="utf-8", newline="") as f:
        assert next(csv.reader(f)) == HEADER
    assert len(rows()) >= 300
    for row in rows():
        assert row["alias_kind"] in KINDS, row
        assert row["source_url"].startswith(("http://", "https://")), row
        assert row["source_note"].strip(), row
        assert row["alias"] == row["alias"].strip() and row["alias"], row


def test_the_script_column_matches_the_characters() -> None:
    for row in rows():
        scripts = {
            SCRIPT_OF.get(unicodedata.name(ch).split(" ", 1)[0], "?")
            for ch in row["alias"]
            if ch.isalpha() and not ch.isascii()
        }
        assert scripts == ({row["script"]} if row["script"] != "Latn" else set()), row


def test_no_alias_is_repeated_for_one_entry() -> None:
    keys = [(r["list"], r["entry_id"], r["listed_name"], r["alias"]) for r in rows()]
    assert len(keys) == len(set(keys))


def test_every_row_resolves_to_an_entry_of_the_bundled_lists() -> None:
    dataset = bundled_dataset()
    assert dataset.enrichment is not None and dataset.enrichment.unresolved == ()
    by_id = {e.id: e for e in dataset.entries}
    for row in rows():
        if row["entry_id"]:
            entry = by_id[row["entry_id"]]
            assert entry.name == row["listed_name"] and entry.list == row["list"], row
        else:
            assert any(e.list == row["list"] and e.name == row["listed_name"] for e in dataset.entries), row


def test_the_file_reads_through_the_product_loader() -> None:
    with as_file(ALIASES) as path:
        enrichment = read_enrichment_file(path)
    assert len(enrichment.rows) == len(rows())
    assert {r.alias.script for r in enrichment.rows} == {"Cyrl", "Arab", "Hang", "Latn"}


def test_the_bundled_enrichment_is_both_files() -> None:
    dataset = bundled_dataset()
    assert dataset.enrichment is not None
    # (and the known-subsidiary file, attached through the same loader: tests/compliance/test_subsidiaries.py)
    assert dataset.enrichment.file == "cn_aliases.csv + intl_aliases.csv + subsidiaries.csv"


def test_programmes_are_covered_broadly() -> None:
    """Not only a handful of parties: Russian, Belarusian, Iranian and DPRK entries, banks and state bodies."""
    entries = {r["entry_id"] or f"{r['list']}|{r['listed_name']}" for r in rows()}
    by_script: dict[str, set[str]] = {}
    for r in rows():
        by_script.setdefault(r["script"], set()).add(r["entry_id"] or r["listed_name"])
    assert len(entries) >= 150
    assert len(by_script["Cyrl"]) >= 60 and len(by_script["Arab"]) >= 55 and len(by_script["Hang"]) >= 30


@pytest.mark.parametrize(
    ("name", "country", "entry"),
    [
        ("ФСБ России", "RU", "SDN-21344"),
        ("Федеральная служба безопасности Российской Федерации", "RU", "SDN-21344"),
        ("Госкорпорация «Ростех»", "RU", "SDN-17260"),
        ("ПАО Сбербанк", "RU", "SDN-17018"),
        ("Банк ВТБ (ПАО)", "RU", "SDN-17013"),
        ("ОАО «Беларуськалий»", "BY", "SDN-32746"),
        ("سازمان انرژی اتمی ایران", "IR", "SDN-25627"),
        ("شرکت ملی نفت ایران", "IR", "SDN-11317"),
        ("بانک ملت", "IR", "SDN-25019"),
        ("조선중앙은행", "KP", "SDN-23015"),
        ("고려항공", "KP", "SDN-20520"),
        ("조선광선은행", "KP", "SDN-11581"),
    ],
)
def test_native_script_names_find_the_party(index: ScreeningIndex, name: str, country: str, entry: str) -> None:
    result = screen_name(index, name, country)
    assert result.decision != "cleared", result.reasons
    assert any(h.hit.entry_id == entry and h.ruling.outcome != "cleared" for h in result.hits), result.reasons


def test_a_native_script_hit_cites_its_source(index: ScreeningIndex) -> None:
    result = screen_name(index, "ФСБ России", "RU")
    hit = next(h for h in result.hits if h.hit.entry_id == "SDN-21344")
    assert hit.hit.enrichment is not None and hit.hit.enrichment.script == "Cyrl"
    assert re.search(r"fsb\.ru", str(hit.to_dict())), hit.to_dict()
