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
    cal.free_now(model, at)                    # free GPUs at one instant: in all, most on one node

    with cal.speculate() as spec:              # try things: a queue-head hold, tentative preemptions
        cal.book(HOLD, where.gpus, s, e)       #   (any of book/release/truncate/extend)
        placement = cal.place(req)
        ...                                    # leaving the block undoes them all, in reverse order,
        spec.keep()                            # unless keep() was called (an outer speculation may still
                                               # undo them); speculations nest
    cal.state                                  # an id that changes with every change of the bookings and
                                               # comes back when a speculation is rolled back

Costs, for n bookings held: book, release, truncate and extend are O(log n) per GPU touched (every sorted
sequence is a `_SortedInts`: one plain list while small, blocks of bounded size with a Fenwick index when
large) and record one undo entry while speculating, so a speculation costs what its own changes cost and
never copies the calendar. A placement decision is two or three rank queries per node of the model
(the node-wide counts of bookings bound its free GPUs, so most nodes are judged without looking at their
GPUs) and stops at the first perfect fit.

Earliest start (a refusal's "from when" answer, and the queue head's reservation) never walks bookings
one by one. Each node keeps, rebuilt lazily after a change to that node only, a summary of its gaps: the
gaps of each GPU's timeline and of the node's union of bookings, each with the longest gap from there on.
One lookup then says "no gap of length d after t" (the earliest start on that GPU or whole node is then
simply the end of its last booking), or leads to the first gap that is long enough. Nodes are searched
with the best start found so far as a limit; a k-GPU node request takes the k-th earliest of its GPUs'
starts until that is a fixed point; a multi-node request takes the whole-node starts the same way and
only then asks the best-fit packing whether the remainder fits.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import accumulate, chain, count, repeat
from operator import eq, sub

from gpulease.domain.inventory import MAX_GPUS_PER_NODE, NodeView

OPEN_END = 2**62  # "never ends": later than any real epoch second, still an int

_LOAD = 2048  # a _SortedInts stays one plain list up to 2 * _LOAD entries, then splits into blocks
_STATES = count(1)  # calendar state ids, never reused


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

    One plain list up to 2 * _LOAD entries, queried through C bisects bound to it (the fast path every
    realistic node and GPU takes); beyond that, blocks of at most 2 * _LOAD entries with a Fenwick tree
    over their sizes, so an insert or delete moves a bounded number of entries and a rank or a position
    costs O(log n) however large the set grows.
    """

    __slots__ = ("_blocks", "_maxes", "_n", "_tree", "at", "rank_left", "rank_right")

    def __init__(self) -> None:
        self._n = 0
        self._single([])

    def _single(self, block: list[int]) -> None:
        self._blocks = [block]
        self._maxes: list[int] = []  # last entry of each block (only with several blocks)
        self._tree: list[int] | None = None  # Fenwick tree of block sizes (only with several blocks)
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
            if self._n > 2 * _LOAD:
                self._reshape([one[i : i + _LOAD] for i in range(0, len(one), _LOAD)])
            return
        b = min(bisect_right(self._maxes, x), len(blocks) - 1)
        block = blocks[b]
        insort(block, x)
        self._maxes[b] = block[-1]
        if len(block) > 2 * _LOAD:
            blocks[b : b + 1] = [block[:_LOAD], block[_LOAD:]]
            self._reshape(blocks)
        else:
            self._bump(b, 1)

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
        if self._n <= _LOAD or len(blocks) == 1:
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
        self.rank_left, self.rank_right, self.at = self._rank_left, self._rank_right, self._at

    def _bump(self, b: int, delta: int) -> None:
        tree = self._tree
        assert tree is not None
        i = b + 1
        while i < len(tree):
            tree[i] += delta
            i += i & -i

    def _prefix(self, b: int) -> int:
        """Entries in blocks before block b."""
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
        # bookings ending by s all start before e; the others overlap [s, e) iff they start before e
        return self.starts.rank_left(e) == self.ends.rank_right(s)

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

    __slots__ = ("ends", "gpus", "n", "open", "per_gpu", "starts", "union", "view")

    def __init__(self, view: NodeView) -> None:
        self.view = view
        self.open = view.schedulable  # takes new placements
        self.n = view.gpu_count
        self.gpus = [_Gpu() for _ in range(view.gpu_count)]
        self.starts = _SortedInts()
        self.ends = _SortedInts()
        self.union: _Gaps | None = None  # gap summaries, rebuilt on demand after a change
        self.per_gpu: tuple[list[_Gaps], list[list[int]], list[list[int]]] | None = None

    def changed(self) -> None:
        self.union = None
        self.per_gpu = None

    def overlapping(self, s: int, e: int) -> int:
        """How many bookings on this node overlap [s, e) (every booking ending by s also starts before e)."""
        return self.starts.rank_left(e) - self.ends.rank_right(s)

    def busy_at(self, t: int) -> int:
        """GPUs held at instant t."""
        return self.starts.rank_right(t) - self.ends.rank_right(t)

    def free_count(self, s: int, e: int) -> int:
        ends_by_s = self.ends.rank_right(s)
        c = self.starts.rank_left(e) - ends_by_s
        if c == 0:
            return self.n
        if c == 1 or c == self.starts.rank_right(s) - ends_by_s:
            # one booking, or all of them hold the GPU at instant s: they sit on c distinct GPUs
            return self.n - c
        return sum(1 for g in self.gpus if g.starts.rank_left(e) == g.ends.rank_right(s))

    def free_indices(self, s: int, e: int, ignore: frozenset[int] = frozenset()) -> list[int]:
        if self.overlapping(s, e) == 0:
            return list(range(self.n))
        if not ignore:
            return [i for i, g in enumerate(self.gpus) if g.free(s, e)]
        return [i for i, g in enumerate(self.gpus) if g.free(s, e) or ignore.issuperset(g.holders(s, e))]

    def union_gaps(self) -> _Gaps:
        if self.union is None:
            self.union = _Gaps(self.starts.to_list(), self.ends.to_list())
        return self.union

    def gpu_gaps(self) -> tuple[list[_Gaps], list[list[int]], list[list[int]]]:
        """Each GPU's gap summary, and their starts and ends lists side by side."""
        if self.per_gpu is None:
            gaps = [_Gaps(g.starts.to_list(), g.ends.to_list()) for g in self.gpus]
            self.per_gpu = gaps, [g.starts for g in gaps], [g.ends for g in gaps]
        return self.per_gpu

    def window_free(self, s: int, e: int) -> int:
        """GPUs free over all of [s, e), like free_count but answered from the gap summaries in C."""
        if self.overlapping(s, e) == 0:
            return self.n
        _, starts, ends = self.gpu_gaps()
        return sum(map(eq, map(bisect_left, starts, repeat(e)), map(bisect_right, ends, repeat(s))))

    def first_fit(self, k: int, t0: int, d: int, limit: int) -> int:
        """Earliest t >= t0 with k GPUs free over [t, t + d); some value >= limit if none is below it."""
        if k == self.n:
            return self.union_gaps().fit(t0, d, limit)
        starts, ends = self.starts, self.ends
        if self.n - self.overlapping(t0, t0 + d) >= k:  # a lower bound on its free GPUs says yes
            return t0
        if starts.rank_right(t0) == len(starts):
            # Nothing starts after t0: the GPUs in use free up as their bookings end, whatever d is.
            j = ends.rank_right(t0)
            free_now = self.n - (len(ends) - j)
            return t0 if free_now >= k else ends.at(j + k - free_now - 1)
        # Each GPU's earliest start is a lookup in its gap summary; the node's answer is at least the
        # k-th smallest of them, so jump there and ask again until it stops moving.
        gaps = self.gpu_gaps()[0]
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
    """Per GPU model: nodes by cluster and size limits."""

    clusters: dict[str, list[_Node]]
    biggest: int  # most GPUs on one node
    largest: int  # GPUs in the largest cluster
    total: int  # GPUs in all


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
        self._undo: list[_Undo] | None = None
        self._state = next(_STATES)
        for node in nodes:
            self.upsert_node(node)

    @property
    def state(self) -> int:
        """Changes with every change of bookings or inventory; a rolled-back speculation restores it."""
        return self._state

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
            if node.gpu_count > old.n:
                old.gpus.extend(_Gpu() for _ in range(node.gpu_count - old.n))
            del old.gpus[node.gpu_count :]
            old.view = node
            old.open = node.schedulable
            old.n = node.gpu_count
            old.changed()
        self._models = None
        self._state = next(_STATES)

    def remove_node(self, node_id: int) -> set[int]:
        """Forget a node and every booking on it; returns the leases that had GPUs there."""
        self._no_speculation("change the inventory")
        node = self._nodes.pop(node_id)
        hit = {lid for g in node.gpus for lid in g.owner.values()}
        for lid in hit:
            lease = self._leases[lid]
            lease.gpus = tuple(g for g in lease.gpus if g.node_id != node_id)
            if not lease.gpus:
                del self._leases[lid]
        self._models = None
        self._state = next(_STATES)
        return hit

    def node(self, node_id: int) -> NodeView:
        return self._nodes[node_id].view

    def nodes(self) -> list[NodeView]:
        return [n.view for n in self._nodes.values()]

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
        """Drop the bookings that ended by `now` (they cannot block any window from now on); how many."""
        over = [lid for lid, lease in self._leases.items() if lease.end <= now]
        for lid in over:
            self.release(lid)
        return len(over)

    def _reend(self, lease_id: int, e: int) -> None:
        lease = self._leases[lease_id]
        old = lease.end
        for g in lease.gpus:
            node = self._nodes[g.node_id]
            gpu = node.gpus[g.index]
            gpu.ends.remove(old)
            gpu.ends.add(e)
            node.ends.remove(old)
            node.ends.add(e)
            node.changed()
        lease.end = e
        self._state = next(_STATES)
        if self._undo is not None:
            self._undo.append(("reend", lease_id, lease.gpus, lease.start, old))

    def _hold(self, lease_id: int, refs: tuple[GpuRef, ...], s: int, e: int) -> None:
        for g in refs:
            node = self._nodes[g.node_id]
            gpu = node.gpus[g.index]
            gpu.starts.add(s)
            gpu.ends.add(e)
            gpu.owner[s] = lease_id
            node.starts.add(s)
            node.ends.add(e)
            node.changed()
        self._leases[lease_id] = _Lease(refs, s, e)
        self._state = next(_STATES)

    def _unhold(self, lease_id: int) -> None:
        lease = self._leases.pop(lease_id)
        s, e = lease.start, lease.end
        for g in lease.gpus:
            node = self._nodes[g.node_id]
            gpu = node.gpus[g.index]
            assert gpu.owner.get(s) == lease_id, "calendar index out of step with its leases"
            gpu.starts.remove(s)
            gpu.ends.remove(e)
            del gpu.owner[s]
            node.starts.remove(s)
            node.ends.remove(e)
            node.changed()
        self._state = next(_STATES)

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
        self, req: PlacementRequest, *, ignore_leases: frozenset[int] = frozenset(), explain: bool = True
    ) -> Placement:
        """Best-fit GPUs for the request's window; Unplaceable (with earliest_start when known) if none.

        `ignore_leases` places as if those leases were gone (preemption); explain=False skips working
        out the message and the earliest start when the caller only needs yes or no.
        """
        clusters, single = self._shape(req)
        e = OPEN_END if req.end is None else req.end
        if single:
            found = self._place_single(clusters, req.gpu_count, req.start, e, ignore_leases)
        else:
            found = self._place_multi(clusters, req.gpu_count, req.start, e, ignore_leases)
        if found is not None:
            return found
        if not explain:
            raise Unplaceable("no_capacity", f"{req.gpu_count} {req.gpu_model} GPU(s) do not fit now.")
        schedulable = [n for nodes in clusters.values() for n in nodes if n.open]
        later = self.earliest_start(req, req.start + 1) if schedulable else None
        where = (
            f"between {req.start} and {'open end' if req.end is None else req.end}"
            if schedulable
            else "because no node with that model is available (all draining or down)"
        )
        free_total = sum(n.window_free(req.start, e) for n in schedulable)
        hint = f"; the earliest start that fits is {later}" if later is not None else ""
        shape = "on one node" if single else "as whole nodes in one cluster"
        raise Unplaceable(
            "no_capacity",
            f"{req.gpu_count} {req.gpu_model} GPU(s) {shape} cannot be placed {where}: "
            f"{free_total} of that model are free in that window but not in a usable shape{hint}."
            if schedulable and free_total >= req.gpu_count
            else f"{req.gpu_count} {req.gpu_model} GPU(s) asked, only {free_total} free {where}{hint}.",
            later,
        )

    def earliest_start(self, req: PlacementRequest, not_before: int) -> int | None:
        """Earliest start >= not_before at which the request (same duration) fits; None if never."""
        found = self.earliest_placement(req, not_before)
        return None if found is None else found[0]

    def earliest_placement(self, req: PlacementRequest, not_before: int) -> tuple[int, Placement] | None:
        """Like earliest_start, with the placement that start gets."""
        try:
            clusters, single = self._shape(req)
        except Unplaceable:
            return None
        d = OPEN_END if req.duration is None else req.duration
        k = req.gpu_count
        if single:
            best_t = OPEN_END
            for nodes in clusters.values():
                for node in nodes:
                    if node.n < k or not node.open:
                        continue
                    t = node.first_fit(k, not_before, d, best_t)
                    if t < best_t:
                        best_t = t
                        if t == not_before:
                            break
                if best_t == not_before:
                    break
            if best_t >= OPEN_END:
                return None
            # Place at that start with the usual best fit (the found node fits, another may fit better).
            placed = self._place_single(clusters, k, best_t, best_t + d, frozenset())
            assert placed is not None
            return best_t, placed
        best: tuple[int, Placement] | None = None
        for nodes in clusters.values():
            found = self._earliest_multi(nodes, k, not_before, d, OPEN_END if best is None else best[0])
            if found is not None and (best is None or found[0] < best[0]):
                best = found
        return best

    def longest_fit(self, gpu_model: str, gpu_count: int, start: int) -> int:
        """The longest duration (seconds) for which `gpu_count` GPUs can be placed from `start`: 0 if
        none fit, OPEN_END if they fit open-ended. A request of that shape fits iff its duration is <= this.
        """
        try:
            clusters, single = self._shape(PlacementRequest(gpu_model, gpu_count, start, start + 1))
        except Unplaceable:
            return 0
        if single:
            best = 0
            for nodes in clusters.values():
                for node in nodes:
                    if not node.open or node.n - node.busy_at(start) < gpu_count:
                        continue
                    if node.starts.rank_right(start) == len(node.starts):
                        return OPEN_END  # nothing booked after start: its free GPUs are free for ever
                    until = sorted((g.free_until(start) for g in node.gpus), reverse=True)[gpu_count - 1]
                    if until >= OPEN_END:
                        return OPEN_END
                    best = max(best, until - start)
            return best
        # Several nodes: the answer is one of the instants a free GPU is next booked; the packing is
        # monotone in the window's length, so bisect over them.
        ends = {OPEN_END}
        for nodes in clusters.values():
            for node in nodes:
                if node.open:
                    ends.update(u for g in node.gpus if (u := g.free_until(start)) > start)
        candidates = sorted(ends)
        lo, hi = 0, len(candidates)  # candidates[:lo] fit; candidates[hi:] do not
        while lo < hi:
            mid = (lo + hi) // 2
            e = candidates[mid]
            if self._place_multi(clusters, gpu_count, start, e, frozenset()) is not None:
                lo = mid + 1
            else:
                hi = mid
        if lo == 0:
            return 0
        return OPEN_END if candidates[lo - 1] >= OPEN_END else candidates[lo - 1] - start

    def _shape(self, req: PlacementRequest) -> tuple[dict[str, list[_Node]], bool]:
        if req.gpu_count <= 0:
            raise Unplaceable("bad_request", f"a request needs at least one GPU, not {req.gpu_count}.")
        if req.end is not None and req.end <= req.start:
            raise Unplaceable("bad_request", f"the window must end after it starts ({req.start}..{req.end}).")
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

    def _place_single(
        self, clusters: dict[str, list[_Node]], k: int, s: int, e: int, ignore: frozenset[int]
    ) -> Placement | None:
        touched = self._ignored_nodes(ignore) if ignore else set()
        best: _Node | None = None
        best_free = MAX_GPUS_PER_NODE * 1024
        for nodes in clusters.values():
            for node in nodes:
                n = node.n
                if n < k or not node.open:
                    continue
                starts = node.starts
                ends_by_s = node.ends.rank_right(s)
                c = starts.rank_left(e) - ends_by_s
                if n - c >= best_free:  # free >= n - c: cannot beat (ties keep the lower id found first)
                    continue
                if c == 0:
                    f = n
                elif node.view.id in touched:
                    f = len(node.free_indices(s, e, ignore))
                elif k == n:
                    continue
                else:
                    held_at_s = starts.rank_right(s) - ends_by_s  # GPUs busy at instant s: free <= n - that
                    if n - held_at_s < k:
                        continue
                    if c == 1 or c == held_at_s:
                        f = n - c
                    elif n - (c + ends_by_s - node.ends.rank_left(e)) < k:  # GPUs busy at instant e - 1
                        continue
                    else:
                        f = sum(1 for g in node.gpus if g.starts.rank_left(e) == g.ends.rank_right(s))
                if k <= f < best_free:  # ties: the first in (cluster, node id) order stays
                    best, best_free = node, f
                    if f == k:
                        break
            if best_free == k:
                break
        if best is None:
            return None
        nid = best.view.id
        return Placement(tuple(GpuRef(nid, i) for i in best.free_indices(s, e, ignore)[:k]))

    def _place_multi(
        self, clusters: dict[str, list[_Node]], k: int, s: int, e: int, ignore: frozenset[int]
    ) -> Placement | None:
        touched = self._ignored_nodes(ignore) if ignore else set()
        best: tuple[tuple[int, int], str, Placement] | None = None
        for name, nodes in clusters.items():
            found = self._multi_in_cluster(nodes, k, s, e, ignore, touched)
            if found is not None and (best is None or found[0] < best[0]):
                best = (found[0], name, found[1])
        return None if best is None else best[2]

    @staticmethod
    def _multi_in_cluster(
        nodes: list[_Node], k: int, s: int, e: int, ignore: frozenset[int], touched: set[int]
    ) -> tuple[tuple[int, int], Placement] | None:
        """Whole free nodes (largest first) plus one best-fit node for the remainder.

        Returns ((whole nodes left idle afterwards, GPUs left free on the remainder node), placement);
        smaller is a better fit.
        """
        whole: list[_Node] = []
        partial: list[tuple[int, _Node]] = []  # (overlapping bookings, node): free >= n - count
        for node in nodes:
            if not node.open:
                continue
            c = node.overlapping(s, e)
            if c == 0:
                whole.append(node)
            elif node.view.id in touched:
                f = len(node.free_indices(s, e, ignore))
                if f == node.n:
                    whole.append(node)
                elif f:
                    partial.append((node.n - f, node))
            else:
                partial.append((c, node))
        if sum(n.n for n in whole) + max((n.n - 1 for _, n in partial), default=0) < k:
            return None
        whole.sort(key=lambda n: (-n.n, n.view.id))
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
                f = len(node.free_indices(s, e, ignore)) if node.view.id in touched else node.free_count(s, e)
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
            gpus += [GpuRef(best.view.id, i) for i in best.free_indices(s, e, ignore)[:r]]
        return (len(rest), spare), Placement(tuple(gpus))

    def _earliest_multi(
        self, cluster: list[_Node], k: int, t0: int, d: int, limit: int
    ) -> tuple[int, Placement] | None:
        """Earliest start in [t0, limit) for a multi-node request in one cluster, with its placement."""
        nodes = [n for n in cluster if n.open]
        if not nodes:
            return None
        biggest = max(n.n for n in nodes)
        need_whole = k // biggest  # at any feasible start at least this many nodes are entirely free
        if need_whole > len(nodes) or k > sum(n.n for n in nodes):
            return None
        whole_from = [-1] * len(nodes)  # per node: earliest start >= t with the whole node free
        t = t0
        while t < limit:
            # First the earliest t with need_whole nodes wholly free (a fixed point of the need_whole-th
            # smallest "whole from" time), then ask the packing whether the rest fits there.
            while need_whole:
                for i, n in enumerate(nodes):
                    if whole_from[i] < t:
                        whole_from[i] = n.union_gaps().fit(t, d, limit)
                nxt = sorted(whole_from)[need_whole - 1]
                if nxt == t:
                    break
                t = nxt
                if t >= limit:
                    return None
            found = self._multi_in_cluster(nodes, k, t, t + d, frozenset(), set())
            if found is not None:
                return t, found[1]
            # Nothing fits at t: the next chance is when some booking in the cluster ends.
            t = min((n.ends.at(j) for n in nodes if (j := n.ends.rank_right(t)) < len(n.ends)), default=OPEN_END)
        return None
