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
- Korean: Hangul is romanised with `korean-romanizer` (Revised Romanization, with its sound changes), and
  Revised Romanization and McCune-Reischauer spellings of one Korean word are folded (`korean_fold`):
  "Goryeo"/"Koryo", "Joseon"/"Choson"/"Chosun", "Pyeongyang"/"Pyongyang", "Jong-eun"/"Jong Un". The company
  words ending a Hangul run (무역회사, 은행 …) are split off in the English the lists use (`hangul_words`).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

from anyascii import anyascii
from korean_romanizer.romanizer import Romanizer
from pypinyin import Style
from pypinyin.pinyin_dict import pinyin_dict
from pypinyin.style import convert

# Scripts whose transliteration lacks short vowels (abjads).
ABJADS = frozenset({"ARABIC", "HEBREW", "SYRIAC", "THAANA", "NKO"})
_VARIANTS = (
    # German and Polish renderings of Russian sounds ("Tschemesow", "Lukaschenko"), and щ as shch/sch/shh
    ("tsch", "ch"),
    # French renderings: щ as chtch, ч as tch ("obchtchestvo", "Setchine", "Ivanovitch")
    ("chtch", "sh"),
    ("tch", "ch"),
    ("shch", "sh"),
    ("sch", "sh"),
    ("shh", "sh"),
    # ц as ts or c ("korporatsiya", "korporacija"); я, ю as ia/ja/ya, iu/ju/yu after i ("aviakompaniia")
    ("ts", "c"),
    ("iia", "iya"),
    ("aia", "aya"),  # the adjective ending -ая as ALA-LC and ICAO write it ("neftianaia", "Rossiiskaia")
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
# -ий- before a consonant as iy or ii ("Rossiyskaya", BGN/PCGN and most of the lists; "Rossiiskaia", ICAO and ALA-LC):
# one spelling, as at the end of a word (_FINAL_Y).
_MEDIAL_IY = re.compile(r"iy(?=[bcdfghjklmnpqrstvxz])")
# A word's hard c is a k in the romanisations of other scripts ("Kontsern" for "Concern", "Kommercheskiy"
# for "Commercial"); before e, i, y (and as ц, "ts" folded to c) it stays. At the start only: inside a word
# ("Iflytec", "Circuit") a c is left as written.
_HARD_C = re.compile(r"^c(?=[aoulr])")
_SKELETON_FOLDS = (("kh", "h"), ("gh", "k"), ("q", "k"), ("x", "ks"), ("w", "v"))
# th and dh are one letter (ث, ذ) in an abjad and in the lists' romanisation of it ("THANI", "DHABI"): one consonant,
# not t or d and an h, which is a letter of its own (TAHINI is t-h-n, ثاني th-n). Not at the end of a word, where
# the h is as often ة after ت or د (عودة, "wdh").
_ONE_LETTER = re.compile(r"[td]h(?!$)")
_ONE_LETTER_AS = {"th": "θ", "dh": "ð"}
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
    """Transliterate any script into ASCII letters (Latin text passes through); Hangul in Revised Romanization,
    its company words in the English the lists use for them."""
    text = unicodedata.normalize("NFC", text)
    if _HANGUL.search(text):
        text = _HANGUL.sub(lambda m: hangul_words(m.group()), text)
    return str(anyascii(text))


_HANGUL = re.compile(r"[\uac00-\ud7a3]+")

# Korean company words as the UN and OFAC lists translate them in North Korean entities' names: 조선금룡무역회사
# is listed as KOREA KUMRYONG TRADING CORPORATION, 대동신용은행 as DAEDONG CREDIT BANK. Korean writes such a
# name as one run of syllables; read as one romanised word it shares nothing with the listing. Longest first.
_KOREAN_SUFFIX_WORDS: tuple[tuple[str, str], ...] = tuple(
    sorted(
        {
            "총회사": "general corporation",
            "회사": "company",
            "무역": "trading",
            "은행": "bank",
            "신용": "credit",
            "개발": "development",
            "국제": "international",
            "상업": "commercial",
            "합영": "joint venture",
            "해운": "shipping",
            "기계": "machinery",
            "광업": "mining",
            "총국": "general bureau",
            "보험": "insurance",
            "화학": "chemical",
            "원자력": "atomic energy",
            "위원회": "committee",
        }.items(),
        key=lambda item: -len(item[0]),
    )
)
# 조선 (Choson) opening a company's name is "Korea" in the lists (조선대성은행: KOREA DAESONG BANK).
_KOREAN_PREFIX = ("조선", "korea")


@functools.lru_cache(maxsize=20_000)
def hangul_words(run: str) -> str:
    """A run of Hangul syllables romanised, with the company words at its end and 조선 at its start split off
    and written in English ("조선금룡무역회사" → "korea geumnyong trading company"); a run with none of them is
    `romanize_hangul` of the whole."""
    tail: list[str] = []
    rest = run
    while True:
        for word, english in _KOREAN_SUFFIX_WORDS:
            # Two syllables at least stay in front: 은행 alone is the word, 대은행 is not split to 대 + bank.
            if rest.endswith(word) and (len(rest) == len(word) or len(rest) - len(word) >= 2):
                tail.append(english)
                rest = rest[: -len(word)]
                break
        else:
            break
    head: list[str] = []
    prefix, english = _KOREAN_PREFIX
    if rest == prefix or (tail and rest.startswith(prefix) and len(rest) - len(prefix) >= 2):
        head.append(english)
        rest = rest[len(prefix) :]
    if not tail and not head:
        return romanize_hangul(run)
    # The name between them in McCune-Reischauer, as the lists write North Korean names (단군 Tangun, 백호 Paekho):
    # Revised Romanization without eo or eu ("dangun") is not recognised as such by `korean_fold` later.
    middle = [_mccune_reischauer(romanize_hangul(rest))] if rest else []
    return " ".join([*head, *middle, *reversed(tail)])


def korean_person(surname: str, given: str) -> str:
    """A Korean person's name in Hangul in Latin letters as the lists write it: the surname in McCune-Reischauer (김
    Kim, 박 Pak, 리 Ri; Revised Romanization's "gim", "bak" are no one's spelling), the given name in Revised
    Romanization, which the matcher folds into McCune-Reischauer ("byeongcheol" ~ "Pyong Chol")."""
    return f"{_mccune_reischauer(romanize_hangul(surname))} {romanize_hangul(given)}"


@functools.lru_cache(maxsize=20_000)
def romanize_hangul(word: str) -> str:
    """A run of Hangul syllables in Revised Romanization, with the sound changes across syllables
    ("고려" → "goryeo", "조선중앙은행" → "joseonjungangeunhaeng")."""
    return str(Romanizer(word).romanize())


# Korean syllables as Revised Romanization (RR) and McCune-Reischauer (MR, apostrophes and breves dropped)
# write them: an optional initial, a vowel, an optional final. `fold_variants` has already written w as v.
_KO_INITIALS = (
    "kk",
    "tt",
    "pp",
    "ss",
    "jj",
    "ch",
    "sh",
    "g",
    "n",
    "d",
    "r",
    "l",
    "m",
    "b",
    "s",
    "j",
    "k",
    "t",
    "p",
    "h",
    "",
)
_KO_VOWELS = (
    "yae",
    "yeo",
    "wae",
    "vae",
    "ae",
    "ya",
    "eo",
    "ye",
    "wa",
    "va",
    "oe",
    "yo",
    "wo",
    "vo",
    "we",
    "ve",
    "wi",
    "vi",
    "yu",
    "eu",
    "ui",
    "a",
    "e",
    "o",
    "u",
    "i",
)
_KO_FINALS = ("ng", "k", "n", "t", "l", "m", "p", "")
# 어 is RR eo, MR ŏ (written o), 으 RR eu, MR ŭ (written u), 여 RR yeo, MR yŏ (yo), 워 RR wo, MR wŏ (wo).
_KO_VOWEL_FOLD = {"eo": "o", "eu": "u", "yeo": "yo"}  # (w, v as `fold_variants` left them)
# At the start of a word RR writes unaspirated consonants voiced (g, d, b, j), MR voiceless (k, t, p, ch);
# inside a word MR writes them voiced too ("Kumgang", "Ryonbong").
_KO_INITIAL_FOLD = {"g": "k", "d": "t", "b": "p", "j": "ch", "l": "r", "kk": "k", "tt": "t", "pp": "p", "jj": "ch"}
# Spellings of Korean words in common use outside both systems: Chosun (Chosun Ilbo) for Chosŏn.
_KO_SPELLINGS = {"chosun": "choson"}
_KO_RR = re.compile(r"eo|eu")


def _ko_syllables(token: str) -> list[tuple[str, str, str]] | None:
    """The token as Korean romanised syllables, longest syllable first; None where it is not one."""
    memo: dict[int, list[tuple[str, str, str]] | None] = {}

    def parse(i: int) -> list[tuple[str, str, str]] | None:
        if i == len(token):
            return []
        if i in memo:
            return memo[i]
        options: list[tuple[int, tuple[str, str, str]]] = []
        for ini in _KO_INITIALS:
            if not token.startswith(ini, i):
                continue
            j = i + len(ini)
            for vowel in _KO_VOWELS:
                if not token.startswith(vowel, j):
                    continue
                k = j + len(vowel)
                for fin in _KO_FINALS:
                    if token.startswith(fin, k):
                        options.append((k + len(fin), (ini, vowel, fin)))
        found = None
        for end, syllable in sorted(options, key=lambda o: -o[0]):
            rest = parse(end)
            if rest is not None:
                found = [syllable, *rest]
                break
        memo[i] = found
        return found

    return parse(0)


def _mccune_reischauer(word: str) -> str:
    """A word known to be in Revised Romanization (romanised from Hangul here) in McCune-Reischauer."""
    syllables = _ko_syllables(word) if word.isalpha() and len(word) <= 30 else None
    if syllables is None:
        return word
    out = []
    for at, (ini, vowel, fin) in enumerate(syllables):
        if at == 0:
            ini = _KO_INITIAL_FOLD.get(ini, ini)
        out.append(ini + _KO_VOWEL_FOLD.get(vowel, vowel) + fin)
    return "".join(out)


@functools.lru_cache(maxsize=200_000)
def korean_fold(token: str) -> str:
    """The McCune-Reischauer spelling (breves and apostrophes dropped) of a word written in Revised
    Romanization; any other token unchanged.

    A word is taken as RR where it reads as Korean syllables and shows RR's eo or eu (MR has neither):
    "goryeo" → "koryo", "joseon" → "choson", "pyeongyang" → "pyongyang", "eun" → "un", "geumgang" →
    "kumgang". Other words, MR and English alike, keep their letters."""
    if token in _KO_SPELLINGS:
        return _KO_SPELLINGS[token]
    if len(token) < 2 or len(token) > 30 or not token.isalpha() or _KO_RR.search(token) is None:
        return token
    return _mccune_reischauer(token)


@functools.lru_cache(maxsize=200_000)
def fold_variants(token: str) -> str:
    """One spelling for the romanisation variants of a token (see the module docstring).

    Short tokens are left alone: folded, "dow" would be "dov" and "axa" the "aqsa" of Al-Aqsa."""
    # Chinese pinyin has its own syllables (and folds): a word that reads as pinyin is not folded as Korean. (Asked
    # only where the Korean fold would change the word: most words it leaves alone.)
    original = token
    if len(token) >= FOLD_FROM:
        for old, new in _VARIANTS:
            if old in token:
                token = token.replace(old, new)
        token = _HARD_C.sub("k", token)
        token = _FINAL_EY.sub("ey", _FINAL_Y.sub("y", token))
        token = _DOUBLE.sub(r"\1", _MEDIAL_IY.sub("i", token))
    korean = korean_fold(token)
    return token if korean == token or is_pinyin(original) else korean


@functools.cache
def _pinyin_syllables() -> frozenset[str]:
    """Pinyin syllables with a vowel (not the interjections m, n, ng, hm, hng)."""
    return frozenset(s for s in _syllables()[0] if any(v in s for v in "aeiou"))


@functools.lru_cache(maxsize=200_000)
def is_pinyin(token: str) -> bool:
    """Whether the token is one or more Hanyu Pinyin syllables ("huawei", "quanguo", "sun")."""
    syllables = _pinyin_syllables()
    n = len(token)
    ends = [True] + [False] * n  # ends[i]: token[:i] is syllables (of six letters at most)
    # Forward from the ends reached so far: a word that is no pinyin ("technology") stops after a letter or two.
    for j in range(n):
        if ends[j]:
            for i in range(j + 1, min(n, j + 6) + 1):
                if token[j:i] in syllables:
                    ends[i] = True
    return ends[n]


def joined(a: str, b: str) -> str:
    """Two tokens written as one ("hik" + "vision", "zhong" + "xing"), folded as one token would be."""
    # (Remembered by `fold_variants`, whose keys are single words. A cache of its own here, keyed by pairs, held 46,000
    # after the index's build; the collector leaves a table of plain words and strings alone, but the first new pair
    # a query brings made it a table to walk again, 5-8 ms in the collections of the first queries.)
    return fold_variants(a + b)


_TWO_LETTER_FOLDS = tuple(f for f in _SKELETON_FOLDS if f[0] not in ("gh", "kh"))


@functools.lru_cache(maxsize=200_000)
def two_letter_skeleton(token: str) -> str:
    """The consonants of an abjad's transliteration where its gh and kh are two letters, not one: گ or ک before
    ه (قرارگاه, "qrrgh", is GHARARGAH; its "gh" is no غ)."""
    return _consonants(token, _TWO_LETTER_FOLDS)


@functools.lru_cache(maxsize=200_000)
def skeleton(token: str) -> str:
    """The consonants of a token, as an abjad writes it: "markazi" → "mrkz", "bnk" → "bnk".

    Listed tokens come in folded (`fold_variants`); an abjad's transliteration comes in as written, so
    only the folds that keep consonants apart apply here ("sph", s + h, is not "sf")."""
    # (One argument, a string, is the cache's key: a first key of another kind, as a second argument made it, turns
    # the index's 70,000 remembered words into a table of any keys, a pause of 5-8 ms in the query that brings it.)
    return _consonants(token, _SKELETON_FOLDS)


def _consonants(token: str, folds: tuple[tuple[str, str], ...]) -> str:
    folded = token
    for old, new in folds:
        folded = folded.replace(old, new)
    if "h" in folded:
        folded = _ONE_LETTER.sub(lambda m: _ONE_LETTER_AS[m.group()], folded)
    head, tail = folded[:1], folded[1:]
    if head in ("a", "e", "i", "o", "u", "y"):
        head = ""  # an initial vowel is an alef (or ی) in the abjad, which the transliteration drops
    return _DOUBLE.sub(r"\1", head + _VOWELS.sub("", tail))


# Pinyin syllables of interjections only (咯 lo), never of a name: Wade-Giles "lo" is pinyin luo ("Wang-lo", 网络).
_INTERJECTIONS = frozenset({"lo"})


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
        if p in _INTERJECTIONS:
            continue
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
