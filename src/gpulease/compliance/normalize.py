"""Names into comparable tokens: Unicode folding, legal forms as weak tokens, Chinese into pinyin + terms,
other scripts into Latin, Wade-Giles into pinyin, romanisation variants and plurals folded.

A NormalizedName keeps, for each distinctive token, the canonical form the matcher compares (`strong`) and
the form a person reads (`display`), plus notes on how it was produced for the explanation of a hit.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import opencc
from pypinyin import lazy_pinyin
from rapidfuzz.distance import OSA

from gpulease.compliance.places import CHINESE_CITIES, place_words
from gpulease.compliance.romanize import (
    ABJADS,
    FOLD_FROM,
    fold_variants,
    is_pinyin,
    script_of,
    to_latin,
    wade_giles_to_pinyin,
)

# Legal forms and filler words are kept (an analyst wants to see them) but carry little weight:
# "IFLYTEK Co., Ltd." and "iFlytek Inc" name the same company for screening purposes.
LEGAL_FORMS: frozenset[str] = frozenset(
    {
        "co",
        "company",
        "companies",
        "ltd",
        "limited",
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "llc",
        "gmbh",
        "mbh",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "ag",
        "kg",
        "bv",
        "nv",
        "plc",
        "llp",
        "lp",
        "jsc",
        "ojsc",
        "cjsc",
        "pjsc",
        "ooo",
        "oao",
        "zao",
        "pao",
        "ao",
        "tov",
        "pte",
        "pty",
        "bhd",
        "sdn",
        "ltda",
        "cv",
        "rl",
        "kk",
        "kft",
        "oy",
        "ab",
        "as",
        "asa",
        "sl",
        "sro",
        "doo",
        "dooel",  # Macedonian single-member d.o.o. ("KAMCHEV KONSALTING SKOPJE DOOEL")
        # "company" in Spanish, French and Portuguese ("LA COMPANIA GENERAL DE NIQUEL")
        "compania",
        "compagnie",
        "companhia",
        "ou",  # Estonian OÜ ("GARANTEX EUROPE OU")
        # French, Danish, Belgian, Portuguese, German, Canadian and Indian forms
        "sasu",
        "eurl",
        "aps",
        "bvba",
        "sprl",
        "lda",
        "kgaa",
        "ulc",
        "pvt",
        # free-zone companies of the UAE: free zone establishment, free zone company, "FZ-LLC"
        "fze",
        "fzco",
        "fzc",
        "fz",
        # Bulgarian (EOOD, OOD, EAD: sole-owner and joint-stock forms) and the Finnish listed company (Oyj)
        "eood",
        "ood",
        "ead",
        # the joint-stock form of Bulgaria, Serbia and North Macedonia (AD, a.d.)
        "ad",
        "oyj",
        "group",
        "holding",
        "holdings",
        "enterprise",
        "enterprises",
        "establishment",
        "est",
        "firm",
        # Russian, Persian and Arabic words for company and joint-stock company, as the lists transliterate them
        "kompaniya",
        "obshchestvo",
        "aktsionernoe",
        "otkrytoe",
        "zakrytoe",
        "publichnoe",
        "nepublichnoe",
        # the same in the other romanisations of Russian (-oye for -ое, ISO 9 ŝ, German sch; ts/c is folded)
        "publichnoye",
        "nepublichnoye",
        "aktsionernoye",
        "aktcionernoe",  # GOST R 52535 writes ц as tc
        "aktsionernaya",  # акционерная (компания)
        "aktcionernaia",
        "otkrytoye",
        "zakrytoye",
        "obschestvo",
        "obscestvo",
        "obsestvo",
        # ООО spelt out: "obshchestvo s ogranichennoy otvetstvennost'yu"
        "ogranichennoy",
        "ogranichennoi",
        "ogranichennoj",
        "otvetstvennostyu",
        "otvetstvennostiu",
        "otvetstvennostju",
        # ФГУП, a federal state unitary enterprise ("FSUE Atomflot")
        "fgup",
        "fsue",
        "unitarnoe",
        "unitarnoye",
        "gruppa",
        "sherkat",
        "sharikat",
        "sirketi",
        # Polish, Czech and Hungarian forms: spółka z o.o. ("Sp. z o.o." is "sp", "z", "oo" once the dots are
        # joined), spol. s r.o., Zrt. and Nyrt. ("Hikvision Poland Sp. z o.o.")
        "sp",
        "oo",
        "spol",
        "zrt",
        "nyrt",
    }
)
STOPWORDS: frozenset[str] = frozenset(
    {"the", "of", "and", "de", "del", "la", "le", "el", "for", "y", "et", "in", "at", "on", "du", "des"}
    # Shiite clerical titles written before a name ("Ayatollah Ali Khamenei"), never a name themselves (unlike
    # Sheikh, Sayyed or Haji, which are also surnames and given names).
    | {"ayatollah", "ayatullah", "hojatoleslam", "hojjatoleslam"}
)

# Chinese legal forms: longest first when segmenting. Values are weak tokens in their English list form.
CHINESE_LEGAL_FORMS: dict[str, tuple[str, ...]] = {
    "股份有限公司": ("co", "ltd"),
    "有限责任公司": ("co", "ltd"),
    "有限公司": ("co", "ltd"),
    "集团": ("group",),
    "控股": ("holdings",),
    "公司": ("co",),
    "股份": ("co",),
    "责任": (),
    "分公司": ("branch",),
    "子公司": ("subsidiary",),
    "办事处": ("office",),
    "代表处": ("representative", "office"),
}

# Common company-name words and places, simplified Chinese -> the English words the lists use.
CHINESE_TERMS: dict[str, tuple[str, ...]] = {
    "科技": ("technology",),
    "技术": ("technology",),
    "信息": ("information",),
    "网络": ("network",),
    "智能": ("intelligent",),
    "人工智能": ("artificial", "intelligence"),
    "电子": ("electronics",),
    "微电子": ("microelectronics",),
    "研究所": ("research", "institute"),
    "研究院": ("research", "institute"),
    "研究": ("research",),
    "大学": ("university",),
    "学院": ("institute",),
    "开发": ("development",),
    "发展": ("development",),
    "云": ("cloud",),
    "计算": ("computing",),
    "计算机": ("computer",),
    "软件": ("software",),
    "数据": ("data",),
    "半导体": ("semiconductor",),
    "集成电路": ("integrated", "circuit"),
    "制造": ("manufacturing",),
    "国际": ("international",),
    "通信": ("communications",),
    "通讯": ("communications",),
    "数字": ("digital",),
    "视觉": ("vision",),
    "系统": ("systems",),
    "设备": ("equipment",),
    "工业": ("industry",),
    "产业": ("industry",),
    "投资": ("investment",),
    "贸易": ("trading",),
    "实业": ("industrial",),
    "中心": ("center",),
    "工程": ("engineering",),
    "航空": ("aviation",),
    "航天": ("aerospace",),
    "光电": ("optoelectronics",),
    "能源": ("energy",),
    "科学": ("science",),
    "先进": ("advanced",),
    "中国": ("china",),
    "电信": ("telecom",),
    "移动": ("mobile",),
    "银行": ("bank",),
    "物联网": ("iot",),
    "机器人": ("robotics",),
    "芯片": ("chip",),
    "微系统": ("microsystems",),
    "超级计算": ("supercomputing",),
    "服务器": ("server",),
    # Sector words of Chinese company names (as the lists translate them): read as the word, not as a
    # brand ("上海电气" is Shanghai Electric, nothing like "航天电器", Aerospace Electrical).
    # Directions the lists translate: 中国北方工业 is China North Industries (Norinco).
    "北方": ("north",),
    "电气": ("electric",),
    "电器": ("electrical",),
    "电力": ("power",),
    "汽车": ("automobile",),
    "船舶": ("shipbuilding",),
    "重工": ("heavy", "industries"),
    "机械": ("machinery",),
    "化工": ("chemical",),
    "石油": ("petroleum",),
    "石化": ("petrochemical",),
    "天然气": ("natural", "gas"),
    "钢铁": ("steel",),
    "建设": ("construction",),
    "建筑": ("construction",),
    "铁路": ("railway",),
    "物流": ("logistics",),
    "医药": ("pharmaceutical",),
    "生物": ("biotechnology",),
    "材料": ("materials",),
    "仪器": ("instruments",),
    "自动化": ("automation",),
    "安防": ("security",),
    "金融": ("financial",),
    "证券": ("securities",),
    "保险": ("insurance",),
    "北京": ("beijing",),
    "上海": ("shanghai",),
    "深圳": ("shenzhen",),
    "杭州": ("hangzhou",),
    "合肥": ("hefei",),
    "广州": ("guangzhou",),
    "天津": ("tianjin",),
    "成都": ("chengdu",),
    "重庆": ("chongqing",),
    "南京": ("nanjing",),
    "武汉": ("wuhan",),
    "西安": ("xian",),
    "苏州": ("suzhou",),
    "厦门": ("xiamen",),
    "香港": ("hongkong",),
    "澳门": ("macau",),
    # Countries and regions abroad, as a Chinese group names its units there: 中国电信(美洲)公司 is China Telecom
    # (Americas) Corporation, 中国移动(美国)有限公司 China Mobile (USA); read as the English place words.
    "美洲": ("americas",),
    "美国": ("usa",),
    "北美": ("north", "america"),
    "拉美": ("latin", "america"),
    "欧洲": ("europe",),
    "亚洲": ("asia",),
    "亚太": ("asia", "pacific"),
    "非洲": ("africa",),
    "英国": ("uk",),
    "德国": ("germany",),
    "法国": ("france",),
    "意大利": ("italy",),
    "西班牙": ("spain",),
    "荷兰": ("netherlands",),
    "俄罗斯": ("russia",),
    "日本": ("japan",),
    "韩国": ("korea",),
    "新加坡": ("singapore",),
    "马来西亚": ("malaysia",),
    "印度尼西亚": ("indonesia",),
    "泰国": ("thailand",),
    "越南": ("vietnam",),
    "澳大利亚": ("australia",),
    "加拿大": ("canada",),
    "巴西": ("brazil",),
    "墨西哥": ("mexico",),
    "南非": ("south", "africa"),
    "阿联酋": ("emirates",),
    "安徽": ("anhui",),
    "浙江": ("zhejiang",),
    "广东": ("guangdong",),
    "江苏": ("jiangsu",),
    "四川": ("sichuan",),
    "福建": ("fujian",),
    "山东": ("shandong",),
    "无锡": ("wuxi",),
    "青岛": ("qingdao",),
    "大连": ("dalian",),
    "长沙": ("changsha",),
    "郑州": ("zhengzhou",),
    "济南": ("jinan",),
    "海淀": ("haidian",),
    "中关村": ("zhongguancun",),
    "贵阳": ("guiyang",),
    "贵州": ("guizhou",),
    "宁波": ("ningbo",),
    "东莞": ("dongguan",),
}
# Words that say what or where a company is, not which one: rare on the lists, common among customers.
# Their weight is capped so that "Beijing Technology Development" alone does not resemble a listed name.
GENERIC_WORDS: frozenset[str] = frozenset(
    {w for words in CHINESE_TERMS.values() for w in words}
    | CHINESE_CITIES
    | {
        "technologies",
        "tech",
        "international",
        "global",
        "trading",
        "trade",
        "services",
        "service",
        "solutions",
        "systems",
        "industries",
        "industrial",
        "development",
        # sectors of banking, farming and education: "Savings Bank", "Agricultural Bank", "State University"
        "savings",
        "saving",
        "agricultural",
        "agriculture",
        "commercial",
        "cooperative",
        "credit",
        "college",
        "academy",
        "school",
        "hospital",
        "digital",
        "science",
        "sciences",
        "research",
        "institute",
        "university",
        "national",
        "china",
        "chinese",
        "american",
        "america",
        "russia",
        "russian",
        "iran",
        "europe",
        "european",
        "asia",
        "pacific",
        "general",
        "investment",
        "investments",
        "capital",
        "partners",
        "management",
        "consulting",
        "import",
        "export",
        "logistics",
        "shipping",
        "energy",
        "power",
        "electric",
        "electronic",
        "electronics",
        "software",
        "network",
        "networks",
        "data",
        "cloud",
        "computing",
        "intelligence",
        "ai",
        "labs",
        "lab",
        "new",
        "first",
        "united",
        "world",
        "city",
        "star",
        "smart",
        "info",
        "information",
        "media",
        "communications",
        "telecom",
        "bank",
        "financial",
        "finance",
        "insurance",
        "health",
        "medical",
        "pharmaceutical",
        "engineering",
        "construction",
        "machinery",
        "equipment",
        "materials",
        "chemical",
        "chemicals",
        "oil",
        "gas",
        "petroleum",
        "mining",
        "metals",
        "steel",
        "motor",
        "motors",
        "auto",
        "automotive",
        "aviation",
        "aerospace",
        "marine",
        "transport",
        "precision",
        "instruments",
        "devices",
        "device",
        "semiconductor",
        "semiconductors",
        "micro",
        "banco",
        "banca",
        "banque",
        "airways",
        "airlines",
        "airline",
        "air",
        "express",
        "telecommunications",
        "telecommunication",
        "innovation",
        "innovations",
        "cooperation",
        "robotics",
        "robot",
        "vision",
        "intelligent",
        "automation",
        "security",
        "defense",
        "defence",
        "industry",
        "company",
        "republic",
        "state",
        "islamic",
        "people",
        "peoples",
        # sector words in English and in the lists' transliteration of Russian: "Zala Aero", "Kazanskiy
        # vertoletny zavod" (helicopter plant), "Magnitogorskiy metallurgicheskiy kombinat", "SPB Birzha"
        "aero",
        "zavod",
        "kombinat",
        "exchange",
        "birzha",
        "fund",
        "fond",
    }
)
GENERIC_WEIGHT = 2.0
# Words of corporate structure: with a listed party's distinctive name they make an affiliate's name
# ("Hikvision USA", "SenseTime International Holdings", "Huawei Technologies Beijing Branch").
STRUCTURE_WORDS: frozenset[str] = frozenset(
    {
        "subsidiary",
        "branch",
        "affiliate",
        "division",
        "office",
        "representative",
        "agency",
        "unit",
        "factory",
        "plant",
        "center",
        "centre",
        "overseas",
        "worldwide",
        "regional",
        "local",
        "operations",
        # a Russian group's sales arm (торговый дом, "Trading House"): what a member is, not which group. (Not
        # "concern", концерн: as a common word it weighs too little in "Kalashnikov Concern" beside a misspelt name.)
        "house",
    }
)

_PLACES_WITH_SUFFIX = {
    f"{place}{suffix}": words
    for place, words in CHINESE_TERMS.items()
    if words and words[0] in CHINESE_CITIES
    for suffix in ("市", "省", "区")
}
_SEGMENTS: dict[str, tuple[bool, tuple[str, ...]]] = {
    **{k: (True, v) for k, v in CHINESE_LEGAL_FORMS.items()},
    **{k: (False, v) for k, v in CHINESE_TERMS.items()},
    **{k: (False, v) for k, v in _PLACES_WITH_SUFFIX.items()},
}
_LONGEST = max(len(k) for k in _SEGMENTS)

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_JOINERS = re.compile(r"[.'’`´]")
_TOKEN = re.compile(r"[^\W_]+")
_ASPIRATION_MARK = re.compile(r"\b(ch|k|p|t|ts|tz)['’‘`](?=[a-z])")
_ASPIRATED = re.compile(r"\b(?:ch|k|p|t|ts|tz)['’‘`][a-z]+")  # Wade-Giles marks aspiration: "k'uang", "t'ung"
_T2S = opencc.OpenCC("t2s")
# A stock code in brackets after a name: "(002415.SZ)", "(SZ: 002415)", "（688256）", "[HKEX: 0020]".
_STOCK_CODE = re.compile(
    r"[(（\[]\s*(?:(?:SZ|SH|SS|SSE|SZSE|SEHK|HKEX|HK|NYSE|NASDAQ|TWSE|TPE|KRX|KOSDAQ|STAR|BJ|BSE)\s*[:：.]?\s*)?"
    r"(\d{4,6})(?:\s*\.\s*(?:SZ|SH|SS|HK|BJ|TW))?\s*[)）\]]",
    re.IGNORECASE,
)
# A ticker with its exchange in brackets ("(MOEX: SBER)", "(NYSE: CEO)", "(HKG: 0981)"), and a bare
# six-digit mainland code after a name ("海康威视 002415").
_TICKER = re.compile(
    r"[(（\[]\s*(?:MOEX|MCX|NYSE|NASDAQ|NYSEARCA|AMEX|OTC|OTCMKTS|HKG|HKEX|SEHK|LSE|LON|TSE|TYO|SSE|SZSE|"
    r"KRX|TWSE|FWB|XETRA|ETR|ASX|NSE|BSE|TADAWUL|TASE|SGX|EURONEXT)\s*[:：]\s*([A-Z0-9]{1,6}(?:\.[A-Z]{1,3})?)"
    r"\s*[)）\]]",
    re.IGNORECASE,
)
_BARE_CODE = re.compile(r"(?<=\S)\s+(\d{6})\s*$")
# The Persian ezafe written as a hyphenated ending ("Bank-e Melli-ye Iran", "Sherkat-e Naft"): a grammatical
# link between words, not a word of the name.
_EZAFE = re.compile(r"(?<=[a-z])-(?:ye|yi|e)\b")
# Multi-word legal forms of Russian companies as the lists translate them: "(open) joint stock company".
_JOINT_STOCK = frozenset({"open", "closed", "public", "private", "nonpublic"})
_ALL_PINYIN_SEGMENTS = 4  # "you xian gong si": up to four tokens make one pinyin term


@dataclass(frozen=True, slots=True)
class NormalizedName:
    """A name as the matcher sees it."""

    original: str
    strong: tuple[str, ...]  # distinctive tokens in canonical form, in the order written
    weak: tuple[str, ...]  # legal forms, filler words, single letters, stock codes
    key: str  # canonical form: strong tokens sorted, space separated
    notes: tuple[str, ...] = ()  # how it was produced, for the explanation of a hit
    display: tuple[str, ...] = ()  # the strong tokens as written (after transliteration), for people
    abjad: tuple[bool, ...] = ()  # per strong token: transliterated from a script without short vowels
    initials: tuple[str, ...] = ()  # a person's name written as initials and a surname ("V. V. Putin"): the initials

    @property
    def text(self) -> str:
        return " ".join(self.strong)

    @property
    def tokens(self) -> tuple[str, ...]:
        return self.strong + self.weak

    def shown(self, position: int) -> str:
        """The token at `position` as a person reads it."""
        return self.display[position] if self.display else self.strong[position]


# The háček letters of the scientific (ISO 9) transliteration of Cyrillic, and of Czech, Slovak and the South
# Slavic languages, spell the sounds English writes with two letters: "Burxanovič", "RŽD", "Ališer".
_HACEK = str.maketrans({"č": "ch", "š": "sh", "ž": "zh"})
# Latin letters that Unicode does not decompose into a base letter and a mark, so stripping accents leaves them as
# they are and the word splits at them ("Havacılık" into "havac", "lık"): the letters they are written for.
_UNDECOMPOSED = str.maketrans(
    {"ı": "i", "ł": "l", "ø": "o", "đ": "d", "ð": "d", "æ": "ae", "œ": "oe", "þ": "th", "ħ": "h", "ŧ": "t", "ŀ": "l"}
)


def fold(text: str) -> str:
    """NFKC, case-folded, accents stripped (č, š, ž written ch, sh, zh; ı, ł, ø, đ, æ as i, l, o, d, ae)."""
    if text.isascii():
        # Most names: NFKC and NFKD leave ASCII as it is and casefold() is lower() there.
        return text.lower()
    text = unicodedata.normalize("NFKC", text).casefold().translate(_HACEK)
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).translate(_UNDECOMPOSED)
    return unicodedata.normalize("NFC", stripped)


@functools.cache
def generic_words() -> frozenset[str]:
    """Canonical forms of the words that say what or where a company is, not which one."""
    return frozenset(canonical(w) for w in GENERIC_WORDS | place_words() | STRUCTURE_WORDS)


@functools.cache
def place_tokens() -> frozenset[str]:
    """Canonical forms of the words of place (countries, nationalities, regions, capitals, Chinese cities)."""
    return frozenset(canonical(w) for w in place_words())


# Words an affiliate's name adds to its parent's without naming another business.
_AFFILIATE_EXTRA = frozenset({"international", "global", "group", "holding", "holdings", "worldwide", "overseas"})


@functools.cache
def affiliate_words() -> frozenset[str]:
    """Canonical forms of place and corporate-structure words: what an affiliate's name adds to its parent's."""
    return frozenset(canonical(w) for w in place_words() | STRUCTURE_WORDS | _AFFILIATE_EXTRA)


@functools.cache
def _pinyin_terms() -> dict[str, tuple[bool, tuple[str, ...]]]:
    """Pinyin of the Chinese company words and legal forms ("keji", "youxiangongsi") → their list form."""
    terms: dict[str, tuple[bool, tuple[str, ...]]] = {}
    for chinese, found in _SEGMENTS.items():
        if len(chinese) >= 2 and chinese not in _PLACES_WITH_SUFFIX:
            syllables = "".join(s for s in lazy_pinyin(chinese) if s.isalpha())
            terms.setdefault(syllables, found)
    for place in CHINESE_CITIES:
        terms.pop(place, None)  # a city stays a city
    return terms


@functools.cache
def _pinyin_term_starts() -> frozenset[str]:
    """Every beginning of a pinyin term (`_pinyin_terms`): a token that is none begins no term."""
    return frozenset(term[:k] for term in _pinyin_terms() for k in range(len(term) + 1))


def _singular(token: str) -> str:
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    # Not -es: "Thales", "Hermes", "Torres" are names (and the -es plurals the lists use are common words).
    if len(token) > 4 and token.endswith("s") and not token.endswith(("ss", "us", "is", "os", "as", "es")):
        return token[:-1]
    return token


@functools.lru_cache(maxsize=200_000)
def canonical(token: str) -> str:
    """The form two spellings of one word share: singular, romanisation variants folded."""
    if token.isdigit():
        return token
    return fold_variants(_singular(token))


@functools.lru_cache(maxsize=65536)
def _pinyin(run: str) -> tuple[str, ...]:
    # (Remembered: a brand or a place between the terms of a name comes back in other names, listed and screened.)
    syllables = [s for s in lazy_pinyin(run) if s.isalnum()]
    if len(syllables) <= 4:
        # A brand is written as one word in the lists' romanisations (Shangtang, Xunfei).
        return ("".join(syllables),) if syllables else ()
    return tuple("".join(syllables[i : i + 2]) for i in range(0, len(syllables), 2))


def _segment_chinese(run: str) -> tuple[list[str], list[str]]:
    """Greedy longest match against terms and legal forms; other runs become joined pinyin."""
    strong: list[str] = []
    weak: list[str] = []
    pending = ""
    i = 0
    while i < len(run):
        for size in range(min(_LONGEST, len(run) - i), 0, -1):
            piece = run[i : i + size]
            found = _SEGMENTS.get(piece)
            if found is not None:
                if pending:
                    strong.extend(_pinyin(pending))
                    pending = ""
                is_weak, words = found
                (weak if is_weak else strong).extend(words)
                i += size
                break
        else:
            pending += run[i]
            i += 1
    if pending:
        strong.extend(_pinyin(pending))
    return strong, weak


# Two or three initials, each with its full stop, and one word: a person written the way Russian and many other
# usages write a name ("V. V. Putin", "Putin V.V.", "Putin, V. V."). Without the full stops, letters are an acronym.
# Before the surname, one initial too ("N. Maduro"), and two surnames, the Spanish order ("J. G. Tapia Quintero").
_SURNAME_WORD = r"[^\W\d_][^\W\d_'-]*(?:['-][^\W\d_]+)*"
_INITIALS_FIRST = re.compile(
    rf"\s*(?P<initials>(?:[A-Za-z]\.\s*){{1,3}})(?P<name>(?=[^\W\d_]{{3}}){_SURNAME_WORD}(?:\s+{_SURNAME_WORD})?)\s*"
)
_INITIALS_LAST = re.compile(r"\s*(?P<name>[A-Za-z][A-Za-z'-]{2,}),?\s+(?P<initials>(?:[A-Za-z]\.\s*){2,3})\s*")


@dataclass(frozen=True)
class PersonInitials:
    """A person written as initials and a surname: the initials in lower case, and the surname as written."""

    letters: tuple[str, ...]
    surname: str


def person_initials(text: str) -> PersonInitials | None:
    """The initials and surname of "V. V. Putin", "Putin V.V." or "Putin, V. V.", or None.

    Firms' names have the same shape ("CIMEX, S.A.", "Siemens A.G.", "A.S.P. Builders"): the matcher reads such a
    name both ways and takes only listed persons from this reading (`ScreeningIndex.screen`)."""
    found = _INITIALS_FIRST.fullmatch(text) or _INITIALS_LAST.fullmatch(text)
    if found is None:
        return None
    return PersonInitials(tuple(re.findall(r"[a-z]", found.group("initials").lower())), found.group("name"))


def _latin_tokens(text: str) -> list[str]:
    """Words of Latin text: places written split joined ("hang zhou"), initials joined ("z t e" → "zte")."""
    tokens = _TOKEN.findall(_JOINERS.sub("", _EZAFE.sub("", text.replace("&", " and "))))
    return ["".join(tokens[i:j]) for i, j in _word_spans(tokens)]


def _latin_hyphens(text: str) -> list[bool]:
    """Per word of `_latin_tokens(text)`: whether a hyphen joins it to the next one ("I-t'u", "Wang-lo")."""
    text = _JOINERS.sub("", _EZAFE.sub("", text.replace("&", " and ")))
    matches = list(_TOKEN.finditer(text))
    hyphen = [text[m.end() : m.end() + 1] == "-" for m in matches]
    return [hyphen[j - 1] for _, j in _word_spans([m.group() for m in matches])]


def _word_spans(tokens: list[str]) -> list[tuple[int, int]]:
    """Which tokens make one word: a place written split, a run of initials; every other token alone."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(tokens):
        if i + 1 < len(tokens) and tokens[i] + tokens[i + 1] in CHINESE_CITIES:
            j = i + 2
        elif len(tokens[i]) == 1 and i + 1 < len(tokens) and len(tokens[i + 1]) == 1 and tokens[i].isalpha():
            j = i
            while j < len(tokens) and len(tokens[j]) == 1 and tokens[j].isalpha():
                j += 1
        else:
            j = i + 1
        spans.append((i, j))
        i = j
    return spans


def _pinyin_words(tokens: list[str]) -> tuple[list[tuple[str, bool]], list[str]]:
    """Pinyin company words and legal forms ("keji", "you xian gong si") into their list form.

    Returns (token, is_weak) pairs and the pinyin that was mapped, for the explanation."""
    if _pinyin_term_starts().isdisjoint(tokens):
        return [(token, False) for token in tokens], []  # (most names: no term begins at any of their words)
    terms = _pinyin_terms()
    n = len(tokens)
    # The split that reads the most syllables as terms, then the fewest terms: "ji suan ji shu" is jisuan +
    # jishu (computing technology), not jisuanji (computer) + shu, which the longest first match would take.
    best: list[tuple[int, int, int]] = [(0, 0, 0)] * (n + 1)  # (-syllables in terms, terms, size) from i on
    for i in range(n - 1, -1, -1):
        options = [(best[i + 1][0], best[i + 1][1], 1)]
        for size in range(min(_ALL_PINYIN_SEGMENTS, n - i), 0, -1):
            if "".join(tokens[i : i + size]) in terms:
                after = best[i + size]
                options.append((after[0] - size, after[1] + 1, size))
        best[i] = min(options)
    out: list[tuple[str, bool]] = []
    mapped: list[str] = []
    i = 0
    while i < n:
        size = best[i][2]
        found = terms.get("".join(tokens[i : i + size]))
        if found is not None:
            is_weak, words = found
            out.extend((w, is_weak) for w in words)
            mapped.append(" ".join(tokens[i : i + size]))
        else:
            out.append((tokens[i], False))
        i += size
    return out, mapped


# Legal forms in Persian and Arabic script, as their transliterated consonants: شرکت / شركة (company), سهامی
# (joint-stock; عام "public" and خاص "private" are one letter once transliterated), با مسئولیت محدود and المحدودة
# (limited liability), گروه and مجموعة / مجموعه (group), هلدینگ (holding).
_ABJAD_LEGAL_FORMS = frozenset(
    {"shrkt", "shrkh", "shmy", "khs", "msywlyt", "mhdwd", "mhdwdh", "lmhdwdh", "grwh", "mjmwh", "hldyng"}
)
# Persian words of trade that the lists translate (پتروشیمی زاگرس is ZAGROS PETROCHEMICAL, کشتیرانی والفجر VALFAJR
# SHIPPING), as their transliterated consonants: read as the English word, not as a rare word of its own that sinks
# the score. Words the lists keep transliterated (نفت naft, بانک bank by its consonants) are not here; بیمه is, as
# the lists translate it as often as they write BIMEH (beside an English alias that the reading finds). Nor is
# هواپیمایی (airline): the enrichment alias هواپیمایی ماهان would then be Mahan alone, which a single Persian word of
# the same consonants (مهان) must not be. Not صنعتی (industrial): سنتی (traditional) has its consonants.
_ABJAD_TRADE_WORDS = {
    "ptrwshymy": "petrochemical",  # پتروشیمی
    "kshtyrny": "shipping",  # کشتیرانی
    "sny": "industries",  # صنایع
    "dnshgh": "university",  # دانشگاه
    "mhndsy": "engineering",  # مهندسی: مهندسی سپاسد is SEPASAD ENGINEERING
    "mshwr": "consulting",  # مشاور: مهندسی مشاور مهاب قدس is MAHAB GHODSS CONSULTING ENGINEERING
    "mwssh": "institute",  # موسسه: موسسه مهندسی فاطر is FATER ENGINEERING INSTITUTE
    "shymyyy": "chemical",  # شیمیایی: صنایع شیمیایی پارچین is PARCHIN CHEMICAL INDUSTRIES
    "dryyy": "marine",  # دریایی: صنایع دریایی ایران is IRAN MARINE INDUSTRIAL
    "bymh": "insurance",  # بیمه: بیمه ایران is IRAN INSURANCE COMPANY, شرکت بیمه معلم MOALLEM INSURANCE CO.
    # Arabic words of institutions the lists translate (جمعية القرض الحسن is AL-QARD AL-HASSAN ASSOCIATION, المصرف
    # التجاري السوري COMMERCIAL BANK OF SYRIA), the article already split off. حركة (movement) is not here: the lists
    # keep it transliterated (HARAKAT AL-NUJABA).
    "jmyh": "association",  # جمعية
    "msrf": "bank",  # مصرف
    "mrkz": "center",  # مركز / مرکز
    "wzrh": "ministry",  # وزارة
    "tjry": "commercial",  # تجاري
}
# Persian and Arabic words of institutions as they are romanised ("Sazman-e Sanaye-e Defa", "Niru-ye Qods",
# "al-Masraf al-Tijari"), read as the English the lists translate them into (DEFENSE INDUSTRIES ORGANIZATION, QODS
# FORCE, COMMERCIAL BANK); canonical forms, listed names and queries alike. Words the lists keep transliterated
# (melli, naft, markazi, which is also a province) are not here.
_ROMANISED_WORDS = {
    "sazman": "organization",
    "sazeman": "organization",
    "sanaye": "industries",
    "sanayeh": "industries",
    "vezarat": "ministry",
    "wizarat": "ministry",
    "niru": "force",
    "niroo": "force",
    "defa": "defense",
    "ettelaat": "intelligence",
    "masraf": "bank",
    "tijari": "commercial",
}
_FOLDED_LEGAL_FORMS = frozenset(canonical(form) for form in LEGAL_FORMS if len(form) >= FOLD_FROM)
_LONG_LEGAL_FORMS = (
    "limited",
    "company",
    "corporation",
    "incorporated",
    "enterprises",
    "holdings",
    "compania",
    "compagnie",
    "companhia",
)
# The Russian ones, compared in their folded form: "akcionernyj" (joint-stock, of a bank), "otverstvennostyu".
_LONG_RUSSIAN_FORMS = tuple(
    fold_variants(form) for form in ("obshchestvo", "aktsionernoe", "ogranichennoy", "otvetstvennostyu")
)


@functools.lru_cache(maxsize=100_000)
def _is_weak(token: str) -> bool:
    if token in LEGAL_FORMS or token in STOPWORDS or (len(token) == 1 and not token.isdigit()):
        return True
    if len(token) >= FOLD_FROM and canonical(token) in _FOLDED_LEGAL_FORMS:
        return True  # a legal form in another romanisation: "akcionernoe", "obshhestvo", "publichnoje"
    # A misspelt legal form ("Limtied", "Corporaion") is still a legal form.
    if len(token) >= 6 and any(token[0] == form[0] and OSA.distance(token, form) <= 2 for form in _LONG_LEGAL_FORMS):
        return True
    # ... and so is "group" with one letter dropped, added, changed or swapped ("Inspur Grop Co., Ltd."): a short
    # word, so one edit only, the first letter kept.
    if 4 <= len(token) <= 6 and token[0] == "g" and OSA.distance(token, "group", score_cutoff=1) <= 1:
        return True
    if len(token) < 9 or token[0] not in "oa":
        return False
    folded = canonical(token)
    return any(folded[0] == form[0] and OSA.distance(folded, form) <= 2 for form in _LONG_RUSSIAN_FORMS)


def _joint_stock_pair(first: str, second: str) -> bool:
    """ "joint stock", one of the two words possibly misspelt by a letter, not the first ("joint stokc", "jiont stock";
    not "point stock")."""
    if (first, second) == ("joint", "stock"):
        return True
    if first == "joint":
        return second[:1] == "s" and len(second) >= 4 and OSA.distance(second, "stock", score_cutoff=1) <= 1
    return (
        second == "stock" and first[:1] == "j" and len(first) >= 4 and OSA.distance(first, "joint", score_cutoff=1) <= 1
    )


def _limited_liability(first: str, second: str) -> bool:
    """ "limited liability", either word possibly misspelt by a letter or two, not the first ("limited liabiilty",
    "limted liability"; not "limited reliability")."""
    if (first, second) == ("limited", "liability"):
        return True
    return (
        first[:1] == "l"
        and second[:1] == "l"
        and len(first) >= 6
        and len(second) >= 7
        and OSA.distance(first, "limited", score_cutoff=2) <= 2
        and OSA.distance(second, "liability", score_cutoff=2) <= 2
    )


def _joint_stock(pairs: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """ "(Open / public / closed) joint stock" is a legal form, like the "JSC", "OAO" and "PAO" it spells out; so
    is "limited liability" (company), the "LLC" and "OOO" it spells out."""
    words = [t for t, _ in pairs]
    if "joint" not in words and "stock" not in words and not any(w[:1] == "l" and len(w) >= 7 for w in words[1:]):
        return pairs
    out = list(pairs)
    for i in range(1, len(words)):
        if _limited_liability(words[i - 1], words[i]):
            out[i] = (words[i], True)
    for i in range(len(words) - 1):
        if _joint_stock_pair(words[i], words[i + 1]):
            out[i] = (words[i], True)
            out[i + 1] = (words[i + 1], True)
            if i > 0 and words[i - 1] in _JOINT_STOCK:
                out[i - 1] = (words[i - 1], True)
    return out


class _Builder:
    """Collects a name's tokens with their canonical form, display form and origin."""

    def __init__(self) -> None:
        self.strong: list[str] = []
        self.display: list[str] = []
        self.abjad: list[bool] = []
        self.weak: list[str] = []
        self.notes: list[str] = []

    def latin(self, text: str, abjad: bool = False) -> None:
        if not text.strip():
            return
        tokens = _latin_tokens(text)
        if not abjad:
            aspirated = frozenset(_JOINERS.sub("", w) for w in _ASPIRATED.findall(text))
            # Which tokens carry the apostrophe, position by position: "K'ung" is kong, "Kung" in the same
            # name gong.
            marked = _latin_tokens(_ASPIRATION_MARK.sub(r"\1q", text)) if aspirated else []
            at = [m != t for m, t in zip(marked, tokens, strict=True)] if len(marked) == len(tokens) else None
            converted, changed = wade_giles_to_pinyin(tokens, aspirated, at)
            if changed:
                self.notes.append(f"Wade-Giles read as pinyin: {' '.join(tokens)} → {' '.join(converted)}")
                # Wade-Giles joins the syllables of one word with hyphens ("I-t'u", "Wang-lo"): one word again.
                hyphens = _latin_hyphens(text)
                if len(hyphens) == len(converted):
                    words = [converted[0]]
                    for k in range(1, len(converted)):
                        if hyphens[k - 1]:
                            words[-1] += converted[k]
                        else:
                            words.append(converted[k])
                    converted = words
                tokens = _latin_tokens(" ".join(converted))  # "bei jing" → "beijing"
        pairs, mapped = _pinyin_words(tokens)
        if mapped:
            self.notes.append(f"pinyin company words read as their list form: {', '.join(mapped)}")
        pairs = _joint_stock(pairs)
        for token, is_weak in pairs:
            if is_weak or _is_weak(token) or (abjad and token in _ABJAD_LEGAL_FORMS):
                self.weak.append(token)
            elif abjad and token in _ABJAD_TRADE_WORDS:
                english = _ABJAD_TRADE_WORDS[token]
                self.notes.append(f"read as its English: {token} → {english}")
                self.add(canonical(english), token)
            elif not abjad and token in _ROMANISED_WORDS:
                english = _ROMANISED_WORDS[token]
                self.notes.append(f"read as its English: {token} → {english}")
                self.add(canonical(english), token)
            else:
                # An abjad's consonant skeleton is compared by skeleton, so it is kept as transliterated.
                self.add(token if abjad else canonical(token), token, abjad)

    def add(self, token: str, shown: str, abjad: bool = False) -> None:
        self.strong.append(token)
        self.display.append(shown)
        self.abjad.append(abjad)

    def chinese(self, run: str) -> None:
        strong, weak = _segment_chinese(run)
        for token in strong:
            self.add(canonical(token), token)
        self.weak.extend(weak)

    def other_script(self, run: str) -> None:
        script = script_of(run)
        read = run
        if script == "ARABIC":
            read = _arabic_article(run) if _PERSIAN_ONLY.isdisjoint(run) else run.translate(_PERSIAN_SOUNDS)
        latin = to_latin(read).lower()
        self.notes.append(f"transliterated from {script.title()}: {run.strip()} → {latin.strip()}")
        self.latin(latin, abjad=script in ABJADS)


# Letters only Arabic writes (ta marbuta, alef maqsura, Arabic yeh and kaf; hamza seats are folded away before) and
# letters only Persian writes (pe, che, zhe, gaf, Persian kaf and yeh): a run with none of the second is read as
# Arabic when it has one of the first or more than one word.
_ARABIC_ONLY = frozenset("ةىيك")
_PERSIAN_ONLY = frozenset("پچژگکی")
# Persian reads the Arabic letters ض ذ ظ as z and ث as s, and the lists romanise Iranian names so (رضوی is RAZAVI,
# مستضعفان MOSTAZAFAN, ذوالفقار ZOLFAGHAR); a transliteration as Arabic (d, dh, th) shares no consonant with those.
_PERSIAN_SOUNDS = str.maketrans({"ض": "ز", "ذ": "ز", "ظ": "ز", "ث": "س"})
# The article ال (and وال, "and the") written onto an Arabic word of two letters or more; not الله (God), one word
# that the lists write joined ("HIZBALLAH", "ANSARALLAH").
_ARABIC_ARTICLE = re.compile(r"(?<![^\s(])(و?)ال(?=[^\W\d_]{2})(?!له(?![^\W\d_]))")


def _arabic_article(run: str) -> str:
    """An Arabic run with its article split off as the lists write it: الأسد is AL-ASSAD, "al" + "sd", not one word
    "lsd" whose consonants no listed word has. Persian text keeps ال, which there begins words (البرز Alborz), and so
    does a single word without a letter only Arabic writes."""
    if _PERSIAN_ONLY.isdisjoint(run) and (not _ARABIC_ONLY.isdisjoint(run) or len(run.split()) > 1):
        return _ARABIC_ARTICLE.sub(lambda m: ("و " if m.group(1) else "") + "al ", run)
    return run


# Cyrillic and Greek letters that look like Latin ones (after case folding), as they turn up inside Latin words
# ("Rosteleсom" with a Cyrillic с), by mistake of a keyboard or to slip past a screen.
_LOOKALIKES = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
        "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ү": "y",
        "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
        "χ": "x", "η": "h", "μ": "m", "ζ": "z",
    }
)  # fmt: skip
# A word with both Latin letters and Cyrillic or Greek ones.
_MIXED_WORD = re.compile(r"(?=[^\W\d_]*[a-z])(?=[^\W\d_]*[\u0370-\u03ff\u0400-\u04ff\u0500-\u052f])[^\W\d_]+")


# The soft and hard signs as the romanisations of Cyrillic write them inside a word (ʹ ʺ ’ ” " ′ ″: "Promsvjazʹbank",
# "Obʺedinennaja", "Ob"edinennaia"), the Ukrainian and Belarusian apostrophe (ʼ), and BGN/PCGN's middle dot
# ("V·eB"): read as the apostrophe, which joins a word, not as a break between two words.
_SIGN_MARKS = re.compile(r"(?<=[^\W\d_])[ʹʺʼʻ’”″′\"·](?=[^\W\d_])")


def _latin_lookalikes(word: re.Match[str]) -> str:
    return word.group().translate(_LOOKALIKES)


@functools.lru_cache(maxsize=65536)
def simplified(text: str) -> str:
    """Chinese text in simplified script (traditional characters converted)."""
    return _to_simplified(text)


@functools.cache
def _t2s_changes() -> tuple[frozenset[str], dict[str, tuple[str, ...]]] | None:
    """What `_T2S` can change: the characters its tables convert, and the phrases they convert by their first
    character (entries that map a word onto itself change nothing). None where the tables are not as expected."""
    _T2S.convert("")  # (the tables load on first use)
    chars: set[str] = set()
    phrases: dict[str, list[str]] = {}
    try:
        for group in _T2S._dict_chain_data:  # (opencc's pure-Python tables: groups of (max, min, dict))
            for _, _, table in group if isinstance(group, list) else [group]:
                for key, value in table.items():
                    if key == value:
                        continue
                    if len(key) == 1:
                        chars.add(key)
                    elif key:
                        phrases.setdefault(key[0], []).append(key)
    except (AttributeError, TypeError, ValueError):
        return None
    return frozenset(chars), {first: tuple(found) for first, found in phrases.items()}


def _to_simplified(text: str) -> str:
    """`_T2S.convert(text)`, without the conversion where none of its entries is in the text: most Chinese names are
    written in simplified script already, and opencc's pure-Python conversion walks every substring of every run.
    (A text none of whose entries match comes back as it is: only a match changes it.)"""
    changes = _t2s_changes()
    if changes is not None:
        chars, phrases = changes
        if chars.isdisjoint(text) and not any(
            phrase in text for first in set(text).intersection(phrases) for phrase in phrases[first]
        ):
            return text
    return str(_T2S.convert(text))


# Names whose normalisation is remembered: the index's build normalises every listed name and alias (about 50,000
# with the bundled lists), and a query written as listed, a name screened again, or the parts the rules normalise
# (a listed individual's surname, the words after a Chinese brand) then cost a look-up. The results are frozen (tuples
# of strings), so one object can serve every caller.
NORMALIZED_REMEMBERED = 131_072


@functools.lru_cache(maxsize=NORMALIZED_REMEMBERED)
def normalize_name(name: str) -> NormalizedName:
    """Normalise a party name (any script) into strong and weak tokens with a canonical key."""
    b = _Builder()
    text = name
    codes = _STOCK_CODE.findall(text) + _TICKER.findall(text)
    if codes:
        text = _TICKER.sub(" ", _STOCK_CODE.sub(" ", text))
        b.notes.append(f"stock code in brackets set aside: {', '.join(codes)}")
    bare = _BARE_CODE.search(text)
    if bare:
        codes.append(bare.group(1))
        text = text[: bare.start()]
        b.notes.append(f"stock code after the name set aside: {bare.group(1)}")
    folded = fold(text)
    if "\u200c" in folded:
        # Persian joins the parts of a compound with a zero-width non-joiner (حزب‌الله, قرض‌الحسنه), which many write
        # as a space: the parts are words, as they are where a space is written.
        folded = folded.replace("\u200c", " ")
    if '"' in folded or not folded.isascii():
        folded = _SIGN_MARKS.sub("'", folded)
    if not folded.isascii():
        plain = _MIXED_WORD.sub(_latin_lookalikes, folded)
        if plain != folded:
            b.notes.append(f"Cyrillic or Greek lookalikes inside Latin words read as Latin letters: {plain}")
            folded = plain
    if _CJK.search(folded):
        simplified = _to_simplified(folded)
        if simplified != folded:
            b.notes.append(f"traditional Chinese converted to simplified: {folded} → {simplified}")
        position = 0
        for match in _CJK.finditer(simplified):
            _rest(b, simplified[position : match.start()])
            b.chinese(match.group())
            position = match.end()
        _rest(b, simplified[position:])
        b.notes.append(f"transliterated from Chinese: {name.strip()} → {' '.join(b.display + b.weak)}")
    else:
        _rest(b, folded)
    b.weak.extend(codes)
    strong, display, abjad, weak = b.strong, b.display, b.abjad, b.weak
    if not strong:
        # A name made only of common words ("Group Co., Ltd.") is still a name.
        strong = [canonical(w) for w in weak]
        display, abjad, weak = list(weak), [False] * len(weak), []
    return NormalizedName(
        original=name,
        strong=tuple(strong),
        weak=tuple(weak),
        key=" ".join(sorted(strong)),
        notes=tuple(b.notes),
        display=tuple(display),
        abjad=tuple(abjad),
    )


def _rest(b: _Builder, text: str) -> None:
    """Text outside Chinese runs: Latin as it is, any other script transliterated run by run."""
    if text.isascii():
        b.latin(text)
        return
    # Split into runs of another script (with the spaces inside them) and the ASCII text between them.
    ascii_text: list[str] = []
    for run in re.findall(r"[^\x00-\x7f]+(?:[\s\-]+[^\x00-\x7f]+)*|.", text):
        if run.isascii():
            ascii_text.append(run)
        else:
            b.latin("".join(ascii_text))
            ascii_text.clear()
            b.other_script(run)
    b.latin("".join(ascii_text))


# Spellings of one sound in the romanisations a listed name and a query may use, tried on a query word that
# no listed name contains (never on one the lists know): the scientific/ISO 9 transliteration of Cyrillic
# (х as x, й as j, ю/я as ju/ja: "Rostex", "Rossijskij", "JuTejr"), the initial iotated vowel written with i
# ("Iurii", "Iakov"), French spellings of Russian, Arabic and Persian names ("Loukachenko", "Djamil"), the
# Persian initial e for Arabic i ("Eslami"), and the ending of a Russian name (-ii, -iy, -ij, -y, -i).
_SPELLING_REWRITES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("x as kh", re.compile(r"x"), "kh"),
    ("dj as j", re.compile(r"dj"), "j"),
    ("j as y", re.compile(r"j"), "y"),
    ("j as i", re.compile(r"j"), "i"),  # as anyascii writes Cyrillic ю, я, й: "Iu", "Ia", "i"
    ("initial i as y", re.compile(r"^i(?=[aeou])"), "y"),
    ("ch as sh", re.compile(r"ch"), "sh"),
    ("initial e as i", re.compile(r"^e(?=[^aeiou])"), "i"),
    ("gh as q", re.compile(r"gh"), "q"),  # Persian ق and غ: "Ghods" / "Qods", "Eqtesad" / "Eghtesad"
    ("q as gh", re.compile(r"q"), "gh"),
    ("j as zh", re.compile(r"j"), "zh"),  # French and Telegram's ж: "Prigojine", "jeleznye"
    ("gu as g", re.compile(r"gu(?=[ei])"), "g"),  # French "Evguenii", "Serguei"
    ("final -ine as -in", re.compile(r"(?<=[a-z]{3})ine$"), "in"),  # French "Prigojine", "Narychkine"
    # German writes ж as sch, as it writes ш ("Prigoschin", "Schukow"): the fold reads sch as sh; here zh.
    ("sch as zh", re.compile(r"sch"), "zh"),
    # Arabic and Persian vowels as the two romanise them: Arabic i and u where Persian writes e and o ("Qasim" /
    # "Qasem", "Hussein" / "Hossein", "Suleimani" / "Soleimani"), in a name's last and first syllables.
    ("i as e", re.compile(r"(?<=[a-z]{2}[^aeiouy])i(?=[^aeiouy]$)"), "e"),
    ("u as o", re.compile(r"^([^aeiouy]{1,2})u(?=[^aeiouy])"), r"\1o"),
    # ... and the other way in the last syllable: Persian e where the lists write Arabic i ("Tareq" / TARIQ). (Not o as
    # u in the first: Korean "Jong" is not "Jung".) Not in an English word: `ScreeningIndex.spelling_matches`.
    ("e as i", re.compile(r"(?<=[a-z]{2}[^aeiouy])e(?=[^aeiouy]$)"), "i"),
    # German writes Russian з as s before a vowel ("Sjuganow" ZYUGANOV, "Sacharowa" ZAKHAROVA): in a word that has
    # German's w or j for в, й, ю, я (not "Sauer", "Sarah" or "Said", which are not Zauer, Zarah or Zaid).
    ("initial s as z", re.compile(r"^s(?=[aeiouyj])(?=[a-z]*[wj])"), "z"),
)
# Letters each rewrite needs in a word to apply at all, in the order of _SPELLING_REWRITES.
_REWRITE_NEEDS = ("x", "dj", "j", "j", "i", "ch", "e", "gh", "q", "j", "gu", "ine", "sch", "i", "u", "e", "s")
# (German and French write -ий as a bare -i after a consonant: "Jewgeni", "Arkadi", "Guennadi".)
_RUSSIAN_ENDING = re.compile(r"(?<=[a-z]{2})(?:ii|iy|ij|yi|yj|(?<=[^aeiouy])i)$")
# A word none of the rewrites applies to (most words) is passed over at once.
_REWRITTEN = re.compile(
    r"x|j|q|gh|ch|gu[ei]|^i[aeou]|^e[^aeiou]|^[^aeiouy]{1,2}u[^aeiouy]|^s[aeiouy][a-z]*w"
    r"|(?:ii|iy|ij|yi|yj|ine|[^aeiouy]i|[ie][^aeiouy])$"
)
_MAX_SPELLINGS = 24


def spelling_variants(token: str, pinyin_too: bool = False) -> tuple[tuple[str, str], ...]:
    """Canonical forms of other romanisations of a word as written (`display`), each with what was read
    differently; the word's own canonical form is not among them. A word that is also pinyin has none unless
    `pinyin_too` (the name it is in is no Chinese one: German "Juri" is ju + ri)."""
    return _spellings_pinyin_too(token) if pinyin_too else _spellings(token)


# Remembered by the word alone, one cache for each reading: keys of plain words leave the collector nothing to walk (see
# `romanize.joined`). Room for every listed word as written, about 27,000, which the index works out as it is built,
# and the queries'.
@functools.lru_cache(maxsize=100_000)
def _spellings(token: str) -> tuple[tuple[str, str], ...]:
    return _spelling_variants(token, False)


@functools.lru_cache(maxsize=50_000)
def _spellings_pinyin_too(token: str) -> tuple[tuple[str, str], ...]:
    return _spelling_variants(token, True)


def _spelling_variants(token: str, pinyin_too: bool) -> tuple[tuple[str, str], ...]:
    if len(token) < 4 or not token.isascii() or not token.isalpha() or _REWRITTEN.search(token) is None:
        return ()
    if not pinyin_too and is_pinyin(token):
        return ()  # pinyin's x, j, ch and -i are its own letters ("xinjiang", "changchi")
    forms: dict[str, tuple[str, ...]] = {token: ()}
    for (what, pattern, replacement), needs in zip(_SPELLING_REWRITES, _REWRITE_NEEDS, strict=True):
        for form, how in list(forms.items()):
            if needs not in form:
                continue  # (the rewrite cannot apply: a substring test is cheaper than the regex)
            changed = pattern.sub(replacement, form)
            if changed != form and changed not in forms and len(forms) < _MAX_SPELLINGS:
                forms[changed] = (*how, what)
    for form, how in list(forms.items()):
        for ending in ("i", "y"):  # "-ii", "-iy", "-ij": "Iurii", "Dmitrij" as Yuri, Dmitry
            changed = _RUSSIAN_ENDING.sub(ending, form)
            if changed != form and changed not in forms:
                forms[changed] = (*how, f"ending as -{ending}")
    own = canonical(token)
    out: dict[str, str] = {}
    for form, how in forms.items():
        key = canonical(form)
        if key != own and key not in out:
            out[key] = f"{token} read as {form} ({', '.join(how)})"
    return tuple(out.items())
