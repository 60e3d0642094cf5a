"""Other scripts into Latin letters, and spellings of one name in different romanisations made equal.

- Cyrillic, Greek, Arabic, Persian, Hebrew, Korean, Japanese kana … are transliterated with `anyascii`
  (a maintained table of every Unicode character); Chinese characters are handled by `normalize`.
- Arabic and Hebrew script write no short vowels, so their transliteration is a consonant skeleton
  ("بانک مرکزی" → "bnk mrkzy"): such tokens are compared with listed tokens by skeleton (`skeleton`).
- Wade-Giles spellings of Chinese ("Chung-hsing", "Pei-ching") become pinyin, with the syllable table of
  `pypinyin` read backwards.
- Standard romanisation variants are folded (`fold_variants`): x/ks, kh/h, ph/f, w/v, ou/u, q/k, ts/c,
  German tsch/sch, shch/sch/shh, -iia/-ija/-iya, final -iy/-ii/-yy/-ij → -y and -ei/-ej → -ey, doubled
  letters, so "Rosoboronexport" and "Rosoboroneksport", "Dmitriy" and "Dmitry", "Jomhouri" and
  "Jomhuri", "Korporatsiya" and "Korporacija", "Almaz-Antei" and "Almaz-Antej" are the same token.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

from anyascii import anyascii
from pypinyin import Style
from pypinyin.pinyin_dict import pinyin_dict
from pypinyin.style import convert

# Scripts whose transliteration lacks short vowels (abjads).
ABJADS = frozenset({"ARABIC", "HEBREW", "SYRIAC", "THAANA", "NKO"})
_VARIANTS = (
    # German and Polish renderings of Russian sounds ("Tschemesow", "Lukaschenko"), and щ as shch/sch/shh
    ("tsch", "ch"),
    ("shch", "sh"),
    ("sch", "sh"),
    ("shh", "sh"),
    # ц as ts or c ("korporatsiya", "korporacija"); я, ю as ia/ja/ya, iu/ju/yu after i ("aviakompaniia")
    ("ts", "c"),
    ("iia", "iya"),
    ("ija", "iya"),
    ("iiu", "iyu"),
    ("iju", "iyu"),
    ("kh", "h"),
    ("ph", "f"),
    ("ck", "k"),
    ("x", "ks"),
    ("w", "v"),
    ("ou", "u"),
    ("q", "k"),
    ("dzh", "j"),
)
FOLD_FROM = 5
_FINAL_Y = re.compile(r"(?:iy|ii|yy|ij)$")
_FINAL_EY = re.compile(r"(?<=[a-z]{3})(?:ej|ei)$")  # -ей as -ey, -ei or -ej ("Antey", "Antei", "Antej")
_DOUBLE = re.compile(r"(.)\1+")
# A word's hard c is a k in the romanisations of other scripts ("Kontsern" for "Concern", "Kommercheskiy"
# for "Commercial"); before e, i, y (and as ц, "ts" folded to c) it stays. At the start only: inside a word
# ("Iflytec", "Circuit") a c is left as written.
_HARD_C = re.compile(r"^c(?=[aoulr])")
_SKELETON_FOLDS = (("kh", "h"), ("gh", "k"), ("q", "k"), ("x", "ks"), ("w", "v"))
_VOWELS = re.compile(r"[aeiouyvw]")  # v, w: Persian و is written v, w, u or o


def script_of(text: str) -> str:
    """The first word of the Unicode name of the first letter that is not Latin (CYRILLIC, ARABIC, ...)."""
    for ch in text:
        if ch.isalpha() and not ch.isascii():
            name = unicodedata.name(ch, "")
            word = name.split(" ", 1)[0]
            if word not in ("LATIN", ""):
                return word
    return "LATIN"


def to_latin(text: str) -> str:
    """Transliterate any script into ASCII letters (Latin text passes through)."""
    return str(anyascii(unicodedata.normalize("NFC", text)))


@functools.lru_cache(maxsize=200_000)
def fold_variants(token: str) -> str:
    """One spelling for the romanisation variants of a token (see the module docstring).

    Short tokens are left alone: folded, "dow" would be "dov" and "axa" the "aqsa" of Al-Aqsa."""
    if len(token) < FOLD_FROM:
        return token
    for old, new in _VARIANTS:
        if old in token:
            token = token.replace(old, new)
    token = _HARD_C.sub("k", token)
    token = _FINAL_EY.sub("ey", _FINAL_Y.sub("y", token))
    return _DOUBLE.sub(r"\1", token)


@functools.lru_cache(maxsize=200_000)
def joined(a: str, b: str) -> str:
    """Two tokens written as one ("hik" + "vision", "zhong" + "xing"), folded as one token would be."""
    return fold_variants(a + b)


@functools.lru_cache(maxsize=200_000)
def skeleton(token: str) -> str:
    """The consonants of a token, as an abjad writes it: "markazi" → "mrkz", "bnk" → "bnk".

    Listed tokens come in folded (`fold_variants`); an abjad's transliteration comes in as written, so
    only the folds that keep consonants apart apply here ("sph", s + h, is not "sf")."""
    folded = token
    for old, new in _SKELETON_FOLDS:
        folded = folded.replace(old, new)
    head, tail = folded[:1], folded[1:]
    if head in ("a", "e", "i", "o", "u", "y"):
        head = ""  # an initial vowel is an alef (or ی) in the abjad, which the transliteration drops
    return _DOUBLE.sub(r"\1", head + _VOWELS.sub("", tail))


@functools.cache
def _syllables() -> tuple[frozenset[str], dict[str, str], dict[str, str]]:
    """All pinyin syllables (no tones); Wade-Giles → pinyin as written without apostrophe (unaspirated
    reading first); Wade-Giles written with the aspiration apostrophe ("k'uang", keyed "kuang") → pinyin."""
    marked = {s for value in pinyin_dict.values() for s in value.split(",")}
    plain = {convert(s, Style.NORMAL, strict=True) for s in marked}
    plain = {p for p in plain if p.isascii() and p.isalpha()}
    wade: dict[str, str] = {}
    aspirated: dict[str, str] = {}
    for p in sorted(plain):
        exact = convert(p, Style.WADEGILES, strict=True).lower()
        written = exact.replace("ü", "u").replace("v", "u")
        key = written.replace("'", "").replace("`", "").replace("’", "")
        # Without its apostrophe a Wade-Giles syllable is the unaspirated one ("kuang" is guang, "k'uang" kuang).
        table = aspirated if key != written else wade
        if exact == p and "v" not in p:  # (pypinyin writes ü as v)
            # A syllable spelt exactly alike in both systems is itself: pypinyin writes "wai" as "wei" too,
            # and "Hua-wei" is Huawei, not "Huawai" ("yu" is not alike: pinyin yu is Wade-Giles yü).
            table[key] = p
        else:
            table.setdefault(key, p)
    plain_reading = dict(wade)
    for key, p in aspirated.items():
        plain_reading.setdefault(key, p)
    return frozenset(plain), plain_reading, aspirated


# Letter groups only Wade-Giles writes: a run of syllables with one of them is Wade-Giles, not pinyin.
_WADE_MARKS = ("hs", "ieh", "ien", "ih", "ung", "tz", "ts", "ss", "ch", "j")


def wade_giles_to_pinyin(
    tokens: list[str], aspirated: frozenset[str] = frozenset(), aspirated_at: Sequence[bool] | None = None
) -> tuple[list[str], bool]:
    """Tokens with every run of Wade-Giles syllables (two or more, one unmistakably Wade-Giles) in pinyin.

    `aspirated` names the tokens that were written with an apostrophe ("t'ung" → tong, "tung" → dong);
    `aspirated_at`, when given, says it token by token instead ("K'ung-yeh" and "Kung-ssu" in one name)."""
    pinyin, wade, with_apostrophe = _syllables()
    out: list[str] = []
    changed = False
    i = 0
    while i < len(tokens):
        j = i
        while j < len(tokens) and tokens[j] in wade:
            j += 1
        run = tokens[i:j]
        if len(run) >= 2 and any(t not in pinyin and any(m in t for m in _WADE_MARKS) for t in run):
            for k, t in enumerate(run, start=i):
                marked = aspirated_at[k] if aspirated_at is not None else t in aspirated
                out.append(with_apostrophe.get(t, wade[t]) if marked else wade[t])
            changed = True
            i = j
        else:
            out.append(tokens[i])
            i += 1
    return out, changed
