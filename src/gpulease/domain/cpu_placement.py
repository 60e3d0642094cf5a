"""CPU capacity calendar: which cores and how much memory a CPU lease gets, and when it could start.

Times and windows as in `placement.py` (epoch seconds, half-open [start, end), open-ended = OPEN_END). A CPU lease
holds a set of core ids and some GiB of memory on one node over its window:

    cal = CpuCalendar(nodes)                   # CpuNodeViews: CPU nodes, and the CPU side of GPU nodes
    cal.book(lease_id, node_id, cores, gib, start, end)   # all or nothing; DoubleBooking on any conflict
    cal.release(lease_id) / cal.truncate(lease_id, new_end) / cal.can_extend / cal.extend
    with cal.speculate() as spec: ...          # undone on leaving the block unless spec.keep(); nests
    cal.place(CpuRequest(...))                 # best fit, or Unplaceable carrying the earliest start that fits
    cal.earliest_placement(req, not_before)    # (start, CpuPlacement) of the earliest start that fits

Rules, all checked by `book` whatever the caller did: a core is held by at most one lease at any instant; the
memory held on a node never exceeds its leasable memory at any instant; a core kept for a GPU (`GpuShare`) is
never booked. `place` adds the policy: GPU nodes are used only when the request allows them
(`allow_gpu_nodes`, the operator's setting), and then only after every CPU node of the model has been tried.

Best fit: among the nodes where the request fits for its whole window, CPU nodes before GPU nodes, then nodes
where it fits on one socket, then the fewest cores left free, then the least memory left free. On the chosen
node the cores are on one socket when possible (the fullest socket that still fits), contiguous when possible
(the shortest run of free cores that is long enough), else the tightest span: a lease's memory then stays on its
NUMA node and its cpuset is short.

Costs: a decision looks at the bookings that overlap the window on each node of the model (one pass each, plus a
sort of the overlapping ones for the memory peak). Earliest start tries the starts that can fit (`not_before`
and the ends of bookings) in ascending order over all nodes at once, so no node is searched past the answer, and
after a miss skips the starts at which too few of the cores busy then can have been given back; a node that can
never hold the request (too few leasable cores or GiB) is skipped without looking at its bookings. It is still a
walk over candidate times, not the gap index of the GPU calendar (benchmarks/cpu_placement.py has the figures).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from heapq import heappop, heappush

from gpulease.domain.cpu import CpuNodeView, cpu_model, cpuset
from gpulease.domain.placement import OPEN_END, DoubleBooking, Unplaceable, iso_utc


@dataclass(frozen=True, slots=True)
class CpuRequest:
    cpu_cores: int
    start: int
    end: int | None
    memory_gib: int | None = None  # None: the proportional share of the node it lands on
    cpu_model: str | None = None  # None: any model (the quote then follows the node it lands on)
    allow_gpu_nodes: bool = False  # the operator's policy: may free cores of GPU nodes be used


@dataclass(frozen=True, slots=True)
class CpuPlacement:
    node_id: int
    cores: tuple[int, ...]  # ascending
    memory_gib: int

    @property
    def cpuset(self) -> str:
        return cpuset(self.cores)


@dataclass(frozen=True, slots=True)
class CpuBooking:
    """One lease's hold on cores and memory of one node over [start, end)."""

    lease_id: int
    node_id: int
    cores: frozenset[int]
    memory_gib: int
    start: int
    end: int  # OPEN_END when open-ended


class CpuSpeculation:
    __slots__ = ("kept",)

    def __init__(self) -> None:
        self.kept = False

    def keep(self) -> None:
        """Keep this speculation's changes when its block is left."""
        self.kept = True


@dataclass(frozen=True, slots=True)
class _Fit:
    free: int  # bit mask of the node's leasable cores free during the window
    memory_gib: int
    one_socket: bool
    cores_left: int
    memory_left: int


@dataclass(slots=True)
class _Node:
    view: CpuNodeView
    leasable: tuple[int, ...]
    leasable_set: frozenset[int]
    bookings: dict[int, CpuBooking]
    # (start, lease id, end, core mask, GiB) of the windows with an end, by start
    starts: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    open: set[int] = field(default_factory=set)  # lease ids of open-ended windows
    max_len: int = 0  # no window with an end is longer (an upper bound: not lowered on release)
    leasable_mask: int = 0  # bit c set: core c is leasable
    socket_masks: tuple[int, ...] = ()  # bit mask of the leasable cores of each socket
    masks: dict[int, int] = field(default_factory=dict)  # lease id -> bit mask of its cores
    memory: int = 0  # leasable GiB

    def default_memory_gib(self, cpu_cores: int) -> int:
        """`CpuNodeView.default_memory_gib`, without recomputing the leasable cores."""
        return max(1, cpu_cores * self.memory // len(self.leasable)) if self.leasable else 1

    def add(self, b: CpuBooking) -> None:
        self.bookings[b.lease_id] = b
        self.masks[b.lease_id] = _mask(b.cores)
        if b.end >= OPEN_END:
            self.open.add(b.lease_id)
        else:
            insort(self.starts, (b.start, b.lease_id, b.end, self.masks[b.lease_id], b.memory_gib))
            self.max_len = max(self.max_len, b.end - b.start)

    def drop(self, b: CpuBooking) -> None:
        del self.bookings[b.lease_id]
        del self.masks[b.lease_id]
        if b.lease_id in self.open:
            self.open.discard(b.lease_id)
        else:
            del self.starts[bisect_left(self.starts, (b.start, b.lease_id))]

    def overlapping(self, s: int, e: int, ignore: int | None) -> list[CpuBooking]:
        """The bookings whose windows meet [s, e): those with an end start in [s - max_len, e)."""
        bs = self.bookings
        lo = bisect_left(self.starts, (s - self.max_len,))
        hi = bisect_left(self.starts, (e,))
        out = [bs[w[1]] for w in self.starts[lo:hi] if w[2] > s and w[1] != ignore]
        out.extend(b for lid in self.open if (b := bs[lid]).start < e and lid != ignore)
        return out


class CpuCalendar:
    def __init__(self, nodes: list[CpuNodeView] | tuple[CpuNodeView, ...] = ()) -> None:
        self._nodes: dict[int, _Node] = {}
        self._leases: dict[int, CpuBooking] = {}
        self._undo: list[list[Callable[[], object]]] = []  # one undo log per open speculation
        for n in nodes:
            self.upsert_node(n)

    # --- inventory -----------------------------------------------------------------------------------------

    def upsert_node(self, view: CpuNodeView) -> None:
        """Add a node or change its state/shape; a change must keep every booking on it valid."""
        old = self._nodes.get(view.id)
        leasable = view.leasable_cores
        cps = view.cores_per_socket
        sockets = tuple(_mask(c for c in leasable if c // cps == k) for k in range(view.sockets))
        node = _Node(
            view,
            leasable,
            frozenset(leasable),
            {},
            leasable_mask=_mask(leasable),
            socket_masks=sockets,
            memory=view.leasable_memory_gib,
        )
        for b in old.bookings.values() if old else ():
            node.add(b)
        for b in node.bookings.values():
            if not b.cores <= node.leasable_set:
                raise DoubleBooking(f"lease {b.lease_id} holds cores that node {view.name} would no longer lease")
            if self._memory_peak(node, b.start, b.end, None) > view.leasable_memory_gib:
                raise DoubleBooking(f"node {view.name} would hold more memory than it leases")
        self._nodes[view.id] = node

    def remove_node(self, node_id: int) -> set[int]:
        """Take a node out of the calendar; returns the leases that held capacity on it (their bookings go too)."""
        node = self._nodes.pop(node_id, None)
        if node is None:
            return set()
        for lid in node.bookings:
            del self._leases[lid]
        return set(node.bookings)

    def nodes(self) -> list[CpuNodeView]:
        return [n.view for n in self._nodes.values()]

    # --- bookings ------------------------------------------------------------------------------------------

    def book(
        self,
        lease_id: int,
        node_id: int,
        cores: tuple[int, ...] | frozenset[int],
        memory_gib: int,
        start: int,
        end: int | None,
    ) -> None:
        e = OPEN_END if end is None else end
        if lease_id in self._leases:
            raise DoubleBooking(f"lease {lease_id} already holds CPU capacity")
        node = self._nodes.get(node_id)
        if node is None:
            raise DoubleBooking(f"no node {node_id}")
        wanted = frozenset(cores)
        if not wanted or len(wanted) != len(cores) or memory_gib < 0 or e <= start:
            raise DoubleBooking("a booking needs distinct cores, memory >= 0 and a window that ends after it starts")
        if not wanted <= node.leasable_set:
            bad = sorted(wanted - node.leasable_set)
            raise DoubleBooking(f"cores {cpuset(bad)} of node {node.view.name} are not leasable (kept for its GPUs)")
        busy = self._busy(node, start, e, None)
        if wanted & busy:
            raise DoubleBooking(f"cores {cpuset(wanted & busy)} of node {node.view.name} are already booked")
        if self._memory_peak(node, start, e, None) + memory_gib > node.view.leasable_memory_gib:
            raise DoubleBooking(f"node {node.view.name} has not {memory_gib} GiB free over the window")
        b = CpuBooking(lease_id, node_id, wanted, memory_gib, start, e)
        self._put(b)
        self._log(lambda: self._remove(b))

    def release(self, lease_id: int) -> None:
        b = self._leases.get(lease_id)
        if b is not None:
            self._remove(b)
            self._log(lambda: self._put(b))

    def truncate(self, lease_id: int, new_end: int) -> None:
        """End a lease's hold early (ended, preempted); at or before its start it is released."""
        b = self._leases.get(lease_id)
        if b is None or new_end >= b.end:
            return
        if new_end <= b.start:
            self.release(lease_id)
            return
        self._set(b, new_end)

    def can_extend(self, lease_id: int, new_end: int | None) -> bool:
        """Whether the lease can keep its cores and memory until `new_end` (later than its end)."""
        b = self._leases.get(lease_id)
        e = OPEN_END if new_end is None else new_end
        if b is None or e <= b.end:
            return b is not None
        node = self._nodes[b.node_id]
        return not (self._busy(node, b.end, e, lease_id) & b.cores) and (
            self._memory_peak(node, b.end, e, lease_id) + b.memory_gib <= node.view.leasable_memory_gib
        )

    def extend(self, lease_id: int, new_end: int | None) -> None:
        if not self.can_extend(lease_id, new_end):
            raise DoubleBooking(f"lease {lease_id} cannot keep its cores until the new end")
        b = self._leases[lease_id]
        e = OPEN_END if new_end is None else new_end
        if e > b.end:
            self._set(b, e)

    def _set(self, b: CpuBooking, end: int) -> None:
        nb = CpuBooking(b.lease_id, b.node_id, b.cores, b.memory_gib, b.start, end)
        self._remove(b)
        self._put(nb)

        def undo() -> None:
            self._remove(nb)
            self._put(b)

        self._log(undo)

    def _put(self, b: CpuBooking) -> None:
        self._nodes[b.node_id].add(b)
        self._leases[b.lease_id] = b

    def _remove(self, b: CpuBooking) -> None:
        self._nodes[b.node_id].drop(b)
        del self._leases[b.lease_id]

    def _log(self, undo: Callable[[], object]) -> None:
        if self._undo:
            self._undo[-1].append(undo)

    @contextmanager
    def speculate(self) -> Iterator[CpuSpeculation]:
        """Try bookings, releases, truncations and extensions (a queue head's hold, tentative preemptions):
        leaving the block undoes them in reverse order unless `keep()` was called (an outer speculation may
        still undo them). Speculations nest; node changes (`upsert_node`, `remove_node`) are not undone."""
        log: list[Callable[[], object]] = []
        self._undo.append(log)
        spec = CpuSpeculation()
        try:
            yield spec
        finally:
            self._undo.pop()
            if spec.kept:
                if self._undo:
                    self._undo[-1].extend(log)
            else:
                for undo in reversed(log):
                    undo()

    def forget_ended(self, now: int) -> int:
        over = [lid for lid, b in self._leases.items() if b.end <= now]
        for lid in over:
            self.release(lid)
        return len(over)

    def booking_of(self, lease_id: int) -> CpuBooking | None:
        return self._leases.get(lease_id)

    def bookings(self) -> list[CpuBooking]:
        return list(self._leases.values())

    # --- what is free --------------------------------------------------------------------------------------

    @staticmethod
    def _busy(node: _Node, s: int, e: int, ignore: int | None) -> frozenset[int]:
        return _busy_of(node.overlapping(s, e, ignore))

    @staticmethod
    def _memory_peak(node: _Node, s: int, e: int, ignore: int | None) -> int:
        """Most memory held by bookings at any instant of [s, e)."""
        return _peak_of([(b.start, b.end, b.memory_gib) for b in node.overlapping(s, e, ignore)], s)

    def free_cores(self, node_id: int, start: int, end: int | None) -> list[int]:
        node = self._nodes[node_id]
        busy = self._busy(node, start, OPEN_END if end is None else end, None)
        return [c for c in node.leasable if c not in busy]

    def free_memory_gib(self, node_id: int, start: int, end: int | None) -> int:
        node = self._nodes[node_id]
        return node.view.leasable_memory_gib - self._memory_peak(node, start, OPEN_END if end is None else end, None)

    # --- placement -----------------------------------------------------------------------------------------

    def _candidates(self, req: CpuRequest) -> list[_Node]:
        """Nodes that could ever hold the request (model, policy, state, size), CPU nodes first."""
        out = []
        for n in self._nodes.values():
            v = n.view
            if not v.schedulable or (v.is_gpu_node and not req.allow_gpu_nodes):
                continue
            if req.cpu_model is not None and v.cpu_model != req.cpu_model:
                continue
            mem = n.default_memory_gib(req.cpu_cores) if req.memory_gib is None else req.memory_gib
            if len(n.leasable) >= req.cpu_cores and n.memory >= mem:
                out.append(n)
        out.sort(key=lambda n: (n.view.is_gpu_node, n.view.id))
        return out

    def validate(self, req: CpuRequest) -> str | None:
        """The request's model by catalogue name (or None); raises Unplaceable for a malformed request."""
        if req.cpu_cores < 1:
            raise Unplaceable("bad_request", "a CPU lease needs at least one core")
        if req.memory_gib is not None and req.memory_gib < 1:
            raise Unplaceable("bad_request", "memory_gib must be at least 1")
        if req.end is not None and req.end <= req.start:
            raise Unplaceable("bad_request", "the lease must end after it starts")
        if req.cpu_model is None:
            return None
        try:
            return cpu_model(req.cpu_model).name
        except ValueError as exc:
            raise Unplaceable("unknown_model", str(exc)) from None

    def _fit(self, node: _Node, req: CpuRequest, start: int, end: int) -> _Fit | None:
        """What the request would get on `node` over [start, end), and what that leaves free."""
        mem = node.default_memory_gib(req.cpu_cores) if req.memory_gib is None else req.memory_gib
        busy = 0
        over: list[tuple[int, int, int]] = []  # (start, end, GiB) of the windows meeting [start, end)
        starts = node.starts
        for w in starts[bisect_left(starts, (start - node.max_len,)) : bisect_left(starts, (end,))]:
            if w[2] > start:
                busy |= w[3]
                over.append((w[0], w[2], w[4]))
        for lid in node.open:
            b = node.bookings[lid]
            if b.start < end:
                busy |= node.masks[lid]
                over.append((b.start, b.end, b.memory_gib))
        free = node.leasable_mask & ~busy
        k = req.cpu_cores
        free_count = free.bit_count()
        if free_count < k:
            return None
        mem_free = node.memory - _peak_of(over, start)
        if mem > mem_free:
            return None
        one_socket = any((free & m).bit_count() >= k for m in node.socket_masks)
        return _Fit(free, mem, one_socket, free_count - req.cpu_cores, mem_free - mem)

    def place(self, req: CpuRequest) -> CpuPlacement:
        """Best fit for the request's window, or Unplaceable (no_capacity carries the earliest start that fits)."""
        model = self.validate(req)
        req = req if model is None else _with_model(req, model)
        nodes = self._candidates(req)
        if not nodes:
            what = req.cpu_model or "any model"
            raise Unplaceable(
                "too_large",
                f"no schedulable node ({what}{', GPU nodes allowed' if req.allow_gpu_nodes else ''}) can hold "
                f"{req.cpu_cores} cores" + ("" if req.memory_gib is None else f" and {req.memory_gib} GiB"),
            )
        end = OPEN_END if req.end is None else req.end
        found = self._best(nodes, req, req.start, end)
        if found is not None:
            return found
        earliest = self._earliest(nodes, req, req.start, missed=True)
        when = "" if earliest is None else f"; the earliest start that fits is {iso_utc(earliest)}"
        raise Unplaceable("no_capacity", f"no node has {req.cpu_cores} free cores for the window{when}", earliest)

    def _best(self, nodes: list[_Node], req: CpuRequest, start: int, end: int) -> CpuPlacement | None:
        best: tuple[tuple[bool, bool, int, int, int], _Node, _Fit] | None = None
        for n in nodes:
            if best is not None and n.view.is_gpu_node and not best[0][0]:
                break  # a CPU node fits: GPU nodes are only a fallback
            fit = self._fit(n, req, start, end)
            if fit is None:
                continue
            score = (n.view.is_gpu_node, not fit.one_socket, fit.cores_left, fit.memory_left, n.view.id)
            if best is None or score < best[0]:
                best = (score, n, fit)
                if score[:4] == (False, False, 0, 0):
                    break  # a perfect fit: nothing can beat it
        if best is None:
            return None
        _, node, fit = best
        cores, _ = choose_cores(node.view, [c for c in node.leasable if fit.free >> c & 1], req.cpu_cores)
        return CpuPlacement(node.view.id, cores, fit.memory_gib)

    def earliest_start(self, req: CpuRequest, not_before: int) -> int | None:
        """The earliest start at or after `not_before` at which the request (its duration) fits somewhere."""
        model = self.validate(req)
        req = req if model is None else _with_model(req, model)
        return self._earliest(self._candidates(req), req, not_before)

    def earliest_placement(self, req: CpuRequest, not_before: int) -> tuple[int, CpuPlacement] | None:
        """The earliest start at or after `not_before` at which the request (its duration) fits, and where."""
        model = self.validate(req)
        req = req if model is None else _with_model(req, model)
        nodes = self._candidates(req)
        best = self._earliest(nodes, req, not_before)
        if best is None:
            return None
        placed = self._best(nodes, req, best, OPEN_END if req.end is None else best + (req.end - req.start))
        assert placed is not None
        return best, placed

    def _earliest(self, nodes: list[_Node], req: CpuRequest, not_before: int, missed: bool = False) -> int | None:
        """Starts are tried in ascending order over all nodes at once (a heap of each node's next start to try),
        so the first that fits is the answer and no node is searched past it. A start that fits is `not_before`
        or the end of one of the node's bookings (only then is more free); after a miss, the starts at which too
        few of the cores busy then can have been given back are skipped (`_cores_back_by`). `missed`: the caller
        already found that no node fits at `not_before`."""
        duration = None if req.end is None else req.end - req.start
        heap = [(not_before, i) for i in range(len(nodes))]
        ends: dict[int, list[int]] = {}
        while heap:
            t, i = heappop(heap)
            n = nodes[i]
            e = OPEN_END if duration is None else t + duration
            if not (missed and t == not_before) and self._fit(n, req, t, e) is not None:
                return t
            times = ends.get(i)
            if times is None:
                times = ends[i] = sorted({w[2] for w in n.starts if w[2] > not_before})
            j = bisect_left(times, max(t + 1, _cores_back_by(n, req.cpu_cores, t, e)))
            if j < len(times):
                heappush(heap, (times[j], i))
        return None


def _cores_back_by(node: _Node, k: int, start: int, end: int) -> int:
    """No start in (start, answer) gives the request k free cores: the bookings meeting [start, end) that are
    still running at such a start still meet its window, and those ended by then free too few cores."""
    free = node.leasable_mask
    ending: list[tuple[int, int]] = []
    starts = node.starts
    for w in starts[bisect_left(starts, (start - node.max_len,)) : bisect_left(starts, (end,))]:
        if w[2] > start:
            free &= ~w[3]
            ending.append((w[2], w[3]))
    for lid in node.open:
        if node.bookings[lid].start < end:
            free &= ~node.masks[lid]  # never given back
    if free.bit_count() >= k:
        return start + 1  # the cores were there: memory was short; try the next start
    ending.sort()
    for t, mask in ending:
        free |= mask & node.leasable_mask
        if free.bit_count() >= k:
            return t
    return OPEN_END


def _mask(cores: Iterable[int]) -> int:
    m = 0
    for c in cores:
        m |= 1 << c
    return m


def _busy_of(bookings: list[CpuBooking]) -> frozenset[int]:
    return frozenset().union(*(b.cores for b in bookings))


def _peak_of(windows: list[tuple[int, int, int]], s: int) -> int:
    """Most memory the (start, end, GiB) windows, all meeting a window from `s`, hold at one instant of it."""
    if len(windows) <= 1:
        return windows[0][2] if windows else 0
    events: list[tuple[int, int]] = []
    for start, end, gib in windows:
        if gib:
            events.append((max(start, s), gib))
            events.append((end, -gib))
    events.sort()  # at one instant, releases (negative) come before takes: windows are half-open
    held = peak = 0
    for _, delta in events:
        held += delta
        peak = max(peak, held)
    return peak


def _with_model(req: CpuRequest, model: str) -> CpuRequest:
    return CpuRequest(req.cpu_cores, req.start, req.end, req.memory_gib, model, req.allow_gpu_nodes)


def _runs(cores: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for c in cores:
        if runs and runs[-1][-1] + 1 == c:
            runs[-1].append(c)
        else:
            runs.append([c])
    return runs


def _tightest(cores: list[int], k: int) -> tuple[int, ...]:
    """k of the ascending `cores`: the shortest contiguous run long enough, else the k with the smallest span."""
    fitting = [r for r in _runs(cores) if len(r) >= k]
    if fitting:
        return tuple(min(fitting, key=len)[:k])
    i = min(range(len(cores) - k + 1), key=lambda i: cores[i + k - 1] - cores[i])
    return tuple(cores[i : i + k])


def choose_cores(node: CpuNodeView, free: list[int], k: int) -> tuple[tuple[int, ...], bool]:
    """Which k of the node's free cores (ascending) a lease gets, and whether they lie on one socket.

    One socket when any has k free (the one with the fewest free that suffices: best fit), contiguous when
    possible; otherwise the k free cores with the smallest span (neighbouring sockets).
    """
    per_socket: dict[int, list[int]] = {}
    cps = node.cores_per_socket
    for c in free:
        per_socket.setdefault(c // cps, []).append(c)
    fitting = [cs for cs in per_socket.values() if len(cs) >= k]
    if fitting:
        return _tightest(min(fitting, key=len), k), True
    return _tightest(free, k), False
