"""Derive the traditional-script and pinyin forms of a verified simplified Chinese name, for a curator to review.

Not product logic. A curator who has verified a simplified legal name from a public source runs:

    python src/gpulease/data/lists/enrichment/tools/derive_forms.py "杭州 海康威视 数字 技术 股份 有限 公司"

Spaces mark word boundaries (they are removed from the Chinese forms); each word becomes one pinyin word, the
way OFAC writes Chinese company names ("... Keji Youxian Gongsi"). The output is a suggestion: check every
polyphonic character (长 chang/zhang, 重 zhong/chong, 行 hang/xing ...) and prefer a traditional name the
company itself registered (Hong Kong companies, HKEX-listed issuers) over the conversion.
"""

from __future__ import annotations

import sys

import opencc
from pypinyin import Style, lazy_pinyin, load_phrases_dict

# Conventional spellings that differ from plain pinyin (陕西 is written Shaanxi to keep it apart from 山西 Shanxi).
_SPELLINGS = {"陕西": "Shaanxi"}

# Readings pypinyin gets wrong in company and place names; each entry was checked by hand.
load_phrases_dict(
    {
        "长光": [["cháng"], ["guāng"]],
        "长征": [["cháng"], ["zhēng"]],
        "长城": [["cháng"], ["chéng"]],
        "长沙": [["cháng"], ["shā"]],
        "长春": [["cháng"], ["chūn"]],
        "重工": [["zhòng"], ["gōng"]],
        "重机": [["zhòng"], ["jī"]],
        "重型": [["zhòng"], ["xíng"]],
        "银行": [["yín"], ["háng"]],
        "航天": [["háng"], ["tiān"]],
        "中航": [["zhōng"], ["háng"]],
        "厦门": [["xià"], ["mén"]],
        "成都": [["chéng"], ["dū"]],
        "洪都": [["hóng"], ["dū"]],
    }
)

_TO_HANT = opencc.OpenCC("s2tw")


def traditional(simplified: str) -> str:
    """Traditional form (OpenCC s2tw: character conversion, no vocabulary change), spaces removed."""
    return str(_TO_HANT.convert(simplified.replace(" ", "")))


def pinyin(spaced: str) -> str:
    """One capitalised pinyin word per space-separated Chinese word; brackets kept."""
    words = []
    for word in spaced.replace("(", " ( ").replace(")", " ) ").split():
        if word in {"(", ")"}:
            words.append(word)
            continue
        if word in _SPELLINGS:
            words.append(_SPELLINGS[word])
            continue
        syllables = lazy_pinyin(word, style=Style.NORMAL, errors="default", v_to_u=False)
        # A syllable starting with a, o or e inside a word takes an apostrophe: Xi'an, Gong'an, Weiwu'er.
        joined = syllables[0] + "".join(("'" + s if s[:1] in "aoe" else s) for s in syllables[1:])
        words.append(joined.capitalize())
    return " ".join(words).replace("( ", "(").replace(" )", ")")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    spaced = " ".join(argv)
    print(f"Hans   {spaced.replace(' ', '')}")
    print(f"Hant   {traditional(spaced)}")
    print(f"pinyin {pinyin(spaced)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
