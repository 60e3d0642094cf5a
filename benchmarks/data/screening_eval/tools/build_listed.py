"""Build ``listed.csv`` from the hand-curated forms in ``attested/`` and ``romanised/``.

    .venv/bin/pip install iuliia   # Cyrillic romanisation schemes; build-time only, not a product dependency
    .venv/bin/python benchmarks/data/screening_eval/tools/build_listed.py

Rows come in three kinds, told apart by their ``source``:

* attested: a form published somewhere (filing, exchange, register, official site, press, the list itself);
  copied from ``attested/*.psv`` as written there.
* ``romanised:`` / ``converted:``: a mechanical rendering of an attested form by a standard scheme: Hanyu Pinyin
  (written by hand in ``romanised/pinyin.psv`` and checked syllable by syllable against pypinyin), Wade-Giles
  (rule-based from that pinyin), traditional script (OpenCC ``s2hk``), Cyrillic romanisation (iuliia schemes).
* ``derived:``: synthetic perturbations (typos, re-ordering, hyphen/split/join, legal-form changes), generated
  here with a fixed seed. The build refuses to write a set where they exceed 25% of the rows.

Every row's (expected_list, expected_name) must exist in the bundled list files (``bundled_lists.py``).
"""

from __future__ import annotations

import csv
import random
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import bundled_lists

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "listed.csv"
SEED = 20261125
DERIVED_CAP = 0.25

CATEGORIES = {
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
FIELDS = ["name", "country", "expected_list", "expected_name", "category", "source"]

# pypinyin reads these characters with their most common sound; the company name uses the other one.
POLYPHONE_OVERRIDES = {"长光卫星技术股份有限公司": "changguangweixingjishugufenyouxiangongsi"}

LEGAL_WORDS = {
    "co",
    "co.",
    "ltd",
    "ltd.",
    "llc",
    "inc",
    "inc.",
    "corp",
    "corp.",
    "corporation",
    "company",
    "limited",
    "jsc",
    "pjsc",
    "ojsc",
    "oao",
    "ooo",
    "ao",
    "pao",
    "zao",
    "cjsc",
    "plc",
    "gmbh",
    "ag",
    "sa",
    "s.a.",
    "bv",
    "b.v.",
    "group",
    "the",
    "of",
    "and",
    "&",
    "joint",
    "stock",
    "public",
    "open",
    "closed",
    "liability",
    "holding",
    "holdings",
    "international",
    "technology",
    "technologies",
    "industry",
    "industries",
    "bank",
}


def read_psv(path: Path) -> list[list[str]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("|")
        if any(not c.strip() for c in cells):
            raise SystemExit(f"{path.name}:{number}: empty cell in {line!r}")
        rows.append([c.strip() for c in cells] + [f"{path.name}:{number}"])
    return rows


def has_cjk(text: str) -> bool:
    return any("CJK" in unicodedata.name(ch, "") for ch in text)


def latin_only(text: str) -> bool:
    return all(ord(ch) < 0x250 or not ch.isalpha() for ch in text)


# --- Wade-Giles ---------------------------------------------------------------------------------------------
_WG_WHOLE = {
    "zhi": "chih",
    "chi": "ch'ih",
    "shi": "shih",
    "ri": "jih",
    "zi": "tzu",
    "ci": "tz'u",
    "si": "ssu",
    "er": "erh",
    "yi": "i",
    "you": "yu",
    "yan": "yen",
    "ye": "yeh",
    "yong": "yung",
    "yu": "yü",
    "yue": "yüeh",
    "yuan": "yüan",
    "yun": "yün",
    "e": "o",
}
_WG_INITIALS = [
    ("zh", "ch"),
    ("ch", "ch'"),
    ("sh", "sh"),
    ("b", "p"),
    ("p", "p'"),
    ("d", "t"),
    ("t", "t'"),
    ("g", "k"),
    ("k", "k'"),
    ("j", "ch"),
    ("q", "ch'"),
    ("x", "hs"),
    ("z", "ts"),
    ("c", "ts'"),
    ("r", "j"),
]


def wade_giles_syllable(syllable: str) -> str:
    """One pinyin syllable (no tone) in Wade-Giles, apostrophes kept, umlaut on ü."""
    if syllable in _WG_WHOLE:
        return _WG_WHOLE[syllable]
    initial, head = "", syllable
    for py, wg in _WG_INITIALS:
        if syllable.startswith(py):
            initial, head, syllable_initial = wg, syllable[len(py) :], py
            break
    else:
        syllable_initial = ""
        for letter in "mfnlhwys":
            if syllable.startswith(letter):
                initial, head, syllable_initial = letter, syllable[1:], letter
                break
    if syllable_initial in ("j", "q", "x") and head.startswith("u"):
        head = "ü" + head[1:]
        head = {"üe": "üeh"}.get(head, head)
    elif head == "uo":
        head = "uo" if syllable_initial in ("g", "k", "h", "sh") else "o"
    elif head == "e":
        head = "o" if syllable_initial in ("g", "k", "h") else "e"
    elif head == "ui" and syllable_initial in ("g", "k"):
        head = "uei"
    else:
        for py, wg in (("iong", "iung"), ("ong", "ung"), ("ian", "ien"), ("ie", "ieh")):
            if head == py:
                head = wg
                break
    return initial + head


def split_syllables(word: str, syllables: list[str]) -> tuple[list[str], list[str]]:
    """Consume pinyin syllables (from pypinyin) that spell ``word``; returns (taken, rest)."""
    target = re.sub(r"[^a-z]", "", word.lower())
    taken: list[str] = []
    while target and syllables:
        s = syllables[0]
        if not target.startswith(s):
            raise ValueError(f"{word!r} does not continue with {s!r}")
        taken.append(syllables.pop(0))
        target = target[len(s) :]
    if target:
        raise ValueError(f"syllables ran out in {word!r}")
    return taken, syllables


def romanised_rows() -> list[dict[str, str]]:
    import pypinyin

    rows: list[dict[str, str]] = []
    for zh, words, country, code, expected, wade, where in read_psv(HERE / "romanised" / "pinyin.psv"):
        syllables = [s for s in pypinyin.lazy_pinyin(zh) if re.fullmatch(r"[a-z]+", s)]
        spelled = re.sub(r"[^a-z]", "", words.lower())
        if spelled != "".join(syllables):
            if POLYPHONE_OVERRIDES.get(zh) != spelled:
                raise SystemExit(f"{where}: pinyin {words!r} does not spell {zh} ({' '.join(syllables)})")
            syllables = _resplit(spelled, syllables)
        rows.append(row(words, country, code, expected, "pinyin", f"romanised: Hanyu Pinyin of {zh}"))
        if wade == "1":
            rest = list(syllables)
            out = []
            for word in words.split():
                if not re.search(r"[A-Za-z]", word):
                    out.append(word)
                    continue
                taken, rest = split_syllables(word, rest)
                wg = "-".join(wade_giles_syllable(s) for s in taken)
                out.append(wg[:1].upper() + wg[1:])
            rows.append(
                row(
                    " ".join(out),
                    country,
                    code,
                    expected,
                    "wade_giles",
                    f"romanised: Wade-Giles of {zh} (from its pinyin {words})",
                )
            )
    return rows


def _resplit(spelled: str, syllables: list[str]) -> list[str]:
    """Replace pypinyin's reading of an overridden character while keeping the syllable count."""
    out, rest = [], spelled
    for s in syllables:
        for candidate in (s, "chang" if s == "zhang" else s):
            if rest.startswith(candidate):
                out.append(candidate)
                rest = rest[len(candidate) :]
                break
    return out


def row(name: str, country: str, code: str, expected: str, category: str, source: str) -> dict[str, str]:
    return {
        "name": name,
        "country": country,
        "expected_list": code,
        "expected_name": expected,
        "category": category,
        "source": source,
    }


def converted_rows(attested: list[dict[str, str]]) -> list[dict[str, str]]:
    import opencc

    s2hk = opencc.OpenCC("s2hk")
    present = {r["name"] for r in attested}
    out = []
    for r in attested:
        if r["category"] in ("cn_legal_simplified", "former_name", "affiliate") and has_cjk(r["name"]):
            traditional = s2hk.convert(r["name"])
            if traditional != r["name"] and traditional not in present:
                present.add(traditional)
                out.append(
                    row(
                        traditional,
                        "HK" if r["country"] == "CN" else r["country"],
                        r["expected_list"],
                        r["expected_name"],
                        "cn_legal_traditional",
                        f"converted: OpenCC s2hk (Hong Kong traditional script) of {r['name']}",
                    )
                )
    return out


def cyrillic_rows(attested: list[dict[str, str]], list_names: dict[tuple[str, str], set[str]]) -> list[dict[str, str]]:
    try:
        import iuliia
    except ImportError:
        raise SystemExit("pip install iuliia (build-time only) to romanise the Cyrillic forms") from None
    schemes = [
        ("BGN/PCGN-style (iuliia wikipedia)", iuliia.WIKIPEDIA),
        ("ICAO Doc 9303 passport", iuliia.ICAO_DOC_9303),
        ("scientific (ISO/R 9)", iuliia.SCIENTIFIC),
    ]
    seen = {r["name"].casefold() for r in attested}
    out = []
    # Abbreviations (ГРУ, ОАК) are not romanised: nobody writes the letter-by-letter rendering as a name.
    cyrillic = [r for r in attested if r["category"] == "cyrillic_native" and len(re.sub(r"\W", "", r["name"])) > 4]
    for i, r in enumerate(cyrillic):
        known = {_letters(n) for n in list_names.get((r["expected_list"], r["expected_name"]), set())}
        # Two schemes per name, rotating, so every scheme is represented without tripling the category.
        for label, schema in (schemes[i % 3], schemes[(i + 1) % 3]):
            latin = re.sub(r"[«»“”„\"]", "", schema.translate(r["name"]))
            latin = re.sub(r"\s+", " ", latin).strip()
            # Belarusian letters (і, ў) are outside the Russian schemes and would be left in Cyrillic.
            if not latin_only(latin):
                continue
            if latin.casefold() in seen or _letters(latin) in known:
                continue
            seen.add(latin.casefold())
            out.append(
                row(
                    latin,
                    r["country"],
                    r["expected_list"],
                    r["expected_name"],
                    "ru_latin_translit",
                    f"romanised: {label} of {r['name']}",
                )
            )
    return out


def _letters(text: str) -> str:
    return " ".join(sorted(re.findall(r"[a-z0-9]+", text.casefold())))


# --- synthetic perturbations --------------------------------------------------------------------------------
_NEIGHBOURS = {
    "a": "sqz",
    "b": "vn",
    "c": "xv",
    "d": "sf",
    "e": "wr",
    "f": "dg",
    "g": "fh",
    "h": "gj",
    "i": "uo",
    "j": "hk",
    "k": "jl",
    "l": "k",
    "m": "n",
    "n": "bm",
    "o": "ip",
    "p": "o",
    "q": "w",
    "r": "et",
    "s": "ad",
    "t": "ry",
    "u": "yi",
    "v": "cb",
    "w": "qe",
    "x": "zc",
    "y": "tu",
    "z": "x",
}


PLACE_WORDS = {
    "switzerland",
    "china",
    "chinese",
    "russia",
    "russian",
    "iran",
    "iranian",
    "korea",
    "korean",
    "america",
    "americas",
    "north",
    "south",
    "europe",
    "european",
    "hong",
    "kong",
    "beijing",
    "shanghai",
    "tianjin",
    "shenzhen",
    "usa",
    "venezuela",
    "syria",
    "islamic",
    "republic",
    "national",
    "international",
    "corporation",
    "company",
    "limited",
    "technology",
    "technologies",
}


def _typo_once(word: str, rng: random.Random) -> str:
    letters = [i for i, ch in enumerate(word) if ch.isalpha()]
    inner = letters[1:-1] if len(letters) > 3 else letters
    pos = rng.choice(inner)
    op = rng.choice(["sub", "del", "swap", "dup"])
    ch = word[pos]
    if op == "sub" and ch.lower() in _NEIGHBOURS:
        new = rng.choice(_NEIGHBOURS[ch.lower()])
        return word[:pos] + (new.upper() if ch.isupper() else new) + word[pos + 1 :]
    if op == "del":
        return word[:pos] + word[pos + 1 :]
    if op == "swap" and pos + 1 < len(word) and word[pos + 1].isalpha():
        return word[:pos] + word[pos + 1] + word[pos] + word[pos + 2 :]
    return word[:pos] + ch + word[pos:]


def typo(name: str, rng: random.Random, edits: int) -> str | None:
    """One or two keyboard-style edits in the name's most distinctive (longest non-generic) word."""
    tokens = name.split(" ")

    def core(token: str) -> str:
        return re.sub(r"[^A-Za-z]", "", token)

    candidates = [
        i
        for i, t in enumerate(tokens)
        if len(core(t)) >= 4
        and core(t).lower() not in LEGAL_WORDS
        and core(t).lower() not in PLACE_WORDS
        and not (core(t).isupper() and len(core(t)) <= 5)
    ]
    if not candidates:
        return None
    i = max(candidates, key=lambda k: (len(core(tokens[k])), -k))
    word = tokens[i]
    for _ in range(edits):
        word = _typo_once(word, rng)
    tokens[i] = word
    out = " ".join(tokens)
    return out if out != name else None


# Brand words as they get split or joined in practice (customers' own spellings on sign-up forms).
SPLITS = {
    "Hikvision": "Hik Vision",
    "SenseTime": "Sense Time",
    "CloudWalk": "Cloud Walk",
    "Cloudminds": "Cloud Minds",
    "Rosoboronexport": "Rosoboron Export",
    "Promsvyazbank": "Promsvyaz Bank",
    "Sovcombank": "Sovcom Bank",
    "Novikombank": "Novikom Bank",
    "Gazprombank": "Gazprom Bank",
    "NetPosa": "Net Posa",
    "Spacesat": "Space Sat",
    "Greatwall": "Great Wall",
    "Transneft": "Trans Neft",
    "Sberbank": "Sber Bank",
    "Uralvagonzavod": "Uralvagon Zavod",
    "Hizballah": "Hizb Allah",
    "Zhipu AI": "ZhipuAI",
    "Meiya Pico": "MeiyaPico",
    "China Telecom": "ChinaTelecom",
    "China Mobile": "ChinaMobile",
    "China Unicom": "ChinaUnicom",
    "Aerosun": "Aero Sun",
    "Jonhon": "Jon Hon",
}


def _same_case(template: str, text: str) -> str:
    return text.upper() if template.isupper() else text


def split_join(name: str) -> str | None:
    for word, replacement in SPLITS.items():
        pattern = re.compile(r"\b" + re.escape(word) + r"\b", re.IGNORECASE)
        match = pattern.search(name)
        if match:
            return name[: match.start()] + _same_case(match.group(0), replacement) + name[match.end() :]
    if re.search(r"[A-Za-z]-[A-Za-z]", name):
        return re.sub(r"(?<=[A-Za-z])-(?=[A-Za-z])", " ", name, count=1)
    return None


_LEADING_FORMS = re.compile(
    r"^(PUBLIC JOINT STOCK COMPANY|JOINT STOCK COMPANY|OPEN JOINT STOCK COMPANY|OPEN JOINT-STOCK COMPANY|"
    r"LIMITED LIABILITY COMPANY|STATE CORPORATION|PJSC|JSC|OOO|AO|PAO|OAO)\s+(.+)$"
)
_OF_PLACE = re.compile(r"^([A-Z][A-Z ]+?) OF (CHINA|IRAN|SYRIA|RUSSIA|VENEZUELA|KOREA)(,? LTD\.?| LIMITED)?$")


def reorder(name: str, individual: bool) -> str | None:
    """Word orders seen in practice: legal form after the name, "X Bank" / "Bank X", "Country X", given name first."""
    match = _LEADING_FORMS.match(name)
    if match:
        return f"{match.group(2)} {match.group(1)}"
    match = _OF_PLACE.match(name)
    if match:
        return f"{match.group(2)} {match.group(1)}{match.group(3) or ''}"
    if individual and name.count(",") == 1 and not name.rstrip().endswith(","):
        last, first = (p.strip() for p in name.split(","))
        return f"{first} {last}" if first and last else None
    words = name.split()
    if len(words) == 2 and words[0].upper() == "BANK":
        return " ".join(words[1:] + words[:1])
    if len(words) == 2 and words[-1].upper() == "BANK":
        return " ".join(words[-1:] + words[:-1])
    return None


def derived_rows(base: list[dict[str, str]], entries: list[bundled_lists.Entry]) -> list[dict[str, str]]:
    rng = random.Random(SEED)
    # Perturb what was published (attested forms and the listed primary names), never a mechanical rendering.
    latin = [
        r
        for r in base
        if latin_only(r["name"])
        and r["category"] != "stock_code"
        and not r["source"].startswith(("romanised:", "converted:", "derived:"))
    ]
    by_key = {(code, e.name): e for e in entries for code in e.codes}
    keys = sorted({(r["expected_list"], r["expected_name"]) for r in base})
    primaries = [
        row(name, "", code, name, "exact", f"official list: {by_key[(code, name)].source}")
        for code, name in keys
        if latin_only(name)
    ]
    seen = {(r["name"].casefold(), r["expected_list"]) for r in base}
    # A listed name carries no country of its own: use the one its curated forms give most often.
    by_entry: dict[tuple[str, str], Counter[str]] = {}
    for r in base:
        by_entry.setdefault((r["expected_list"], r["expected_name"]), Counter())[r["country"]] += 1
    usual_country = {key: counts.most_common(1)[0][0] for key, counts in by_entry.items()}
    out: list[dict[str, str]] = []

    def add(name: str | None, r: dict[str, str], category: str, how: str) -> bool:
        if not name or (name.casefold(), r["expected_list"]) in seen:
            return False
        seen.add((name.casefold(), r["expected_list"]))
        key = (r["expected_list"], r["expected_name"])
        country = r["country"] or usual_country.get(key) or min(by_key[key].countries, default="")
        source = f"derived: {how} of {r['name']}"
        out.append(row(name, country, r["expected_list"], r["expected_name"], category, source))
        return True

    pool = primaries + latin
    rng.shuffle(pool)
    typo_done: Counter[tuple[str, str]] = Counter()
    for r in pool:
        key = (r["expected_list"], r["expected_name"])
        if typo_done[key] >= 1 or sum(typo_done.values()) >= 80:
            continue
        edits = 2 if rng.random() < 0.3 else 1
        if add(typo(r["name"], rng, edits), r, "typo", "one-letter typo" if edits == 1 else "two-letter typo"):
            typo_done[key] += 1
    reordered = 0
    for r in sorted(primaries, key=lambda x: x["name"]):
        individual = by_key[(r["expected_list"], r["expected_name"])].individual
        if reordered < 30 and add(reorder(r["name"], individual), r, "reorder", "word re-ordering"):
            reordered += 1
    split_done = 0
    for r in sorted(primaries + latin, key=lambda x: x["name"]):
        if split_done < 30 and add(split_join(r["name"]), r, "hyphen_split_join", "split/join"):
            split_done += 1
    return out


def main() -> int:
    entries, missing = bundled_lists.load_entries()
    if missing:
        print(f"list files not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    index = bundled_lists.names_by_code(entries)
    list_names: dict[tuple[str, str], set[str]] = {}
    for entry in entries:
        for code in entry.codes:
            list_names.setdefault((code, entry.name), set()).update(entry.all_names())

    attested: list[dict[str, str]] = []
    for path in sorted((HERE / "attested").glob("*.psv")):
        for cells in read_psv(path):
            if len(cells) != 7:
                raise SystemExit(f"{cells[-1]}: expected 6 fields, got {len(cells) - 1}")
            attested.append(dict(zip(FIELDS, cells[:6], strict=True)))
    rows = attested + romanised_rows()
    rows += converted_rows(rows)
    rows += cyrillic_rows(rows, list_names)
    unknown = sorted(
        {
            f"not in the bundled {r['expected_list']} list: {r['expected_name']!r} (e.g. {r['name']})"
            for r in rows
            if r["expected_name"] not in index.get(r["expected_list"], set())
        }
    )
    if unknown:
        print("\n".join(unknown), file=sys.stderr)
        return 1
    rows += derived_rows(rows, entries)

    problems = []
    unique: dict[tuple[str, str], dict[str, str]] = {}
    for r in rows:
        if r["category"] not in CATEGORIES:
            problems.append(f"unknown category {r['category']!r}: {r['name']}")
        if r["expected_name"] not in index.get(r["expected_list"], set()):
            problems.append(f"not in the bundled {r['expected_list']} list: {r['expected_name']!r} ({r['name']})")
        unique.setdefault((r["name"].casefold(), r["expected_list"]), r)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    final = sorted(unique.values(), key=lambda r: (r["expected_list"], r["expected_name"], r["category"], r["name"]))
    derived = sum(r["source"].startswith("derived:") for r in final)
    if derived > DERIVED_CAP * len(final):
        print(f"derived rows {derived}/{len(final)} exceed {DERIVED_CAP:.0%}", file=sys.stderr)
        return 1
    with OUT.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(final)
    kinds = Counter(
        "derived"
        if r["source"].startswith("derived:")
        else "mechanical"
        if r["source"].startswith(("romanised:", "converted:"))
        else "attested"
        for r in final
    )
    print(f"wrote {len(final)} rows to {OUT.relative_to(HERE.parents[3])}: {dict(kinds)}")
    for category, count in sorted(Counter(r["category"] for r in final).items()):
        print(f"  {category:24} {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
