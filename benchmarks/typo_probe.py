"""Typo probe: keyboard typos in the most distinctive word of listed names, and of unlisted look-alikes.

    .venv/bin/python benchmarks/typo_probe.py [--parties 400] [--seed 917305] [--show-misses 40]

1. Takes the server's index (`screening.server_index`, built from a seeded store as `gpulease serve` builds it) and
   a fixed-seed sample of listed parties of the kinds the evaluation set covers: Chinese and Hong Kong companies on
   the CMIC list and the Entity List, Russian and Iranian SDN companies, and SDN individuals (Russia, Iran, China).
2. For each party, its primary name and up to two Latin aliases; in each, the most distinctive word (the highest
   index weight of its canonical token, five letters or more, letters only); one variant with one keyboard typo and
   one with two, each typo drawn from: a QWERTY neighbour for a letter, a letter deleted, a letter inserted (a
   neighbour of the one before), two adjacent letters swapped, a letter doubled. Typos may hit the first letter.
   Two more sets, each from a random stream of its own (so the first two sets stay as they were drawn before):
   "two words", one typo of those kinds in the most distinctive word and one in the next (five letters or more);
   "recipe", the evaluation set's own generator (`tools/build_listed.typo`: the longest word that is no legal form
   or place, one or two edits inside it, its first letter kept), one and two edits.
3. Screens each variant with `compliance.screening.screen_name` (POST /screen's function): found when a hit at or
   above the review threshold is the party's entry. Recall by set, typo kind, the word's length, the first letter;
   and for the case that matters most, a word of eight letters or more with one or two typos, the rest as written.
4. The same typos on unlisted names (the dev half of unlisted.csv and dev_extra.csv's unlisted rows; the most
   distinctive word by the same weights): a false positive is a decision other than cleared (a namesake row
   reviewed as a namesake aside); also counted apart among the names the matcher clears as written.

The seed is the probe's own (no other script uses it); the variants do not depend on the matcher.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "data" / "screening_eval" / "tools"))

import build_listed  # (the evaluation set's build: its typo generator)
from screening import (
    DEFAULT_EVAL,
    _is_namesake_review,
    half,
    read_eval,
    read_extra,
    seeded_store,
    server_index,
)

from gpulease.compliance.decide import Thresholds
from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.model import ListEntry
from gpulease.compliance.normalize import generic_words, normalize_name, place_tokens
from gpulease.compliance.screening import screen_name

SEED = 917305
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_AT = {ch: (r, c) for r, row in enumerate(_ROWS) for c, ch in enumerate(row)}
NEIGHBOURS = {
    ch: "".join(
        other
        for other, (r2, c2) in _AT.items()
        if other != ch and abs(r2 - r) <= 1 and abs((c2 + 0.5 * r2) - (c + 0.5 * r)) <= 1.0
    )
    for ch, (r, c) in _AT.items()
}
KINDS = ("neighbour", "delete", "insert", "transpose", "double")
_WORD = re.compile(r"[A-Za-z]+")
MIN_LETTERS = 5
LONG_WORD = 8  # a typo of a word this long, the rest as written: the case that matters most


@dataclass(frozen=True)
class Variant:
    query: str
    word: str  # the word as written before the typos (the most distinctive one of two)
    kinds: tuple[str, ...]
    first_letter: bool  # a typo at the word's first letter
    set: str = ""  # "one", "two", "two words", "recipe one", "recipe two"


def one_typo(word: str, kind: str, rng: random.Random) -> tuple[str, int] | None:
    """`word` with one typo of `kind`, and its position; None where the kind does not apply."""
    n = len(word)
    if kind == "neighbour":
        pos = rng.randrange(n)
        near = NEIGHBOURS.get(word[pos].lower())
        if not near:
            return None
        letter = rng.choice(near)
        letter = letter.upper() if word[pos].isupper() else letter
        return word[:pos] + letter + word[pos + 1 :], pos
    if kind == "delete":
        pos = rng.randrange(n)
        return word[:pos] + word[pos + 1 :], pos
    if kind == "insert":
        pos = rng.randrange(n + 1)
        near = NEIGHBOURS.get(word[max(pos - 1, 0)].lower())
        if not near:
            return None
        letter = rng.choice(near)
        letter = letter.upper() if word.isupper() else letter
        return word[:pos] + letter + word[pos:], pos
    if kind == "transpose":
        pos = rng.randrange(n - 1)
        if word[pos].lower() == word[pos + 1].lower():
            return None
        return word[:pos] + word[pos + 1] + word[pos] + word[pos + 2 :], pos
    pos = rng.randrange(n)  # double
    return word[: pos + 1] + word[pos] + word[pos + 1 :], pos


def ranked_words(index: ScreeningIndex, name: str) -> list[tuple[int, int]]:
    """Spans of the name's words (MIN_LETTERS letters or more, ASCII letters), the most distinctive first: the
    highest index weight, a place or a common word ("China", "Telecom", "Group") after the others."""
    found: list[tuple[bool, float, int, int]] = []
    for m in _WORD.finditer(name):
        word = m.group()
        if len(word) < MIN_LETTERS:
            continue
        strong = normalize_name(word).strong
        if len(strong) != 1:
            continue  # a legal form or filler word
        token = strong[0]
        own = token not in generic_words() and token not in place_tokens()
        found.append((own, index.weight(token), m.start(), m.end()))
    # (sorted is stable: of equal weights, the first written first)
    return [(start, end) for _, _, start, end in sorted(found, key=lambda k: (not k[0], -k[1]))]


def distinctive_word(index: ScreeningIndex, name: str) -> tuple[int, int] | None:
    """Span of the name's most distinctive word (`ranked_words`), if any."""
    ranked = ranked_words(index, name)
    return ranked[0] if ranked else None


def typed(word: str, count: int, rng: random.Random) -> tuple[str, tuple[str, ...], bool] | None:
    """`word` with `count` typos of KINDS, their kinds and whether one hit the first letter; None where it could not
    be done in twenty draws (a kind that does not apply is drawn again)."""
    for _ in range(20):
        out, kinds, first = word, [], False
        for _ in range(count):
            kind = rng.choice(KINDS)
            done = one_typo(out, kind, rng)
            if done is None:
                break
            out, pos = done
            kinds.append(kind)
            first = first or pos == 0
        if len(kinds) == count and out.lower() != word.lower():
            return out, tuple(kinds), first
    return None


def variants(index: ScreeningIndex, name: str, rng: random.Random) -> list[Variant]:
    """One variant with one typo and one with two in the name's most distinctive word."""
    span = distinctive_word(index, name)
    if span is None:
        return []
    start, end = span
    word = name[start:end]
    out: list[Variant] = []
    for count, which in ((1, "one"), (2, "two")):
        done = typed(word, count, rng)
        if done is not None:
            out.append(Variant(name[:start] + done[0] + name[end:], word, done[1], done[2], which))
    return out


def two_word_variant(index: ScreeningIndex, name: str, rng: random.Random) -> list[Variant]:
    """One typo in the name's most distinctive word and one in the next; none where the name has one such word."""
    ranked = ranked_words(index, name)
    if len(ranked) < 2:
        return []
    spans = sorted(ranked[:2], reverse=True)  # (the later word first: the earlier span stays where it is)
    query, first = name, False
    kinds: list[str] = []
    for start, end in spans:
        done = typed(name[start:end], 1, rng)
        if done is None:
            return []
        query = query[:start] + done[0] + query[end:]
        kinds.extend(done[1])
        first = first or (done[2] and (start, end) == ranked[0])
    start, end = ranked[0]
    return [Variant(query, name[start:end], tuple(kinds), first, "two words")]


def recipe_variants(name: str, rng: random.Random) -> list[Variant]:
    """One and two edits by the evaluation set's own generator (`build_listed.typo`), where it finds a word."""
    out: list[Variant] = []
    for edits in (1, 2):
        query = build_listed.typo(name, rng, edits)
        if query is None:
            continue
        # The word it changed: the first that differs (the generator keeps the words' order and spacing).
        word = next((a for a, b in zip(name.split(" "), query.split(" "), strict=True) if a != b), "")
        word = "".join(_WORD.findall(word))
        out.append(Variant(query, word, ("recipe",) * edits, False, f"recipe {'one' if edits == 1 else 'two'}"))
    return out


def all_variants(index: ScreeningIndex, name: str, rngs: Sequence[random.Random]) -> list[Variant]:
    """Each set's variants of one name, each set from its own random stream (`rngs`: one, two words, recipe)."""
    return [
        *variants(index, name, rngs[0]),
        *two_word_variant(index, name, rngs[1]),
        *recipe_variants(name, rngs[2]),
    ]


def sample_parties(entries: Sequence[ListEntry], parties: int, rng: random.Random) -> list[ListEntry]:
    """Parties of the evaluation set's kinds, in fixed shares."""

    def has(entry: ListEntry, codes: set[str]) -> bool:
        return bool(codes & set(entry.countries))

    groups = {
        "cn_company": [
            e
            for e in entries
            if e.list in {"CMIC", "EL"} and e.type != "individual" and has(e, {"CN", "HK", "China", "Hong Kong"})
        ],
        "ru_company": [e for e in entries if e.list == "SDN" and e.type == "entity" and has(e, {"RU", "Russia"})],
        "ir_company": [e for e in entries if e.list == "SDN" and e.type == "entity" and has(e, {"IR", "Iran"})],
        "individual": [
            e for e in entries if e.list == "SDN" and e.type == "individual" and has(e, {"RU", "IR", "CN", "Russia"})
        ],
    }
    shares = {"cn_company": 0.35, "ru_company": 0.25, "ir_company": 0.25, "individual": 0.15}
    chosen: list[ListEntry] = []
    for group, pool in groups.items():
        pool = sorted(pool, key=lambda e: e.id)
        chosen.extend(rng.sample(pool, min(len(pool), round(parties * shares[group]))))
    return chosen


def _latin(name: str) -> bool:
    return name.isascii() and bool(_WORD.search(name))


@dataclass
class Count:
    n: int = 0
    ok: int = 0

    def __str__(self) -> str:
        return f"{self.ok / max(self.n, 1):6.3f} ({self.ok}/{self.n})"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--parties", type=int, default=400)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--show-misses", type=int, default=0, help="print this many misses and false positives")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    # (The two newer sets draw from streams of their own: the first two sets are as they were drawn before them.)
    rngs = [rng, random.Random(f"{args.seed}:two words"), random.Random(f"{args.seed}:recipe")]
    review = Thresholds().review
    loaded = read_eval(Path(DEFAULT_EVAL))
    if loaded is None:
        raise SystemExit(f"no evaluation set at {DEFAULT_EVAL}")
    _, unlisted_rows = loaded
    unlisted = [u for u in unlisted_rows if half(u) == "dev"]
    unlisted += read_extra(Path(DEFAULT_EVAL) / "dev_extra.csv")[1]
    with seeded_store() as data_dir:
        index = server_index(data_dir)
        entries = sorted(index.entries, key=lambda e: (e.list, e.id))
        parties = sample_parties(entries, args.parties, rng)
        by: dict[str, dict[str, Count]] = defaultdict(lambda: defaultdict(Count))
        misses: list[str] = []
        for entry in parties:
            names = [entry.name, *[a for a in entry.aliases if _latin(a)][:2]]
            for name in names:
                if not _latin(name):
                    continue
                for v in all_variants(index, name, rngs):
                    result = screen_name(index, v.query)
                    ok = result.decision != "cleared" and any(
                        h.hit.entry.id == entry.id and h.hit.list == entry.list and h.hit.score >= review
                        for h in result.hits
                    )
                    length = len(v.word)
                    band = "5-6" if length <= 6 else "7-8" if length <= 8 else "9+"
                    kind = v.kinds[0] if len(v.kinds) == 1 else "+".join(sorted(v.kinds))
                    keys = {"set": v.set}
                    if length >= LONG_WORD:
                        keys[f"{LONG_WORD}+ letters"] = v.set
                    if v.set in ("one", "two"):  # (the axes of the first two sets, as before the newer ones)
                        keys |= {
                            "all": "all",
                            "typos": v.set,
                            "kind": v.kinds[0] if len(v.kinds) == 1 else "two typos",
                            "letters": band,
                            "first letter": "first letter hit" if v.first_letter else "first letter kept",
                            "party": "individual" if entry.type == "individual" else entry.list,
                        }
                    for axis, key in keys.items():
                        c = by[axis][key]
                        c.n += 1
                        c.ok += ok
                    if not ok:
                        top = result.hits[0].hit if result.hits else None
                        got = f"{top.list} {top.matched_name!r} {top.score:.0f}" if top else "no hit"
                        misses.append(
                            f"[{v.set}] {v.query!r} ({kind}; {v.word}) for {entry.list} {entry.name!r}: {got}"
                        )
        fp = Count()
        fp_kind: dict[str, Count] = defaultdict(Count)
        fps: list[str] = []
        for u in unlisted:
            if not _latin(u.name):
                continue
            clean = screen_name(index, u.name, u.country)
            clean_ok = clean.decision == "cleared" or (u.category == "namesake" and _is_namesake_review(clean))
            for v in all_variants(index, u.name, rngs):
                result = screen_name(index, v.query, u.country)
                bad = result.decision != "cleared" and not (u.category == "namesake" and _is_namesake_review(result))
                groups = [fp, fp_kind[v.set]]
                if clean_ok:  # (a typo that stops a name the matcher clears as written)
                    groups.append(fp_kind["the name as written cleared"])
                for c in groups:
                    c.n += 1
                    c.ok += bad
                if bad:
                    top = result.hits[0].hit
                    fps.append(
                        f"[{v.set}] {v.query!r} ({u.category}) -> {result.decision}: {top.list} "
                        f"{top.matched_name!r}; as written: {clean.decision}"
                    )
    print(f"typo probe, seed {args.seed}: {len(parties)} listed parties; review threshold {review:g}")
    for axis in ("set", f"{LONG_WORD}+ letters", "all", "typos", "kind", "letters", "first letter", "party"):
        print(f"\nrecall by {axis}:" if axis != f"{LONG_WORD}+ letters" else f"\nrecall, a word of {axis}, by set:")
        for key, c in sorted(by[axis].items()):
            print(f"  {key:20} {c}")
    print(f"\nunlisted look-alikes (dev half + dev_extra, {len(unlisted)} rows): not cleared {fp}")
    for key, c in sorted(fp_kind.items()):
        print(f"  {key:28} {c}")
    if args.show_misses:
        print("\nmisses:")
        for line in misses[: args.show_misses]:
            print(f"  {line}")
        print("\nfalse positives:")
        for line in fps[: args.show_misses]:
            print(f"  {line}")


if __name__ == "__main__":
    main()
