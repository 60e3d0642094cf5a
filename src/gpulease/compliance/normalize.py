"""Names into comparable tokens: Unicode folding, legal forms as weak tokens, Chinese into pinyin + terms."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import opencc
from pypinyin import lazy_pinyin
from rapidfuzz.distance import OSA

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
        "group",
        "holding",
        "holdings",
        "enterprise",
        "enterprises",
        "establishment",
        "est",
        "firm",
    }
)
STOPWORDS: frozenset[str] = frozenset({"the", "of", "and", "de", "del", "la", "le", "el", "for", "y", "et"})

# Latin spellings of Chinese places written split ("Hang Zhou") are joined, as the lists write them.
JOINED_PLACES: frozenset[str] = frozenset(
    {
        "beijing",
        "shanghai",
        "shenzhen",
        "hangzhou",
        "hefei",
        "guangzhou",
        "tianjin",
        "chengdu",
        "chongqing",
        "nanjing",
        "wuhan",
        "xian",
        "suzhou",
        "xiamen",
        "hongkong",
        "anhui",
        "zhejiang",
        "guangdong",
        "jiangsu",
        "sichuan",
        "fujian",
        "shandong",
        "wuxi",
        "qingdao",
        "dalian",
        "changsha",
        "zhengzhou",
        "jinan",
        "haidian",
        "zhongguancun",
        "guiyang",
        "guizhou",
        "harbin",
        "shenyang",
        "kunming",
        "dongguan",
        "ningbo",
    }
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
    | JOINED_PLACES
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
        "semiconductor",
        "semiconductors",
        "micro",
    }
)
GENERIC_WEIGHT = 2.0

_PLACES_WITH_SUFFIX = {
    f"{place}{suffix}": words
    for place, words in CHINESE_TERMS.items()
    if words and words[0] in JOINED_PLACES
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
_T2S = opencc.OpenCC("t2s")


@dataclass(frozen=True, slots=True)
class NormalizedName:
    """A name as the matcher sees it."""

    original: str
    strong: tuple[str, ...]  # distinctive tokens, in the order written
    weak: tuple[str, ...]  # legal forms, filler words, single letters
    key: str  # canonical form: strong tokens sorted, space separated
    notes: tuple[str, ...] = ()  # how it was produced, for the explanation of a hit

    @property
    def text(self) -> str:
        return " ".join(self.strong)

    @property
    def tokens(self) -> tuple[str, ...]:
        return self.strong + self.weak


def fold(text: str) -> str:
    """NFKC, case-folded, accents stripped."""
    if text.isascii():
        # Most names: NFKC and NFKD leave ASCII as it is and casefold() is lower() there.
        return text.lower()
    text = unicodedata.normalize("NFKC", text).casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _pinyin(run: str) -> list[str]:
    syllables = [s for s in lazy_pinyin(run) if s.isalnum()]
    if len(syllables) <= 4:
        # A brand is written as one word in the lists' romanisations (Shangtang, Xunfei).
        return ["".join(syllables)] if syllables else []
    return ["".join(syllables[i : i + 2]) for i in range(0, len(syllables), 2)]


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


def _latin_tokens(text: str) -> list[str]:
    text = _JOINERS.sub("", text.replace("&", " and "))
    tokens = _TOKEN.findall(text)
    joined: list[str] = []
    i = 0
    while i < len(tokens):
        if i + 1 < len(tokens) and tokens[i] + tokens[i + 1] in JOINED_PLACES:
            joined.append(tokens[i] + tokens[i + 1])
            i += 2
        else:
            joined.append(tokens[i])
            i += 1
    return joined


_LONG_LEGAL_FORMS = ("limited", "company", "corporation", "incorporated", "enterprises", "holdings")


@functools.lru_cache(maxsize=100_000)
def _is_weak(token: str) -> bool:
    if token in LEGAL_FORMS or token in STOPWORDS or (len(token) == 1 and not token.isdigit()):
        return True
    # A misspelt legal form ("Limtied", "Corporaion") is still a legal form.
    return len(token) >= 6 and any(token[0] == form[0] and OSA.distance(token, form) <= 2 for form in _LONG_LEGAL_FORMS)


@functools.lru_cache(maxsize=65536)
def normalize_name(name: str) -> NormalizedName:
    """Normalise a party name (any script) into strong and weak tokens with a canonical key."""
    folded = fold(name)
    notes: list[str] = []
    strong: list[str] = []
    weak: list[str] = []
    if _CJK.search(folded):
        simplified = _T2S.convert(folded)
        if simplified != folded:
            notes.append(f"traditional Chinese converted to simplified: {folded} → {simplified}")
        position = 0
        for match in _CJK.finditer(simplified):
            for token in _latin_tokens(simplified[position : match.start()]):
                (weak if _is_weak(token) else strong).append(token)
            run_strong, run_weak = _segment_chinese(match.group())
            strong.extend(run_strong)
            weak.extend(run_weak)
            position = match.end()
        for token in _latin_tokens(simplified[position:]):
            (weak if _is_weak(token) else strong).append(token)
        notes.append(f"transliterated from Chinese: {name.strip()} → {' '.join(strong + weak)}")
    else:
        for token in _latin_tokens(folded):
            (weak if _is_weak(token) else strong).append(token)
    if not strong:
        # A name made only of common words ("Group Co., Ltd.") is still a name.
        strong, weak = weak, []
    return NormalizedName(
        original=name,
        strong=tuple(strong),
        weak=tuple(weak),
        key=" ".join(sorted(strong)),
        notes=tuple(notes),
    )
