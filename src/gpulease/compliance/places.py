"""Words of place: countries, their other spellings, nationalities, capitals, provinces and regions.

They say where a company is, not which company it is: "Hikvision USA", "SenseTime Hong Kong", "Russian
Sberbank". Taken from `countryinfo` (country names, alternative spellings, demonyms, capitals, provinces),
plus the Chinese cities that Chinese company names start with.
"""

from __future__ import annotations

import functools
import re

from countryinfo import all_countries

# Latin spellings of Chinese places written split ("Hang Zhou") are joined, as the lists write them.
CHINESE_CITIES: frozenset[str] = frozenset(
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
        "xinjiang",
        "kowloon",
    }
)
# Provinces and capitals are read for these countries only: where listed parties and the customers who
# resemble them are. Elsewhere provinces are often surnames or words ("Brent", "Meta", "Aurora").
PROVINCES_OF = frozenset(
    {
        "CN", "HK", "MO", "TW", "RU", "BY", "UA", "IR", "IQ", "SY", "KP", "AF", "PK", "AE", "SA", "TR", "VE",
        "CU", "MM", "KZ", "KG", "UZ", "TJ", "TM", "AZ", "AM", "GE", "LB", "YE", "LY",
    }
)  # fmt: skip
# Short forms the country data lacks.
_EXTRA = ("usa", "us", "uk", "uae", "prc", "dprk", "hk", "eu", "emea", "apac", "asia", "europe", "america", "hongkong",
          # regions a foreign subsidiary is named after ("... Middle East FZE", "... Asia Pacific Pte. Ltd.")
          "middle", "pacific", "eurasia", "latam", "nordic", "nordics", "benelux", "gulf", "mena", "cis",
          # countries in their own languages where the country data lacks them ("Huawei Technologies Italia S.r.l.")
          "italia", "espana", "ceska", "cesko", "slovensko", "latvija", "lietuva", "hellas", "deutschland",
          "osterreich", "schweiz", "suisse", "hrvatska", "srbija", "eesti", "magyarorszag", "mexico",
          # Myanmar's own adjective, as its state enterprises write it ("Myanma Oil and Gas Enterprise")
          "myanma")  # fmt: skip
_WORD = re.compile(r"[a-z]+")


def _names(country: object, method: str) -> list[str]:
    try:
        value = getattr(country, method)()
    except Exception:  # countryinfo raises on fields a territory lacks
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value or ()]


def _alpha2(country: object) -> str | None:
    try:
        codes = country.iso()  # type: ignore[attr-defined]
    except Exception:  # countryinfo raises on fields a territory lacks
        return None
    return str(codes.get("alpha2")) if isinstance(codes, dict) else None


@functools.cache
def place_words() -> frozenset[str]:
    """Lower-case ASCII words of place: every word of a country's names, single-word capitals and provinces."""
    words: set[str] = set(_EXTRA) | CHINESE_CITIES
    for country in all_countries():
        for method in ("name", "alt_spellings", "demonym", "region", "subregion"):
            for name in _names(country, method):
                if name.isascii() and not (name.isupper() and len(name) <= 3):  # "AFG", "IRN": codes
                    words.update(w for w in _WORD.findall(name.lower()) if len(w) >= 3)
        if _alpha2(country) not in PROVINCES_OF:
            continue
        for method in ("capital", "provinces"):
            for name in _names(country, method):
                found = _WORD.findall(name.lower())
                # "Kohgiluyeh va Buyer Ahmad": only one-word names, so that "ahmad" stays a name.
                if name.isascii() and len(found) == 1 and len(found[0]) >= 3:
                    words.add(found[0])
    return frozenset(words - {"and", "the", "republic", "islands"})
