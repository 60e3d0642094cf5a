"""Capacity calendar and placement: which GPUs a lease gets, and when it could start.

Times are integer epoch seconds; a window is half-open [start, end). An open-ended window (end None) is
stored as ending at OPEN_END. The server keeps one calendar per GPU model in memory for as long as it runs
(any number of models fit in one calendar), so the calendar is built to be changed in place:

    cal = CapacityCalendar(nodes)              # NodeViews; upsert_node / remove_node keep the inventory current
    cal.book(lease_id, gpus, start, end)       # all or nothing; DoubleBooking on any overlap
    cal.release(lease_id)                      # cancelled: the whole window is free again
    cal.truncate(lease_id, new_end)            # ended early or preempted
    cal.can_extend(lease_id, new_end)          # and extend(): a later end on the same GPUs
    cal.forget_ended(now)                      # drop bookings that are over (they never block a future window)
    cal.place(PlacementRequest(...))           # best fit, or Unplaceable carrying the earliest start that fits
    cal.earliest_placement(req, not_before)    # (start, Placement) of the earliest start that fits
    cal.longest_fit(model, k, start)           # the longest window k GPUs can have from `start`
    cal.longest_fits(model, start)             # the same for every single-node size at once
    cal.free_total(model, at)                  # free GPUs at one instant, O(log n) (free_now: per node too)
    cal.freed_by(model, after, gpus)           # when that many more GPUs will have been given back

    with cal.speculate() as spec:              # try things: a queue-head hold, tentative preemptions
        cal.book(HOLD, where.gpus, s, e)       #   (any of book/release/truncate/extend)
        placement = cal.place(req)
        ...                                    # leaving the block undoes them all, in reverse order,
        spec.keep()                            # unless keep() was called (an outer speculation may still
                                               # undo them); speculations nest
    cal.state                                  # an id that changes with every change of the bookings and
                                               # comes back when a speculation is rolled back

Placements can also keep off capacity set aside without booking it: `place(req, hold=Hold(gpus, s, e))`
(and `longest_fit(s)(..., hold)`) place exactly as if the hold were booked, touching nothing; the queue
uses it for its head's reservation in every scheduling pass.

Costs, for n bookings held. Every sorted sequence (per GPU, per node, per model) is a `_SortedInts`: one
plain list bisected in C up to 16,384 entries (per GPU and node; 1,024 for the model-wide lists, which
change with every booking), then blocks of bounded size with a Fenwick index. So book, release, truncate
and extend cost O(log n) per GPU touched and move a bounded number of entries, and while speculating
record one undo entry each: a speculation costs what its own changes cost and never copies the
calendar. A placement decision is two or three bisects per node of the model (the node-wide counts of
bookings bound its free GPUs, so most nodes are judged without looking at their GPUs) and stops at the
first perfect fit. Free GPUs of a model at an instant come from the model-wide lists in O(log n).

Earliest start (a refusal's "from when" answer, and the queue head's reservation) never walks bookings
one by one. When nothing on a node starts after t (a node of running leases), k GPUs are free once all
but n - k of its bookings have ended: one index. Otherwise each node keeps, rebuilt after a change to
that node only and when first needed, a summary of its gaps: the gaps of each GPU's timeline and of the
node's union of bookings, each with the longest gap from there on, so one lookup says "no gap of length
d after t" (the answer is then the end of its last booking) or leads to the first gap long enough. Nodes
are searched with the best start found so far as a limit; a k-GPU node request takes the k-th earliest
of its GPUs' starts until that is a fixed point; a multi-node request takes the whole-node starts the
same way and only then asks the best-fit packing whether the rest fits. Answers are remembered per
shape: asked again (a queue head, pass after pass), an answer whose GPUs are still free stands unless
capacity was given back since, and then only the nodes that gave some back are searched again.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from itertools import accumulate, chain, count, repeat
from operator import eq, sub

from gpulease.domain.inventory import MAX_GPUS_PER_NODE, NodeView

OPEN_END = 2**62  # "never ends": later than any real epoch second, still an int

_LOAD = 8192  # a node's or GPU's _SortedInts stays one plain list up to 2 * _LOAD entries, then splits
_MODEL_LOAD = 512  # the model-wide lists, changed with every booking and asked once per scheduling pass
_STATES = count(1)  # calendar state ids, never reused
_RESHAPES = [0]  # how many times any _SortedInts changed between one plain list and blocks


def iso_utc(t: int) -> str:
    """Epoch seconds as people read them in a message: ISO 8601 in UTC (2026-11-02T09:00:00Z)."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True, order=True)
class GpuRef:
    node_id: int
    index: int


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    gpu_model: str
    gpu_count: int
    start: int
    end: int | None

    @property
    def duration(self) -> int | None:
        return None if self.end is None else self.end - self.start


@dataclass(frozen=True, slots=True)
class Placement:
    gpus: tuple[GpuRef, ...]

    @property
    def node_ids(self) -> tuple[int, ...]:
        """The nodes used, in placement order, each once."""
        return tuple(dict.fromkeys(g.node_id for g in self.gpus))


@dataclass(frozen=True, slots=True)
class Hold:
    """Capacity kept for someone without booking it (the queue head's reservation in a scheduling pass):
    placements given a hold keep off its GPUs during [start, end)."""

    gpus: tuple[GpuRef, ...]
    start: int
    end: int  # OPEN_END when open-ended


@dataclass(frozen=True, slots=True)
class Booking:
    """One lease's hold on one GPU over [start, end)."""

    lease_id: int
    gpu: GpuRef
    start: int
    end: int  # OPEN_END when open-ended


class Unplaceable(Exception):
    """The request cannot be placed in its window. `code` is stable, `message` is for people."""

    def __init__(self, code: str, message: str, earliest_start: int | None = None) -> None:
        super().__init__(message)
        self.code = code  # unknown_model | too_large | no_capacity | bad_request
        self.message = message
        self.earliest_start = earliest_start


class DoubleBooking(Exception):
    """A booking would overlap another one on the same GPU."""


class _SortedInts:
    """A sorted multiset of ints with rank and positional queries.

    One plain list up to 2 * load entries, queried through C bisects bound to it (the fast path every
    realistic node and GPU takes); beyond that, blocks of at most 2 * load entries with a Fenwick tree
    over their sizes, so an insert or delete moves a bounded number of entries and a rank or a position
    costs O(log n) however large the set grows. Between changes, once as many queries as there are
    blocks have been answered, the blocks' offsets are also kept in a plain list (amortised, queries
    then skip the tree).
    """

    __slots__ = (
        "_blocks",
        "_load",
        "_maxes",
        "_n",
        "_offsets",
        "_stale",
        "_tree",
        "at",
        "flat",
        "rank_left",
        "rank_right",
    )

    def __init__(self, load: int = 0) -> None:
        self._load = load or _LOAD  # read at run time, so tests can shrink _LOAD
        self._n = 0
        self._single([])

    def _single(self, block: list[int]) -> None:
        _RESHAPES[0] += 1
        self.flat: list[int] | None = block
        """The one plain list, for callers that bisect it directly; None once split into blocks."""
        self._blocks = [block]
        self._maxes: list[int] = []  # last entry of each block (only with several blocks)
        self._tree: list[int] | None = None  # Fenwick tree of block sizes (only with several blocks)
        self._offsets: list[int] | None = None  # entries before each block, while no change was made
        self._stale = 0  # queries answered from the tree since the last change
        self.rank_left: Callable[[int], int] = partial(bisect_left, block)
        """How many entries are < x."""
        self.rank_right: Callable[[int], int] = partial(bisect_right, block)
        """How many entries are <= x."""
        self.at: Callable[[int], int] = block.__getitem__
        """The entry of rank i (negative i counts from the end)."""

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[int]:
        return chain.from_iterable(self._blocks)

    def to_list(self) -> list[int]:
        return self._blocks[0][:] if self._tree is None else list(chain.from_iterable(self._blocks))

    def _rank_left(self, x: int) -> int:
        b = bisect_left(self._maxes, x)
        if b == len(self._maxes):
            return self._n
        return self._prefix(b) + bisect_left(self._blocks[b], x)

    def _rank_right(self, x: int) -> int:
        b = bisect_right(self._maxes, x)
        if b == len(self._maxes):
            return self._n
        return self._prefix(b) + bisect_right(self._blocks[b], x)

    def _at(self, i: int) -> int:
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        if self._offsets is not None:
            b = bisect_right(self._offsets, i) - 1
            return self._blocks[b][i - self._offsets[b]]
        tree = self._tree
        assert tree is not None
        pos, step = 0, 1 << (len(tree) - 1).bit_length()
        while step:  # Fenwick descent: the most blocks whose sizes add up to <= i
            nxt = pos + step
            if nxt < len(tree) and tree[nxt] <= i:
                pos = nxt
                i -= tree[nxt]
            step >>= 1
        return self._blocks[pos][i]

    def add(self, x: int) -> None:
        blocks = self._blocks
        self._n += 1
        if self._tree is None:
            one = blocks[0]
            insort(one, x)
            if self._n > 2 * self._load:
                self._reshape([one[i : i + self._load] for i in range(0, len(one), self._load)])
            return
        b = min(bisect_right(self._maxes, x), len(blocks) - 1)
        block = blocks[b]
        insort(block, x)
        self._maxes[b] = block[-1]
        if len(block) > 2 * self._load:
            blocks[b : b + 1] = [block[: self._load], block[self._load :]]
            self._reshape(blocks)
        else:
            self._bump(b, 1)

    def add_many(self, x: int, count: int) -> None:
        """Add `count` entries equal to x."""
        if self._tree is None and self._n + count <= 2 * self._load:
            one = self._blocks[0]
            i = bisect_left(one, x)
            one[i:i] = [x] * count
            self._n += count
            return
        for _ in range(count):  # blocks: one at a time (the block may split)
            self.add(x)

    def remove_many(self, x: int, count: int) -> None:
        """Remove `count` entries equal to x; ValueError (and nothing removed) if there are fewer."""
        if self._tree is None:
            one = self._blocks[0]
            i = bisect_left(one, x)
            if i + count > len(one) or one[i + count - 1] != x:
                raise ValueError(f"{x} is not in the set {count} times")
            del one[i : i + count]
            self._n -= count
            return
        if count > 1 and self.rank_right(x) - self.rank_left(x) < count:
            raise ValueError(f"{x} is not in the set {count} times")
        for _ in range(count):
            self.remove(x)

    def remove(self, x: int) -> None:
        """Remove one entry equal to x; ValueError if there is none."""
        blocks = self._blocks
        b = 0 if self._tree is None else bisect_left(self._maxes, x)
        block = blocks[b] if b < len(blocks) else []
        i = bisect_left(block, x)
        if i == len(block) or block[i] != x:
            raise ValueError(f"{x} is not in the set")
        del block[i]
        self._n -= 1
        if self._tree is None:
            return
        if block:
            self._maxes[b] = block[-1]
            self._bump(b, -1)
        else:
            del blocks[b]
            self._reshape(blocks)

    def _reshape(self, blocks: list[list[int]]) -> None:
        if self._n <= self._load or len(blocks) == 1:
            self._single(list(chain.from_iterable(blocks)))
            return
        self._blocks = blocks
        self._maxes = [b[-1] for b in blocks]
        tree = [0] * (len(blocks) + 1)
        for i, block in enumerate(blocks, 1):
            tree[i] += len(block)
            j = i + (i & -i)
            if j < len(tree):
                tree[j] += tree[i]
        self._tree = tree
        self._offsets, self._stale = None, 0
        self.flat = None
        _RESHAPES[0] += 1
        self.rank_left, self.rank_right, self.at = self._rank_left, self._rank_right, self._at

    def _bump(self, b: int, delta: int) -> None:
        self._offsets, self._stale = None, 0
        tree = self._tree
        assert tree is not None
        i = b + 1
        while i < len(tree):
            tree[i] += delta
            i += i & -i

    def _prefix(self, b: int) -> int:
        """Entries in blocks before block b."""
        offsets = self._offsets
        if offsets is not None:
            return offsets[b]
        self._stale += 1
        if self._stale > len(self._blocks):  # a rebuild costs what the queries since the change cost
            self._offsets = offsets = [0, *accumulate(map(len, self._blocks))]
            return offsets[b]
        tree = self._tree
        assert tree is not None
        total = 0
        while b:
            total += tree[b]
            b -= b & -b
        return total


class _Gaps:
    """A frozen copy of one timeline (bookings that never overlap, or a node's union of bookings), for
    earliest-start searches: gap i runs from ends[i] to starts[i + 1]; `longest[i]` is the longest gap
    from i on, so one lookup tells whether any later gap is long enough."""

    __slots__ = ("ends", "longest", "starts")

    def __init__(self, starts: list[int], ends: list[int]) -> None:
        self.starts = starts
        self.ends = ends
        gaps = list(map(sub, starts[1:], ends[:-1]))
        self.longest = list(accumulate(reversed(gaps), max))[::-1]

    def fit(self, t: int, d: int, limit: int) -> int:
        """Earliest c >= t with no booking overlapping [c, c + d); some value >= limit if none is below it.

        A node's union works like one GPU: with independently sorted starts and ends, nothing is booked
        over [ends[i], starts[i + 1]) whenever that is not empty.
        """
        starts, ends = self.starts, self.ends
        j = bisect_right(ends, t)  # the first j bookings (in end order) are over by t
        m = len(starts)
        if j == m or starts[j] >= t + d:
            return t
        longest = self.longest
        i = j
        while i < m - 1 and longest[i] >= d:  # some gap from i on is long enough: go to the first one
            if ends[i] >= limit:
                return limit
            if starts[i + 1] - ends[i] >= d:
                return ends[i]
            i += 1
        return ends[m - 1]  # after the last end everything is free


class _Gpu:
    """One GPU's bookings: they never overlap, so sorted by start they are sorted by end too."""

    __slots__ = ("ends", "owner", "starts")

    def __init__(self) -> None:
        self.starts = _SortedInts()
        self.ends = _SortedInts()
        self.owner: dict[int, int] = {}  # start -> lease id

    def free(self, s: int, e: int) -> bool:
        # The last booking starting before e is the one that ends last among them: free iff it ends by s.
        fs = self.starts.flat  # starts and ends hold as many entries, so both are plain lists or neither
        if fs is not None:
            j = bisect_left(fs, e)
            return j == 0 or self.ends.flat[j - 1] <= s  # type: ignore[index]
        j = self.starts.rank_left(e)
        return j == 0 or self.ends.at(j - 1) <= s

    def holders(self, s: int, e: int) -> list[int]:
        """The leases holding this GPU at some time in [s, e)."""
        starts, owner = self.starts, self.owner
        return [owner[starts.at(i)] for i in range(self.ends.rank_right(s), starts.rank_left(e))]

    def free_until(self, t: int) -> int:
        """If the GPU is free at instant t, when its next booking starts (OPEN_END: never); else t."""
        j = self.ends.rank_right(t)
        if j == len(self.starts):
            return OPEN_END
        nxt = self.starts.at(j)
        return nxt if nxt > t else t


class _Node:
    """A node's GPUs plus the sorted starts and ends of every booking on it (for counts in two bisects)."""

    __slots__ = ("ends", "fe", "fs", "gpus", "n", "open", "per_gpu", "starts", "union", "view")

    def __init__(self, view: NodeView) -> None:
        self.view = view
        self.open = view.schedulable  # takes new placements
        self.n = view.gpu_count
        self.gpus = [_Gpu() for _ in range(view.gpu_count)]
        self.starts = _SortedInts()
        self.ends = _SortedInts()
        self.union: _Gaps | None = None  # gap summaries, rebuilt on demand after a change
        self.per_gpu: list[_Gaps] | None = None
        self.changed()

    def changed(self) -> None:
        """After a change of its bookings: summaries are stale, the plain lists may have become blocks."""
        self.union = None
        self.per_gpu = None
        # The node-wide lists bisected directly in the placement scan (None for a node with thousands of
        # bookings, whose lists are blocks); starts and ends hold as many entries, so both or neither.
        self.fs: list[int] | None = self.starts.flat
        self.fe: list[int] | None = self.ends.flat

    def overlapping(self, s: int, e: int) -> int:
        """How many bookings on this node overlap [s, e) (every booking ending by s also starts before e)."""
        fs = self.fs
        if fs is not None:
            return bisect_left(fs, e) - bisect_right(self.fe, s)  # type: ignore[arg-type]
        return self.starts.rank_left(e) - self.ends.rank_right(s)

    def busy_at(self, t: int) -> int:
        """GPUs held at instant t."""
        fs = self.fs
        if fs is not None:
            return bisect_right(fs, t) - bisect_right(self.fe, t)  # type: ignore[arg-type]
        return self.starts.rank_right(t) - self.ends.rank_right(t)

    def free_count(self, s: int, e: int) -> int:
        """GPUs with no booking overlapping [s, e): from the node-wide counts when they tell, else one by one."""
        ends_by_s = self.ends.rank_right(s)
        c = self.starts.rank_left(e) - ends_by_s
        if c == 0:
            return self.n
        if c == 1 or c == self.starts.rank_right(s) - ends_by_s:
            # one booking, or all of them hold the GPU at instant s: they sit on c distinct GPUs
            return self.n - c
        return self.count_free(s, e)

    def count_free(self, s: int, e: int) -> int:
        return sum(1 for g in self.gpus if g.free(s, e))

    def free_indices(self, s: int, e: int, ignore: frozenset[int] = frozenset()) -> list[int]:
        if self.overlapping(s, e) == 0:
            return list(range(self.n))
        if not ignore:
            return [i for i, g in enumerate(self.gpus) if g.free(s, e)]
        return [i for i, g in enumerate(self.gpus) if g.free(s, e) or ignore.issuperset(g.holders(s, e))]

    def usable(self, s: int, e: int, ignore: frozenset[int], held: frozenset[int]) -> list[int]:
        """Free GPUs over [s, e), counting `ignore`d leases as gone and `held` GPU indices as taken."""
        free = self.free_indices(s, e, ignore)
        return [i for i in free if i not in held] if held else free

    def union_gaps(self) -> _Gaps:
        if self.union is None:
            self.union = _Gaps(self.starts.to_list(), self.ends.to_list())
        return self.union

    def gpu_gaps(self) -> list[_Gaps]:
        """Each GPU's gap summary."""
        if self.per_gpu is None:
            self.per_gpu = [_Gaps(g.starts.to_list(), g.ends.to_list()) for g in self.gpus]
        return self.per_gpu

    def first_fit(self, k: int, t0: int, d: int, limit: int) -> int:
        """Earliest t >= t0 with k GPUs free over [t, t + d); some value >= limit if none is below it."""
        starts, ends = self.starts, self.ends
        if not len(starts) or starts.at(-1) <= t0:
            # Nothing starts after t0: k GPUs are free once all but n - k bookings have ended, whatever d is.
            i = len(ends) - 1 - (self.n - k)
            return t0 if i < 0 else max(t0, ends.at(i))
        if k == self.n:
            return self.union_gaps().fit(t0, d, limit)
        if self.n - self.overlapping(t0, t0 + d) >= k:  # a lower bound on its free GPUs says yes
            return t0
        # Each GPU's earliest start is a lookup in its gap summary; the node's answer is at least the
        # k-th smallest of them, so jump there and ask again until it stops moving.
        gaps = self.gpu_gaps()
        fits = [-1] * self.n
        t = t0
        while t < limit:
            for g, gg in enumerate(gaps):
                if fits[g] < t:
                    fits[g] = gg.fit(t, d, limit)
            nxt = sorted(fits)[k - 1]
            if nxt == t:
                return t
            t = nxt
        return t


@dataclass(slots=True)
class _Lease:
    gpus: tuple[GpuRef, ...]
    start: int
    end: int


@dataclass(slots=True)
class _Model:
    """Per GPU model: nodes by cluster, size limits."""

    clusters: dict[str, list[_Node]]
    biggest: int  # most GPUs on one node
    largest: int  # GPUs in the largest cluster
    total: int  # GPUs in all
    open_gpus: int  # GPUs on schedulable nodes


@dataclass(slots=True)
class _Earliest:
    """A remembered earliest_placement answer, and what tells whether it still holds."""

    not_before: int
    start: int  # OPEN_END: no start
    placement: Placement | None
    freed: int  # the stamp of the last "capacity given back" it had seen
    wholes: dict[str, list[int]]  # multi-node: per cluster and open node, a lower bound of its whole-node start


_EARLIEST_MEMO = 256  # earliest_placement answers remembered (the most recently used)
_FREED_LOG = 4096  # "capacity given back on node N" entries kept per model


class Speculation:
    """Handle of one `CapacityCalendar.speculate()` block."""

    __slots__ = ("kept",)

    def __init__(self) -> None:
        self.kept = False

    def keep(self) -> None:
        """Keep the changes made in the block (an enclosing speculation may still undo them)."""
        self.kept = True


_Undo = tuple[str, int, tuple[GpuRef, ...], int, int]  # (what to undo, lease, gpus, start, end)


class CapacityCalendar:
    """Every GPU's bookings over time, and the placement decisions made against them."""

    def __init__(self, nodes: Iterable[NodeView] = ()) -> None:
        self._nodes: dict[int, _Node] = {}
        self._leases: dict[int, _Lease] = {}
        # model -> clusters, limits; rebuilt lazily after inventory changes.
        self._models: dict[str, _Model] | None = None
        # model -> (starts, ends) of every booking on its schedulable nodes: free GPUs at an instant
        self._open_times: dict[str, tuple[_SortedInts, _SortedInts]] = {}
        self._inventory = next(_STATES)
        # model -> (stamps, node ids, oldest stamp still answerable): where capacity was given back, in order
        self._freed: dict[str, tuple[list[int], list[int], int]] = {}
        self._earliest: dict[tuple[str, int, int], _Earliest] = {}
        # model -> ((inventory, reshapes), every schedulable GPU's plain starts and ends lists)
        self._gpu_lists: dict[str, tuple[tuple[int, int], list[list[int]], list[list[int]]]] = {}
        self._undo: list[_Undo] | None = None
        self._state = next(_STATES)
        # Where ties between equally good nodes (and GPUs on a node) are broken, as a share of the way along each
        # list, in [0, 1): 0, the first in id order. Several processes placing on copies of one calendar without
        # seeing one another's bookings in flight each start from another share (two: 0 and 1/2), so they seldom
        # choose the same GPUs (which the store would refuse, one of each pair).
        self.spread = 0.0
        # (index, of how many): with several, this process's part of each cluster's nodes, where it places first.
        self.part = (0, 1)
        # Part and spread apply to requests that start before this instant (None: to all). The processes' bookings
        # meet where they all start now; a later window is placed as by one process (first fit in id order), since
        # two processes' future windows seldom overlap, and taking them from two places at once fragmented the
        # timeline: in vs_slurm.py's stream, 31 of 1,000 requests refused against 27 (docs/benchmarks.md).
        self.apart_until: int | None = None
        for node in nodes:
            self.upsert_node(node)

    @property
    def state(self) -> int:
        """Changes with every change of bookings or inventory; a rolled-back speculation restores it."""
        return self._state

    @property
    def inventory(self) -> int:
        """Changes with every change of the nodes (never reused, across calendars too)."""
        return self._inventory

    # ----- inventory -------------------------------------------------------------------------------
    def upsert_node(self, node: NodeView) -> None:
        """Add a node or update its state/cluster; a node holding bookings cannot change model or shrink."""
        self._no_speculation("change the inventory")
        old = self._nodes.get(node.id)
        if old is None:
            self._nodes[node.id] = _Node(node)
        else:
            if node.gpu_model != old.view.gpu_model and len(old.starts):
                raise ValueError(f"node {node.id} holds bookings; its GPU model cannot change")
            if node.gpu_count < old.n and any(len(g.starts) for g in old.gpus[node.gpu_count :]):
                raise ValueError(f"node {node.id} holds bookings on GPUs beyond {node.gpu_count}")
            if old.open != node.schedulable:
                self._count_open(old, +1 if node.schedulable else -1)
            if node.gpu_count > old.n:
                old.gpus.extend(_Gpu() for _ in range(node.gpu_count - old.n))
            del old.gpus[node.gpu_count :]
            old.view = node
            old.open = node.schedulable
            old.n = node.gpu_count
            old.changed()
        self._models = None
        self._state = self._inventory = next(_STATES)
        self._freed.clear()
        self._earliest.clear()

    def remove_node(self, node_id: int) -> set[int]:
        """Forget a node and every booking on it; returns the leases that had GPUs there."""
        self._no_speculation("change the inventory")
        node = self._nodes[node_id]
        if node.open:
            self._count_open(node, -1)
        del self._nodes[node_id]
        hit = {lid for g in node.gpus for lid in g.owner.values()}
        for lid in hit:
            lease = self._leases[lid]
            lease.gpus = tuple(g for g in lease.gpus if g.node_id != node_id)
            if not lease.gpus:
                del self._leases[lid]
        self._models = None
        self._state = self._inventory = next(_STATES)
        self._freed.clear()
        self._earliest.clear()
        return hit

    def node(self, node_id: int) -> NodeView:
        return self._nodes[node_id].view

    def nodes(self) -> list[NodeView]:
        return [n.view for n in self._nodes.values()]

    def _open_of(self, gpu_model: str) -> tuple[_SortedInts, _SortedInts]:
        times = self._open_times.get(gpu_model)
        if times is None:
            times = self._open_times[gpu_model] = (_SortedInts(_MODEL_LOAD), _SortedInts(_MODEL_LOAD))
        return times

    def _count_open(self, node: _Node, sign: int) -> None:
        """Add (+1) or take away (-1) the node's bookings in its model's counts of schedulable GPUs."""
        starts, ends = self._open_of(node.view.gpu_model)
        for s, e in zip(node.starts, node.ends, strict=True):  # multisets: the pairing does not matter
            if sign > 0:
                starts.add(s)
                ends.add(e)
            else:
                starts.remove(s)
                ends.remove(e)

    def _model(self, gpu_model: str) -> _Model | None:
        if self._models is None:
            buckets: dict[str, dict[str, list[_Node]]] = {}
            for nid in sorted(self._nodes):
                node = self._nodes[nid]
                buckets.setdefault(node.view.gpu_model, {}).setdefault(node.view.cluster, []).append(node)
            self._models = {
                m: _Model(
                    clusters=dict(sorted(cl.items())),
                    biggest=max(n.n for ns in cl.values() for n in ns),
                    largest=max(sum(n.n for n in ns) for ns in cl.values()),
                    total=sum(n.n for ns in cl.values() for n in ns),
                    open_gpus=sum(n.n for ns in cl.values() for n in ns if n.open),
                )
                for m, cl in buckets.items()
            }
        return self._models.get(gpu_model)

    def _model_names(self) -> list[str]:
        self._model("")
        assert self._models is not None
        return sorted(self._models)

    # ----- bookings --------------------------------------------------------------------------------
    def book(self, lease_id: int, gpus: Iterable[GpuRef], start: int, end: int | None) -> None:
        """Hold `gpus` for the lease over [start, end); all or nothing, DoubleBooking on any overlap."""
        refs = tuple(gpus)
        e = OPEN_END if end is None else end
        if lease_id in self._leases:
            raise ValueError(f"lease {lease_id} is already booked; release or extend it instead")
        if not refs:
            raise ValueError("a booking needs at least one GPU")
        if e <= start:
            raise ValueError(f"a booking must end after it starts (start {start}, end {end})")
        if len(set(refs)) != len(refs):
            raise ValueError(f"lease {lease_id} names the same GPU twice")
        for g in refs:
            node = self._nodes.get(g.node_id)
            if node is None or not 0 <= g.index < node.n:
                raise ValueError(f"no GPU {g.index} on node {g.node_id}")
            if not node.gpus[g.index].free(start, e):
                other = node.gpus[g.index].holders(start, e)
                raise DoubleBooking(
                    f"GPU {g.index} of node {g.node_id} is already booked by lease(s) "
                    f"{sorted(other)} during [{start}, {end}); lease {lease_id} was not booked"
                )
        self._hold(lease_id, refs, start, e)
        if self._undo is not None:
            self._undo.append(("book", lease_id, refs, start, e))

    def release(self, lease_id: int) -> None:
        """Cancel: free all the lease's GPUs over its whole window. Unknown leases are ignored."""
        lease = self._leases.get(lease_id)
        if lease is None:
            return
        self._unhold(lease_id)
        if self._undo is not None:
            self._undo.append(("release", lease_id, lease.gpus, lease.start, lease.end))

    def truncate(self, lease_id: int, new_end: int) -> None:
        """Ended early or preempted: the GPUs are free from new_end on (before start: freed entirely)."""
        lease = self._leases[lease_id]
        if new_end >= lease.end:
            return
        if new_end <= lease.start:
            self.release(lease_id)
            return
        self._reend(lease_id, new_end)

    def can_extend(self, lease_id: int, new_end: int | None) -> bool:
        lease = self._leases[lease_id]
        e = OPEN_END if new_end is None else new_end
        if e <= lease.end:
            return True
        return all(self._nodes[g.node_id].gpus[g.index].free(lease.end, e) for g in lease.gpus)

    def extend(self, lease_id: int, new_end: int | None) -> None:
        """Move the lease's end later on the same GPUs; DoubleBooking if any of them is taken by then."""
        lease = self._leases[lease_id]
        e = OPEN_END if new_end is None else new_end
        if e < lease.end:
            raise ValueError("extend moves the end later; use truncate to shorten a lease")
        if e == lease.end:
            return
        if not self.can_extend(lease_id, new_end):
            raise DoubleBooking(f"lease {lease_id} cannot be extended to {new_end}: its GPUs are booked")
        self._reend(lease_id, e)

    def forget_ended(self, now: int) -> int:
        """Drop the bookings that ended by `now` (they cannot block any window from now on); how many.

        One pass over the leases: for a server to call now and then, not on every request.
        """
        over = [lid for lid, lease in self._leases.items() if lease.end <= now]
        for lid in over:
            self.release(lid)
        return len(over)

    def _reend(self, lease_id: int, e: int) -> None:
        lease = self._leases[lease_id]
        old = lease.end
        for g in lease.gpus:
            gpu = self._nodes[g.node_id].gpus[g.index]
            gpu.ends.remove(old)
            gpu.ends.add(e)
        for node, many in self._per_node(lease.gpus):
            node.ends.remove_many(old, many)
            node.ends.add_many(e, many)
            if node.open:
                times = self._open_times[node.view.gpu_model][1]
                times.remove_many(old, many)
                times.add_many(e, many)
            node.changed()
            if e < old:
                self._gave_back(node)
        lease.end = e
        self._state = next(_STATES)
        if self._undo is not None:
            self._undo.append(("reend", lease_id, lease.gpus, lease.start, old))

    def _per_node(self, refs: tuple[GpuRef, ...]) -> list[tuple[_Node, int]]:
        """Runs of `refs` on one node, with their lengths (so node-wide lists change once per run)."""
        runs: list[tuple[_Node, int]] = []
        prev, many = -1, 0
        for g in refs:
            if g.node_id != prev:
                if many:
                    runs.append((self._nodes[prev], many))
                prev, many = g.node_id, 0
            many += 1
        runs.append((self._nodes[prev], many))
        return runs

    def _hold(self, lease_id: int, refs: tuple[GpuRef, ...], s: int, e: int) -> None:
        nodes = self._nodes
        for g in refs:
            gpu = nodes[g.node_id].gpus[g.index]
            gpu.starts.add(s)
            gpu.ends.add(e)
            gpu.owner[s] = lease_id
        for node, many in self._per_node(refs):
            node.starts.add_many(s, many)
            node.ends.add_many(e, many)
            if node.open:
                starts, ends = self._open_of(node.view.gpu_model)
                starts.add_many(s, many)
                ends.add_many(e, many)
            node.changed()
        self._leases[lease_id] = _Lease(refs, s, e)
        self._state = next(_STATES)

    def _unhold(self, lease_id: int) -> None:
        lease = self._leases.pop(lease_id)
        s, e = lease.start, lease.end
        nodes = self._nodes
        for g in lease.gpus:
            gpu = nodes[g.node_id].gpus[g.index]
            assert gpu.owner.get(s) == lease_id, "calendar index out of step with its leases"
            gpu.starts.remove(s)
            gpu.ends.remove(e)
            del gpu.owner[s]
        for node, many in self._per_node(lease.gpus):
            node.starts.remove_many(s, many)
            node.ends.remove_many(e, many)
            if node.open:
                starts, ends = self._open_times[node.view.gpu_model]
                starts.remove_many(s, many)
                ends.remove_many(e, many)
            node.changed()
            self._gave_back(node)
        self._state = next(_STATES)

    def _gave_back(self, node: _Node) -> None:
        """Note that capacity on `node` was given back: a remembered earliest start may now be beaten there."""
        log = self._freed.get(node.view.gpu_model)
        if log is None:
            log = self._freed[node.view.gpu_model] = ([], [], 0)
        stamps, ids, floor = log
        if len(stamps) >= _FREED_LOG:
            half = len(stamps) // 2
            floor = stamps[half - 1]
            del stamps[:half], ids[:half]
            self._freed[node.view.gpu_model] = (stamps, ids, floor)
        stamps.append(next(_STATES))
        ids.append(node.view.id)

    def _freed_since(self, gpu_model: str, stamp: int) -> set[int] | None:
        """Nodes of the model given capacity back after `stamp`; None if that is too long ago to tell."""
        log = self._freed.get(gpu_model)
        if log is None:
            return set()
        stamps, ids, floor = log
        if stamp < floor:
            return None
        return set(ids[bisect_right(stamps, stamp) :])

    def _stamp(self, gpu_model: str) -> int:
        log = self._freed.get(gpu_model)
        return log[0][-1] if log and log[0] else (log[2] if log else 0)

    # ----- speculation -----------------------------------------------------------------------------
    @contextmanager
    def speculate(self) -> Iterator[Speculation]:
        """Changes made inside the block are undone on leaving it, unless `keep()` is called."""
        outer, saved = self._undo, self._state
        log: list[_Undo] = []
        self._undo = log
        spec = Speculation()
        try:
            yield spec
        finally:
            self._undo = None
            if spec.kept:
                if outer is not None:
                    outer.extend(log)
            else:
                for what, lease_id, gpus, start, end in reversed(log):
                    if what == "book":
                        self._unhold(lease_id)
                    elif what == "release":
                        self._hold(lease_id, gpus, start, end)
                    else:
                        self._reend(lease_id, end)
                self._state = saved
            self._undo = outer

    def _no_speculation(self, what: str) -> None:
        if self._undo is not None:
            raise RuntimeError(f"cannot {what} inside a speculation")

    # ----- queries ---------------------------------------------------------------------------------
    def free_gpus(self, node_id: int, start: int, end: int | None) -> list[int]:
        """Indices of the node's GPUs with no booking overlapping [start, end)."""
        return self._nodes[node_id].free_indices(start, OPEN_END if end is None else end)

    def leases_on(self, gpus: Iterable[GpuRef], start: int, end: int | None) -> set[int]:
        """Leases holding any of `gpus` at some time in [start, end)."""
        e = OPEN_END if end is None else end
        found: set[int] = set()
        for g in gpus:
            found.update(self._nodes[g.node_id].gpus[g.index].holders(start, e))
        return found

    def occupancy(self, node_id: int, start: int, end: int | None) -> list[frozenset[int]]:
        """Per GPU index of the node, the leases holding it at some time in [start, end)."""
        e = OPEN_END if end is None else end
        return [frozenset(g.holders(start, e)) for g in self._nodes[node_id].gpus]

    def bookings_of(self, lease_id: int) -> list[Booking]:
        lease = self._leases.get(lease_id)
        if lease is None:
            return []
        return [Booking(lease_id, g, lease.start, lease.end) for g in lease.gpus]

    def bookings(self) -> Iterator[Booking]:
        """Every booking, GPU by GPU in start order (for audits and property tests)."""
        for nid in sorted(self._nodes):
            for i, gpu in enumerate(self._nodes[nid].gpus):
                for s, e in zip(gpu.starts, gpu.ends, strict=True):
                    yield Booking(gpu.owner[s], GpuRef(nid, i), s, e)

    def lease_ids(self) -> list[int]:
        return list(self._leases)

    def reservation_count(self) -> int:
        """Per-GPU bookings held (a lease on 8 GPUs counts 8)."""
        return sum(len(n.starts) for n in self._nodes.values())

    def free_total(self, gpu_model: str, at: int) -> int:
        """Free GPUs of the model on schedulable nodes at instant `at`, in O(log n)."""
        model = self._model(gpu_model)
        if model is None:
            return 0
        times = self._open_times.get(gpu_model)
        return model.open_gpus - (0 if times is None else times[0].rank_right(at) - times[1].rank_right(at))

    def freed_by(self, gpu_model: str, after: int, gpus: int) -> int:
        """The instant by which bookings on the model's schedulable nodes ending after `after` have given
        back `gpus` GPUs (OPEN_END if they never do): no request needing that many more GPUs than are free
        at `after` can start before it."""
        if gpus <= 0:
            return after
        times = self._open_times.get(gpu_model)
        if times is None:
            return OPEN_END
        ends = times[1]
        i = ends.rank_right(after) + gpus - 1
        return ends.at(i) if i < len(ends) else OPEN_END

    def free_now(self, gpu_model: str, at: int) -> tuple[int, int, int]:
        """At instant `at`, on schedulable nodes: (free GPUs, most free on one node, idle nodes)."""
        total = most = idle = 0
        model = self._model(gpu_model)
        for nodes in model.clusters.values() if model else ():
            for node in nodes:
                if not node.open:
                    continue
                f = node.n - node.busy_at(at)
                total += f
                most = max(most, f)
                idle += f == node.n
        return total, most, idle

    def utilisation(self, start: int, end: int, gpu_model: str | None = None) -> float:
        """Booked GPU-seconds over available GPU-seconds in [start, end), over all nodes (or one model)."""
        cap = booked = 0
        for node in self._nodes.values():
            if gpu_model is not None and node.view.gpu_model != gpu_model:
                continue
            cap += node.n * (end - start)
            # The integral of "GPUs busy" over the window: each start adds from it to the end, each end
            # takes away from it (starts and ends are sorted apart, so only their sums are used).
            booked += sum(end - max(s, start) for s in node.starts if s < end)
            booked -= sum(end - max(e, start) for e in node.ends if e < end)
        return booked / cap if cap else 0.0

    # ----- placement -------------------------------------------------------------------------------
    def place(
        self,
        req: PlacementRequest,
        *,
        ignore_leases: frozenset[int] = frozenset(),
        explain: bool = True,
        hold: Hold | None = None,
    ) -> Placement:
        """Best-fit GPUs for the request's window; Unplaceable (with earliest_start when known) if none.

        `ignore_leases` places as if those leases were gone (preemption); `hold` keeps off capacity set
        aside without a booking (the refusal's explanation does not take it into account); explain=False
        skips working out the message and the earliest start when the caller only needs yes or no.
        """
        clusters, single = self._shape(req)
        e = OPEN_END if req.end is None else req.end
        if single:
            found = self._place_single(clusters, req.gpu_count, req.start, e, ignore_leases, hold)
        else:
            found = self._place_multi(clusters, req.gpu_count, req.start, e, ignore_leases, hold)
        if found is not None:
            return found
        if not explain:
            raise Unplaceable("no_capacity", f"{req.gpu_count} {req.gpu_model} GPU(s) do not fit now.")
        schedulable = [n for nodes in clusters.values() for n in nodes if n.open]
        later = self.earliest_start(req, req.start + 1) if schedulable else None
        where = (
            f"between {iso_utc(req.start)} and {'an open end' if req.end is None else iso_utc(req.end)}"
            if schedulable
            else "because no node with that model is available (all draining or down)"
        )
        free_total = self._free_in_window(req.gpu_model, schedulable, req.start, e)
        hint = f"; the earliest start that fits is {iso_utc(later)}" if later is not None else ""
        shape = "on one node" if single else "as whole nodes in one cluster"
        raise Unplaceable(
            "no_capacity",
            f"{req.gpu_count} {req.gpu_model} GPU(s) {shape} cannot be placed {where}: "
            f"{free_total} of that model are free in that window but not in a usable shape{hint}."
            if schedulable and free_total >= req.gpu_count
            else f"{req.gpu_count} {req.gpu_model} GPU(s) asked, only {free_total} free {where}{hint}.",
            later,
        )

    def _free_in_window(self, gpu_model: str, nodes: list[_Node], s: int, e: int) -> int:
        """GPUs of these (the model's schedulable) nodes free over all of [s, e), for refusal messages:
        every GPU's plain lists are bisected in one pass in C; the list of them is kept until the
        inventory changes or a list turns into blocks."""
        key = (self._inventory, _RESHAPES[0])
        kept = self._gpu_lists.get(gpu_model)
        if kept is None or kept[0] != key:
            gpus = [g for n in nodes for g in n.gpus]
            starts = [f for g in gpus if (f := g.starts.flat) is not None]
            ends = [f for g in gpus if (f := g.ends.flat) is not None]
            if len(starts) < len(gpus):  # some GPU holds thousands of bookings
                return sum(n.free_count(s, e) for n in nodes)
            kept = self._gpu_lists[gpu_model] = (key, starts, ends)
        _, starts, ends = kept
        return sum(map(eq, map(bisect_left, starts, repeat(e)), map(bisect_right, ends, repeat(s))))

    def earliest_start(self, req: PlacementRequest, not_before: int) -> int | None:
        """Earliest start >= not_before at which the request (same duration) fits; None if never."""
        found = self.earliest_placement(req, not_before)
        return None if found is None else found[0]

    def earliest_placement(self, req: PlacementRequest, not_before: int) -> tuple[int, Placement] | None:
        """Like earliest_start, with the placement that start gets.

        Answers are remembered per shape (model, GPUs, duration): asked again, with no capacity given back
        since and the placement still free, the answer stands (capacity only got scarcer); with capacity
        given back on some nodes, only those nodes are searched again (single node) or have their
        whole-node starts worked out again (several nodes). The start is always exact; a remembered
        placement keeps its GPUs while they stay free, where a fresh one would take the best fit.
        """
        try:
            clusters, single = self._shape(req)
        except Unplaceable:
            return None
        d = OPEN_END if req.duration is None else req.duration
        k = req.gpu_count
        key = (req.gpu_model, k, d)
        memo = self._earliest.pop(key, None)
        freed: set[int] | None = None  # None: nothing remembered that can be used
        intact = False  # the remembered placement is still free at the remembered start
        if memo is not None and memo.not_before <= not_before <= memo.start:
            freed = self._freed_since(req.gpu_model, memo.freed)
            intact = memo.placement is None or self._still_free(memo.placement, memo.start, d)
        stamp = self._stamp(req.gpu_model)
        if single:
            if memo is None or freed is None or not intact:  # search every node
                memo, freed = _Earliest(not_before, OPEN_END, None, stamp, {}), None
            found = self._earliest_single(clusters, k, not_before, d, memo, freed)
            memo.not_before, memo.freed = not_before, stamp
            memo.start, memo.placement = found if found is not None else (OPEN_END, None)
        else:
            if memo is None or freed is None:
                memo = _Earliest(not_before, OPEN_END, None, stamp, {})
            elif not freed and intact and memo.placement is not None:
                self._remember(key, memo)
                return memo.start, memo.placement
            # A remembered start that still fits bounds the search: only freed nodes can beat it.
            best = (memo.start, memo.placement) if intact and memo.placement is not None else None
            for name, nodes in clusters.items():
                open_nodes = [n for n in nodes if n.open]
                wholes = memo.wholes.get(name)
                if wholes is None or len(wholes) != len(open_nodes) or freed:
                    # A kept "whole from" is a bound only for starts at or after the instant the last search
                    # had reached when it computed it, which may be later than this search's start: once
                    # capacity was given back anywhere in the model, earlier starts are open again on every
                    # node of the cluster, so all bounds are worked out afresh.
                    wholes = memo.wholes[name] = [-1] * len(open_nodes)
                limit = OPEN_END if best is None else best[0]
                found = self._earliest_multi(open_nodes, k, not_before, d, limit, wholes)
                if found is not None and (best is None or found[0] < best[0]):
                    best = found
            memo.not_before, memo.freed = not_before, stamp
            memo.start, memo.placement = best if best is not None else (OPEN_END, None)
        self._remember(key, memo)
        return None if memo.placement is None else (memo.start, memo.placement)

    def _remember(self, key: tuple[str, int, int], memo: _Earliest) -> None:
        self._earliest[key] = memo  # (re)inserted last: the dict's order is the order of use
        if len(self._earliest) > _EARLIEST_MEMO:
            del self._earliest[next(iter(self._earliest))]

    def _still_free(self, placement: Placement, start: int, d: int) -> bool:
        for node, many in self._per_node(placement.gpus):
            if many == node.n:
                if node.overlapping(start, start + d):
                    return False
            elif not all(
                node.gpus[g.index].free(start, start + d) for g in placement.gpus if g.node_id == node.view.id
            ):
                return False
        return True

    def _earliest_single(
        self,
        clusters: dict[str, list[_Node]],
        k: int,
        not_before: int,
        d: int,
        memo: _Earliest,
        freed: set[int] | None,
    ) -> tuple[int, Placement] | None:
        """Earliest start of a one-node request; with `freed`, only those nodes can beat the memo's start."""
        best_t = memo.start if freed is not None else OPEN_END
        search = clusters
        if freed is not None:
            search = {name: [n for n in nodes if n.view.id in freed] for name, nodes in clusters.items()}
        start_t = best_t
        for nodes in search.values():
            for node in nodes:
                if node.n < k or not node.open:
                    continue
                starts = node.starts
                if not len(starts) or starts.at(-1) <= not_before:  # first_fit's common case, inlined
                    i = len(node.ends) - 1 - (node.n - k)
                    t = not_before if i < 0 else max(not_before, node.ends.at(i))
                else:
                    t = node.first_fit(k, not_before, d, best_t)
                if t < best_t:
                    best_t = t
                    if t == not_before:
                        break
            if best_t == not_before:
                break
        if best_t >= OPEN_END:
            return None
        if freed is not None and best_t == start_t and memo.placement is not None:
            return best_t, memo.placement  # nothing freed beats it: the remembered answer stands
        # Place at that start with the usual best fit (the found node fits, another may fit better);
        # when only freed nodes were searched, only they can fit that early.
        placed = self._place_single(search, k, best_t, best_t + d, frozenset())
        assert placed is not None
        return best_t, placed

    def longest_fit(self, gpu_model: str, gpu_count: int, start: int, hold: Hold | None = None) -> int:
        """The longest duration (seconds) for which `gpu_count` GPUs can be placed from `start` (keeping off
        `hold`): 0 if none fit, OPEN_END if they fit open-ended. A request of that shape fits iff its
        duration is at most this.
        """
        try:
            clusters, single = self._shape(PlacementRequest(gpu_model, gpu_count, start, start + 1))
        except Unplaceable:
            return 0
        if single:
            return self.longest_fits(gpu_model, start, hold)[gpu_count - 1]
        # Several nodes. At least k // (largest node) nodes must be wholly free, which bounds the window;
        # when the packing fits there (always, for whole nodes of one size), that is the answer.
        held = self._held_by_node(hold, start)
        bound = 0
        for nodes in clusters.values():
            untils = [self._whole_until(n, start, held.get(n.view.id)) for n in nodes if n.open]
            need = gpu_count // max(n.n for n in nodes)
            if need <= len(untils):
                bound = max(bound, sorted(untils, reverse=True)[need - 1] if need else OPEN_END)
        if bound <= start:
            return 0
        if self._place_multi(clusters, gpu_count, start, bound, frozenset(), hold) is not None:
            return OPEN_END if bound >= OPEN_END else bound - start
        # Otherwise the answer is one of the instants a free GPU is next booked before that bound; the
        # packing is monotone in the window's length, so bisect over them.
        ends: set[int] = set()
        for nodes in clusters.values():
            for node in nodes:
                if node.open:
                    ends.update(u for u in self._free_untils(node, start, held.get(node.view.id)) if start < u < bound)
        candidates = sorted(ends)
        lo, hi = 0, len(candidates)  # candidates[:lo] fit; candidates[hi:] do not
        while lo < hi:
            mid = (lo + hi) // 2
            if self._place_multi(clusters, gpu_count, start, candidates[mid], frozenset(), hold) is not None:
                lo = mid + 1
            else:
                hi = mid
        if lo == 0:
            return 0
        return OPEN_END if candidates[lo - 1] >= OPEN_END else candidates[lo - 1] - start

    def longest_fits(self, gpu_model: str, start: int, hold: Hold | None = None) -> list[int]:
        """`longest_fit` for every single-node size at once: entry k - 1 is for k GPUs on one node."""
        model = self._model(gpu_model)
        if model is None:
            return []
        top = min(MAX_GPUS_PER_NODE, model.biggest)
        best = [0] * top
        held = self._held_by_node(hold, start)
        for nodes in model.clusters.values():
            for node in nodes:
                if not node.open:
                    continue
                free = min(node.n - node.busy_at(start), top)
                if free <= 0:
                    continue
                kept = held.get(node.view.id)
                if kept is None and (not len(node.starts) or node.starts.at(-1) <= start):  # nothing after
                    best[:free] = [OPEN_END] * free
                    continue
                until = sorted(self._free_untils(node, start, kept), reverse=True)
                for k in range(free):
                    longest = OPEN_END if until[k] >= OPEN_END else until[k] - start
                    if longest > best[k]:
                        best[k] = longest
        return best

    @staticmethod
    def _held_by_node(hold: Hold | None, start: int) -> dict[int, tuple[int, set[int]]]:
        """Node -> (from when the hold keeps them, GPU indices) for a hold still to come or under way."""
        held: dict[int, tuple[int, set[int]]] = {}
        if hold is not None and hold.end > start:
            for g in hold.gpus:
                held.setdefault(g.node_id, (hold.start, set()))[1].add(g.index)
        return held

    @staticmethod
    def _whole_until(node: _Node, start: int, kept: tuple[int, set[int]] | None) -> int:
        """If the whole node is free at instant `start`, until when (OPEN_END: for ever); else `start`."""
        if node.busy_at(start) or (kept is not None and kept[0] <= start):
            return start
        starts = node.starts
        i = starts.rank_right(start)
        until = starts.at(i) if i < len(starts) else OPEN_END
        return until if kept is None else min(until, kept[0])

    @staticmethod
    def _free_untils(node: _Node, start: int, kept: tuple[int, set[int]] | None) -> list[int]:
        """Per GPU: if free at instant `start`, until when (OPEN_END: for ever); else `start`."""
        until = [g.free_until(start) for g in node.gpus]
        if kept is not None:
            for i in kept[1]:
                until[i] = start if kept[0] <= start else min(until[i], kept[0])
        return until

    def _shape(self, req: PlacementRequest) -> tuple[dict[str, list[_Node]], bool]:
        if req.gpu_count <= 0:
            raise Unplaceable("bad_request", f"a request needs at least one GPU, not {req.gpu_count}.")
        if req.end is not None and req.end <= req.start:
            raise Unplaceable(
                "bad_request", f"the window must end after it starts ({iso_utc(req.start)}..{iso_utc(req.end)})."
            )
        model = self._model(req.gpu_model)
        if model is None:
            known = ", ".join(self._model_names()) or "none"
            raise Unplaceable("unknown_model", f"no node has {req.gpu_model!r} GPUs; models in the facility: {known}.")
        single = req.gpu_count <= min(MAX_GPUS_PER_NODE, model.biggest)
        if not single and req.gpu_count > model.largest:
            raise Unplaceable(
                "too_large",
                f"{req.gpu_count} {req.gpu_model} GPUs asked, but a request above "
                f"{min(MAX_GPUS_PER_NODE, model.biggest)} must fit in one cluster and the largest cluster "
                f"has {model.largest} ({len(model.clusters)} cluster(s), {model.total} GPUs in all).",
            )
        return model.clusters, single

    def validate(self, req: PlacementRequest) -> None:
        """Raise Unplaceable (bad_request, unknown_model, too_large) if no amount of waiting would help."""
        self._shape(req)

    def _ignored_nodes(self, ignore: frozenset[int]) -> set[int]:
        return {g.node_id for lid in ignore if (lease := self._leases.get(lid)) for g in lease.gpus}

    def _special(self, ignore: frozenset[int], hold: Hold | None, s: int, e: int) -> dict[int, frozenset[int]]:
        """Nodes whose free GPUs over [s, e) are counted one by one: where ignored leases live (no GPU
        held) and where the hold overlaps the window (the GPUs it keeps)."""
        special = dict.fromkeys(self._ignored_nodes(ignore), frozenset[int]()) if ignore else {}
        if hold is not None and hold.start < e and s < hold.end:
            held: dict[int, set[int]] = {}
            for g in hold.gpus:
                held.setdefault(g.node_id, set()).add(g.index)
            special.update((nid, frozenset(idx)) for nid, idx in held.items())
        return special

    def _place_single(
        self,
        clusters: dict[str, list[_Node]],
        k: int,
        s: int,
        e: int,
        ignore: frozenset[int],
        hold: Hold | None = None,
    ) -> Placement | None:
        special = self._special(ignore, hold, s, e) if ignore or hold else {}
        apart = self._apart(s)
        spread = self.spread if apart else 0.0
        best: _Node | None = None
        if apart and self.part[1] > 1:
            # This process's own part of each cluster first: processes that place side by side then fill nodes
            # apart, each packing its own (the best fit over every node made them all choose the one tightest node).
            own = [self._own_part(nodes) for nodes in clusters.values()]
            best = self._best_single(own, k, s, e, ignore, special, 0.0)
        if best is None:
            best = self._best_single(list(clusters.values()), k, s, e, ignore, special, spread)
        if best is None:
            return None
        nid = best.view.id
        free = best.usable(s, e, ignore, special[nid]) if nid in special else best.free_indices(s, e, ignore)
        if spread and len(free) > k:
            at = int(len(free) * spread)
            free = free[at:] + free[:at]
        return Placement(tuple(GpuRef(nid, i) for i in free[:k]))

    def _apart(self, start: int) -> bool:
        """Whether a request starting at `start` is placed apart from the other processes' (`part`, `spread`)."""
        return self.apart_until is None or start < self.apart_until

    def _own_part(self, nodes: list[_Node]) -> list[_Node]:
        """This process's part (`part`) of a cluster's nodes, in id order."""
        part, parts = self.part
        return nodes[len(nodes) * part // parts : len(nodes) * (part + 1) // parts]

    @staticmethod
    def _best_single(
        clusters: list[list[_Node]],
        k: int,
        s: int,
        e: int,
        ignore: frozenset[int],
        special: dict[int, frozenset[int]],
        spread: float,
    ) -> _Node | None:
        """The node with the fewest GPUs free over [s, e) that are still at least `k` (the best fit), in the order
        given, each cluster's list entered `spread` of the way along."""
        best: _Node | None = None
        best_free = MAX_GPUS_PER_NODE * 1024
        for in_order in clusters:
            at = int(len(in_order) * spread)  # the same nodes; ties found from another place
            for node in in_order[at:] + in_order[:at] if at else in_order:
                n = node.n
                if n < k or not node.open:
                    continue
                if special and node.view.id in special:
                    f = len(node.usable(s, e, ignore, special[node.view.id]))
                elif (fs := node.fs) is None:  # thousands of bookings: blocks, counted exactly
                    f = node.free_count(s, e)
                else:
                    # The hot path of every decision: two or three bisects of the node-wide lists.
                    fe = node.fe
                    ends_by_s = bisect_right(fe, s)  # type: ignore[arg-type]
                    c = bisect_left(fs, e) - ends_by_s
                    if n - c >= best_free:  # free >= n - c: cannot beat (ties keep the lower id found first)
                        continue
                    if c == 0:
                        f = n
                    elif k == n:
                        continue
                    else:
                        held_at_s = bisect_right(fs, s) - ends_by_s  # GPUs busy at instant s: free <= n - that
                        if n - held_at_s < k:
                            continue
                        if c == 1 or c == held_at_s:
                            f = n - c
                        elif n - (c + ends_by_s - bisect_left(fe, e)) < k:  # type: ignore[arg-type]
                            continue  # not enough free at instant e - 1
                        else:
                            f = node.count_free(s, e)
                if k <= f < best_free:  # ties: the first in (cluster, node id) order stays
                    best, best_free = node, f
                    if f == k:
                        break
            if best_free == k:
                break
        return best

    def _place_multi(
        self,
        clusters: dict[str, list[_Node]],
        k: int,
        s: int,
        e: int,
        ignore: frozenset[int],
        hold: Hold | None = None,
    ) -> Placement | None:
        special = self._special(ignore, hold, s, e) if ignore or hold else {}
        best: tuple[tuple[int, int], str, Placement] | None = None
        for name, nodes in clusters.items():
            own = {n.view.id for n in self._own_part(nodes)} if self.part[1] > 1 and self._apart(s) else None
            found = self._multi_in_cluster(nodes, k, s, e, ignore, special, own)
            if found is not None and (best is None or found[0] < best[0]):
                best = (found[0], name, found[1])
        return None if best is None else best[2]

    @staticmethod
    def _multi_in_cluster(
        nodes: list[_Node],
        k: int,
        s: int,
        e: int,
        ignore: frozenset[int],
        special: dict[int, frozenset[int]],
        own: set[int] | None = None,
    ) -> tuple[tuple[int, int], Placement] | None:
        """Whole free nodes (largest first; of equal size, this process's own part first when `own` is given, see
        `part`) plus one best-fit node for the remainder.

        Returns ((whole nodes left idle afterwards, GPUs left free on the remainder node), placement);
        smaller is a better fit.
        """
        whole: list[_Node] = []
        partial: list[tuple[int, _Node]] = []  # (overlapping bookings, node): free >= n - count
        for node in nodes:
            if not node.open:
                continue
            if special and node.view.id in special:
                f = len(node.usable(s, e, ignore, special[node.view.id]))
                if f == node.n:
                    whole.append(node)
                elif f:
                    partial.append((node.n - f, node))
                continue
            fs, fe = node.fs, node.fe  # bisected directly, as in _place_single
            c = node.overlapping(s, e) if fs is None or fe is None else bisect_left(fs, e) - bisect_right(fe, s)
            if c == 0:
                whole.append(node)
            else:
                partial.append((c, node))
        if sum(n.n for n in whole) + max((n.n - 1 for _, n in partial), default=0) < k:
            return None
        if own is None:
            whole.sort(key=lambda n: (-n.n, n.view.id))
        else:
            whole.sort(key=lambda n: (-n.n, n.view.id not in own, n.view.id))
        taken: list[_Node] = []
        got = 0
        rest: list[_Node] = []
        for node in whole:
            if got + node.n <= k:
                taken.append(node)
                got += node.n
            else:
                rest.append(node)
        gpus = [GpuRef(n.view.id, i) for n in taken for i in range(n.n)]
        r = k - got
        spare = 0
        if r:
            best: _Node | None = None
            best_free = MAX_GPUS_PER_NODE * 1024
            for c, node in partial:  # best fit for the remainder, as for a single-node request
                if node.n - c >= best_free or node.n - 1 < r:
                    continue
                held = special.get(node.view.id)
                f = node.free_count(s, e) if held is None else len(node.usable(s, e, ignore, held))
                if r <= f < best_free:
                    best, best_free = node, f
                    if f == r:
                        break
            if best is None:  # break into one more whole node, the smallest that will do
                spares = [n for n in rest if n.n >= r]
                if spares:
                    best = min(spares, key=lambda n: (n.n, n.view.id))
                    best_free = best.n
                    rest.remove(best)
            if best is None:
                return None
            spare = best_free - r
            usable = best.usable(s, e, ignore, special.get(best.view.id, frozenset()))
            gpus += [GpuRef(best.view.id, i) for i in usable[:r]]
        return (len(rest), spare), Placement(tuple(gpus))

    def _earliest_multi(
        self, nodes: list[_Node], k: int, t0: int, d: int, limit: int, whole_from: list[int]
    ) -> tuple[int, Placement] | None:
        """Earliest start in [t0, limit) for a multi-node request on one cluster's open nodes.

        `whole_from[i]` is, per node, a lower bound of the earliest start >= t with the whole node free
        (-1: unknown); it is tightened in place, so a caller may keep it for the next search.
        """
        if not nodes:
            return None
        biggest = max(n.n for n in nodes)
        need_whole = k // biggest  # at any feasible start at least this many nodes are entirely free
        if need_whole > len(nodes) or k > sum(n.n for n in nodes):
            return None
        t = t0
        while t < limit:
            # First the earliest t with need_whole nodes wholly free (a fixed point of the need_whole-th
            # smallest "whole from" time), then ask the packing whether the rest fits there.
            while need_whole:
                for i, n in enumerate(nodes):
                    if whole_from[i] < t:
                        whole_from[i] = n.first_fit(n.n, t, d, limit)
                nxt = sorted(whole_from)[need_whole - 1]
                if nxt == t:
                    break
                t = nxt
                if t >= limit:
                    return None
            found = self._multi_in_cluster(nodes, k, t, t + d, frozenset(), {})
            if found is not None:
                return t, found[1]
            # Nothing fits at t: the next chance is when some booking in the cluster ends.
            t = min((n.ends.at(j) for n in nodes if (j := n.ends.rank_right(t)) < len(n.ends)), default=OPEN_END)
        return None
