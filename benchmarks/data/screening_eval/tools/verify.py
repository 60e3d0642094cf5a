"""Verify the evaluation set against the bundled list files; exits non-zero on any problem.

    .venv/bin/python benchmarks/data/screening_eval/tools/verify.py [--report overlaps.txt]

``listed.csv``: every (expected_list, expected_name) is a primary name on that list; categories are known; no
(name, expected_list) twice; derived rows stay at most 25%.

``unlisted.csv``: no row may be a listed party. For a Latin-script row, its distinctive words (legal forms,
generic business words and place names removed) are searched in every primary name and alias of every list:
when all of them occur in one listed name, or all of a listed name's distinctive words occur in the row, the
pair must be in ``reviewed_overlaps.csv`` with the reason it is a different party. A native-script row must name
its Latin counterpart ("same company as X;") and must not contain a listed native-script name or alias (from the
list files or from ``listed.csv``). A ``namesake`` row must carry exactly the name of a listed individual, in a
country that is not among that individual's countries. Nothing in ``unlisted.csv`` may equal a ``listed.csv`` name.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

import bundled_lists

HERE = Path(__file__).resolve().parent
EVAL = HERE.parent

LISTED_FIELDS = ["name", "country", "expected_list", "expected_name", "category", "source"]
UNLISTED_FIELDS = ["name", "country", "category", "source"]
LISTED_CATEGORIES = {
    "cn_legal_simplified",
    "cn_legal_traditional",
    "cn_short_brand",
    "stock_code",
    "pinyin",
    "wade_giles",
    "legal_form_variant",
    "affiliate",
    "cyrillic_native",
    "persian_arabic_native",
    "korean_native",
    "ru_latin_translit",
    "ir_latin_translit",
    "ko_latin_translit",
    "typo",
    "reorder",
    "hyphen_split_join",
    "exact",
    "individual",
    "former_name",
    "english_trade_name",
    "spelling_variant",
}
UNLISTED_CATEGORIES = {
    "cn_sector_peer",
    "cn_same_city",
    "cn_china_prefix",
    "cn_native",
    "hk_tw_company",
    "hk_tw_native",
    "ru_company",
    "cyrillic_native",
    "ir_company",
    "persian_arabic_native",
    "kr_company",
    "korean_native",
    "similar_name",
    "namesake",
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that say nothing about which party a name is. Legal forms and articles never count; sector words and
# place names count only when a name has nothing else (so "Taiwan Semiconductor Manufacturing" is still compared).
LEGAL = _words("""
co ltd llc inc corp corporation company limited plc jsc pjsc ojsc cjsc oao ooo ao pao zao sa s a ag gmbh bv b v nv
kk ulc pte pty sdn bhd spa s p a ltda psc p s c pqsc q c the of and for de del do da la le el al y e i et in on
group holding holdings international intl global public joint stock closed open liability incorporated
""")
SECTOR_AND_PLACE = _words("""
bank banking banks air airlines airline airways aviation technology technologies tech electronics electronic
industry industries industrial trading trade investment investments development energy oil gas petroleum shipping
telecom telecommunications communications network software systems services science sciences research institute
center centre university agricultural commercial central securities insurance financial finance motor motors
automobile automobiles steel power electric pharmaceutical pharmaceuticals semiconductor manufacturing
microelectronics chemical chemicals engineering equipment construction computing computer information data
cloud intelligent intelligence digital optoelectronic optronic precision machinery products resources mining
logistics transport supply import export general new first united capital fund foundation organization
organisation authority ministry agency railway railways port airport line lines marine maritime ocean
china chinese hong kong taiwan russia russian iran iranian korea korean north south usa us america americas american
states kingdom uk europe european asia pacific beijing shanghai tianjin shenzhen hangzhou guangzhou chengdu wuxi
xiamen hefei nanjing zhengzhou jinan dubai moscow tehran pyongyang seoul singapore national state islamic republic
zhejiang jiangsu anhui sichuan fujian guangdong shandong xinjiang coal cement smart star medical bio properties
security advanced aerospace foreign high performance east eastern west western southern northern india indian iraq
iraqi savings tourism chemical mobile supercomputing life enterprises consultants software applications field parts
""")


def tokens(text: str) -> list[str]:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.findall(r"[a-z0-9]+", text.casefold())


def distinctive(text: str) -> tuple[frozenset[str], bool]:
    """The name's distinctive words, and whether they are specific (not only sector and place words)."""
    words = [t for t in tokens(text) if t not in LEGAL and len(t) > 1]
    specific = frozenset(t for t in words if t not in SECTOR_AND_PLACE)
    return (specific, True) if specific else (frozenset(words), False)


def overlaps(row_words: frozenset[str], listed: tuple[frozenset[str], bool]) -> bool:
    """A row needs review when a listed name's specific words all sit in it, or both word sets are equal.

    A listed name made only of sector and place words ("China Mobile") counts on equality alone, and one short
    word (a three-letter acronym) is too weak to stand for a listed party by itself.
    """
    listed_words, specific = listed
    if not listed_words or (len(listed_words) == 1 and len(next(iter(listed_words))) <= 3):
        return False
    return listed_words <= row_words if specific else listed_words == row_words


def is_latin(text: str) -> bool:
    return all(not ch.isalpha() or ord(ch) < 0x250 for ch in text)


def read_csv(path: Path, fields: list[str], problems: list[str]) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != fields:
            problems.append(f"{path.name}: header {reader.fieldnames} is not {fields}")
        return list(reader)


def check_listed(rows: list[dict[str, str]], index: dict[str, set[str]], problems: list[str]) -> None:
    seen: Counter[tuple[str, str]] = Counter((r["name"].casefold(), r["expected_list"]) for r in rows)
    for (name, code), count in seen.items():
        if count > 1:
            problems.append(f"listed.csv: {name!r} on {code} appears {count} times")
    for r in rows:
        if r["category"] not in LISTED_CATEGORIES:
            problems.append(f"listed.csv: unknown category {r['category']!r} ({r['name']})")
        if r["expected_name"] not in index.get(r["expected_list"], set()):
            problems.append(f"listed.csv: {r['expected_name']!r} is not a primary name on {r['expected_list']}")
        if not r["source"].strip():
            problems.append(f"listed.csv: no source for {r['name']!r}")
    derived = sum(r["source"].startswith("derived:") for r in rows)
    if derived > 0.25 * len(rows):
        problems.append(f"listed.csv: {derived} of {len(rows)} rows are derived (more than 25%)")


def load_reviews() -> dict[tuple[str, str], str]:
    path = HERE / "reviewed_overlaps.csv"
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", newline="") as fh:
        return {(r["unlisted_name"], r["list_name"]): r["reason"] for r in csv.DictReader(fh)}


def check_unlisted(
    rows: list[dict[str, str]],
    listed: list[dict[str, str]],
    entries: list[bundled_lists.Entry],
    problems: list[str],
    report: list[str],
) -> None:
    names = Counter(r["name"].casefold() for r in rows)
    for name, count in names.items():
        if count > 1:
            problems.append(f"unlisted.csv: {name!r} appears {count} times")
    listed_names = {r["name"].casefold() for r in listed}
    latin_rows = {r["name"] for r in rows if is_latin(r["name"])}

    # Inverted index over every listed primary name and alias, by distinctive word.
    by_token: dict[str, set[tuple[str, tuple[frozenset[str], bool]]]] = defaultdict(set)
    native_names: set[str] = set()
    individual_names: dict[tuple[str, ...], list[bundled_lists.Entry]] = defaultdict(list)
    for entry in entries:
        for name in entry.all_names():
            if not is_latin(name):
                native_names.add(name)
                continue
            # The Denied Persons List does not say which entries are people, so its names count both ways.
            if entry.individual or "DPL" in entry.codes:
                individual_names[tuple(sorted(tokens(name)))].append(entry)
            if entry.individual:
                # People are compared with the namesake rows only, not with company names.
                continue
            listed_words = distinctive(name)
            for word in listed_words[0]:
                by_token[word].add((name, listed_words))
    native_names |= {r["name"] for r in listed if not is_latin(r["name"])}

    reviews = load_reviews()
    used: set[tuple[str, str]] = set()
    for r in rows:
        name, category = r["name"], r["category"]
        if category not in UNLISTED_CATEGORIES:
            problems.append(f"unlisted.csv: unknown category {category!r} ({name})")
        if name.casefold() in listed_names:
            problems.append(f"unlisted.csv: {name!r} is also a listed.csv form")
        if category == "namesake":
            matches = individual_names.get(tuple(sorted(tokens(name))), [])
            if not matches:
                problems.append(f"unlisted.csv: namesake {name!r} matches no listed individual's name")
            for entry in matches:
                if r["country"] in entry.countries:
                    problems.append(
                        f"unlisted.csv: namesake {name!r} ({r['country']}) shares a country with "
                        f"{entry.name} ({', '.join(sorted(entry.countries))})"
                    )
                report.append(
                    f"namesake  {name} ({r['country']}) = {entry.name} [{entry.source}] "
                    f"countries {sorted(entry.countries) or 'unknown'}"
                )
            continue
        if not is_latin(name):
            match = re.match(r"same company as (.+?);", r["source"])
            if not match or match.group(1) not in latin_rows:
                problems.append(f"unlisted.csv: native row {name!r} does not name a Latin row it stands for")
            for listed_name in native_names:
                short = len(listed_name) < 2
                if not short and (listed_name in name or name in listed_name):
                    key = (name, listed_name)
                    if key in reviews:
                        used.add(key)
                    else:
                        problems.append(f"unlisted.csv: {name!r} overlaps the listed native name {listed_name!r}")
            continue
        words, _ = distinctive(name)
        if not words:
            problems.append(f"unlisted.csv: {name!r} has no distinctive word to verify")
            continue
        candidates: set[tuple[str, tuple[frozenset[str], bool]]] = set()
        for word in words:
            candidates |= by_token.get(word, set())
        for listed_name, listed_words in sorted(candidates, key=lambda c: c[0]):
            shared = sorted(words & listed_words[0])
            if overlaps(words, listed_words):
                key = (name, listed_name)
                if key in reviews:
                    used.add(key)
                    report.append(f"reviewed  {name} ~ {listed_name}: {reviews[key]}")
                else:
                    problems.append(
                        f"unlisted.csv: {name!r} and listed {listed_name!r} share all distinctive "
                        f"words {shared}: review it in reviewed_overlaps.csv or drop the row"
                    )
            else:
                report.append(f"partial   {name} ~ {listed_name}: {shared}")
    for key in sorted(set(reviews) - used):
        report.append(f"stale review (no longer flagged): {key}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="write every overlap found (reviewed and partial) here")
    args = parser.parse_args()
    entries, missing = bundled_lists.load_entries()
    if missing:
        print(f"list files not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    index = bundled_lists.names_by_code(entries)
    problems: list[str] = []
    report: list[str] = []
    listed = read_csv(EVAL / "listed.csv", LISTED_FIELDS, problems)
    unlisted = read_csv(EVAL / "unlisted.csv", UNLISTED_FIELDS, problems)
    check_listed(listed, index, problems)
    check_unlisted(unlisted, listed, entries, problems, report)
    if args.report:
        args.report.write_text("\n".join(report) + "\n", encoding="utf-8")
    partial = sum(line.startswith("partial") for line in report)
    reviewed = sum(line.startswith("reviewed") for line in report)
    print(
        f"listed.csv: {len(listed)} rows; unlisted.csv: {len(unlisted)} rows; "
        f"{reviewed} reviewed full overlaps, {partial} partial word overlaps; {len(problems)} problems"
    )
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
