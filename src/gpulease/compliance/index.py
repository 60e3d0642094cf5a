"""The blocking index: every listed name normalised once; a query looks at a few dozen candidates."""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from itertools import chain, filterfalse, groupby, islice, pairwise
from operator import itemgetter
from typing import cast

import opencc
from rapidfuzz import process
from rapidfuzz.distance import OSA, DamerauLevenshtein

from gpulease.compliance.countries import country_code
from gpulease.compliance.identity import birth_date_agrees, nationality_agrees
from gpulease.compliance.match import (
    KEY_NEIGHBOURS,
    SKELETON_SIMILARITY,
    TOKEN_SIMILARITY,
    TYPO_TWO_EDITS_FROM,
    Feature,
    Hit,
    NameScore,
    QueryScorer,
    compare,
    english_canonical_words,
    explain,
    neighbours_swapped,
    similarity_of,
    two_slips,
    typo_apart,
    typo_inside,
)
from gpulease.compliance.model import Address, EnrichmentAlias, ListEntry
from gpulease.compliance.normalize import (
    GENERIC_WEIGHT,
    GENERIC_WORDS,
    LEGAL_FORMS,
    STOPWORDS,
    STRUCTURE_WORDS,
    NormalizedName,
    PersonInitials,
    affiliate_words,
    canonical,
    fold,
    generic_words,
    normalize_name,
    person_initials,
    place_tokens,
    simplified,
    spelling_variants,
)
from gpulease.compliance.places import CHINESE_CITIES, place_words
from gpulease.compliance.restrictions import BLOCKING_LISTS
from gpulease.compliance.romanize import (
    hangul_words,
    is_pinyin,
    joined,
    korean_person,
    romanize_hangul,
    script_of,
    skeleton,
    to_latin,
    two_letter_skeleton,
)

# A key shared by more names than this says little about identity ("technology", "al"): it is not
# used to find candidates (it still counts in the score) unless nothing rarer matched.
POSTING_CAP = 1500
CANDIDATES = 40
# A listed word equal to the query word outranks one a letter away at the same weight: "tbank" is also one
# deletion from "bank", and without this the few names of exactly "tbank" tie with hundreds of "… bank" names
# and the tie (cut by id, lightest names first) leaves them out of the candidates.
EXACT_KEY_BONUS = 1e-3
COUNTRY_BONUS = 4.0
# A near match (not the listed name itself, not an affiliate pattern) in another country than every
# country the entry lists: evidence of a different party with a similar name ("Hana Bank", KR, against the
# DPRK's "Hana Electronics"). Mainland China, Hong Kong and Macao count as one place (parties of one
# group are listed under either).
COUNTRY_DIFFERS = -12.0
COUNTRY_DIFFERS_BELOW = 98.0
_SAME_PLACE: dict[str, frozenset[str]] = {c: frozenset({"CN", "HK", "MO"}) for c in ("CN", "HK", "MO")}
# Sanctions programmes named after a country: a party listed under one belongs to that country even where
# its addresses are elsewhere (Cubana de Aviación's listed offices are all outside Cuba).
_PROGRAMME_COUNTRY = (
    ("CUBA", "CU"), ("IRAN", "IR"), ("IRGC", "IR"), ("IFSR", "IR"), ("DPRK", "KP"), ("SYRIA", "SY"),
    ("RUSSIA", "RU"), ("UKRAINE-EO13662", "RU"), ("BELARUS", "BY"), ("VENEZUELA", "VE"),
)  # fmt: skip


def _programme_countries(entry: ListEntry) -> frozenset[str]:
    return _countries_of_programmes(tuple(entry.programs))  # (a tuple already, but for a hand-made entry)


@functools.lru_cache(maxsize=4096)
def _countries_of_programmes(programs: tuple[str, ...]) -> frozenset[str]:
    """The countries a set of sanctions programmes names (a few hundred distinct sets over the lists)."""
    return frozenset(
        code for programme in programs for prefix, code in _PROGRAMME_COUNTRY if programme.startswith(prefix)
    )


CITY_BONUS = 3.0
DEFAULT_MIN_SCORE = 70.0
# A word no listed name contains is distinctive, but bounded: "<listed brand> <new word>" must not sink
# to nothing because the list vocabulary has never seen the second word.
UNSEEN_WEIGHT = 6.5
BIRTH_DATE_AGREES = 5.0
BIRTH_DATE_DIFFERS = -15.0
NATIONALITY_AGREES = 3.0
NATIONALITY_DIFFERS = -10.0
# A person written as initials and a surname ("V. V. Putin"): initials that are those of the listed person's other
# names, in order, stand for half of what those names would add (at least INITIALS_AGREE, never past
# INITIALS_AGREE_UP_TO); initials that are not theirs are some evidence of another person.
INITIALS_AGREE = 6.0
INITIALS_AGREE_UP_TO = 90.0
INITIALS_DIFFER = -5.0
INITIALS_NONE_OF_THEM = 60.0  # (a first initial that is no given name's: no hit)
# One initial before a listed person's surname ("N. Maduro", "E. Raisi"), the initial that of the first given name:
# weak evidence, a review at ONE_INITIAL_SCORE and never more (so never a denial). Only for a surname that is rare
# on the lists (weight at least ONE_INITIAL_MIN_WEIGHT: about ten listed names or fewer) and not a common English
# word or name (Zipf below ONE_INITIAL_MAX_ZIPF): "J. Smith", "M. Garcia", "A. Kim" name many people.
ONE_INITIAL_SCORE = 84.0
ONE_INITIAL_MIN_WEIGHT = 8.2
ONE_INITIAL_MAX_ZIPF = 4.5
# Affiliate pattern: a listed party's distinctive name (weight at least AFFILIATE_MIN_WEIGHT) plus only
# words of place or corporate structure scores at least AFFILIATE_SCORE, a review.
AFFILIATE_SCORE = 85.0
AFFILIATE_MIN_WEIGHT = 7.0
# A listed name of only common words is an affiliate's parent, with a place added, where the lists name units of it
# by place: at least this many words, named with at least this many places (`ScreeningIndex._placed_common_names`).
PLACED_NAME_WORDS = 3
PLACED_NAME_PLACES = 2
AFFILIATE_CHECK_FROM = 45.0
AFFILIATE_MIN_SHARE = 0.6  # of the listed name's weight, found in the query
# A brand in the names of this many listed parties or more is a listed group's brand (VTB 44, Gazprom 54, Sberbank
# 32; not Novatek, 11): frequent on the lists, so it weighs little, yet it names the group, whose members are
# affiliates whatever its weight, in any country.
GROUP_BRAND_PARTIES = 20
# A listed brand written among other words (`ScreeningIndex._brand_word`): a word that is the whole of one of the
# names of a party the curated enrichment covers, of this many letters at least (the enrichment's own brands, such
# as "DJI", from BRAND_WORD_LETTERS_BRAND), rarer in English than COMMON_NAME_ZIPF ("huawei" 3.3 is a brand, "wagner"
# 3.7 a surname). The query's other words and the halves of a joined word count as common from OTHER_WORD_ZIPF.
BRAND_WORD_LETTERS = 5
BRAND_WORD_LETTERS_BRAND = 3
# ... and an acronym the enrichment gives in capitals from this many letters ("CCCC", "CNNC"), looked for only as the
# query's first word written in capitals ("CCCC First Highway Engineering Co., Ltd.").
ACRONYM_BRAND_LETTERS = 4
OTHER_WORD_ZIPF = 3.0
# A Dubai free-zone company ("... DMCC") reads as a company's name there. Not a legal form elsewhere: as a word of the
# name it keeps "Alphabet Inc." off the listed ALPHABET INTERNATIONAL DMCC.
BRAND_WORD_FORMS = frozenset({"dmcc"})
# Words that say a name is an enterprise's, as a legal form does, in the English names Russian groups' units go by: a
# design bureau (OKB, КБ: "Sukhoi Design Bureau"), a shipyard. Only here, beside a listed brand: as words of structure
# they would make "Tourism Bureau" or "News Bureau" an affiliate of any listed name of one common word.
ENTERPRISE_WORDS = frozenset({"bureau", "shipyard"})
# A listed name made only of common words ("Technology and Development Group") says little about identity:
# anything short of the whole name loses this much.
COMMON_WORDS_ONLY = -15.0
# A name whose own words are all common English words or surnames ("Alpha Bank", "J. Wagner GmbH"), in a country
# the listed party is not in, is more likely one of the many businesses of that name, even written exactly as
# listed. Commonness is the word's Zipf frequency in English (wordfreq: log10 of uses per billion words;
# "alpha" 4.3, "wagner" 3.7, "huawei" 3.3, "gazprom" 2.6, "rosoboronexport" 1.3).
COMMON_NAME_ZIPF = 3.5
COMMON_NAME_ELSEWHERE = -25.0
# An everyday English word ("foreign" 5.1, "central" 5.1, "industrial" 4.7), not a surname ("wagner" 3.7) or a letter
# ("alpha" 4.3): a listed name of only such words recurs from country to country (`_common_english_name`).
EVERYDAY_WORD_ZIPF = 4.5
# A word of an abjad whose skeleton has only two consonants ("دیوار", d-v-r with v a vowel letter: "dr")
SHORT_SKELETON = 0.75
# A listed name of three letters or fewer ("HUA", "HUM") is an abbreviation: only the whole query can be it.
SHORT_NAME_LETTERS = 3
SHORT_NAME = -30.0
# Each name has a word of trade the other lacks ("Roshan Telecom" / "Roshan Trading Company", "Sunway
# University" / "Sunway Microelectronics"): the shared word names two businesses.
OTHER_TRADE = -10.0
# A query word read in another romanisation ("Rostex" as Rostekh): the same word, spelt another way.
SPELLING_SIMILARITY = 0.95
# A query that is one word in capitals ("RDIF", "SMIC") equal to the initials of a listed name of four words
# or more ("Russian Direct Investment Fund", "Semiconductor Manufacturing International Corporation") may be
# that party's acronym: a review, never a denial on its own.
ACRONYM_SCORE = 82.0
ACRONYM_LETTERS = (4, 8)
BRACKETED_ACRONYM_LETTERS = (3, 8)  # an acronym the list itself gives in brackets ("FOREIGN TRADE BANK (FTB)")
ACRONYM_MAX_PARTIES = 3
# A query of one word in an abjad matched only by its consonants ("روشن", r-sh-n: Roshan, Rushaan, Rashen):
# without vowels and without a second word, the consonants fit many names.
ONE_ABJAD_WORD = -15.0
ONE_ABJAD_WORD_CONSONANTS = 4
# Words of this many letters or more whose canonical form is not as written are also compared as written.
TYPO_WRITTEN_FROM = 6
# A word of the query no list has, two edits from a listed word of as many letters or more (TYPO_TWO_EDITS_FROM),
# the first two letters kept ("Kaarfqrin" for KARAFARIN, "Hiznallha" for HIZBALLAH; "Sermaye", Turkish, is not
# SARMAYEH): the one-letter deletion keys do not find it, so it is looked up among the listed words that start
# with the same two letters and are two letters longer or shorter at most; the
# nearest few count as a near match (TOKEN_SIMILARITY), as `typo_apart` reads a typo in context. Not a word that
# wordfreq's English list has at all (Zipf above 0: "Hitachi", "Parisien", "Alternative"), which is written as meant.
TWO_EDIT_MATCHES = 3
# ... and a word of this many letters or more may have a slip at its second letter too ("Rskonszlt" for RUSKONSALT):
# in shorter ones a neighbouring key or a letter dropped there meets words of other languages ("Formado" / FIRMACO,
# "Tradisi" / TARADIS, "Putaran" / PITARON).
SECOND_LETTER_SLIP_FROM = 9
# ... and a word as written is compared with the listed words as written (where their canonical forms are not) from
# this many letters: the fold may add edits on both sides ("Cloduwakk": "kloduvak", three from CLOUDWALK's "kludvalk",
# two as written); two in a word of seven as written meet other words ("Europei", Italian, and EUROBET).
WRITTEN_TWO_EDITS_FROM = 8
# Words that say what kind of organisation a group is ("Houthi Movement", "Hezbollah Organization", "Al-Shabaab
# Militia" for THE HOUTHIS, HIZBALLAH, AL-SHABAAB): in a query they weigh like a generic word, as a legal form does
# after a company's name. (The lists' own weights are left as they are: a listed name with the word still needs it.)
# Only where the query's other words are no everyday English (EVERYDAY_WORD_ZIPF): "Good Army", "Face Movement"
# would be one common word.
ORGANISATION_WORDS = frozenset(
    canonical(word)
    for word in (
        "movement",
        "organization",
        "organisation",
        "militia",
        "militias",
        "party",
        "front",
        "forces",
        "force",
        "army",
        "network",
        "brigade",
        "brigades",
        "faction",
        "group",
    )
) | {"hrkh", "hrkt", "tndhym", "jmh", "jmt", "mndhmh", "mndhmt"}  # حركة, تنظيم, جماعة, منظمة as transliterated
ORGANISATION_WORD_WEIGHT = GENERIC_WEIGHT
# Listed pairs of words kept per consonant skeleton (`ScreeningIndex._pair_skeletons`), the first met.
PAIR_SKELETON_CAP = 50  # ... unless it has this many consonants: "سيريتل" (s-r-t-l) is SYRIATEL
# The listed name of a party on a list that does not block (CMIC, SSI, MEU ...) once legal forms are set
# aside, but not written as listed, in a country the party is not in: more likely another firm of that name
# ("CoStar Group, Inc.", US, against the Chinese optics maker listed as COSTAR GROUP CO., LTD.).
RESTRICTED_NAME_ELSEWHERE = -25.0
# A listed name that is one abbreviation of four letters or fewer ("EDBI", "NITC", "DIO", "PJSC UAC"), screened as it
# stands in a country the party is not in (nor near, nor its programme's): the same few letters are many other
# bodies' names there (EDB Investments in Singapore, NIT Calicut, the UK's Defence Infrastructure Organisation). On a
# blocking list; on a restricting one, RESTRICTED_NAME_ELSEWHERE or a brand incorporated elsewhere ("DJI GmbH").
ACRONYM_ELSEWHERE = -25.0
ACRONYM_ELSEWHERE_LETTERS = 4
# The listed name's own distinctive word(s) alone, without the place and trade words the list adds ("Phytium"
# for "Tianjin Phytium Information Technology"): the name the party is known by, a review at least.
BRAND_ALONE_SCORE = 82.0
BRAND_ALONE_FROM = 60.0
# A typo in context: a word of the query that matched nothing, a typo apart from a listed word that matched nothing
# ("Hasszn Jamil Salame", "Offie 39"), where the rest of the listed name's own words are in the query as listed,
# is that word misspelt: it counts as a near match (TOKEN_SIMILARITY). Compared as written too, since the canonical
# form can turn one typo into two ("sympohny" / "symfony"). Alone, one letter in five is another name ("Zhihu" /
# "Zhipu"): the listed party's other distinctive words, of this weight at least, must be there.
# ... or, short of that, every other word of a listed name of three or more is there, common words included
# ("Zhejiang Dahia Technology" for Zhejiang Dahua Technology); the misspelt word then weighs most of the name, so this
# is looked for from a lower name score.
TYPO_CONTEXT_FROM = 50.0
TYPO_WHOLE_NAME_FROM = 30.0
TYPO_CONTEXT_BELOW = 85.0
TYPO_CONTEXT_MIN_WEIGHT = 7.0
# A listed individual ("AL-JABBURI, Sadi Tuma Abbas") named by the surname and the first given name alone ("Sadi
# Al-Jabburi"), every word of the query theirs: how people are usually named, a review (as any individual's name).
USUAL_NAME_SCORE = 82.0
# Tokens whose weight an index remembers (listed words and the queries' words, a few MiB at most).
WEIGHTS_REMEMBERED = 200_000
# Names an index remembers under the blocking keys of queries' words (`_names_under`): about 10 MiB at most.
NAMES_UNDER_REMEMBERED = 200_000
SOURCE_SETS_REMEMBERED = 200_000


@functools.lru_cache(maxsize=200_000)
def blocking_keys(token: str) -> tuple[str, ...]:
    """The token and its single-character deletions: two tokens one edit apart share a key."""
    if len(token) < 4:
        return (token,)
    deletions = {token[:i] + token[i + 1 :] for i in range(len(token))}
    deletions.discard(token)
    return (token, *sorted(deletions))


def written_forms(norm: NormalizedName) -> tuple[str, ...]:
    """A listed name's words as written where their canonical form is not ("Megvii": "megvy"), long enough for a typo
    to be told apart (TYPO_WRITTEN_FROM): a typo of such a word ("Megvil") is one edit from it as written but two or
    more from its canonical form, so the index also finds the name under the written form's keys."""
    if not norm.display:
        return ()
    abjads = norm.abjad or (False,) * len(norm.strong)
    return tuple(
        form
        for token, form, abjad in zip(norm.strong, norm.display, abjads, strict=True)
        if form != token and not abjad and len(form) >= TYPO_WRITTEN_FROM and form.isascii() and form.isalpha()
    )


@functools.cache
def _common_word_keys() -> frozenset[str]:
    """Blocking keys (the word and its one-letter deletions) of the common words of five letters or more, legal
    forms included: a misspelt one ("establishmnet", "jooint") is no distinctive word the lists never saw."""
    words = generic_words() | {canonical(w) for w in LEGAL_FORMS}
    return frozenset(key for word in words if len(word) >= 5 for key in blocking_keys(word))


def _misspelt_common_word(token: str) -> bool:
    """One letter added, dropped, changed or swapped in a common word (two tokens one edit apart share a key)."""
    return len(token) >= 5 and not _common_word_keys().isdisjoint(blocking_keys(token))


# A misspelt word of a legal form or a common word ("Joint Tsock Company", "Vgroup", "Xorporation"): read as that word
# before the name is normalised, so that the legal form is recognised and set aside, and the common word meets the
# listed one, as if written right. The word must be no listed word, no English word of this Zipf frequency or more
# ("tock" is read; "grout" is written as meant) and one typo (`typo_apart`) from exactly one such word of five letters
# or more; places are not read so ("Xinjian" may be a listed word).
COMMON_WORD_TYPO_LETTERS = 4
# (The words of the lists' translated Russian legal forms, which `normalize_name` recognises as pairs.)
_RUSSIAN_LEGAL_FORM_WORDS = ("joint", "stock", "limited", "liability", "closed", "public", "private", "nonpublic")
COMMON_WORD_TYPO_ZIPF = 3.0
_COMMON_WORD_TYPO_NOTE = "a misspelt legal form or common word read as written right"


@functools.cache
def _common_written_words() -> dict[str, tuple[str, ...]]:
    """Blocking key -> the legal-form and common words (folded, as written, five letters or more) under it."""
    words = {
        fold(word)
        for phrase in (*LEGAL_FORMS, *GENERIC_WORDS, *STRUCTURE_WORDS, *_RUSSIAN_LEGAL_FORM_WORDS)
        for word in re.split(r"[\s\-.,]+", phrase)
        if len(word) >= 5 and word.isalpha()
    }
    words -= {fold(w) for w in place_words()}
    keyed: dict[str, set[str]] = {}
    for word in words:
        for key in blocking_keys(word):
            keyed.setdefault(key, set()).add(word)
    return {key: tuple(sorted(found)) for key, found in keyed.items()}


def _common_word_typo(written: str) -> str | None:
    """The one legal-form or common word `written` (folded) is a typo of, if one."""
    table = _common_written_words()
    if written in table and written in table[written]:
        return None  # (the word itself)
    found = {word for key in blocking_keys(written) for word in table.get(key, ()) if typo_apart(written, word)}
    return found.pop() if len(found) == 1 else None


# A Russian, Belarusian or Ukrainian patronymic ("Valentinovich", "Ryhorovich", "Ivanovna") is left out of
# many forms of a person's name; it weighs like a middle name, not like the surname.
PATRONYMIC_WEIGHT = 3.0
_PATRONYMIC = ("ovich", "evich", "ovych", "evych", "ovna", "evna", "ivna", "ichna")


def _capped(token: str, weight: float) -> float:
    if token in generic_words():
        return min(weight, GENERIC_WEIGHT)
    if len(token) > 7 and token.endswith(_PATRONYMIC):
        return min(weight, PATRONYMIC_WEIGHT)
    return weight


@dataclass(frozen=True, slots=True)
class IndexedName:
    entry: int  # position in ScreeningIndex.entries
    name: str
    norm: NormalizedName
    weights: tuple[float, ...]
    total: float = 1.0  # sum(weights) or 1.0
    joined: tuple[tuple[int, str], ...] = ()  # (j, strong[j] and strong[j + 1] written as one)
    kind: str = "primary name"  # primary name, alias, enrichment alias
    enrichment: EnrichmentAlias | None = None


# "SIBERIAN AIRLINES D/B/A S7 AIRLINES": one listed name holding two (doing business as, also known as,
# formerly known as); each part is also a name of the party, besides the whole.
_NAME_JOINERS = re.compile(r"\s+(?:d/b/a|a/k/a|f/k/a|d\.b\.a\.?|a\.k\.a\.?|f\.k\.a\.?)\s+", re.IGNORECASE)


_OTHER_SCRIPT_IN_BRACKETS = re.compile(r"[(（]\s*([^()（）\x00-\x7f][^()（）]*)[)）]?")


_ZWNJ = "\u200c"

# "FOREIGN TRADE BANK (FTB)", "NAFTIRAN TRADING SERVICES CO. (NTS) LIMITED": a word in brackets that abbreviates the
# words before it is the party's acronym as the list gives it (screened as an acronym: a review on its own, three
# letters allowed), and the name without it is a name of the party too.
_BRACKETED_WORD = re.compile(r"\(\s*([A-Za-z]{3,8})\s*\)")


# A name with a second name in brackets at its end ("Syrian Arab Airlines (Syrianair)", "Islamic State in Iraq and the
# Levant (Daesh)"): the name before the brackets is screened on its own too, where it has two words or more of its
# own. (Not the bracketed name alone, nor a one-word name: short, they resemble too much, "Sunway (Sunway Berhad)".)
# Not where the brackets hold a place, a legal form or other common words ("China Telecom (Americas)", "Sberbank
# (Switzerland) AG": an affiliate's name), nor a stock code.
_TRAILING_BRACKET = re.compile(r"^([^()（）]*[^\W\d_][^()（）]*?)\s*[(（]([^()（）\d]+)[)）]\s*$")
_SECOND_NAME_NOTE = "the name before a second name in brackets, on its own"
# North Korea's short names: the lists spell the country out in the names of its state bodies ("CENTRAL BANK OF THE
# DEMOCRATIC PEOPLE'S REPUBLIC OF KOREA"), people write "North Korea" or "DPRK". Such a name is also screened with the
# long form.
_NORTH_KOREA = re.compile(r"\b(?:north\s+korea|d\.?\s?p\.?\s?r\.?\s?k\.?)(?=\W|$)", re.IGNORECASE)
_LONG_FORM = "Democratic People's Republic of Korea"
_LONG_FORM_NOTE = f"'North Korea' or 'DPRK' read as the lists write it, '{_LONG_FORM}'"


# Titles, honorifics and ranks written before a person's name ("Seyed Ali Khamenei", "Major General Qasem Soleimani",
# "Sheikh Hassan Nasrallah", "генерал-майор ..."), which the lists leave out: the name after them is screened on its
# own too, for listed individuals only (a title names a person), where what is left has two words or more, no legal
# form and no word of trade or place ("General Electric Company" is no title and a name). In English, Russian (in
# Latin and Cyrillic letters, German spellings too), Persian and Arabic (romanised and in their script). Not words
# that are as often given names (Amir, Said, Mirza, Imam).
_TITLES = (
    # English, with their abbreviations, and the civil ones
    "general", "lieutenant general", "major general", "brigadier general", "brigadier", "colonel",
    "lieutenant colonel", "major", "captain", "lieutenant", "commander", "admiral", "vice admiral", "rear admiral",
    "field marshal", "marshal", "sergeant", "commodore", "gen", "lt", "col", "maj", "capt", "brig", "adm", "cmdr",
    "mr", "mrs", "ms", "dr", "prof", "professor", "sir", "comrade", "president", "vice president", "prime minister",
    "minister", "deputy minister", "senator", "governor", "ambassador", "his excellency", "her excellency",
    # Russian, as transliterated and as German writes them
    "general mayor", "general leytenant", "general polkovnik", "general armii", "polkovnik", "podpolkovnik",
    "kapitan", "generaloberst", "generalleutnant", "generalmajor", "oberst", "oberstleutnant", "tovarishch",
    "товарищ",
    "генерал", "генерал-майор", "генерал-лейтенант", "генерал-полковник", "генерал армии", "полковник",
    "подполковник", "майор", "капитан", "лейтенант", "адмирал", "вице-адмирал", "контр-адмирал", "маршал",
    # Persian ranks (the IRGC's and the army's) and honorifics, romanised
    "sardar", "sartip", "sartip dovom", "sarlashkar", "sarhang", "sargord", "sarvan", "daryadar", "daryaban",
    "seyed", "seyyed", "sayed", "sayyed", "sayyid", "sayid", "seyyid", "syed", "sheikh", "shaikh", "shaykh", "sheik",
    "sheykh", "cheikh", "hajj", "haj", "haji", "hajji", "hadji", "al hajj", "al haj", "mullah", "mulla", "molla",
    "mawlawi", "maulvi", "mowlavi", "maulana", "mawlana", "ayatollah", "ayatullah", "grand ayatollah",
    "hojatoleslam", "hojjatoleslam", "hojatoleslam val moslemin", "hujjat al islam", "mohandes", "qari", "mufti",
    "hazrat",
    # ... and in their script; Arabic ranks with their article (major general, brigadier, colonel, lieutenant
    # general, field marshal, general, major, captain)
    "سید", "سيد", "السيد", "شیخ", "شيخ", "الشيخ", "حاج", "الحاج", "ملا", "سردار", "سرتیپ", "سرلشکر", "سرهنگ",
    "آیت الله", "آية الله", "آيت الله", "آیت الله العظمی", "حجت الاسلام", "حجت الاسلام و المسلمین",
    "حجت الاسلام والمسلمین", "دکتر", "دكتور", "الدكتور", "مهندس", "المهندس", "اللواء", "العميد", "العقيد",
    "الفريق", "المشير", "العماد", "الرائد", "النقيب",
)  # fmt: skip
_LEADING_TITLES = re.compile(
    r"^(?:(?:"
    + "|".join(
        r"[\s\-]+".join(re.escape(part) for part in re.split(r"[\s\-]+", fold(title)))
        for title in sorted(_TITLES, key=len, reverse=True)
    )
    + r")\.?(?:[\s\-,]+|$))+"
)
_TITLE_STARTS = frozenset(re.split(r"[\s\-]+", fold(title))[0] for title in _TITLES)  # (most names: one set look-up)
_FIRST_WORD = re.compile(r"[^\s\-.,\u200c]+")
_AFTER_TITLES_NOTE = "the name after a title, honorific or rank, on its own (listed individuals only)"

# A Korean person's name in Hangul is one run of syllables, surname first (리병철, 김영철): romanised whole it is one
# word ("ribyeongcheol") that no listed "RI, Pyong Chol" has. Read as surname and given name ("Ri byeongcheol")
# it is the listed person's (the matcher folds Revised Romanization into the lists' McCune-Reischauer).
# Two-syllable surnames are few; four syllables with a one-syllable surname are left alone (more likely a firm's
# or a place's name).
_HANGUL_PERSON = re.compile(r"[\uac00-\ud7a3]{2,4}")
_KOREAN_TWO_SYLLABLE_SURNAMES = frozenset({"남궁", "황보", "제갈", "선우", "독고", "사공", "서문"})
_KOREAN_PERSON_NOTE = "a Korean name in Hangul read as surname and given name (listed individuals only)"

# "Hsien Cheng Chou", "Chun Ryong Cho": a Chinese or Korean person written given names first, the Western way. The lists
# write such persons surname first ("CHOU, Hsien Cheng"), and romanised names are read by the place of each word (a
# Wade-Giles surname, given names of joined syllables), so the words as written need not come out as the listed ones.
# Read with the last word as the surname too, where that reading comes out otherwise (most names read the same).
_PERSON_WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)?")
_SURNAME_LAST_NOTE = "read as given names and then the surname (listed individuals only)"


def _korean_person(name: str) -> str | None:
    """ "Ri byeongcheol" for 리병철: a name of two to four Hangul syllables and nothing else, not a company's (no
    company word such as 무역회사 or 은행 at its end), read as surname and given name (also where a space already parts
    them); None otherwise."""
    if len(name) > 12 or not _HANGUL_PERSON.search(name):
        return None  # (most names: no Hangul at all)
    words = name.split()
    if len(words) == 2 and len(words[0]) <= 2 and _HANGUL_PERSON.fullmatch("".join(words)):
        return korean_person(words[0], words[1])  # written apart already: 김 영철
    run = name.strip()
    if not _HANGUL_PERSON.fullmatch(run) or hangul_words(run) != romanize_hangul(run):
        return None
    cut = 2 if len(run) == 4 and run[:2] in _KOREAN_TWO_SYLLABLE_SURNAMES else 1
    if len(run) == 4 and cut == 1:
        return None
    return korean_person(run[:cut], run[cut:])


# A query that gives the party's other names itself: "Rostec (formerly Russian Technologies)", "Otkritie FC Bank f/k/a
# Nomos-Bank", "Siberia Airlines d/b/a S7", "VEB.RF, formerly Vnesheconombank". Each name is the party's, so each is
# screened on its own besides the whole (a renamed listed party signs up under its new name and cites the old one).
# Written between two names: the unambiguous markers anywhere, "now", "previously" and "ex" only after a comma.
_DECLARED_MARKERS = (
    r"formerly(?:\s+known\s+as)?|previously\s+known\s+as|now\s+known\s+as|also\s+known\s+as|doing\s+business\s+as"
    r"|operating\s+as|f/k/a|f\.k\.a\.?|fka|d/b/a|d\.b\.a\.?|dba|a/k/a|a\.k\.a\.?|t/a"
)
_DECLARED_INLINE = re.compile(
    rf"(?:\s+|\s*,\s*)(?i:{_DECLARED_MARKERS}|(?-i:[Tt]rading\s+as))\s*:?\s+"
    r"|\s*,\s*(?i:now|previously)\s+|\s*,\s*(?i:ex)(?:-|\s+)",
)
# The same in brackets: "(formerly X)", "(ex-X)", "(now X)", "[f/k/a X]", "(trading as X)".
_DECLARED_BRACKET = re.compile(
    rf"\s*[(\[（]\s*(?i:{_DECLARED_MARKERS}|trading\s+as|now|previously|ex\b-?|former(?:ly)?\s+name:?|renamed(?:\s+from)?)"
    r"\s*:?\s*([^()\[\]（）]+?)\s*[)\]）]"
)
_DECLARED_ANY = re.compile(f"{_DECLARED_INLINE.pattern}|{_DECLARED_BRACKET.pattern}")
_DECLARED_NOTE = "a name the query itself gives for the same party (formerly, also known as, doing business as)"


def _declared_names(name: str) -> list[str]:
    """The names a query gives for one party besides the whole ("X (formerly Y)": X and Y; "X d/b/a Y": X and Y);
    empty where it gives none. A part without a letter is left out."""
    if not _DECLARED_ANY.search(name):
        return []  # (most names: one search)
    parts: list[str] = []
    rest = name
    for match in _DECLARED_BRACKET.finditer(name):
        parts.append(match.group(1))
    if parts:
        rest = _DECLARED_BRACKET.sub(" ", name)
        parts.append(rest)
    pieces = _DECLARED_INLINE.split(rest)
    if len(pieces) > 1:
        if rest in parts:
            parts.remove(rest)
        parts.extend(pieces)
    cleaned = [" ".join(p.strip(" ,;:-").split()) for p in parts]
    return list(dict.fromkeys(p for p in cleaned if any(ch.isalpha() for ch in p) and p != name.strip()))


@functools.lru_cache(maxsize=4096)
def _folded_word(word: str) -> str:
    return fold(word)


def _name_after_titles(name: str) -> str | None:
    """The name after the titles, honorifics or ranks it begins with, where what is left looks like a person's name:
    two words or more, no legal form, no word of trade, place or structure."""
    first = _FIRST_WORD.match(name.lstrip())
    if first is None:
        return None
    word = first.group().lower()
    if (word if word.isascii() else _folded_word(word)) not in _TITLE_STARTS:
        return None  # (most names: the whole name is not folded for this)
    folded = fold(name).replace(_ZWNJ, " ").strip()
    match = _LEADING_TITLES.match(folded)
    if match is None or match.end() >= len(folded):
        return None
    rest = folded[match.end() :]
    norm = normalize_name(rest)
    generic = generic_words()
    if (
        len(norm.strong) < 2
        or any(w in LEGAL_FORMS or w.isdigit() for w in norm.weak)
        or any(t in generic for t in norm.strong)
    ):
        return None
    return rest


def _pairs(norm: NormalizedName) -> tuple[tuple[int, str], ...]:
    """Each two neighbouring words of a listed name written as one: their forms joined ("hik" + "vision"), and where it
    comes out otherwise, the words as written joined and then read as one word. "RT-CAPITAL" is rt + kapital, but a
    customer who drops the hyphen writes "RTCAPITAL", one word that reads as "rtcapital" (NORD-DEUTSCHE: nord + tuche,
    and "nordeuche" written as one)."""
    strong = norm.strong
    pairs = [(j, joined(strong[j], strong[j + 1])) for j in range(len(strong) - 1)]
    if norm.display:
        for j in range(len(strong) - 1):
            written = canonical(norm.display[j] + norm.display[j + 1])
            if written != pairs[j][1] and written.isalpha():
                pairs.append((j, written))
    return tuple(pairs)


def _surname_last(name: str) -> str | None:
    """ "Chou, Hsien Cheng" for "Hsien Cheng Chou": a name of two to four plain Latin words and nothing else (no legal
    form, no word of trade, place or structure), where the last word read as the surname gives other words than the
    name as written; None otherwise."""
    words = name.split()
    if not 2 <= len(words) <= 4 or len(words[-1]) > 6 or not all(_PERSON_WORD.fullmatch(w) for w in words):
        return None  # (most names: one word, a legal form with a full stop, a digit; CJK surnames are short)
    reading = f"{words[-1]}, {' '.join(words[:-1])}"
    as_written, as_read = normalize_name(name), normalize_name(reading)
    if as_written.weak or sorted(as_written.strong) == sorted(as_read.strong):
        return None
    # No word of trade or structure; words of place are kept: Chinese given names are also places' syllables ("Xian").
    if any(t in _trade_words() or t in _structure_tokens() for t in as_read.strong):
        return None
    return reading


def _name_before_brackets(name: str) -> str | None:
    """The name before the brackets, where a name of two words or more ends with a second name in brackets."""
    if "(" not in name and "（" not in name:
        return None
    match = _TRAILING_BRACKET.match(name.strip())
    if match is None or _bracketed_acronyms(name):
        return None
    outside, inside = match.group(1).strip(), match.group(2).strip()
    generic = generic_words()
    if not any(t not in generic for t in normalize_name(inside).strong) or len(normalize_name(outside).strong) < 2:
        return None
    return outside


# Persian, Arabic and Urdu particles between a name's words (the ezafe of "Tehrik-e Taliban", the article and "and" of
# "Nusrat ul-Islam wa al-Muslimin", the "a" an apostrophe leaves of "Jama'a"), which an acronym may leave out: TTP,
# JNIM. One may still give its letter ("Khatam al-Anbiya", KAA).
ACRONYM_PARTICLES = frozenset({"a", "e", "i", "al", "el", "ul", "ol", "wa", "va"})


def _abbreviates(acronym: str, words: Sequence[str]) -> bool:
    """Whether `acronym` is the beginnings of consecutive words, in order, from the first letter of one of them
    ("ftb": Foreign Trade Bank; "nts": Naftiran Trading Services), each word giving one letter or more, a particle
    (ACRONYM_PARTICLES) giving its letters or none."""

    def fits(rest: str, k: int) -> bool:
        if not rest:
            return True
        if k >= len(words):
            return False
        word = words[k]
        if word in ACRONYM_PARTICLES and fits(rest, k + 1):
            return True
        return any(word[:n] == rest[:n] and fits(rest[n:], k + 1) for n in range(min(len(word), len(rest)), 0, -1))

    return any(fits(acronym, k) for k in range(len(words)) if words[k][:1] == acronym[0])


def _last_words(words: Sequence[str], count: int) -> Sequence[str]:
    """The name's last `count` words, not counting the particles among them (ACRONYM_PARTICLES)."""
    seen = 0
    for k in range(len(words) - 1, -1, -1):
        seen += words[k] not in ACRONYM_PARTICLES
        if seen == count:
            return words[k:]
    return words


def _bracketed_acronyms(name: str) -> list[str]:
    """Acronyms a listed name gives in brackets for its preceding words (not places, legal forms or other words)."""
    # Most names have no brackets; a listed one with brackets is looked at twice as the index is built (as a name and
    # for its acronyms), and a query once more: remembered.
    return list(_bracketed(name)) if "(" in name else []


@functools.lru_cache(maxsize=4096)
def _bracketed(name: str) -> tuple[str, ...]:
    found: list[str] = []
    for match in _BRACKETED_WORD.finditer(name):
        acronym = match.group(1).lower()
        if acronym in LEGAL_FORMS or acronym in place_tokens() or canonical(acronym) in generic_words():
            continue
        words = [w for w in _WORD.findall(fold(name[: match.start()])) if w not in STOPWORDS]
        # The legal form may be in the acronym ("KOREA KWANGSON BANKING CORPORATION (KKBC)") or between the words and
        # their acronym ("OCEAN MARITIME MANAGEMENT COMPANY, LIMITED (OMM)").
        for kept in (words, [w for w in words if w not in LEGAL_FORMS]):
            if (
                len(kept) >= 2
                and _abbreviates(acronym, _last_words(kept, len(acronym) + 1))
                and not common_english(acronym)
            ):
                found.append(match.group(1))
                break
    return tuple(found)


def _only_places(name: str) -> bool:
    strong = normalize_name(name).strong
    return bool(strong) and all(token in place_tokens() for token in strong)


@functools.lru_cache(maxsize=4096)
def _only_places_cached(name: str) -> bool:
    return _only_places(name)  # (the same few regions come before Chinese trade names: 北京, 深圳市)


def _named(entry: ListEntry) -> Iterable[tuple[str, str, EnrichmentAlias | None]]:
    yield entry.name, "primary name", None
    for alias in entry.aliases:
        yield alias, "alias", None
    for added in entry.enrichment:
        yield added.alias, "enrichment alias", added
        if _ZWNJ in added.alias:
            # Persian joins قرض‌الحسنه with a zero-width non-joiner, which many write as a space: both forms.
            yield added.alias.replace(_ZWNJ, " "), "enrichment alias", added
    for subsidiary in entry.subsidiaries:
        yield subsidiary.alias, KNOWN_SUBSIDIARY, subsidiary
    for name in (entry.name, *entry.aliases):
        if _bracketed_acronyms(name):
            yield " ".join(_BRACKETED_WORD.sub(" ", name).split()), "alias", None
        parts = _NAME_JOINERS.split(name)
        if len(parts) > 1:
            for part in parts:
                if part.strip():
                    yield part.strip(), "alias", None
        # "Hay’at Tahrir al-Sham (HTS) (هيئة تحرير الشام)": the original-script name in brackets is a name
        # of its own, and so is the Latin name without it.
        written = _OTHER_SCRIPT_IN_BRACKETS.findall(name)
        if written:
            # Not a place in brackets inside the original-script name ("華信船務 (香港) 有限公司"): 香港 is no alias.
            yield from ((w.strip(), "alias", None) for w in written if w.strip() and not _only_places(w))
            rest = _OTHER_SCRIPT_IN_BRACKETS.sub(" ", name).strip()
            if rest:
                yield rest, "alias", None
    for weak in _weak_aliases(entry):
        yield weak, WEAK_ALIAS, None


_NOT_PARTIES = frozenset({"individual", "vessel", "aircraft"})
# A company the listed party owns or controls, from the curated subsidiary file: indexed under the parent's entry, but
# no name of the parent. A query that is that name (`_whole_name`), or that name with only words of place or
# structure added (the affiliate pattern), is a review as a possible affiliate of the parent, at AFFILIATE_SCORE; a
# weaker match on it is no hit. It takes no part in what the index learns from the parties' own names (brands,
# acronyms, the same party on several lists).
KNOWN_SUBSIDIARY = "known subsidiary"
SUBSIDIARY_MATCH_FROM = 92.0
# OFAC gives some names of a party only in its remarks, as weak aliases ("a.k.a. 'FSB'" for FEDERAL SECURITY SERVICE,
# "a.k.a. 'CALT'", "f.k.a. 'ANSAR INSTITUTE'"): short or broad names that OFAC says are not to be screened on alone.
# A company's or a body's weak alias is indexed (a person's are nicknames: "PAT", "EL SENOR"), and a hit on it is a
# review at most, in no other country than the party's.
WEAK_ALIAS = "weak alias"
WEAK_ALIAS_SCORE = 85.0
WEAK_ALIAS_ELSEWHERE = 70.0
_WEAK_AKA = re.compile(r"[afn]\.k\.a\. '([^']+)'")  # also known as, formerly and now known as


def _weak_aliases(entry: ListEntry) -> list[str]:
    """The weak aliases in an OFAC entry's remarks, where the entry is a company or a body."""
    if not entry.remarks or entry.type.lower() in _NOT_PARTIES:
        return []
    return [w.strip() for w in _WEAK_AKA.findall(entry.remarks) if w.strip()]


def _weak_alias_kept(norm: NormalizedName) -> bool:
    """A weak alias of three letters or more with a word that is neither common in trade nor in English."""
    if sum(map(len, norm.strong)) < 3:
        return False
    generic = generic_words()
    return any(t not in generic and not common_english(norm.shown(i)) for i, t in enumerate(norm.strong))


SAME_PARTY_MAX = 4  # a name shared by more entries than this is too common to say they are one party
SAME_PARTY_KIND = "name of the same party on"


def _same_party_names(
    entries: tuple[ListEntry, ...], normalised: list[tuple[int, str, NormalizedName, str, EnrichmentAlias | None]]
) -> list[tuple[int, str, NormalizedName, str, EnrichmentAlias | None]]:
    """Names an entity carries on another list under another primary name, for its entry on this one.

    One organisation is often on several lists, each with its own spelling and aliases: the UN's "AL-QAIDA IN
    IRAQ" is OFAC's "ISLAMIC STATE OF IRAQ AND THE LEVANT" (which gives "AL-QAIDA IN IRAQ" as an alias), Hikvision
    is on the Entity List and the CMIC list. Entities of different lists that share a name (the same words, legal
    forms aside) are one party; each gets the other's names, marked with the entry they come from."""
    by_key: dict[str, set[int]] = {}
    primary: dict[str, set[int]] = {}
    for position, _, norm, kind, _ in normalised:
        if entries[position].type.lower() not in _NOT_PARTIES and len(norm.key) >= 5:
            # "Group" is a legal form to screening, but "Islamic Jihad Group" (Uzbekistan) is not "Islamic Jihad".
            key = norm.key + (" +group" if "group" in norm.weak else "")
            by_key.setdefault(key, set()).add(position)
            if kind == "primary name":
                primary.setdefault(key, set()).add(position)
    linked: dict[int, set[int]] = {}
    for key, positions in by_key.items():
        # The shared name must be one entry's primary name: aliases alone are shared by different groups
        # ("Ansar Allah" was an alias of Hizballah; "Ansar al-Sharia" names groups in Libya and Tunisia).
        named = primary.get(key, set())
        if not named or len(positions) < 2 or len(positions) > SAME_PARTY_MAX:
            continue
        for p in named:
            for q in positions:
                if entries[q].list != entries[p].list:
                    linked.setdefault(p, set()).add(q)
                    linked.setdefault(q, set()).add(p)
    # A non-blocking list's aliases do not make a blocking entry deny: OFAC's CMIC entry for Huawei Technologies
    # also carries its parent's name, which the Entity List's Huawei entry does not.
    for p, others in linked.items():
        if entries[p].list in BLOCKING_LISTS:
            others.difference_update([q for q in others if entries[q].list not in BLOCKING_LISTS])
    if not linked:
        return []
    involved = set(linked).union(*linked.values())
    own: dict[int, list[tuple[str, NormalizedName, EnrichmentAlias | None]]] = {}
    for position, name, norm, _, added in normalised:
        if position in involved:
            own.setdefault(position, []).append((name, norm, added))
    extra: list[tuple[int, str, NormalizedName, str, EnrichmentAlias | None]] = []
    for position, others in linked.items():
        seen = {norm.key for _, norm, _ in own.get(position, [])}
        for other in sorted(others):
            source = entries[other]
            for name, norm, added in own.get(other, []):
                if norm.key not in seen:
                    seen.add(norm.key)
                    extra.append((position, name, norm, f"{SAME_PARTY_KIND} {source.list} ({source.id})", added))
    return extra


_SCORE = itemgetter(1)
_SCORE_THEN_ID = itemgetter(1, 0)


def _first(ascending: list[int], n: int) -> list[int]:
    return ascending[:n]


def _lowest(lists: Sequence[list[int]], leave_out: set[int], n: int) -> list[int]:
    """The n lowest ids of the union of ascending `lists`, but those in `leave_out`: each list's n lowest hold them."""
    if leave_out:
        heads = [list(islice(filterfalse(leave_out.__contains__, names), n)) for names in lists]
    else:
        heads = [names[:n] for names in lists]
    if len(heads) == 1:
        return heads[0]
    return sorted(set().union(*heads))[:n]


def _lowest_but(lists: Sequence[list[int]], multi: set[int], exact_ids: frozenset[int], n: int) -> list[int]:
    """`_lowest`, leaving out the names in `multi` or `exact_ids` (a term's names with the word itself)."""
    skip = exact_ids.__contains__
    if multi:
        left_out = multi.__contains__
        heads = [list(islice(filterfalse(skip, filterfalse(left_out, names)), n)) for names in lists]
    else:
        heads = [list(islice(filterfalse(skip, names), n)) for names in lists]
    if len(heads) == 1:
        return heads[0]
    return sorted(set().union(*heads))[:n]


# Letters an abjad's transliteration writes with a final h (ش sh, ث th, ذ ض ظ dh, ژ zh): no ta marbuta there.
_ONE_LETTER_H = ("sh", "th", "dh", "zh")


class ScreeningIndex:
    """In-memory screening index over one list version."""

    def __init__(
        self,
        entries: tuple[ListEntry, ...],
        names: list[IndexedName],
        postings: dict[str, list[int]],
        document_frequency: dict[str, int],
        version: str | None,
    ) -> None:
        self.entries = entries
        self.names = names
        self.postings = postings
        self.document_frequency = document_frequency
        self.version = version
        self.by_id = {e.id: e for e in entries}
        self._max_weight = math.log1p(max(len(names), 1))
        self._weights: dict[str, float] = {}  # `weight` of the tokens asked for so far
        # `_names_under` of the keys asked for so far (never changed once there), and how many names they hold.
        self._under: dict[tuple[str, ...], tuple[frozenset[int], list[list[int]], tuple[tuple[int, str], ...]]] = {}
        self._under_names = 0
        # Names of two words of parties that are no individual, vessel or aircraft (the swap check's).
        self._two_word_names = frozenset(
            name_id
            for name_id, indexed in enumerate(names)
            if len(indexed.norm.strong) == 2 and entries[indexed.entry].type not in _NOT_A_COMPANY
        )
        self._source_sets: dict[int, frozenset[int]] = {}  # `_source_set` so far
        self._source_set_names = 0
        # `_written_forms` of every listed name, both ways (they depend on the name alone): built here, once per list
        # version, not name by name as queries first meet them (a cold pass over the dev half met 2,882).
        self._written_all = [_written_forms(indexed) for indexed in names]
        self._written_differing = [
            _written_forms(indexed, True) if all_forms else ()
            for indexed, all_forms in zip(names, self._written_all, strict=True)
        ]
        # Listed words by their consonants, for names written in an abjad (Arabic, Persian, Hebrew script).
        skeletons: dict[str, list[str]] = {}
        # Short listed words of one consonant (ali, ala, ula): a word of the query that is no more (علی, l) scores
        # against them, but does not find candidates by them, which most names would be.
        one_consonant: dict[str, list[str]] = {}
        for token in document_frequency:
            if len(token) >= 3 and token.isalpha():
                key = skeleton(token)
                if len(key) >= 2:
                    skeletons.setdefault(key, []).append(token)
                elif len(key) == 1 and len(token) <= 4:
                    one_consonant.setdefault(key, []).append(token)
        self._skeletons = skeletons
        self._one_consonant = one_consonant
        # Listed distinctive words by first two letters and length, for a query word two edits from one, and by the
        # first two letters a query word two slips from one may start with (`two_edit_matches`); the same of their
        # forms as written where the canonical form is not ("cloudwalk": "kludvalk"), for a query word as written.
        generic = generic_words()
        words = [t for t in document_frequency if len(t) >= TYPO_TWO_EDITS_FROM and t.isascii() and t.isalpha()]
        words = [t for t in words if t not in generic]
        tokens_of: dict[str, dict[str, None]] = {}
        for pairs in self._written_differing:
            for form, token in pairs:
                if len(form) >= TYPO_TWO_EDITS_FROM and form.isalpha() and token not in generic:
                    tokens_of.setdefault(form, {})[token] = None
        self._two_edit_words = (
            (*_two_edit_tables(words), None),
            (*_two_edit_tables(list(tokens_of)), {form: tuple(found) for form, found in tokens_of.items()}),
        )
        # Two listed words by the consonants of both, for an abjad word that writes them as one: Persian joins
        # compound given names (امیرعلی, AMIR ALI; محمدجواد, MOHAMMAD JAVAD).
        pair_skeletons: dict[str, list[str]] = {}
        for indexed in names:
            for _, pair in indexed.joined:
                if pair.isalpha():
                    key = skeleton(pair)
                    if len(key) >= 3:
                        found = pair_skeletons.setdefault(key, [])
                        if pair not in found and len(found) < PAIR_SKELETON_CAP:
                            found.append(pair)
        self._pair_skeletons = pair_skeletons
        # The postings regrouped by what put a name under a key: one listed token (the key is the token
        # or one of its deletions) or one pair of adjacent tokens. A token's deletion keys all lead back
        # to the same names, so a query gathers the few sources behind its keys first and then each
        # source's names once, instead of the same names once per key.
        source_names: list[list[int]] = []
        sources: dict[str | tuple[str, str], int] = {}
        for name_id, indexed in enumerate(names):
            strong = indexed.norm.strong
            neighbours = set(pairwise(strong))
            name_sources: set[str | tuple[str, str]] = {*strong, *neighbours, *written_forms(indexed.norm)}
            # (Two words as written joined, where that reads otherwise than their forms joined: `_pairs`.)
            as_formed = {joined(a, b) for a, b in neighbours}
            name_sources.update(("", pair) for _, pair in indexed.joined if pair not in as_formed)
            for source in name_sources:
                number = sources.get(source)
                if number is None:
                    number = sources[source] = len(source_names)
                    source_names.append([])
                source_names[number].append(name_id)
        key_sources: dict[str, list[int]] = {}
        for source, number in sources.items():
            if isinstance(source, str):
                keys = blocking_keys(source)
            else:
                keys = (joined(*source),) if source[0] else (source[1],)
            for key in keys:
                key_sources.setdefault(key, []).append(number)
        self._sources = source_names
        # Each key's sources, or, for a key above POSTING_CAP, its posting's length: one look-up per key.
        lookup = cast("dict[str, list[int] | int]", key_sources)  # (changed in place: a copy would add to the peak)
        for key, posting in postings.items():
            if len(posting) > POSTING_CAP:
                lookup[key] = len(posting)
        self._key_lookup = lookup
        self._token_source = {source: number for source, number in sources.items() if isinstance(source, str)}
        self._acronyms = _acronyms(entries, names)
        # Each known subsidiary's own words (neither common nor places), which a query must have for it to be a hit.
        generic, places, regions = generic_words(), place_tokens(), _chinese_regions()
        self._owned_words = {
            name_id: frozenset(
                t for t in indexed.norm.strong if t not in generic and t not in places and t not in regions
            )
            for name_id, indexed in enumerate(names)
            if indexed.kind == KNOWN_SUBSIDIARY
        }
        # How many listed parties have each word in one of their names: a group's brand ("vtb", "sberbank") is in many.
        parties: dict[str, set[int]] = {}
        for indexed in names:
            if indexed.kind == KNOWN_SUBSIDIARY:
                continue
            for token in indexed.norm.strong:
                parties.setdefault(token, set()).add(indexed.entry)
        self._parties_with = {token: len(found) for token, found in parties.items()}
        self._placed_common_names = _placed_common_names(names)  # built with the index, not on the first screen
        self._chinese_brands = _chinese_brands(entries, names)
        # Every word of every name of the parties those brands are of (their trades, in whatever language).
        brand_parties = {names[name_id].entry for found in self._chinese_brands.values() for name_id in found}
        party_words: dict[int, set[str]] = {position: set() for position in brand_parties}
        for indexed in names:
            if indexed.entry in party_words and indexed.kind != KNOWN_SUBSIDIARY:
                party_words[indexed.entry].update(indexed.norm.strong)
        self._party_words = {position: frozenset(words) for position, words in party_words.items()}
        self._brand_longest = max(map(len, self._chinese_brands), default=0)
        # Every word of a listed individual's names: a query word among them may be a person's name.
        self._people_words = frozenset(
            token for indexed in names if entries[indexed.entry].type == "individual" for token in indexed.norm.strong
        )
        self._brand_words = _brand_words(entries, names, self._people_words, self._acronyms)
        # Brands below BRAND_WORD_LETTERS: the enrichment's acronyms ("CCCC"), read only as a query's first word.
        self._acronym_brands = frozenset(token for token in self._brand_words if len(token) < BRAND_WORD_LETTERS)
        # ... of which those the list gives, not the curation ("NIOC", "AGIR"): four capitals are also other firms'
        # initials and other languages' words, so they count only in a name screened in the party's own country.
        self._listed_acronyms = frozenset(
            token
            for token in self._acronym_brands
            if all(names[i].enrichment is None for i in self._brand_words[token])
        )
        # Brands that are also Hanyu Pinyin: Chinese words that other Chinese firms' names use too (大华 Dahua, 曙光
        # Shuguang, 华为 Huawei), read as a brand among other words only in a name screened with a country outside
        # China, Hong Kong and Macao.
        self._pinyin_brands = frozenset(
            token
            for token, ids in self._brand_words.items()
            if is_pinyin(token) or any(is_pinyin(names[i].norm.shown(0).lower()) for i in ids)
        )
        self._brand_starts = frozenset(brand[0] for brand in self._chinese_brands)
        common_english("name")  # wordfreq's English list loads now, with the index, not in a screening request
        # The word tables the first screening request would otherwise build (the common words' keys: 6 ms).
        _common_word_keys(), _trade_words(), _structure_tokens(), _unit_words(), _function_words(), affiliate_words()
        _chinese_regions(), _common_written_words(), english_canonical_words()  # (the last: 0.3 s)
        self._remember_vocabulary()

    def _remember_vocabulary(self) -> None:
        """What a query asks about a listed word, worked out here for every listed word, once per list version, rather
        than the first time a query has the word: its weight, its other romanisations (`spelling_variants` of the word
        as written), the names with the word itself as a set where there are many; and each entry's programmes'
        countries. (The same values: each is what the query would have computed, remembered earlier.)"""
        for token in self.document_frequency:
            self.weight(token)
        generic = generic_words()
        for indexed in self.names:
            norm = indexed.norm
            for position, token in enumerate(norm.strong):
                if token not in generic and not (norm.abjad and norm.abjad[position]):
                    spelling_variants(norm.shown(position))
        sources = self._sources
        for source in self._token_source.values():
            if len(sources[source]) > CANDIDATES:
                self._source_set(source)
        for entry in self.entries:
            _programme_countries(entry)  # (a few hundred sets of programmes)

    @classmethod
    def build(cls, entries: Iterable[ListEntry], version: str | None = None) -> ScreeningIndex:
        """Normalise every name and alias once and build the inverted index of blocking keys."""
        entry_tuple = tuple(entries)
        normalised: list[tuple[int, str, NormalizedName, str, EnrichmentAlias | None]] = []
        frequency: dict[str, int] = {}
        for position, entry in enumerate(entry_tuple):
            seen: set[str] = set()
            for name, kind, added in _named(entry):
                norm = normalize_name(name)
                if not norm.strong or norm.key in seen or (kind == WEAK_ALIAS and not _weak_alias_kept(norm)):
                    continue
                seen.add(norm.key)
                normalised.append((position, name, norm, kind, added))
                for token in set(norm.strong):
                    frequency[token] = frequency.get(token, 0) + 1
        # (A weak alias says too little to tie two entries together.)
        strong_names = [n for n in normalised if n[3] not in (WEAK_ALIAS, KNOWN_SUBSIDIARY)]
        for extra in _same_party_names(entry_tuple, strong_names):
            normalised.append(extra)
            for token in set(extra[2].strong):
                frequency[token] = frequency.get(token, 0) + 1
        total = max(len(normalised), 1)
        names: list[IndexedName] = []
        for position, name, norm, kind, added in normalised:
            weights = tuple(_capped(t, math.log1p(total / frequency[t])) for t in norm.strong)
            names.append(IndexedName(position, name, norm, weights, sum(weights) or 1.0, _pairs(norm), kind, added))
        # Name ids in order of total weight (list order among equals): a tie in the blocking score goes
        # to the lower id, the listed name that the same matched tokens cover the most. Known subsidiaries come after
        # every listed name: they lose such ties, and do not crowd the parties' own names out of the candidates.
        names.sort(key=lambda indexed: (indexed.kind == KNOWN_SUBSIDIARY, indexed.total))
        postings: dict[str, list[int]] = {}
        for name_id, indexed in enumerate(names):
            norm = indexed.norm
            keys: set[str] = set()
            for token in norm.strong:
                keys.update(blocking_keys(token))
            for form in written_forms(norm):
                keys.update(blocking_keys(form))
            keys.update(pair for _, pair in indexed.joined)
            for key in keys:
                postings.setdefault(key, []).append(name_id)
        return cls(entry_tuple, names, postings, frequency, version)

    def _rare_surname(self, query: NormalizedName) -> bool:
        """Whether a surname after one initial is rare enough to point at a listed person ("Maduro", not "Smith")."""
        return all(
            self.weight(t) >= ONE_INITIAL_MIN_WEIGHT and not common_english(query.shown(i), ONE_INITIAL_MAX_ZIPF)
            for i, t in enumerate(query.strong)
        )

    def weight(self, token: str) -> float:
        """Rarity of a token among listed names; unseen tokens weigh UNSEEN_WEIGHT at most, and an unseen
        misspelling of a common word ("servcies", "soutions") as little as the word."""
        found = self._weights.get(token)
        if found is not None:
            return found
        df = self.document_frequency.get(token)
        if df:
            found = _capped(token, math.log1p(len(self.names) / df))
        elif _misspelt_common_word(token):
            found = GENERIC_WEIGHT
        else:
            found = _capped(token, min(self._max_weight, UNSEEN_WEIGHT))
        if len(self._weights) < WEIGHTS_REMEMBERED:  # (a query asks for its words' weights several times)
            self._weights[token] = found
        return found

    def skeleton_matches(self, token: str) -> tuple[str, ...]:
        """Listed words whose consonants are those of an abjad-transliterated token."""
        key = skeleton(token)
        readings = [key]  # the key, then other readings of the same letters, in this order
        if key.endswith("h") and len(key) > 2:
            # Persian final ه is often silent ("khamenei"), also where a listed word keeps it (the list's own
            # Persian alias "خامنه‌ای" transliterated): both readings.
            readings.append(key[:-1])
        if "gh" in token or "kh" in token:
            # ... and gh or kh that are two letters (گاه, "gh", is g-h: قرارگاه is GHARARGAH, دانشگاه DANESHGAH).
            readings.append(two_letter_skeleton(token))
        if key.endswith("s") and len(key) >= 4:
            # A listed word's final s is taken for a plural (PETROPARS is kept as "petropar"); the abjad's is a letter.
            readings.append(key[:-1])
        if token.endswith("h") and len(token) > 2 and not token.endswith(_ONE_LETTER_H):
            # Arabic ة (ta marbuta, transliterated h) is read t before the noun it governs: حركة النجباء is HARAKAT
            # AL-NUJABA. From the token, not the key: ك + ة is "kh", which the key folds as one letter.
            readings.append(skeleton(token[:-1]) + "t")
        found: dict[str, None] = {}  # (ordered, each word once)
        for reading in readings:
            found.update(dict.fromkeys(self._skeletons.get(reading, ())))
        return tuple(found)

    def two_edit_matches(self, token: str, written: str | None = None) -> list[str]:
        """The listed words (TYPO_TWO_EDITS_FROM letters or more) nearest a query word two slips away at most, its
        first two letters kept; the nearest TWO_EDIT_MATCHES. Slips as `two_slips` counts them (a swap beside a letter
        dropped is two). In a word of SECOND_LETTER_SLIP_FROM letters or more, one of the slips may be at the second
        letter as fingers slip there: a neighbouring key ("Kwshavrazi" for KESHAVARZI), a key pressed between the first
        two letters, the second and third swapped or the second dropped ("Rskonslat" for RUSKONSALT); another second
        letter is another word ("Sermaye", Turkish, is not SARMAYEH). `written`: the word as written where its
        canonical form is not, looked up where the canonical form finds nothing, among the listed words and, from
        WRITTEN_TWO_EDITS_FROM letters, their forms as written: the fold can add an edit ("Divetehnoservixes": x read
        as ks, three edits from DIVETECHNOSERVICES, two as written)."""
        found: list[tuple[int, str]] = []
        listed = self._two_edit_words
        for form, vocabularies in ((token, listed[:1]), (written, listed)):
            if found or form is None or (form == token and vocabularies is listed):
                break  # (the written form only where it differs and the canonical one finds nothing)
            length = len(form)
            # (the listed words a slip at the second letter may have come from; and those a key pressed between the
            # first two letters, or the second and third swapped, may have: starting with the first and the third)
            first, skip = form[:2], form[0] + form[2]
            second = length >= SECOND_LETTER_SLIP_FROM
            sizes = range(max(length - 2, TYPO_TWO_EDITS_FROM), length + 3)
            for plain, slips, tokens_of in vocabularies:
                if tokens_of and length < WRITTEN_TWO_EDITS_FROM:
                    continue
                choices: list[str] = []
                for size in sizes:
                    if second:
                        choices += slips.get((first, size), ())
                        choices += plain.get((skip, size), ())
                    else:
                        choices += plain.get((first, size), ())
                # (OSA, the cheaper, is at most one more where Damerau-Levenshtein is two: it picks the few to count)
                for word, distance, _ in process.extract(
                    form, choices, scorer=OSA.distance, score_cutoff=3, limit=None
                ):
                    if distance > 2 and DamerauLevenshtein.distance(form, word, score_cutoff=2) > 2:
                        continue
                    at = min(int(distance), 2)
                    found.extend([(at, t) for t in tokens_of[word]] if tokens_of else [(at, word)])
        found.sort()
        return list(dict.fromkeys(word for _, word in found))[:TWO_EDIT_MATCHES]

    def spelling_matches(self, written: str, pinyin_too: bool = False) -> tuple[tuple[str, str], ...]:
        """Listed words that are another romanisation of a query word as written, with how it was read."""
        frequency = self.document_frequency
        return tuple(
            (t, how)
            for t, how in spelling_variants(written, pinyin_too)
            if t in frequency and not ("e as i" in how and common_english(written))  # ("seven" is no SEVIN)
        )

    def _names_under(
        self, keys: tuple[str, ...], w: float, skipped: list[tuple[int, str, float]]
    ) -> tuple[frozenset[int], list[list[int]]]:
        """Names under any of `keys`, and the sources' name lists (ascending) they are the union of; keys above
        POSTING_CAP go to `skipped` instead. Remembered by keys: a query's common words ("china", "technology",
        "bank") come back in query after query, and the union of their names is most of the look-up."""
        remembered = self._under.get(keys)
        if remembered is None:
            lookup = self._key_lookup
            found: set[int] = set()
            over: list[tuple[int, str]] = []
            for key in keys:
                sources = lookup.get(key)
                if sources is None:
                    continue
                if isinstance(sources, int):  # (a key above the cap: its posting's length)
                    over.append((sources, key))
                    continue
                found.update(sources)
            lists = [self._sources[source] for source in found]
            ids = frozenset(lists[0]) if len(lists) == 1 else frozenset().union(*lists)
            remembered = (ids, lists, tuple(over))
            if self._under_names < NAMES_UNDER_REMEMBERED:
                self._under[keys] = remembered
                self._under_names += len(ids) + 1
        ids, lists, over_cap = remembered
        if over_cap:
            skipped.extend((length, key, w) for length, key in over_cap)
        return ids, lists

    def _source_set(self, source: int) -> frozenset[int]:
        """A source's ascending name list as a set (the names with a query word itself, at most POSTING_CAP),
        remembered up to SOURCE_SETS_REMEMBERED names in all."""
        found = self._source_sets.get(source)
        if found is None:
            found = frozenset(self._sources[source])
            if self._source_set_names < SOURCE_SETS_REMEMBERED:
                self._source_sets[source] = found
                self._source_set_names += len(found) + 1
        return found

    def _forms_written(self, name_id: int, differing_only: bool) -> tuple[tuple[str, str], ...]:
        """`_written_forms` of a listed name (built with the index: they depend on the name alone)."""
        return (self._written_differing if differing_only else self._written_all)[name_id]

    def _candidates(
        self, strong: Sequence[str], weights: Sequence[float], alternatives: Mapping[int, tuple[str, ...]] | None = None
    ) -> list[int]:
        """The CANDIDATES names of the best blocking score, ties to the lower name id (see build).

        A name's blocking score adds, in this order, the weight of each query word with a key of the name (once per
        word), a bonus of EXACT_KEY_BONUS of it where the name has the word itself and the names found could crowd
        those out, and the weights of each adjacent pair of query words written as one word of the name. Most names
        are under one word only and score that word's weight (and bonus): they are ranked as classes, a class's
        lowest ids read from its ascending source lists, and only the few names under two words or more get a
        score of their own, added up in the same order, so the floats and the ranking are those of the sum."""
        skipped: list[tuple[int, str, float]] = []
        # (names, weight, their source lists, the source of the names with the word itself or None, bonus), in the
        # order of the sum.
        terms: list[tuple[frozenset[int], float, list[list[int]], int | None, float]] = []
        for position, (token, w) in enumerate(zip(strong, weights, strict=True)):
            if alternatives and position in alternatives:
                # An abjad token is looked up by the listed words that share its consonants.
                ids, lists = self._names_under(alternatives[position], w, skipped)
                if ids:
                    terms.append((ids, w, lists, None, 0.0))
                continue
            ids, lists = self._names_under(blocking_keys(token), w, skipped)
            if not ids:
                continue
            exact = self._token_source.get(token)
            if exact is not None and len(ids) > CANDIDATES and len(self.postings[token]) <= POSTING_CAP:
                # Only where the names found could crowd the exact ones out of the candidates. (The exact source is
                # one of `lists`: its key, the token, is under the cap.)
                terms.append((ids, w, lists, exact, w * EXACT_KEY_BONUS))
            else:
                terms.append((ids, w, lists, None, 0.0))
        for a, b, wa, wb in zip(strong, strong[1:], weights, weights[1:], strict=False):
            ids, lists = self._names_under((joined(a, b),), wa + wb, [])
            if ids:
                terms.append((ids, wa + wb, lists, None, 0.0))
        if not terms:
            if not skipped:
                return []
            # Only common words in the query: fall back to the rarest of them.
            _, key, _ = min(skipped)
            return sorted(self.postings[key])[:CANDIDATES]
        # Names under two terms or more, with their scores summed term by term as above.
        multi: set[int] = set()
        for x, first in enumerate(terms):
            for second in terms[x + 1 :]:
                multi |= first[0] & second[0]
        summed: dict[int, float] = {}
        if multi:
            for ids, w, _, exact, bonus in terms:
                for name_id in ids & multi:
                    summed[name_id] = summed[name_id] + w if name_id in summed else w
                if exact is not None:
                    for name_id in multi & self._source_set(exact):
                        summed[name_id] += bonus
        # Each score's classes, as functions giving a class's n lowest ids: the summed names of that score, and each
        # term's names under no other term (with the word itself and the bonus, or without).
        classes: dict[float, list[Callable[[int], list[int]]]] = {}
        # (The summed names by score, each score's ascending: sorted by score and id, then taken score by score.)
        for score, group in groupby(sorted(summed.items(), key=_SCORE_THEN_ID), key=_SCORE):
            classes[score] = [functools.partial(_first, [name_id for name_id, _ in group])]
        for _, w, lists, exact, bonus in terms:
            if exact is None:
                classes.setdefault(w, []).append(functools.partial(_lowest, lists, multi))
            else:
                exact_ids = self._sources[exact]
                classes.setdefault(w + bonus, []).append(functools.partial(_lowest, [exact_ids], multi))
                others = [names for names in lists if names is not exact_ids]
                if others:
                    exact_set = self._source_set(exact)
                    classes.setdefault(w, []).append(functools.partial(_lowest_but, others, multi, exact_set))
        # Best score first, the lowest ids of a score first (the classes of one score are disjoint).
        ranked: list[int] = []
        for score in sorted(classes, reverse=True):
            need = CANDIDATES - len(ranked)
            parts = [lowest(need) for lowest in classes[score]]
            ranked.extend(parts[0] if len(parts) == 1 else sorted(chain.from_iterable(parts))[:need])
            if len(ranked) >= CANDIDATES:
                break
        return ranked

    def screen(
        self,
        name: str,
        country: str | None = None,
        address: Address | str | None = None,
        limit: int = 10,
        min_score: float = DEFAULT_MIN_SCORE,
        *,
        date_of_birth: date | str | None = None,
        nationality: str | None = None,
    ) -> list[Hit]:
        """Listed entries resembling `name`, best first, one hit per entry.

        `date_of_birth` and `nationality` (of an individual) raise the score of listed individuals they
        agree with and lower it where they conflict. A name that gives the party's other names ("X (formerly Y)",
        "X d/b/a Y") is screened under each of them too.
        """
        found = self._screen_written(
            name, country, address, limit, min_score, date_of_birth=date_of_birth, nationality=nationality
        )
        declared = _declared_names(name)
        if not declared:
            return found
        best = {hit.entry_id: hit for hit in found}
        for part in declared:
            for hit in self.screen(
                part, country, address, limit, min_score, date_of_birth=date_of_birth, nationality=nationality
            ):
                if hit.entry_id not in best or hit.score > best[hit.entry_id].score:
                    best[hit.entry_id] = replace(hit, reasons=(*hit.reasons, f"'{part}': {_DECLARED_NOTE}"))
        return sorted(best.values(), key=lambda h: (-h.score, h.entry_id))[:limit]

    def _screen_written(
        self,
        name: str,
        country: str | None,
        address: Address | str | None,
        limit: int,
        min_score: float,
        *,
        date_of_birth: date | str | None,
        nationality: str | None,
    ) -> list[Hit]:
        """`screen` of the name as written, without reading other names it declares."""

        def one(written: str, person: PersonInitials | None = None) -> list[Hit]:
            return self._screen(
                written,
                country,
                address,
                limit,
                min_score,
                date_of_birth=date_of_birth,
                nationality=nationality,
                person=person,
            )

        outside = _name_before_brackets(name)
        long_form = _NORTH_KOREA.sub(_LONG_FORM, name) if _NORTH_KOREA.search(name) else None
        untitled = _name_after_titles(name)
        person = person_initials(to_latin(name) if not name.isascii() and script_of(name) == "CYRILLIC" else name)
        korean = None if name.isascii() else _korean_person(name)
        surname_last = _surname_last(name) if person is None and untitled is None else None
        if (
            outside is None
            and long_form is None
            and untitled is None
            and person is None
            and korean is None
            and surname_last is None
        ):
            return self._brand_word(name, country, self._brand_inside(name, one(name), limit), limit)
        # "Syrian Arab Airlines (Syrianair)" and "Syrian Arab Airlines": each entry's best hit.
        found = {hit.entry_id: hit for hit in one(name)}
        if person is not None:
            # "V. V. Putin" read as a person's initials and surname too ("CIMEX, S.A.", "A.S.P. Builders" are firms
            # of that shape: their hits come from the usual reading): listed persons of that surname, their given names
            # compared with the initials.
            # For listed persons this reading is the one that counts: initials that are not a person's given names
            # ("D. E. Rodriguez Gomez" against RODRIGUEZ GOMEZ, Jorge Jesus) take the hit away.
            found = {k: hit for k, hit in found.items() if hit.entry.type != "individual"}
            found.update((hit.entry_id, hit) for hit in one(name, person) if hit.entry.type == "individual")
        for other, note in (
            (outside, _SECOND_NAME_NOTE),
            (long_form, _LONG_FORM_NOTE),
            (untitled, _AFTER_TITLES_NOTE),
            (korean, _KOREAN_PERSON_NOTE),
            (surname_last, _SURNAME_LAST_NOTE),
        ):
            if other is None:
                continue
            for hit in one(other):
                if (other is untitled or other is korean or other is surname_last) and hit.entry.type != "individual":
                    continue  # (a title names a person; so does a Korean name, or one read surname last)
                if hit.entry_id not in found or hit.score > found[hit.entry_id].score:
                    found[hit.entry_id] = replace(hit, reasons=(*hit.reasons, f"'{other}': {note}"))
        hits = self._brand_inside(name, sorted(found.values(), key=lambda h: (-h.score, h.entry_id))[:limit], limit)
        return self._brand_word(name, country, hits, limit)

    def _brand_inside(self, name: str, hits: list[Hit], limit: int) -> list[Hit]:
        """`hits` and, for a listed Chinese brand written inside a longer Chinese name, a possible affiliate.

        A Chinese company's name is its region, its trade name (字号), its trade and its legal form, written without
        spaces; a group's members share the trade name: 华为终端有限公司 (Huawei Device) is 华为 + 终端 (devices), a
        word the lists do not have, joined into one word by the romanisation. A listed short name or brand (the
        enrichment's 华为, 讯飞, 大疆) found after nothing but places, with no trade that the listed party's names lack
        (北京华为餐饮 is a caterer), makes the name a review as a possible member of that party's group.
        """
        if not self._chinese_brands or name.isascii():
            return hits
        runs = _ALL_CHINESE.findall(name)  # (the brands are indexed in simplified and traditional script)
        if not runs:
            return hits
        reviewed = {hit.entry_id for hit in hits if hit.score >= AFFILIATE_SCORE}
        added: dict[str, Hit] = {}
        for run in runs:
            for start in range(len(run) - 2):
                if run[start] not in self._brand_starts:
                    continue
                for size in range(min(self._brand_longest, len(run) - start - 1), 1, -1):
                    brand = run[start : start + size]
                    name_ids = self._chinese_brands.get(brand)
                    if name_ids is None:
                        continue
                    if start and not _only_places_cached(run[:start]):
                        break  # (a trade name comes first, or after the region only)
                    after = simplified(run[start + size :])
                    rest = normalize_name(after)
                    trades = [t for t in rest.strong if t in _trade_words()]
                    trades += [word for chinese, word in _CHINESE_TRADES.items() if chinese in after]
                    for name_id in name_ids:
                        candidate = self.names[name_id]
                        entry = self.entries[candidate.entry]
                        if entry.id in reviewed or entry.id in added:
                            continue
                        other = [t for t in trades if t not in self._party_words[candidate.entry]]
                        if other or not rest.strong:
                            continue  # another trade; or only a legal form, which the name's own match covers
                        added[entry.id] = self._brand_hit(name, brand, run, candidate, entry)
                    break
        if not added:
            return hits
        kept = [hit for hit in hits if hit.entry_id not in added]  # (one hit per entry: the brand's replaces a lower)
        return sorted([*kept, *added.values()], key=lambda h: (-h.score, h.entry_id))[:limit]

    @staticmethod
    def _brand_hit(name: str, brand: str, run: str, candidate: IndexedName, entry: ListEntry) -> Hit:
        detail = (
            f"the listed short name or brand {brand} ('{candidate.name}') is written inside the Chinese name {run}, "
            "after nothing but a place and with no other trade: a Chinese trade name (字号) is registered for one "
            "group, so possibly a member of the listed party's group; establish ownership and control"
        )
        return _affiliate_hit(entry, candidate, "listed brand inside a Chinese name", detail)

    def _brand_word(self, name: str, country: str | None, hits: list[Hit], limit: int) -> list[Hit]:
        """`hits` and, for a listed group's brand written among other words, a possible affiliate.

        A group's members abroad and in other trades carry its brand with words of their own: Lukoil Lubricants
        Europe Oy, Novatek Gas & Power GmbH, Prama Hikvision India, DJI Creative Studio LLC. Their names share too
        little with the listed name to score, so the brand itself is looked for: a word that is the whole of one of
        the names of a party the curated enrichment covers (a group known by its brand), rare in English and in no
        listed individual's name (`_brand_words`). The query must read as a company's (a legal form or a word of
        trade, place or structure) and its other words must say nothing of another party: each a word of trade,
        place or structure, a common English word, or a word no list has, and no listed individual's name. The
        brand with words of trade alone, in another country than the party's, is more likely a namesake there
        ("Novatek Microelectronics", TW), as `_affiliate` holds, unless the brand is a listed group's or the words
        say what a unit does for its group ("Alrosa Finance S.A.", "Severstal Export GmbH"). A brand that is also
        pinyin counts only abroad (`_pinyin_brands`); at home the Chinese-name rules (`_brand_inside`) read it.
        """
        query = normalize_name(name)
        strong = query.strong
        brands = self._brand_words
        if len(strong) < 2 or brands.keys().isdisjoint(strong):
            return hits
        generic, trades, functions = generic_words(), _trade_words(), _function_words()
        query_country = country_code(country) if country else None
        company = (
            any(t in LEGAL_FORMS for t in query.weak)
            or not BRAND_WORD_FORMS.isdisjoint(strong)
            or not ENTERPRISE_WORDS.isdisjoint(strong)
        )
        reviewed = {hit.entry_id for hit in hits if hit.score >= AFFILIATE_SCORE}
        added: dict[str, Hit] = {}
        for position, token in enumerate(strong):
            name_ids = brands.get(token)
            if name_ids is None or query.abjad[position]:
                continue
            if token in self._pinyin_brands and (query_country is None or query_country in _SAME_PLACE["CN"]):
                continue
            if token in self._acronym_brands and not _first_in_capitals(query, position):
                continue
            others = [k for k, other in enumerate(strong) if other != token and other not in BRAND_WORD_FORMS]
            if not others or not (company or any(strong[k] in generic for k in others)):
                continue
            if not all(self._says_no_other_party(query, k, generic) for k in others):
                continue
            # (Words of what a unit does for its group, "Finance", "Export", are no other trade.)
            trade_only = all(strong[k] in trades for k in others) and not all(strong[k] in functions for k in others)
            group = self._parties_with.get(token, 0) >= GROUP_BRAND_PARTIES
            for name_id in name_ids:
                candidate = self.names[name_id]
                entry = self.entries[candidate.entry]
                if trade_only and not group and _elsewhere(query_country, entry):
                    continue
                if token in self._listed_acronyms and (query_country is None or _elsewhere(query_country, entry)):
                    continue
                if entry.id not in reviewed and entry.id not in added:
                    added[entry.id] = self._brand_word_hit(query, position, others, candidate, entry)
        if not added:
            return hits
        kept = [hit for hit in hits if hit.entry_id not in added]  # (one hit per entry: the brand's replaces a lower)
        return sorted([*kept, *added.values()], key=lambda h: (-h.score, h.entry_id))[:limit]

    def _says_no_other_party(self, query: NormalizedName, k: int, generic: frozenset[str]) -> bool:
        """Whether query word `k` is one an affiliate adds to its group's brand: a word of trade, place or
        structure, a common English word, or a word no list has; not a listed individual's name, nor another
        listed party's rare word, nor a word in an abjad (read by its consonants, it fits too many)."""
        token = query.strong[k]
        if token in generic:
            return True
        if query.abjad[k] or token in self._people_words:
            return False
        return token not in self.document_frequency or common_english(query.shown(k), OTHER_WORD_ZIPF)

    @staticmethod
    def _brand_word_hit(
        query: NormalizedName, position: int, others: list[int], candidate: IndexedName, entry: ListEntry
    ) -> Hit:
        brand = query.shown(position)
        words = ", ".join(query.shown(k) for k in others)
        detail = (
            f"possible affiliate: the query has {brand}, the brand the listed party is known by ('{candidate.name}'), "
            f"a word rare in English and in the lists, with only words of trade, place or structure, common words or "
            f"words no list has ({words}); a group's members carry its brand: establish ownership and control"
        )
        return _affiliate_hit(entry, candidate, "listed brand among other words", detail)

    def _screen(
        self,
        name: str,
        country: str | None = None,
        address: Address | str | None = None,
        limit: int = 10,
        min_score: float = DEFAULT_MIN_SCORE,
        *,
        date_of_birth: date | str | None = None,
        nationality: str | None = None,
        person: PersonInitials | None = None,
    ) -> list[Hit]:
        """`screen` of one name; of `person`'s surname, with its initials, where given."""
        if person is not None:
            # "V. V. Putin": the surname is the name to look up; the initials are compared with the given names of the
            # listed persons found (`_initials_feature`), not read as an acronym "vv" that no list has.
            alone = normalize_name(person.surname)
            query = replace(
                alone,
                original=name,
                initials=person.letters,
                notes=(*alone.notes, f"initials of given names: {'. '.join(person.letters).upper()}."),
            )
        else:
            # "Myanmar Economic Corporation (MEC)": the name's own acronym in brackets adds nothing to the name, and as
            # a word the lists do not have in that name it would count against it.
            query = normalize_name(
                " ".join(_BRACKETED_WORD.sub(" ", name).split()) if _bracketed_acronyms(name) else name
            )
            query = self._common_words_righted(query)
        if not query.strong:
            return []
        q_weights = [self.weight(t) for t in query.strong]
        alternatives: dict[int, tuple[str, ...]] = {}
        extra: dict[str, list[tuple[int, float]]] = {}
        spelt: dict[str, str] = {}  # listed word -> how a query word was read to spell it
        generic = generic_words()
        for position, is_abjad in enumerate(query.abjad):
            if is_abjad:
                key = skeleton(query.strong[position])
                found = self.skeleton_matches(query.strong[position])
                if found:
                    alternatives[position] = found
                    q_weights[position] = min(self.weight(t) for t in found)
                    # Two consonants ("dywr": d, r) fit dozens of words: a hint, not a match on its own, unless
                    # the word is a common one ("ayran": Iran).
                    short = len(key) <= 2
                    for token in found:
                        similarity = SHORT_SKELETON if short and token not in generic else SKELETON_SIMILARITY
                        extra.setdefault(token, []).append((position, similarity))
                elif len(key) == 1 and key in self._one_consonant:
                    # (Its weight stays that of an unseen word: a name without such a word is no nearer than before.)
                    for token in self._one_consonant[key]:
                        extra.setdefault(token, []).append((position, SHORT_SKELETON))
                pairs = self._pair_skeletons.get(key, ())
                if pairs:
                    # Two listed words written as one (امیرعلی, AMIR ALI): found under the pair's blocking key, scored
                    # as the pair (`compare`, `QueryScorer`).
                    alternatives[position] = (*alternatives.get(position, ()), *pairs)
                    for pair in pairs:
                        extra.setdefault(pair, []).append((position, SKELETON_SIMILARITY))
            elif query.strong[position] not in generic:
                # Other romanisations of a query word may be what the lists write ("Rostex", "Iurii").
                shown = query.shown(position)
                variants = self.spelling_matches(shown)
                if not variants and is_pinyin(shown) and _not_chinese_name(query, position, generic):
                    # A word that is also pinyin ("Juri": ju + ri) in a name that is no Chinese one ("Kowaltschuk"
                    # is no pinyin): German and French spellings of Russian are tried on it as on any other word.
                    variants = self.spelling_matches(shown, pinyin_too=True)
                if variants:
                    token = query.strong[position]
                    alternatives[position] = (*blocking_keys(token), *(t for t, _ in variants))
                    q_weights[position] = min(q_weights[position], *(self.weight(t) for t, _ in variants))
                    for listed_token, how in variants:
                        extra.setdefault(listed_token, []).append((position, SPELLING_SIMILARITY))
                        spelt[listed_token] = how
        for position in range(len(query.strong) - 1):
            first, second = query.strong[position], query.strong[position + 1]
            if (
                query.abjad[position]
                and query.abjad[position + 1]
                and ("al" not in (first, second) or first == "bd")
                and len(skeleton(first + second)) >= 3  # (two consonants fit too many words: ly + dyy, "lady")
            ):
                # Two words of an abjad that the lists write as one: Persian writes the parts of a compound apart
                # or with a zero-width non-joiner (حاجی‌زاده, HAJIZADEH; عبد الله, ABDALLAH). Not the article, split
                # off because the lists write it apart, but after عبد, which the lists join with it (عبد الملك is
                # ABDUL MALIK, ABDEL MALIK).
                both = self.skeleton_matches(first + second)
                if both:
                    for at in (position, position + 1):
                        alternatives[at] = (*alternatives.get(at, ()), *both)
                        for token in both:
                            extra.setdefault(token, []).append((at, SKELETON_SIMILARITY))
        # Words whose canonical form is not as written ("Fangwie": "fangvie", "Rooboroneksport": "roboroneksport"):
        # a typo and a fold together can be two edits where the typo alone was one. Such a word is also compared as
        # written with the candidates' words as written, and found by its written form too (the listed word less the
        # letter the typo dropped).
        # A word written as its canonical form, that no list has, is compared as written too: it may be a typo of a
        # listed word whose canonical form is not as written ("Megvil" for Megvii, "megvy"), which the index also
        # keeps under its written form's keys (`written_forms`).
        written: dict[int, str] = {}
        plain: dict[int, str] = {}  # (written as its canonical form: compared with the listed written forms only)
        for position, token in enumerate(query.strong):
            shown = query.shown(position)
            if (
                not query.abjad[position]
                and len(shown) >= TYPO_WRITTEN_FROM
                and shown.isalpha()
                and shown.isascii()
                and token not in generic
                and token not in self.document_frequency  # (a listed word as it is: no typo to look for)
            ):
                if shown == token:
                    plain[position] = shown
                    continue
                written[position] = shown
                alternatives[position] = (*alternatives.get(position, blocking_keys(token)), *blocking_keys(shown))
        places = place_tokens()
        for position, token in enumerate(query.strong):
            if (
                len(token) >= TYPO_TWO_EDITS_FROM
                and not query.abjad[position]
                and token.isascii()
                and token.isalpha()
                and token not in generic
                and token not in places
                and token not in self.document_frequency
                and not _misspelt_common_word(token)
            ):
                shown = query.shown(position)
                close = self.two_edit_matches(token, shown if shown.isascii() and shown.isalpha() else None)
                if close and not common_english(token, 0.01):  # (wordfreq's look-up is the dearer: it comes second)
                    alternatives[position] = (*alternatives.get(position, blocking_keys(token)), *close)
                    q_weights[position] = min(q_weights[position], *(self.weight(t) for t in close))
                    for listed_token in close:
                        extra.setdefault(listed_token, []).append((position, TOKEN_SIMILARITY))
        organisation = False
        organised = ORGANISATION_WORDS.intersection(query.strong)
        if len(query.strong) >= 2 and organised:
            others = [
                query.shown(i)  # (as written: the canonical form folds "really" to "realy")
                for i, t in enumerate(query.strong)
                if t not in ORGANISATION_WORDS and t not in generic_words() and len(t) >= 3
            ]
            if others and not any(common_english(t, EVERYDAY_WORD_ZIPF) for t in others):
                # (After the skeleton matches: حركة, hrkh, would otherwise weigh as the listed HARAKAT.) Such a query
                # names an organisation, not a person: listed individuals are no hits of it (حركة النهضة is no NIHADH).
                organisation = True
                q_weights = [
                    ORGANISATION_WORD_WEIGHT if t in ORGANISATION_WORDS else w
                    for t, w in zip(query.strong, q_weights, strict=True)
                ]
        names = self.names
        best: dict[int, tuple[float, IndexedName]] = {}
        candidate_ids = self._candidates(query.strong, q_weights, alternatives)
        if self._owned_words:
            # A known subsidiary whose own words are not all in the query can be neither its whole name nor the
            # affiliate pattern: left out before scoring.
            words = {*query.strong, *extra, *(joined(a, b) for a, b in pairwise(query.strong))}
            owned_words = self._owned_words
            candidate_ids = [i for i in candidate_ids if i not in owned_words or owned_words[i] <= words]
        candidates = [names[name_id] for name_id in candidate_ids]
        if written:
            forms = self._written_all
            _written_similarities(written, [forms[name_id] for name_id in candidate_ids], extra)
        if plain:
            forms = self._written_differing
            _written_similarities(plain, [forms[name_id] for name_id in candidate_ids], extra)
        scorer = QueryScorer(query.strong, q_weights, extra)
        scorer.prepare(set().union(*[candidate.norm.strong for candidate in candidates]))  # (one call: 1.5× faster)
        scores = scorer.score_all(candidates)
        counted: dict[int, float] = {}  # (each entry's best score as it counts: `_counted`)
        # Each entry's best-scoring known subsidiary, looked at apart: it is a hit only as a whole name or an affiliate
        # pattern, and must not hide a hit on the entry's own names that scores less.
        owned: dict[int, tuple[float, IndexedName]] = {}
        for candidate, score in zip(candidates, scores, strict=True):
            position = candidate.entry
            if candidate.kind == KNOWN_SUBSIDIARY:
                if position not in owned or score > owned[position][0]:
                    owned[position] = (score, candidate)
                continue
            as_counted = min(score, WEAK_ALIAS_SCORE) if candidate.kind == WEAK_ALIAS else score
            if position not in counted or as_counted > counted[position]:
                best[position] = (score, candidate)
                counted[position] = as_counted
        # An acronym of a listed name ("RDIF"): the entry is looked at through that name, whatever else matched.
        acronym_of: dict[int, IndexedName] = {}
        acronym = _acronym_written(query)
        query_country = country_code(country) if country else None
        if acronym is not None:
            for name_id in self._acronyms.get(acronym, ()):
                candidate = names[name_id]
                if query_country and _placeless_three_letters(acronym, self.entries[candidate.entry]):
                    continue
                current = best.get(candidate.entry)
                if current is None or current[0] < ACRONYM_SCORE:
                    score = scorer.score(candidate.norm.strong, candidate.weights, candidate.total, candidate.joined)
                    best[candidate.entry] = (score, candidate)
                    acronym_of[candidate.entry] = candidate
        cities = _cities(address)
        # Scores, adjustments and the cut first; the token-by-token explanation only for the hits returned.
        passed: list[tuple[float, ListEntry, IndexedName, bool | None, list[Feature], bool, bool | None, _Aligned]] = []
        # Only a query with a word of place or structure can be an affiliate's name.
        may_be_affiliate = not affiliate_words().isdisjoint(query.strong)
        # ... or, with a word of trade, a brand listed alone ("Huawei Device"): every listed word in the query.
        may_add_trade = not generic.isdisjoint(query.strong)
        lowest = min(
            min_score - COUNTRY_BONUS - CITY_BONUS - BIRTH_DATE_AGREES - NATIONALITY_AGREES, AFFILIATE_CHECK_FROM
        )
        # The query's words, joined pairs and skeleton matches: a listed word outside them is not in the query.
        present = {*query.strong, *extra, *(joined(a, b) for a, b in pairwise(query.strong))}
        # The query's one abjad word where every other word is a common one ("هواپیمایی کیش": airlines + k-sh).
        one_abjad = _one_abjad_word(query, generic)
        typos: dict[tuple[int, str, str], bool] = {}
        in_range: dict[int, list[tuple[float, IndexedName]]] | None = None  # (built when first needed)
        # A party's name of two words that the query writes with one word's neighbouring letters swapped ("Bank
        # Smaan", SAMAN BANK) scores too low for a typo to be looked for, and need not be its best-scoring name.
        swaps: dict[int, tuple[float, IndexedName]] = {}
        if len(query.strong) == 2:
            two = query.strong
            two_words = self._two_word_names  # (a person's name is not among them: too many alike)
            for name_id, other, other_score in zip(candidate_ids, candidates, scores, strict=True):
                if (
                    name_id in two_words
                    # (one word of each name the other lacks, the other shared: as `_two_words_one_swapped` asks)
                    and (other.norm.strong[0] in two) != (other.norm.strong[1] in two)
                    and _two_words_one_swapped(query, other)
                ):
                    swaps.setdefault(other.entry, (other_score, other))
        for position, (name_score, candidate) in chain(best.items(), owned.items()):
            subsidiary = candidate.kind == KNOWN_SUBSIDIARY
            if subsidiary and (
                name_score < AFFILIATE_CHECK_FROM
                or (name_score < SUBSIDIARY_MATCH_FROM and not (may_be_affiliate or may_add_trade))
            ):
                continue  # (neither the whole name nor an affiliate pattern can come of it)
            by_acronym = position in acronym_of and not subsidiary
            swapped = swaps.get(position) if swaps and not subsidiary else None
            if swapped is not None and name_score < TYPO_CONTEXT_FROM:
                name_score, candidate = swapped
            if (
                name_score < lowest
                and not by_acronym
                and swapped is None
                and (name_score < TYPO_WHOLE_NAME_FROM or len(candidate.norm.strong) < 3)
            ):
                continue  # (below the cut, only a misspelt word among a whole listed name's other words could help)
            align = _Aligned(query, q_weights, candidate, extra, scorer)
            first_score = name_score
            typo = None
            # (A subsidiary is matched whole or by the affiliate pattern, as written: no typo is looked for in it.)
            if (
                not (by_acronym or subsidiary)
                and (name_score >= TYPO_WHOLE_NAME_FROM or swapped)
                and name_score < TYPO_CONTEXT_BELOW
            ):
                whole_only = name_score < TYPO_CONTEXT_FROM
                typo = self._typo_in_context(query, q_weights, candidate, align, extra, scorer, whole_only, typos)
                if typo is None and not whole_only:  # (the others score no more than this one)
                    # A typo is of one of the entry's names ("Kim Yo Jobg" of the alias KIM, Yo Jong), which need
                    # not be its best-scoring name before the typo is read (KIM, Yo'-cho'ng ties with it): the entry's
                    # other names from TYPO_CONTEXT_FROM, best first, with a word that the query and that name both
                    # lack, a typo apart from a query word (`_other_typo_names`).
                    if in_range is None:
                        in_range = {}
                        for other, other_score in zip(candidates, scores, strict=True):
                            if TYPO_CONTEXT_FROM <= other_score < TYPO_CONTEXT_BELOW and other.kind != KNOWN_SUBSIDIARY:
                                in_range.setdefault(other.entry, []).append((other_score, other))
                    entry_range = in_range.get(position, ())
                    other_names = self._other_typo_names(query, candidate, entry_range) if len(entry_range) > 1 else []
                    for other_score, other in other_names:
                        other_align = _Aligned(query, q_weights, other, extra, scorer)
                        typo = self._typo_in_context(query, q_weights, other, other_align, extra, scorer, False, typos)
                        if typo is not None and typo[0] > name_score:
                            candidate, first_score = other, other_score
                            break
                        typo = None
                if typo is not None:
                    name_score, typo_extra, _ = typo
                    align = _Aligned(query, q_weights, candidate, typo_extra, scorer)
            if name_score < lowest and not by_acronym:
                continue
            entry = self.entries[position]
            individual = entry.type == "individual"
            if individual and organisation and organised.isdisjoint(candidate.norm.strong):
                continue  # (unless the word is one of the person's names: جمعه, Juma, reads as جماعة, jmh)
            usual = None
            if individual and BRAND_ALONE_FROM <= name_score < USUAL_NAME_SCORE and len(query.strong) >= 2:
                usual = _usual_name(candidate, align(), _two_surnames(query_country, entry))
            # The most the adjustments could add: below the cut even then, nothing more to look at.
            # (max(name_score, 0.0) is name_score: scores are not negative)
            upper = (max(name_score, ACRONYM_SCORE) if by_acronym else name_score) + COUNTRY_BONUS + CITY_BONUS
            if individual:
                upper = max(upper, USUAL_NAME_SCORE + COUNTRY_BONUS if usual else 0.0)
                upper += BIRTH_DATE_AGREES + NATIONALITY_AGREES
                if query.initials:
                    upper = max(upper, INITIALS_AGREE_UP_TO + COUNTRY_BONUS)
            elif (may_be_affiliate or may_add_trade) and name_score >= AFFILIATE_CHECK_FROM:
                upper = max(upper, AFFILIATE_SCORE + COUNTRY_BONUS + CITY_BONUS)
            elif name_score >= BRAND_ALONE_FROM:
                upper = max(upper, BRAND_ALONE_SCORE + COUNTRY_BONUS + CITY_BONUS)
            if upper < min_score:
                continue
            features = [Feature("name similarity", first_score, f"'{name}' against '{candidate.name}'")]
            if typo is not None:
                features.append(Feature("typo in context", name_score - first_score, typo[2]))
            if usual is not None:
                features.append(Feature("surname and first name", USUAL_NAME_SCORE - name_score, usual))
            if individual and query.initials:
                features.append(_initials_feature(query, candidate, name_score, self._rare_surname(query)))
            if candidate.kind == WEAK_ALIAS:
                cap = WEAK_ALIAS_ELSEWHERE if _elsewhere(query_country, entry) else WEAK_ALIAS_SCORE
                if name_score > cap:
                    features.append(
                        Feature(
                            "weak alias",
                            cap - name_score,
                            f"matched '{candidate.name}', a weak alias (a.k.a. in the list's remarks): a review at "
                            "most, in the party's country or where none is given",
                        )
                    )
            affiliate = False
            if by_acronym:
                features.append(
                    Feature(
                        "acronym",
                        ACRONYM_SCORE - name_score,
                        f"'{acronym}' is written in capitals like an acronym and is the initials of "
                        f"'{candidate.name}': possibly that party's short name",
                    )
                )
            elif one_abjad is not None and align().query_cover[one_abjad] < 1.0:
                features.append(
                    Feature(
                        "one abjad word",
                        ONE_ABJAD_WORD,
                        f"one word written without vowels ({query.shown(one_abjad)}), matched by its consonants only: "
                        "they fit many names",
                    )
                )
            if (
                not (individual or by_acronym)
                and AFFILIATE_CHECK_FROM <= name_score < 100.0
                and (
                    may_be_affiliate
                    or (
                        may_add_trade
                        and all(_present(candidate.norm.strong, j, present) for j in range(len(candidate.norm.strong)))
                    )
                )
            ):
                pattern = self._affiliate(query, candidate, align, present, _elsewhere(query_country, entry))
                if pattern:
                    affiliate = True
                    features.append(Feature("affiliate pattern", max(0.0, AFFILIATE_SCORE - name_score), pattern))
            owned_by = None
            if candidate.kind == KNOWN_SUBSIDIARY:
                if not (affiliate or _whole_name(candidate, name_score, align())):
                    continue  # (a weaker match on a subsidiary's name says nothing of the listed party)
                affiliate = True
                owned_by = _owned_by(entry, candidate)
            if (
                not (affiliate or by_acronym or individual)
                and BRAND_ALONE_FROM <= name_score < BRAND_ALONE_SCORE
                and (brand := self._brand_alone(query, candidate, align, present))
            ):
                features.append(
                    Feature(
                        "the listed name's own word",
                        BRAND_ALONE_SCORE - name_score,
                        f"the query is the listed name's own word ({brand}) without its place and common words "
                        f"({', '.join(_uncovered(candidate, align()))}): the name the party is known by",
                    )
                )
            if (
                not (affiliate or by_acronym)
                and name_score < 100.0
                and generic.issuperset(candidate.norm.strong)
                and self._partial(query, candidate, align)
            ):
                features.append(
                    Feature("common words only", COMMON_WORDS_ONLY, "the listed name is made only of common words")
                )
            if (
                not (affiliate or by_acronym)
                and name_score < 100.0
                and sum(map(len, candidate.norm.strong)) <= SHORT_NAME_LETTERS
                and self._adds_distinctive(query, candidate, align)
            ):
                features.append(
                    Feature(
                        "short listed name",
                        SHORT_NAME,
                        f"'{candidate.name}' is an abbreviation of {SHORT_NAME_LETTERS} letters or fewer and the "
                        "query has a distinctive word besides it: more likely a name that contains these letters",
                    )
                )
            elif not (affiliate or by_acronym) and name_score < COUNTRY_DIFFERS_BELOW:
                trades = self._other_trades(query, candidate, align)
                if trades:
                    features.append(
                        Feature(
                            "another trade",
                            OTHER_TRADE,
                            f"each name has a word of trade the other lacks ({trades[0]} / {trades[1]}): "
                            "more likely two businesses sharing a word",
                        )
                    )
            agrees: bool | None = None
            if query_country and entry.countries:
                agrees = query_country in entry.countries
                if agrees:
                    features.append(Feature("same country", COUNTRY_BONUS, f"same country: {query_country}"))
                else:
                    listed = ", ".join(entry.countries)
                    near = not _SAME_PLACE.get(query_country, frozenset()).isdisjoint(entry.countries)
                    near = near or query_country in _programme_countries(entry)
                    unit = None
                    if not (affiliate or individual or by_acronym or near) and name_score < COUNTRY_DIFFERS_BELOW:
                        unit = self._brand_unit_abroad(query, candidate, entry, align, present)
                    if unit is not None:
                        affiliate = True
                        features.append(
                            Feature(
                                "brand's unit abroad",
                                0.0,
                                f"the listed brand {unit} spelt as listed, with a legal form and only a word of what "
                                f"a unit does ({', '.join(_uncovered_query(query, align()))}), in another country "
                                f"({query_country}, listed {listed}): possibly the listed party's subsidiary there; "
                                "establish ownership and control",
                            )
                        )
                    elif (
                        affiliate
                        or individual
                        or near
                        or name_score >= COUNTRY_DIFFERS_BELOW
                        or (self._adds_place(query, candidate, align) and not _common_english_name(candidate))
                    ):
                        features.append(
                            Feature("different country", 0.0, f"different country: {query_country}, listed {listed}")
                        )
                    else:
                        features.append(
                            Feature(
                                "different country",
                                COUNTRY_DIFFERS,
                                f"different country: {query_country}, listed {listed}; a similar name, not the "
                                "listed one, elsewhere is more likely another party",
                            )
                        )
                    # The listed name once legal forms are set aside, but not as listed, and made of common words.
                    common: tuple[str, ...] = ()
                    listed_name_elsewhere = (
                        name_score >= COUNTRY_DIFFERS_BELOW
                        and not (affiliate or individual or near)
                        and not self._adds_place(query, candidate, align)
                    )
                    if listed_name_elsewhere:
                        common = _common_words_only(query, candidate, align())
                    if (
                        listed_name_elsewhere
                        and not common
                        and entry.list not in BLOCKING_LISTS
                        and _letters(query.original) != _letters(candidate.name)
                    ):
                        if _incorporated_brand(query, candidate):
                            features.append(
                                Feature(
                                    "brand incorporated elsewhere",
                                    0.0,
                                    f"the listed name '{candidate.name}' with a legal form of its own added, in "
                                    f"another country ({query_country}): possibly the listed party's subsidiary "
                                    "there; establish who owns it",
                                )
                            )
                        else:
                            features.append(
                                Feature(
                                    "restricted name elsewhere",
                                    RESTRICTED_NAME_ELSEWHERE,
                                    f"the listed name, not written as listed, in another country ({query_country}, "
                                    f"listed {listed}), on a list that restricts dealings ({entry.list}) rather than "
                                    "blocks: more likely another firm of that name",
                                )
                            )
                    if (
                        listed_name_elsewhere
                        and not common
                        and entry.list in BLOCKING_LISTS  # (elsewhere, the restricted lists' own rule above)
                        and _abbreviation_as_listed(query, candidate)
                    ):
                        features.append(
                            Feature(
                                "acronym elsewhere",
                                ACRONYM_ELSEWHERE,
                                f"the listed name '{candidate.name}' is an abbreviation of "
                                f"{ACRONYM_ELSEWHERE_LETTERS} letters or fewer and the listed party is in another "
                                f"country ({query_country}, listed {listed}): more likely another body of those "
                                "initials",
                            )
                        )
                    if common:
                        features.append(
                            Feature(
                                "common name elsewhere",
                                COMMON_NAME_ELSEWHERE,
                                f"the name's own words ({', '.join(common)}) are common English words or surnames "
                                f"(wordfreq Zipf ≥ {COMMON_NAME_ZIPF:g}), not written as listed, and the listed party "
                                "is in another country: more likely one of the many businesses of that name",
                            )
                        )
            if cities:
                shared = cities & {fold(a.city) for a in entry.addresses if a.city}
                if shared:
                    features.append(Feature("same city", CITY_BONUS, f"same city: {', '.join(sorted(shared))}"))
            identifiers: bool | None = None
            if individual:
                features.extend(_identity(entry, date_of_birth, nationality))
                verdicts = [f.points > 0 for f in features if f.name.startswith(("date of birth", "nationality"))]
                identifiers = (False not in verdicts) if verdicts else None
            total = sum([f.points for f in features])  # (a list: the same additions in the same order)
            if owned_by is not None:
                # Not the listed party's name: a review as its possible affiliate, whatever else agrees.
                features.append(Feature("known subsidiary", AFFILIATE_SCORE - total, owned_by))
                total = AFFILIATE_SCORE
            if total > ONE_INITIAL_SCORE and any(f.name == "one initial agrees" for f in features):
                features.append(
                    Feature("one initial", ONE_INITIAL_SCORE - total, "one initial and a surname: a review at most")
                )
                total = ONE_INITIAL_SCORE
            if total > 100.0 or total < 0.0:
                # Scores stop at 100 (and 0); the bound is a feature too, so the features add up to the score.
                bound = 100.0 if total > 100.0 else 0.0
                features.append(Feature("score bound", bound - total, f"scores stop at {bound:.0f}"))
            score = max(0.0, min(100.0, total))
            if score < min_score:
                continue
            passed.append((round(score, 2), entry, candidate, agrees, features, affiliate, identifiers, align))
        # At equal scores, a hit on the entry's own name before one on a subsidiary's or on a name it has from another
        # list.
        passed.sort(
            key=lambda p: (-p[0], p[2].kind == KNOWN_SUBSIDIARY, p[2].kind.startswith(SAME_PARTY_KIND), p[1].id)
        )
        if owned:
            first_hit: dict[str, int] = {}  # (one hit per entry: its own name's or its subsidiary's, the higher)
            for k, p in enumerate(passed):
                first_hit.setdefault(p[1].id, k)
            passed = [passed[k] for k in sorted(first_hit.values())]
        hits: list[Hit] = []
        for score, entry, candidate, agrees, features, affiliate, identifiers, align in passed[:limit]:
            result = align()
            context = [f.detail for f in features if f.name != "name similarity"]
            if spelt:
                context.extend(
                    f"spelling variant: {spelt[t]}" for t in dict.fromkeys(candidate.norm.strong) if t in spelt
                )
            if candidate.kind.startswith(SAME_PARTY_KIND):
                context.append(f"matched a {candidate.kind}, which also lists this entry's name")
            if candidate.enrichment is not None and candidate.kind != KNOWN_SUBSIDIARY:
                source = candidate.enrichment.source_url or candidate.enrichment.source_note or "no source given"
                context.append(f"matched an enrichment alias ({candidate.enrichment.kind}), source: {source}")
            hits.append(
                Hit(
                    entry_id=entry.id,
                    list=entry.list,
                    name=entry.name,
                    matched_name=candidate.name,
                    score=score,
                    reasons=(*explain(query, candidate.norm, result), *context),
                    entry=entry,
                    country_agrees=agrees,
                    matched_kind=candidate.kind,
                    enrichment=candidate.enrichment,
                    features=tuple(features),
                    affiliate=affiliate,
                    identifiers_agree=identifiers,
                )
            )
        return hits

    def _common_words_righted(self, query: NormalizedName) -> NormalizedName:
        """`query` with its misspelt legal-form and common words written right (COMMON_WORD_TYPO_LETTERS), if any."""
        if not query.original.isascii() or not query.display:
            return query
        frequency = self.document_frequency
        righted: dict[str, str] = {}
        for position, token in enumerate(query.strong):
            shown = query.display[position]
            if (
                (token in frequency and token == shown)  # (a listed word; "tsock" folds to a listed "kok")
                or len(shown) < COMMON_WORD_TYPO_LETTERS
                or not shown.isalpha()
                or (query.abjad and query.abjad[position])
            ):
                continue
            word = _common_word_typo(shown)
            if word is not None and not common_english(shown, COMMON_WORD_TYPO_ZIPF):
                righted[shown] = word
        if not righted:
            return query
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, righted)) + r")\b", re.IGNORECASE)
        text = pattern.sub(lambda m: righted[m.group().lower()], query.original)
        fixed = normalize_name(text)
        if not fixed.strong:
            return query
        notes = ", ".join(f"'{a}' as '{b}'" for a, b in righted.items())
        return replace(fixed, original=query.original, notes=(*fixed.notes, f"{_COMMON_WORD_TYPO_NOTE}: {notes}"))

    @staticmethod
    def _typo_in_context(
        query: NormalizedName,
        q_weights: Sequence[float],
        candidate: IndexedName,
        align: Callable[[], NameScore],
        extra: Mapping[str, Sequence[tuple[int, float]]],
        scorer: QueryScorer,
        whole_only: bool = False,
        typos: dict[tuple[int, str, str], bool] | None = None,
    ) -> tuple[float, dict[str, list[tuple[int, float]]], str] | None:
        """The name score with the query's unmatched words read as typos of the listed name's unmatched words,
        the similarities that say so and the feature's words; None where no word is a typo in context.
        `whole_only`: only where every other word of the listed name is there. `typos`: the answers of `misspelt`
        for this query so far, by query position and listed word (candidates share words)."""
        listed = candidate.norm.strong
        known = {} if typos is None else typos
        query_written = query.display or query.strong  # (`shown`)
        listed_written = candidate.norm.display or listed

        def misspelt(i: int, j: int) -> bool:  # query word i a typo of listed word j, as written or canonical
            key = (i, listed_written[j], listed[j])
            found = known.get(key)
            if found is None:
                written = query_written[i]
                found = known[key] = (
                    typo_apart(written, key[1])
                    or typo_apart(query.strong[i], listed[j])
                    or (typo_inside(query.strong[i], listed[j]) and not _english_word(written))
                    # Two slips, a swap beside a letter dropped or added among them ("Abramcnhko", "Elemtn"), as
                    # written or canonical; not in a word wordfreq's English list has, which is written as meant.
                    or (
                        (
                            two_slips(written, key[1])
                            or (
                                (written != query.strong[i] or key[1] != listed[j])
                                and two_slips(query.strong[i], listed[j])
                            )
                        )
                        and not _english_word(written)
                    )
                    # A listed plural written in the singular, and misspelt ("Missle" for MISSILES): the lists' -es
                    # plurals are not singular in the canonical form (names end so), so the s is dropped here.
                    or (
                        _plural(key[1])
                        and not written.endswith("s")
                        and typo_apart(written, key[1][:-1])
                        and not common_english(written.casefold(), PLURAL_TYPO_ZIPF)
                    )
                )
            return found

        # Cheap first: a word of each name that the other lacks, a typo apart (most candidates have none).
        own, theirs = set(query.strong), set(listed)
        missing = [j for j, b in enumerate(listed) if b not in own]
        if not missing:
            return None
        # A name of two words, one as listed and the other with two neighbouring letters swapped ("Bank Sepha"): the
        # letters are all there, which a changed letter ("Bank Sepal") does not say.
        # (checked only where it decides: most candidates are no two-word name)
        swap = len(listed) == 2 and len(missing) == 1 and _two_words_one_swapped(query, candidate, missing)
        if whole_only and (len(missing) != 1 or (len(listed) < 3 and not swap)):
            return None
        typo_found = False
        for i, a in enumerate(query.strong):
            if a not in theirs:
                for j in missing:
                    if misspelt(i, j):
                        typo_found = True
                        break
                if typo_found:
                    break
        if not typo_found:
            return None
        result = align()
        loose_q = [i for i, cover in enumerate(result.query_cover) if cover == 0.0]
        loose_l = [j for j, cover in enumerate(result.listed_cover) if cover == 0.0]
        if not loose_q or not loose_l:
            return None
        generic = generic_words()
        context = sum(
            w
            for t, w, cover in zip(listed, candidate.weights, result.listed_cover, strict=True)
            if cover >= SKELETON_SIMILARITY and t not in generic
        )
        whole = len(loose_l) == 1 and len(listed) >= 3
        swap = swap and len(loose_l) == 1 and len(loose_q) == 1
        if not (whole or swap) and (whole_only or context < TYPO_CONTEXT_MIN_WEIGHT):
            return None
        places = place_tokens()
        pairs: list[tuple[int, int]] = []
        for i in loose_q:
            a = query.strong[i]
            for j in loose_l:
                b = listed[j]
                if any(j == k for _, k in pairs) or (a in places and b not in places):
                    continue  # (a place of the query is that place, not a misspelt listed word)
                if misspelt(i, j):
                    pairs.append((i, j))
                    break
        if not pairs:
            return None
        merged = {token: list(found) for token, found in extra.items()}
        for i, j in pairs:
            merged.setdefault(listed[j], []).append((i, TOKEN_SIMILARITY))
        rescored = compare(
            query.strong,
            q_weights,
            listed,
            candidate.weights,
            merged,
            query.display,
            scorer.similarities,
            candidate.joined,
        )
        words = ", ".join(f"{query.shown(i)}≈{candidate.norm.shown(j)}" for i, j in pairs)
        detail = f"typo in context: {words}, the listed name's other words as listed"
        return rescored.score, merged, detail

    @staticmethod
    def _other_typo_names(
        query: NormalizedName, best: IndexedName, in_range: Sequence[tuple[float, IndexedName]]
    ) -> list[tuple[float, IndexedName]]:
        """The entry's other candidate names of `in_range` (its names scoring from TYPO_CONTEXT_FROM to below
        TYPO_CONTEXT_BELOW), best first, with a word that neither the query nor `best` has and that is a typo apart
        from a query word the name lacks (the words `best` shares were looked at with it)."""
        had = {*query.strong, *best.norm.strong}
        found: list[tuple[float, IndexedName]] = []
        for score, other in in_range:
            if other is best:
                continue
            new = [j for j, word in enumerate(other.norm.strong) if word not in had]
            # As written too, as `_typo_in_context` compares them: the canonical form of a plural can turn one typo
            # into three ("Technologeis" is a swap from "Technologies", not a typo of "technology").
            if new and any(
                typo_apart(a, other.norm.strong[j]) or typo_apart(query.shown(i), other.norm.shown(j))
                for i, a in enumerate(query.strong)
                if a not in other.norm.strong
                for j in new
            ):
                found.append((score, other))
        return sorted(found, key=lambda pair: -_counted(*pair)) if len(found) > 1 else found

    @staticmethod
    def _partial(
        query: NormalizedName,
        candidate: IndexedName,
        align: Callable[[], NameScore],
    ) -> bool:
        """Whether either name has a word the other lacks (not merely spelt differently)."""
        result = align()
        return 0.0 in result.query_cover or 0.0 in result.listed_cover

    @staticmethod
    def _adds_distinctive(
        query: NormalizedName,
        candidate: IndexedName,
        align: Callable[[], NameScore],
    ) -> bool:
        """Whether the query has a word that is not common and that the listed name lacks. (An organisation's kind
        in Arabic script, حركة حماس "Hamas movement", is no other word.)"""
        generic = generic_words()
        result = align()
        return any(
            c == 0.0
            and query.strong[i] not in generic
            and not (query.abjad[i] and query.strong[i] in ORGANISATION_WORDS)
            for i, c in enumerate(result.query_cover)
        )

    @staticmethod
    def _other_trades(
        query: NormalizedName,
        candidate: IndexedName,
        align: Callable[[], NameScore],
    ) -> tuple[str, str] | None:
        """A word of trade (a common word that is no place or structure word) in each name that the other
        lacks, or None."""
        trade = _trade_words()
        if trade.isdisjoint(query.strong) or trade.isdisjoint(candidate.norm.strong):
            return None
        result = align()
        mine = [query.shown(i) for i, c in enumerate(result.query_cover) if c == 0.0 and query.strong[i] in trade]
        theirs = [
            candidate.norm.shown(j)
            for j, c in enumerate(result.listed_cover)
            if c == 0.0 and candidate.norm.strong[j] in trade
        ]
        # Words of one trade share their first letters ("air" / "airlines", "tele" / "telecommunications").
        mine = [q for q in mine if all(q[:3] != t[:3] for t in theirs)]
        theirs = [t for t in theirs if all(q[:3] != t[:3] for q in mine)]
        return (mine[0], theirs[0]) if mine and theirs else None

    @staticmethod
    def _brand_alone(
        query: NormalizedName,
        candidate: IndexedName,
        align: Callable[[], NameScore],
        present: set[str],
    ) -> str | None:
        """The listed name's distinctive words, if the query is them (spelt as listed, nothing else but common
        words the listed name also has) and the listed name only adds words of place or trade; None otherwise."""
        generic = generic_words()
        listed = candidate.norm.strong
        distinctive = [j for j, t in enumerate(listed) if t not in generic]
        if not distinctive or sum(candidate.weights[j] for j in distinctive) < AFFILIATE_MIN_WEIGHT:
            return None
        if any(not _present(listed, j, present) for j in distinctive):
            return None  # spelt as listed: cheap to rule out before aligning
        result = align()
        if 0.0 in result.query_cover:
            return None
        if any(result.listed_cover[j] < 1.0 for j in distinctive):
            return None
        if any(common_english(candidate.norm.shown(j)) for j in distinctive):
            return None
        return " ".join(candidate.norm.shown(j) for j in distinctive)

    @staticmethod
    def _brand_unit_abroad(
        query: NormalizedName,
        candidate: IndexedName,
        candidate_entry: ListEntry,
        align: Callable[[], NameScore],
        present: set[str],
    ) -> str | None:
        """The listed name's brand, if the query is that brand (no common English word, spelt as listed) with a
        legal form and only words of what a unit does (systems, research, solutions): a subsidiary incorporated
        abroad under the group's brand ("Inspur Systems, Inc.", "DJI Research LLC"). Only for a party the curated
        enrichment covers (a group known by its brand: its native names are published). A word of a sector
        ("Novatek Microelectronics") names another business, not a unit, and a rare word alone ("Avia Solutions
        Group" for AVIA GROUP LLC) is no group's brand; None then."""
        if not any(t in LEGAL_FORMS and t not in affiliate_words() for t in query.weak):
            return None  # (incorporated: "Inc.", "LLC", not "Group")
        if not candidate_entry.enrichment:
            return None  # (a group the curated names cover, known by its brand; not any firm of a rare word)
        generic = generic_words()
        listed = candidate.norm.strong
        distinctive = [j for j, t in enumerate(listed) if t not in generic]
        if not distinctive or sum(candidate.weights[j] for j in distinctive) < AFFILIATE_MIN_WEIGHT:
            return None
        if any(listed[j] not in present for j in distinctive):
            return None  # spelt as listed: cheap to rule out before aligning
        result = align()
        if any(result.listed_cover[j] < 1.0 for j in distinctive):
            return None
        added = [i for i, cover in enumerate(result.query_cover) if cover == 0.0]
        if not added or any(query.strong[i] not in _unit_words() for i in added):
            return None
        # A word of its own trade the listed name has and the query lacks ("SUNWAY TECH" for "Sunway Technology"):
        # the query names a business of its own (only "Group", "Holding", places may be left out).
        if any(
            cover == 0.0 and t not in affiliate_words() for t, cover in zip(listed, result.listed_cover, strict=True)
        ):
            return None
        if any(common_english(candidate.norm.shown(j)) for j in distinctive):
            return None
        return " ".join(candidate.norm.shown(j) for j in distinctive)

    @staticmethod
    def _adds_place(
        query: NormalizedName,
        candidate: IndexedName,
        align: Callable[[], NameScore],
    ) -> bool:
        """Whether the query adds a word of place or structure the listed name lacks: a foreign branch or
        subsidiary ("Sberbank (Switzerland) AG") is in another country by its nature."""
        words = affiliate_words()
        if words.isdisjoint(query.strong):
            return False
        result = align()
        added = [i for i, cover in enumerate(result.query_cover) if cover == 0.0]
        if _place_replaced(query, candidate, result, added):
            return False
        return any(query.strong[i] in words for i in added)

    def _affiliate(
        self,
        query: NormalizedName,
        candidate: IndexedName,
        align: Callable[[], NameScore],
        present: set[str],
        elsewhere: bool = False,
    ) -> str | None:
        """The affiliate pattern, in words, if the query is the listed name's distinctive words plus only
        words of place or corporate structure; None otherwise. `elsewhere`: the query's country is none of the
        listed party's (nor its programme's)."""
        generic = generic_words()
        listed = candidate.norm.strong
        distinctive = [j for j, t in enumerate(listed) if t not in generic]
        common_only = not distinctive
        if common_only:
            # A listed name made only of common words and its own place ("China Mobile", "China Telecom") is
            # recognised whole: every one of its words must be there. Without a place ("Industrial Bank") such
            # a name plus a place is any bank of that place; a place alone ("China") is no party's name.
            places = place_tokens()
            if places.issuperset(listed) or (places.isdisjoint(listed) and listed not in self._placed_common_names):
                return None
            distinctive = list(range(len(listed)))
        elif sum(candidate.weights[j] for j in distinctive) < AFFILIATE_MIN_WEIGHT and not all(
            self._parties_with.get(listed[j], 0) >= GROUP_BRAND_PARTIES for j in distinctive
        ):
            return None
        if any(not _present(listed, j, present) for j in distinctive):
            return None  # the listed party's own words, as listed: cheap to rule out before aligning
        if _pinyin_syllable_acronym(query, listed):
            return None
        # Names of common English words ("Bank for Foreign Trade", "Foreign Trade Bank") recur from country to
        # country with the country's name added: in another country than the listed party's, without a word of
        # structure ("branch", "office") to say it is a unit of it, such a name is another country's namesake.
        if elsewhere and _common_english_name(candidate) and not any(t in _structure_tokens() for t in query.strong):
            return None
        result = align()
        # The listed party's own distinctive words, spelt as listed (not a typo-close word of another firm).
        if any(result.listed_cover[j] < SKELETON_SIMILARITY for j in distinctive):
            return None
        # ... and most of its name: one word shared with a long name of common words ("Industrial Resources
        # General Trading" for "China Resources Holdings") is a shared word, not a parent's name.
        share = sum(w * c for w, c in zip(candidate.weights, result.listed_cover, strict=True))
        if share < AFFILIATE_MIN_SHARE * candidate.total:
            return None
        added = [i for i, cover in enumerate(result.query_cover) if cover == 0.0]
        if not added:
            return None
        # The whole listed name and a word of structure ("Bank Melli Iran Hamburg Branch", "... Dubai Representative
        # Office") name a branch whatever the other words are: most are places (places.py knows countries, capitals
        # and Chinese cities, not every city).
        structure = _structure_tokens()
        branch = 0.0 not in result.listed_cover and any(query.strong[i] in structure for i in added)
        trade = [] if branch else [i for i in added if query.strong[i] not in affiliate_words()]
        # Words of trade added ("Huawei Device", "VTB Capital") name a group member only where the listed name is
        # a brand alone, every word of it in the query, and no English word ("Sunway University" is not "Sunway
        # Microelectronics", nor "Alpha Devices" the listed "Alpha").
        if trade and (
            common_only
            or any(query.strong[i] not in generic for i in trade)
            or (0.0 in result.listed_cover and not _sibling(query, candidate, result, elsewhere))
            or any(common_english(candidate.norm.shown(j)) for j in distinctive)
        ):
            return None
        # A brand and a word of trade in another country, no place or structure word to say "branch", is more likely
        # a namesake there ("Novatek Microelectronics", TW, is not the Russian Novatek), unless the brand is a
        # listed group's, in the names of many listed parties ("VTB Capital", GB).
        if (
            trade
            and elsewhere
            and not all(self._parties_with.get(listed[j], 0) >= GROUP_BRAND_PARTIES for j in distinctive)
        ):
            return None
        if _place_replaced(query, candidate, result, added):
            return None
        covered = [query.strong[i] for i, cover in enumerate(result.query_cover) if cover > 0.0]
        if not common_only and all(t in generic for t in covered):
            return None
        words = ", ".join(query.shown(i) for i in added)
        core = " ".join(candidate.norm.shown(j) for j in distinctive)
        kind = "words of trade, place or corporate structure" if trade else "only words of place or corporate structure"
        return (
            f"possible affiliate: the listed name '{core}' with {kind} "
            f"added ({words}); BIS affiliates rule / OFAC 50% rule: establish who owns it"
        )


def _brand_words(
    entries: Sequence[ListEntry],
    names: Sequence[IndexedName],
    people: frozenset[str],
    acronyms: Mapping[str, tuple[int, ...]],
) -> dict[str, tuple[int, ...]]:
    """The brands of the parties the curated enrichment covers, each with the names it is the whole of: a name of one
    word besides legal forms, written in Latin letters ("LUKOIL OAO", the alias "HIKVISION", the enrichment's
    "DJI"), a word of the primary name where the list gives it as an alias, not a word of trade or place, not two
    common English words joined ("Postbank"), not a weak alias, not the name of a city the lists give in an address
    (Tabriz, Shiraz) and in no listed individual's name (Mahan, Tasnim are names)."""
    generic = generic_words()
    cities = {word for entry in entries for a in entry.addresses if a.city for word in fold(a.city).split()}
    found: dict[str, dict[int, int]] = {}
    for name_id, indexed in enumerate(names):
        entry = entries[indexed.entry]
        if len(indexed.norm.strong) != 1 or not entry.enrichment or entry.type in _NOT_A_COMPANY:
            continue
        if indexed.kind in (WEAK_ALIAS, KNOWN_SUBSIDIARY) or indexed.norm.abjad[0]:
            continue
        token, shown = indexed.norm.strong[0], indexed.norm.shown(0)
        if _other_company_name(indexed, entry):
            continue

        least = (
            BRAND_WORD_LETTERS_BRAND
            if indexed.enrichment and indexed.enrichment.kind == "brand"
            else BRAND_WORD_LETTERS
        )
        if _acronym_alias(indexed, names, acronyms):
            least = min(least, ACRONYM_BRAND_LETTERS)
        if len(token) < least or not (token.isascii() and token.isalpha()) or token in generic:
            continue
        if token in people or token in cities or common_english(shown.lower(), COMMON_NAME_ZIPF):
            continue
        if _two_common_words(shown.lower()):
            continue
        found.setdefault(token, {}).setdefault(indexed.entry, name_id)  # (one name per party)
    return {token: tuple(by_party.values()) for token, by_party in found.items()}


def _acronym_alias(indexed: IndexedName, names: Sequence[IndexedName], acronyms: Mapping[str, tuple[int, ...]]) -> bool:
    """Whether a name is an acronym of its party in capitals, the brand its group's members are named with in front
    ("CCCC First Highway Engineering"): the enrichment's English trade or short name ("CCCC", "CNNC", "AVIC"), or
    an alias the list gives that is the initials of another of the party's names ("NIOC", "IRGC")."""
    written = indexed.name.strip()
    if not (written.isascii() and written.isalpha() and written.isupper()):
        return False
    alias = indexed.enrichment
    if alias is not None:
        return alias.kind in ("english_trade_name", "short_name", "brand")
    return any(names[i].entry == indexed.entry for i in acronyms.get(written.lower(), ()))


def _other_company_name(indexed: IndexedName, entry: ListEntry) -> bool:
    """Whether a name the list gives is another company's that the party traded under, not its brand: an a.k.a. with
    a legal form of its own and a word the primary name lacks (the Internet Research Agency's AZIMUT LLC, GLAVSET
    LLC); not a short form without one (NORINCO, HIKVISION), nor a curated alias or a name one confirms."""
    if indexed.enrichment is not None or indexed.name == entry.name:
        return False
    if not any(t in LEGAL_FORMS for t in indexed.norm.weak):
        return False
    if set(indexed.norm.strong) <= set(normalize_name(entry.name).strong):
        return False
    # (Unless the curated names confirm it: ROSTVERTOL PAO is also Роствертол, the party's own short name.)
    return all(normalize_name(alias.alias).strong != indexed.norm.strong for alias in entry.enrichment)


def _two_common_words(word: str) -> bool:
    """Whether a word is two common English words of four letters or more written as one ("postbank"; not "megvii",
    whose "meg" and "vii" are too short to say so)."""
    return any(
        common_english(word[:i], OTHER_WORD_ZIPF) and common_english(word[i:], OTHER_WORD_ZIPF)
        for i in range(4, len(word) - 3)
    )


def _placed_common_names(names: Sequence[IndexedName]) -> frozenset[tuple[str, ...]]:
    """Names of only common words that the lists themselves also name units of by place: SMIC's Beijing,
    Tianjin and Shenzhen units are listed as "Semiconductor Manufacturing International (<city>) Corporation",
    so that name with another city ("(Shanghai)") is a unit of SMIC's too, while "Industrial Bank" plus a place
    is any bank of that place. Each as its words without the place, in order; three words or more, named with
    two places or more: a naming pattern, not one bank of one place."""
    generic, places = generic_words(), place_tokens()
    placed: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for indexed in names:
        words = indexed.norm.strong
        if indexed.kind == KNOWN_SUBSIDIARY:
            continue
        if all(t in generic for t in words) and any(t in places for t in words):
            rest = tuple(t for t in words if t not in places)
            if len(set(rest)) >= PLACED_NAME_WORDS:
                placed.setdefault(rest, set()).add(tuple(t for t in words if t in places))
    return frozenset(rest for rest, where in placed.items() if len(where) >= PLACED_NAME_PLACES)


# Words that say what a group's unit abroad does, not in which trade it is: "Inspur Systems, Inc.", "DJI Research LLC".
_UNIT_WORDS = ("systems", "research", "solutions", "services", "technologies", "technology", "labs", "laboratories",
               "innovations", "development")  # fmt: skip
# Words of what a group's own unit does for it, in any trade: it sells, finances, trades or leases for the group.
_FUNCTION_WORDS = ("finance", "financial", "funding", "capital", "invest", "investment", "investments", "export",
                   "exports", "import", "trading", "trade", "marketing", "sales", "supply", "leasing", "treasury",
                   "services", "service", "management")  # fmt: skip

# A two-character Chinese brand that is an everyday word (兵团 corps, 浪潮 wave, 卫星 satellite: in wordfreq's short
# Chinese list, Zipf ≥ 3) says nothing inside a longer name, unless the party's Latin name spells it (华为 HUAWEI).
_CHINESE_BRAND_MIN = 2
_CHINESE_BRAND_MAX = 6
_ALL_CHINESE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


# Trades of everyday business in Chinese names that the normaliser keeps as pinyin (it translates the words of the
# lists' parties: 科技, 信息, 银行): another trade after a listed brand means another firm sharing its characters
# (北京华为餐饮, a caterer), unless the party's own names have it.
_CHINESE_TRADES = {
    "餐饮": "catering", "酒店": "hotel", "饭店": "hotel", "宾馆": "hotel", "房地产": "estate",
    "地产": "estate", "物业": "property", "医院": "hospital", "医疗": "medical", "药业": "pharmaceutical",
    "制药": "pharmaceutical", "食品": "food", "服装": "clothing", "服饰": "clothing", "教育": "education",
    "学校": "school", "农业": "agriculture", "旅游": "travel", "旅行社": "travel", "保险": "insurance",
    "证券": "securities", "基金": "fund", "广告": "advertising", "文化": "culture", "传媒": "media",
    "汽车": "automotive", "化工": "chemical", "矿业": "mining", "钢铁": "steel", "纺织": "textile",
    "美容": "beauty", "超市": "supermarket", "商店": "shop", "家具": "furniture", "建材": "materials",
    "装饰": "decoration", "茶业": "tea", "酒业": "liquor", "养殖": "farming", "渔业": "fishery",
    "商贸": "trading", "贸易": "trading", "物流": "logistics", "建筑": "construction", "工程": "engineering",
}  # fmt: skip


# Traditional script as Taiwan and Hong Kong write it: a brand is looked for as the query writes it, without converting
# every query (the normaliser converts it once more for its own words).
_TRADITIONAL = tuple(opencc.OpenCC(config).convert for config in ("s2t", "s2tw", "s2hk"))


def _everyday_chinese(words: set[str]) -> set[str]:
    """Those of `words` in wordfreq's short Chinese list (words of Zipf frequency 3 and more)."""
    from wordfreq import available_languages, read_cBpack

    found: set[str] = set()
    for bucket in read_cBpack(available_languages("small")["zh"]):
        found.update(w for w in bucket if w in words)
    return found


def _chinese_brands(entries: Sequence[ListEntry], names: Sequence[IndexedName]) -> dict[str, tuple[int, ...]]:
    """Listed parties' Chinese short names and brands (two to six characters, no legal form, a word that is not a
    common one) in simplified script -> the ids of those names. The trade name (字号) is the part after a leading
    place (中国联通: 联通); it must be three characters or more, or two that are no everyday word or that the
    party's own Latin names spell."""
    generic = generic_words()
    brands: dict[str, list[int]] = {}
    cores: dict[int, str] = {}
    for name_id, indexed in enumerate(names):
        text = indexed.name.strip()
        if not (_CHINESE_BRAND_MIN <= len(text) <= _CHINESE_BRAND_MAX) or not _ALL_CHINESE.fullmatch(text):
            continue
        if indexed.norm.weak or entries[indexed.entry].type in _NOT_PARTIES or indexed.kind == KNOWN_SUBSIDIARY:
            continue
        if all(t in generic for t in indexed.norm.strong):
            continue
        plain = simplified(text)
        core = plain
        for size in (3, 2):
            if len(plain) > size and _only_places(plain[:size]):
                core = plain[size:]
                break
        if len(core) < _CHINESE_BRAND_MIN:
            continue
        cores[name_id] = core
        for written in {plain, *(convert(plain) for convert in _TRADITIONAL)}:
            brands.setdefault(written, []).append(name_id)
    everyday = _everyday_chinese({core for core in cores.values() if len(core) == _CHINESE_BRAND_MIN})
    latin: dict[int, set[str]] = {}
    wanted = {names[name_id].entry for name_id, core in cores.items() if core in everyday}
    for indexed in names:
        # (Not a romanisation of the Chinese names themselves: that spells every brand.)
        romanised = indexed.enrichment is not None and indexed.enrichment.kind in ("pinyin", "wade_giles")
        if indexed.entry in wanted and indexed.name.isascii() and not romanised:
            latin.setdefault(indexed.entry, set()).update(indexed.norm.strong)
    kept: dict[str, tuple[int, ...]] = {}
    for brand, name_ids in brands.items():
        ids = tuple(
            name_id
            for name_id in name_ids
            if cores[name_id] not in everyday
            or normalize_name(cores[name_id]).strong[0] in latin.get(names[name_id].entry, set())
        )
        if ids:
            kept[brand] = ids
    return kept


def _pinyin_syllable_acronym(query: NormalizedName, listed: tuple[str, ...]) -> bool:
    """A listed name of one word of three letters that is also a pinyin syllable ("HUA", an acronym of Harakat
    ul-Ansar) next to other pinyin words in the query ("Hua Hong Semiconductor") is a syllable of a Chinese name,
    not the acronym with words added."""
    if len(listed) != 1 or len(listed[0]) > 3 or not is_pinyin(listed[0]):
        return False
    return any(t != listed[0] and is_pinyin(t) for t in query.strong)


@functools.lru_cache(maxsize=50_000)
def common_english(word: str, zipf: float = COMMON_NAME_ZIPF) -> bool:
    """Whether a word is common in English text (wordfreq's Zipf frequency ≥ `zipf`)."""
    if word.isascii() and word.isalpha() and word.islower():
        return _english_zipf(word) >= zipf
    from wordfreq import zipf_frequency  # its English list loads on first use (about a second), not at import

    return bool(zipf_frequency(word, "en") >= zipf)


@functools.cache
def _english_frequencies() -> dict[str, float]:
    from wordfreq import get_frequency_dict

    return get_frequency_dict("en", "best")


# A listed plural in -es written singular and misspelt: the singular of this many letters or more (missile, machine,
# airline; not force, whose one-letter neighbours are words: forge, farce, fore), the query's word no everyday English
# word (Zipf below this: "missle" 1.9 is a common misspelling, "forge" 3.8 a word).
PLURAL_TYPO_LETTERS = 7  # (the plural's letters: six for the singular)
PLURAL_TYPO_ZIPF = 3.0


def _plural(written: str) -> bool:
    """Whether a listed word as written is an English plural in -es of a word in -e ("missiles", "machines", "lines"),
    which the canonical form keeps whole."""
    return len(written) > PLURAL_TYPO_LETTERS and written.endswith("es") and written[-3] not in "aeiousxz"


def _english_word(written: str) -> bool:
    """Whether a word as written is one wordfreq's English list has at all (Zipf above 0: "Taxing", "Palmilla")."""
    word = written.casefold()
    if word.isascii() and word.isalpha():
        return _english_zipf(word) > 0.0
    from wordfreq import zipf_frequency

    return bool(zipf_frequency(word, "en") > 0.0)


def _english_zipf(word: str) -> float:
    """`wordfreq.zipf_frequency(word, "en")` of a word of lowercase ASCII letters, which wordfreq's tokenizer reads
    as that one token: its frequency looked up and rounded with wordfreq's own arithmetic, without the tokenizer and
    language look-ups around it (most of the time of a call)."""
    minimum = 1e-9  # zipf_to_freq(0.0), zipf_frequency's default minimum
    frequency = _english_frequencies().get(word)
    unrounded = minimum if frequency is None else max(1.0 / (0.0 + 1.0 / frequency), minimum)
    leading_zeroes = math.floor(-math.log(unrounded, 10))
    return round(math.log(round(unrounded, leading_zeroes + 3), 10) + 9, 2)


def _common_words_only(query: NormalizedName, candidate: IndexedName, result: NameScore) -> tuple[str, ...]:
    """The query's words that matched the listed name, when every one of them that is not a generic word is
    a common English word (as the query writes it) and the query is not the listed name as written ("Wagner
    Group" is the listed name itself; "J. Wagner GmbH" is a name with the same word); () otherwise."""
    if _letters(query.original) == _letters(candidate.name):
        return ()
    generic = generic_words()
    own = [
        query.shown(i) for i, cover in enumerate(result.query_cover) if cover > 0.0 and query.strong[i] not in generic
    ]
    if not own or not all(w.isascii() and common_english(w) for w in own):
        return ()
    return tuple(own)


_WORD = re.compile(r"[^\W_]+")
_NOT_A_COMPANY = frozenset({"individual", "vessel", "aircraft"})


# Words that open a Russian company's listed name as its legal form ("Joint Stock Company ...", "Limited Liability
# Company ..."): an acronym leaves them out.
_LEADING_FORMS = frozenset({"joint", "stock", "liability", "open", "closed", "public", "private", "nonpublic"})


# Consonants a transliteration writes with two letters (ش sh, خ kh, غ gh, ث th, ذ dh, ژ zh, چ ch): one sound each.
_DIGRAPHS = re.compile(r"[skgtdzc]h")


def _two_edit_tables(words: Sequence[str]) -> tuple[dict[tuple[str, int], list[str]], dict[tuple[str, int], list[str]]]:
    """Words by their first two letters and length, and by the first two letters a word two slips from one may start
    with where the second is one of the slips: its own, the first and a neighbouring key of the second, the first and
    the third (the second dropped)."""
    plain: dict[tuple[str, int], list[str]] = {}
    slips: dict[tuple[str, int], dict[str, None]] = {}
    for word in words:
        size = len(word)
        plain.setdefault((word[:2], size), []).append(word)
        for first in (word[:2], word[0] + word[2], *(word[0] + n for n in KEY_NEIGHBOURS.get(word[1], ""))):
            slips.setdefault((first, size), {})[word] = None
    return plain, {key: list(found) for key, found in slips.items()}


def _written_forms(candidate: IndexedName, differing_only: bool = False) -> tuple[tuple[str, str], ...]:
    """A listed name's words as written that `_written_similarities` compares, (as written, canonical form):
    not in an abjad, TYPO_WRITTEN_FROM letters or more, ASCII; `differing_only`, only those whose canonical form is
    not as written."""
    norm = candidate.norm
    as_written = norm.display or norm.strong
    abjads = norm.abjad or (False,) * len(as_written)
    return tuple(
        [
            (form, token)
            for token, form, abjad in zip(norm.strong, as_written, abjads, strict=True)
            if not abjad
            and len(form) >= TYPO_WRITTEN_FROM
            and form.isascii()
            and not (differing_only and form == token)
        ]
    )


def _written_similarities(
    written: Mapping[int, str],
    forms: Iterable[tuple[tuple[str, str], ...]],
    extra: dict[str, list[tuple[int, float]]],
) -> None:
    """Adds to `extra` the similarities of query words as written (`written`, by position) to the candidates' words
    as written (`forms`: each candidate's `_written_forms`), where they are a typo apart that way (see
    `match._similarity`)."""
    shown: dict[str, set[str]] = {}
    for pairs in forms:
        for form, token in pairs:
            shown.setdefault(form, set()).add(token)
    if not shown:
        return
    listed_forms = list(shown)
    for position, word in written.items():
        for form, _, _ in process.extract(
            word, listed_forms, scorer=OSA.normalized_similarity, processor=None, score_cutoff=0.7, limit=None
        ):
            similarity = similarity_of(word, form)
            if similarity > 0.0:
                for token in shown[form]:
                    extra.setdefault(token, []).append((position, similarity))


def _incorporated_brand(query: NormalizedName, candidate: IndexedName) -> bool:
    """Whether the query adds a legal form to a listed name that has none (a brand, "DJI"): a company incorporated
    under the brand ("DJI GmbH"), where the listed party has its subsidiaries. ("CoStar Group, Inc." for the listed
    "COSTAR GROUP CO., LTD." only writes another legal form for the listed one's.)"""
    return any(t in LEGAL_FORMS for t in query.weak) and not any(t in LEGAL_FORMS for t in candidate.norm.weak)


def _common_english_name(candidate: IndexedName) -> bool:
    """Whether a listed name's own words (not trade or place words) are all everyday English words ("Bank for Foreign
    Trade", "Foreign Trade Bank"): such names recur from country to country. Not surnames or letters of the
    alphabet, common as they are ("Wagner", "Alpha"): a name made of one is more likely that party's."""
    generic = generic_words()
    own = [j for j, t in enumerate(candidate.norm.strong) if t not in generic]
    return bool(own) and all(common_english(candidate.norm.shown(j), EVERYDAY_WORD_ZIPF) for j in own)


def _not_chinese_name(query: NormalizedName, position: int, generic: frozenset[str]) -> bool:
    """Whether another word of the query, of four Latin letters or more and not a common one, is no pinyin: the name
    is then no Chinese one, and its pinyin-looking words ("Juri", "Jun") are no pinyin either."""
    for other, token in enumerate(query.strong):
        if other == position or query.abjad[other] or token in generic:
            continue
        shown = query.shown(other)
        if len(shown) >= 4 and shown.isascii() and shown.isalpha() and not is_pinyin(shown):
            return True
    return False


def _one_abjad_word(query: NormalizedName, generic: frozenset[str]) -> int | None:
    """Position of the query's only word written in an abjad, where its other words are all common ones."""
    positions = [i for i, is_abjad in enumerate(query.abjad) if is_abjad]
    if len(positions) != 1:
        return None
    at = positions[0]
    if any(t not in generic for i, t in enumerate(query.strong) if i != at):
        return None
    if len(_DIGRAPHS.sub("_", skeleton(query.strong[at]))) >= ONE_ABJAD_WORD_CONSONANTS:
        return None  # four consonants in a row of a listed word's ("سيريتل", SYRIATEL) are that word
    return at


def _initials(name: str) -> set[str]:
    """A listed name's possible acronyms: the initials of its words (stop words aside), without its legal forms
    and with a closing one ("NIOC": National Iranian Oil Company; "SMIC": ... International Corporation)."""
    words = _WORD.findall(fold(name))
    if not all(w.isascii() and w.isalpha() for w in words):
        return set()
    words = [w for w in words if w not in STOPWORDS]
    while words and (words[0] in LEGAL_FORMS or words[0] in _LEADING_FORMS):
        words.pop(0)
    low, high = ACRONYM_LETTERS
    found = set()
    for kept in (words, [w for w in words if w not in LEGAL_FORMS]):
        if low <= len(kept) <= high:
            found.add("".join(w[0] for w in kept))
    return found


def _acronyms(entries: Sequence[ListEntry], names: Sequence[IndexedName]) -> dict[str, tuple[int, ...]]:
    """Acronym -> ids of the listed names (of companies and bodies, not people or ships) it abbreviates."""
    found: dict[str, list[int]] = {}
    for name_id, indexed in enumerate(names):
        if entries[indexed.entry].type in _NOT_A_COMPANY or indexed.kind == KNOWN_SUBSIDIARY:
            continue
        given = {a.lower() for a in _bracketed_acronyms(indexed.name)}
        for acronym in _initials(indexed.name) | given:
            found.setdefault(acronym, []).append(name_id)
    # An acronym of many parties' names says none of them.
    return {
        acronym: tuple(ids)
        for acronym, ids in found.items()
        if len({names[i].entry for i in ids}) <= ACRONYM_MAX_PARTIES
    }


def _two_words_one_swapped(query: NormalizedName, candidate: IndexedName, missing: Sequence[int] | None = None) -> bool:
    """Whether query and listed name are two words each, one of them the same and the other with two neighbouring
    letters swapped, the first kept ("Bank Sepha" / BANK SEPAH). `missing`: the listed words the query lacks."""
    listed = candidate.norm.strong
    if len(listed) != 2 or len(query.strong) != 2:
        return False
    if missing is None:
        missing = [j for j, b in enumerate(listed) if b not in query.strong]
    if len(missing) != 1:
        return False
    (j,) = missing
    words = query.strong
    if listed[1 - j] not in words:
        return False
    # The query's other word, at its first place (`words.index(other)`: the first where both words are the same).
    position = 1 if words[0] == listed[1 - j] and words[1] != words[0] else 0
    other = words[1] if words[0] == listed[1 - j] else words[0]
    query_written = query.display or words  # (`shown`)
    listed_written = candidate.norm.display or listed
    return neighbours_swapped(query_written[position], listed_written[j]) or neighbours_swapped(other, listed[j])


def _first_in_capitals(query: NormalizedName, position: int) -> bool:
    """Whether the query's word at `position` is its first and written in capitals ("CCCC First Highway")."""
    word = query.shown(position)
    words = _WORD.findall(query.original)
    return position == 0 and bool(words) and words[0] == word.upper() and word.upper() != word.lower()


def _acronym_written(query: NormalizedName) -> str | None:
    """The query's one word, if it is written in capitals like an acronym ("RDIF", not "Rdif") and is not a
    common English word ("CARE"); None otherwise."""
    if len(query.strong) != 1:
        return None
    word = query.shown(0)
    low, high = BRACKETED_ACRONYM_LETTERS  # (three letters are only the keys of acronyms the lists give)
    if not (low <= len(word) <= high and word.isascii() and word.isalpha()):
        return None
    if word.upper() not in _WORD.findall(query.original):
        return None
    return None if common_english(word) else word


def _abbreviation_as_listed(query: NormalizedName, candidate: IndexedName) -> bool:
    """Whether the listed name, legal forms aside, is one word of ACRONYM_ELSEWHERE_LETTERS letters or fewer and the
    query is that word ("EDBI Pte Ltd" against EDBI)."""
    listed = candidate.norm.strong
    return len(listed) == 1 and len(listed[0]) <= ACRONYM_ELSEWHERE_LETTERS and tuple(query.strong) == tuple(listed)


def _placeless_three_letters(acronym: str, entry: ListEntry) -> bool:
    """Whether `acronym` has three letters and `entry` no country, of its own or of its programme (the UN's Al-Qaida
    list: "TEHRIK-E TALIBAN PAKISTAN (TTP)"). Three letters name many firms ("TTP plc", Cambridge); without a country
    of the party's to set against the query's, the acronym is read only in a query that gives none."""
    return len(acronym) < ACRONYM_LETTERS[0] and not entry.countries and not _programme_countries(entry)


def _elsewhere(query_country: str | None, entry: ListEntry) -> bool:
    """Whether the query's country is none of the listed party's countries, nor near one (mainland China, Hong
    Kong, Macao), nor its sanctions programme's country."""
    if not query_country or not entry.countries or query_country in entry.countries:
        return False
    near = not _SAME_PLACE.get(query_country, frozenset()).isdisjoint(entry.countries)
    return not (near or query_country in _programme_countries(entry))


def _counted(score: float, candidate: IndexedName) -> float:
    """A candidate's name score as it can count for its entry: a weak alias's at most WEAK_ALIAS_SCORE."""
    return min(score, WEAK_ALIAS_SCORE) if candidate.kind == WEAK_ALIAS else score


# Countries whose people carry two surnames, the father's first, then the mother's (a married woman may add "de" and
# her husband's), and go by the first given name and the first surname: "Nicolás Maduro" for MADURO MOROS, Nicolas;
# "Rosario Murillo" for MURILLO DE ORTEGA, Rosario Maria.
_TWO_SURNAMES = frozenset(
    {"AR", "BO", "CL", "CO", "CR", "CU", "DO", "EC", "ES", "GQ", "GT", "HN", "MX", "NI", "PA", "PE", "PR", "PY", "SV"}
    | {"UY", "VE"}
)


def _two_surnames(query_country: str | None, entry: ListEntry) -> bool:
    """Whether a listed individual is named as in Spanish: the query in a country of two surnames that is the
    person's own (a country of theirs or a nationality; a namesake elsewhere is not read so)."""
    return (
        query_country is not None
        and query_country in _TWO_SURNAMES
        and (query_country in entry.countries or query_country in entry.nationalities)
    )


def _usual_name(candidate: IndexedName, result: NameScore, two_surnames: bool = False) -> str | None:
    """The feature's words if the query is a listed individual's surname and first given name (the words before
    the listed name's comma and the one after it, every query word among them); None otherwise. `two_surnames`: the
    person is named as in Spanish, where the first of two surnames and the first given name are the usual name."""
    surname, comma, _ = candidate.name.partition(",")
    if not comma or any(cover < SKELETON_SIMILARITY for cover in result.query_cover):
        return None
    surnames = len(normalize_name(surname).strong)
    known = surnames + 1
    if known < 2 or known > len(candidate.norm.strong):
        return None
    if all(result.listed_cover[j] >= SKELETON_SIMILARITY for j in range(known)):
        words = " ".join(candidate.norm.shown(j) for j in range(known))
        return f"the listed individual's surname and first given name ({words}), the other given names left out"
    first_ones = min(result.listed_cover[0], result.listed_cover[surnames])  # first surname, first given name
    if two_surnames and surnames >= 2 and first_ones >= SKELETON_SIMILARITY:
        words = f"{candidate.norm.shown(surnames)} {candidate.norm.shown(0)}"
        return (
            f"the listed individual's first given name and first surname ({words}): a Spanish name's second surname "
            "(the mother's, or a married woman's de and her husband's) is left out in everyday use"
        )
    return None


def _uncovered(candidate: IndexedName, result: NameScore) -> list[str]:
    return [candidate.norm.shown(j) for j, cover in enumerate(result.listed_cover) if cover == 0.0]


def _letters(name: str) -> str:
    return "".join(ch for ch in fold(name) if ch.isalnum())


class _Aligned:
    """The token alignment of a query with one candidate, computed once when a rule first asks for it."""

    __slots__ = ("_args", "_result")

    def __init__(
        self,
        query: NormalizedName,
        q_weights: Sequence[float],
        candidate: IndexedName,
        extra: Mapping[str, Sequence[tuple[int, float]]],
        scorer: QueryScorer,
    ) -> None:
        self._args = (query, q_weights, candidate, extra, scorer)
        self._result: NameScore | None = None

    def __call__(self) -> NameScore:
        if self._result is None:
            query, q_weights, candidate, extra, scorer = self._args
            self._result = compare(
                query.strong,
                q_weights,
                candidate.norm.strong,
                candidate.weights,
                extra,
                query.display,
                scorer.similarities,
                candidate.joined,
            )
        return self._result


@functools.cache
def _function_words() -> frozenset[str]:
    """Canonical forms of the words of what a group's unit does for the group (`_FUNCTION_WORDS`)."""
    return frozenset(canonical(w) for w in _FUNCTION_WORDS)


@functools.cache
def _unit_words() -> frozenset[str]:
    """Canonical forms of the words that say what a unit of a group does, not in which trade it is."""
    return frozenset(canonical(w) for w in _UNIT_WORDS)


def _uncovered_query(query: NormalizedName, result: NameScore) -> list[str]:
    return [query.shown(i) for i, cover in enumerate(result.query_cover) if cover == 0.0]


@functools.cache
def _trade_words() -> frozenset[str]:
    """Common words that say what a business does ("telecom", "trading", "university"): generic words that are
    no word of place or structure."""
    return generic_words() - affiliate_words() - place_tokens()


@functools.cache
def _structure_tokens() -> frozenset[str]:
    """Canonical forms of the words of corporate structure ("branch", "subsidiary", "operations")."""
    return frozenset(canonical(w) for w in STRUCTURE_WORDS)


def _present(listed: Sequence[str], j: int, present: set[str]) -> bool:
    """Whether the query has listed word j, as written or joined with a neighbour ("chinatelecom")."""
    if listed[j] in present:
        return True
    return (j > 0 and joined(listed[j - 1], listed[j]) in present) or (
        j + 1 < len(listed) and joined(listed[j], listed[j + 1]) in present
    )


@functools.cache
def _chinese_regions() -> frozenset[str]:
    return frozenset(canonical(place) for place in CHINESE_CITIES)


def _sibling(query: NormalizedName, candidate: IndexedName, result: NameScore, elsewhere: bool) -> bool:
    """A Chinese company's name is its region, its trade name (字号) and its trade: 浙江大华技术 is Zhejiang + Dahua +
    technology. A name with the listed party's region and trade name and another trade (浙江大华系统工程, Zhejiang Dahua
    System Engineering) is a member of its group: a trade name is registered for one firm per region. Only where
    the listed name starts with a Chinese region that the query keeps, and lacks only common words of it."""
    listed = candidate.norm.strong
    if elsewhere or listed[0] not in _chinese_regions() or result.listed_cover[0] < 1.0:
        return False
    generic = generic_words()
    return all(cover > 0.0 or t in generic for t, cover in zip(listed, result.listed_cover, strict=True))


def _place_replaced(query: NormalizedName, candidate: IndexedName, result: NameScore, added: Sequence[int]) -> bool:
    """The query adds a place word where the listed name has one of its own that the query lacks: "Kuwait
    Investment Authority" for "Libyan Investment Authority" is a namesake elsewhere, not a branch (a branch
    keeps its parent's name, place included, and adds its own place: "China Mobile International (USA)")."""
    places = place_tokens()
    listed = candidate.norm.strong
    if not (
        any(query.strong[i] in places for i in added)
        and any(t in places and result.listed_cover[j] == 0.0 for j, t in enumerate(listed))
    ):
        return False
    # ... unless the group's own brand is there, spelt as listed, and a word of structure says what the member is:
    # "China Unicom (Americas) Operations" is a member of the group listed as "China Unicom (Hong Kong)". A brand
    # is no common word and no English word ("Authority"); a place swapped alone ("Petróleos Mexicanos" for
    # Petróleos de Venezuela) is a namesake.
    structure = _structure_tokens()
    if not any(query.strong[i] in structure for i in added):
        return True
    generic = generic_words()
    return not any(
        cover >= SKELETON_SIMILARITY and t not in generic and not common_english(candidate.norm.shown(j))
        for j, (t, cover) in enumerate(zip(listed, result.listed_cover, strict=True))
    )


def _identity(entry: ListEntry, date_of_birth: date | str | None, nationality: str | None) -> list[Feature]:
    """Date of birth and nationality of a screened individual against a listed one."""
    features: list[Feature] = []
    dob = birth_date_agrees(entry.dates_of_birth, date_of_birth)
    listed_dob = "; ".join(entry.dates_of_birth)
    if dob is True:
        features.append(
            Feature("date of birth agrees", BIRTH_DATE_AGREES, f"date of birth agrees: listed {listed_dob}")
        )
    elif dob is False:
        features.append(
            Feature(
                "date of birth differs",
                BIRTH_DATE_DIFFERS,
                f"date of birth {date_of_birth} differs: listed {listed_dob}",
            )
        )
    nat = nationality_agrees(entry.nationalities, nationality)
    listed_nat = ", ".join(entry.nationalities)
    if nat is True:
        features.append(Feature("nationality agrees", NATIONALITY_AGREES, f"nationality agrees: listed {listed_nat}"))
    elif nat is False:
        features.append(
            Feature(
                "nationality differs", NATIONALITY_DIFFERS, f"nationality {nationality} differs: listed {listed_nat}"
            )
        )
    return features


def _cities(address: Address | str | None) -> set[str]:
    if address is None:
        return set()
    if isinstance(address, Address):
        return {fold(address.city)} if address.city else set()
    # Free text: compare each comma-separated part with listed cities.
    return {fold(part.strip()) for part in address.split(",") if part.strip()}


@functools.cache
def bundled_index() -> ScreeningIndex:
    """Index over the lists shipped with the package, built once per process."""
    from gpulease.compliance.lists import bundled_dataset

    dataset = bundled_dataset()
    return ScreeningIndex.build(dataset.entries, dataset.version)


def _initials_feature(query: NormalizedName, candidate: IndexedName, name_score: float, rare: bool) -> Feature:
    """Whether a query's initials ("V. V." of "V. V. Putin") are those of the listed person's other names, in order
    (as far as the list gives them: PUTIN, Vladimir has one for two initials).

    Where the listed name is written "SURNAMES, Given names" and the query's surname is its first surname or all of
    them ("N. Maduro", "J. G. Tapia Quintero" against "MADURO MOROS, Nicolas", "TAPIA QUINTERO, Jose Guadalupe"), the
    initials are compared with the given names. One initial with one surname agrees only where the surname is `rare`
    (`ScreeningIndex._rare_surname`), and then says so: a review at ONE_INITIAL_SCORE at most."""
    written = ". ".join(query.initials).upper() + "."
    parts = _surnames_and_given(candidate.name)
    if parts is not None and parts[1] and parts[0][: len(query.strong)] == tuple(query.strong):
        given = parts[1]
        pairs = list(zip(query.initials, (t[0] for t in given), strict=False))
        names = " ".join(given)
    else:
        others = [i for i, t in enumerate(candidate.norm.strong) if t not in query.strong]
        if not others:
            return Feature("initials", 0.0, f"the initials {written}: the listed name has no other names to compare")
        pairs = list(zip(query.initials, (candidate.norm.strong[i][0] for i in others), strict=False))
        names = " ".join(candidate.norm.shown(i) for i in others)
    if not all(a == b for a, b in pairs):
        if parts is not None and parts[1] and all(query.initials[0] != t[0] for t in parts[1]):
            return Feature(
                "initials differ",
                min(INITIALS_DIFFER, INITIALS_NONE_OF_THEM - name_score),
                f"the initial {query.initials[0].upper()}. is none of the given names '{names}': another person",
            )
        return Feature("initials differ", INITIALS_DIFFER, f"the initials {written} are not those of '{names}'")
    points = min(max(INITIALS_AGREE, (100.0 - name_score) / 2), max(0.0, INITIALS_AGREE_UP_TO - name_score))
    if len(query.initials) == 1 and len(query.strong) == 1:
        if not rare:
            return Feature(
                "initials",
                0.0,
                f"the initial {written} is that of '{names}', but one initial and a common surname name many people",
            )
        return Feature(
            "one initial agrees",
            max(points, ONE_INITIAL_SCORE - name_score),
            f"the initial {written} is that of '{names}' and the surname is rare: one initial and a surname are weak "
            "evidence, a review",
        )
    return Feature("initials agree", points, f"the initials {written} are those of '{names}', in order")


@functools.lru_cache(maxsize=4096)
def _surnames_and_given(listed: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """A listed person's surnames and given names where the list writes "SURNAMES, Given names", else None."""
    if listed.count(",") != 1:
        return None
    surnames, given = listed.split(",")
    # The given names as written, not normalized: their initials are those written ("Qasem" is Q., not K.).
    folded = unicodedata.normalize("NFKD", given).encode("ascii", "ignore").decode().lower()
    return tuple(normalize_name(surnames).strong), tuple(re.findall(r"[a-z][a-z'-]*", folded))


def _whole_name(candidate: IndexedName, name_score: float, result: NameScore) -> bool:
    """Whether the query is a known subsidiary's name: every word of it there but a city or region ("Sugon
    DataEnergy" for Sugon DataEnergy (Beijing)), legal forms aside (its own words as written, as
    `ScreeningIndex._owned_words` has them; common words up to a typo), and the score at least SUBSIDIARY_MATCH_FROM.
    Not a part of it: "Harbour Engineering" is not China Harbour Engineering, nor "Hubble Technology" Huawei's Hubble
    Technology Investment (a country or a common word weighs little in the score, and many firms' names are such a
    part)."""
    if name_score < SUBSIDIARY_MATCH_FROM:
        return False
    places, regions = place_tokens(), _chinese_regions()
    return all(
        cover >= TOKEN_SIMILARITY or ((token in places or token in regions) and not _country(candidate.norm.shown(j)))
        for j, (token, cover) in enumerate(zip(candidate.norm.strong, result.listed_cover, strict=True))
    )


def _country(word: str) -> bool:
    """Whether a word names a country ("China", "Iran"), not a city or region."""
    code = country_code(word)
    return code is not None and code != word and len(code) == 2 and code.isupper()


def _owned_by(entry: ListEntry, candidate: IndexedName) -> str:
    """Why a match on a known subsidiary's name is a review: whose subsidiary it is, how held, and the source."""
    owned = candidate.enrichment
    assert owned is not None  # (every known subsidiary is indexed with its curated row)
    source = owned.source_url or "no source URL"
    note = f"; {owned.source_note}" if owned.source_note else ""
    return (
        f"possible affiliate: {candidate.name} is {owned.describe_ownership()} of the listed {entry.name} "
        f"({entry.list}) (curated subsidiary data, source: {source}{note}): OFAC 50% rule / BIS affiliates rule — "
        "establish ownership and control"
    )


def _affiliate_hit(entry: ListEntry, candidate: IndexedName, feature: str, detail: str) -> Hit:
    """A review as a possible member of the listed party's group, for `detail`'s reason, with the alias's source."""
    reasons: list[str] = [detail]
    if candidate.enrichment is not None:
        source = candidate.enrichment.source_url or candidate.enrichment.source_note or "no source given"
        reasons.append(f"matched an enrichment alias ({candidate.enrichment.kind}), source: {source}")
    return Hit(
        entry_id=entry.id,
        list=entry.list,
        name=entry.name,
        matched_name=candidate.name,
        score=AFFILIATE_SCORE,
        reasons=tuple(reasons),
        entry=entry,
        matched_kind=candidate.kind,
        enrichment=candidate.enrichment,
        features=(Feature(feature, AFFILIATE_SCORE, detail),),
        affiliate=True,
    )
