"""Capacity calendar and placement: which GPUs a lease gets, and when it could start.

Times are integer epoch seconds; a window is half-open [start, end). An open-ended window (end None) is
stored as ending at OPEN_END. Every GPU keeps its bookings sorted by start (bookings on one GPU never
overlap, so they are sorted by end as well), which makes "is this GPU free over [s, e)" one bisect.
Every node also keeps the starts and the ends of all bookings on its GPUs in two sorted lists, so the
number of bookings overlapping a window on a node is two bisects: zero means the whole node is free,
and n - count is a lower bound on its free GPUs, which lets the best-fit scan skip most nodes unseen.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from gpulease.domain.inventory import MAX_GPUS_PER_NODE, NodeView

OPEN_END = 2**62  # "never ends": later than any real epoch second, still an int


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


@dataclass(slots=True)
class _Lease:
    gpus: tuple[GpuRef, ...]
    start: int
    end: int


class _Node:
    """A node's bookings: per GPU three parallel lists sorted by start, plus node-wide sorted starts/ends."""

    __slots__ = ("ends", "gpu_ends", "gpu_owners", "gpu_starts", "n", "open", "starts", "view")

    def __init__(self, view: NodeView) -> None:
        self.view = view
        self.open = view.schedulable  # takes new placements
        self.n = view.gpu_count
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.gpu_starts: list[list[int]] = [[] for _ in range(view.gpu_count)]
        self.gpu_ends: list[list[int]] = [[] for _ in range(view.gpu_count)]
        self.gpu_owners: list[list[int]] = [[] for _ in range(view.gpu_count)]

    def overlapping(self, s: int, e: int) -> int:
        """How many bookings on this node overlap [s, e) (every booking ending by s also starts before e)."""
        return bisect_left(self.starts, e) - bisect_right(self.ends, s)

    def gpu_free(self, i: int, s: int, e: int, ignore: frozenset[int]) -> bool:
        starts = self.gpu_starts[i]
        j = bisect_left(starts, e)
        if j == 0:
            return True
        ends = self.gpu_ends[i]
        if ends[j - 1] <= s:
            return True
        if not ignore:
            return False
        owners = self.gpu_owners[i]
        j -= 1
        while j >= 0 and ends[j] > s:  # only the bookings that overlap, newest first
            if owners[j] not in ignore:
                return False
            j -= 1
        return True

    def free_count(self, s: int, e: int) -> int:
        ends_by_s = bisect_right(self.ends, s)
        c = bisect_left(self.starts, e) - ends_by_s
        if c == 0:
            return self.n
        if c == 1 or c == bisect_right(self.starts, s) - ends_by_s:
            # one booking, or all of them hold the GPU at instant s: they sit on c distinct GPUs
            return self.n - c
        free = 0
        for starts, ends in zip(self.gpu_starts, self.gpu_ends, strict=True):
            j = bisect_left(starts, e)
            if j == 0 or ends[j - 1] <= s:
                free += 1
        return free

    def free_indices(self, s: int, e: int, ignore: frozenset[int] = frozenset()) -> list[int]:
        if self.overlapping(s, e) == 0:
            return list(range(self.n))
        return [i for i in range(self.n) if self.gpu_free(i, s, e, ignore)]

    def first_fit(self, k: int, t0: int, d: int | None, limit: int) -> int | None:
        """Earliest t in [t0, limit) with k GPUs free over [t, t + d); None if there is none.

        Per GPU, the earliest start >= t with a long enough gap is a walk over its bookings; the node's
        answer is at least the k-th smallest of those, so jump there and check again.
        """
        if self.free_count(t0, OPEN_END if d is None else t0 + d) >= k:
            return t0
        ends = self.ends
        if bisect_right(self.starts, t0) == len(self.starts):
            # Nothing starts after t0: the GPUs in use free up as their bookings end, whatever d is.
            j = bisect_right(ends, t0)
            free_now = self.n - (len(ends) - j)
            t = ends[j + k - free_now - 1]
            return t if t < limit and t < OPEN_END else None
        t = t0
        fits = [-1] * self.n
        while t < limit:
            for g in range(self.n):
                if fits[g] < t:
                    fits[g] = _gpu_first_fit(self.gpu_starts[g], self.gpu_ends[g], t, d)
            nxt = sorted(fits)[k - 1]
            if nxt == t:
                return t
            t = nxt
        return None


def _gpu_first_fit(starts: list[int], ends: list[int], t: int, d: int | None) -> int:
    """Earliest c >= t with the GPU free over [c, c + d); OPEN_END if never."""
    j = bisect_right(ends, t)
    c = t
    span = OPEN_END if d is None else d
    while j < len(starts):
        if starts[j] - c >= span:
            return c
        c = max(c, ends[j])
        j += 1
    return c if c < OPEN_END else OPEN_END


class CapacityCalendar:
    """Every GPU's bookings over time, and the placement decisions made against them."""

    def __init__(self, nodes: Iterable[NodeView] = ()) -> None:
        self._nodes: dict[int, _Node] = {}
        self._leases: dict[int, _Lease] = {}
        # model -> cluster -> nodes sorted by id; rebuilt lazily after inventory changes.
        self._buckets: dict[str, dict[str, list[_Node]]] | None = None
        # model -> (most GPUs on one node, GPUs in its largest cluster, GPUs in all); with _buckets.
        self._limits: dict[str, tuple[int, int, int]] = {}
        for node in nodes:
            self.upsert_node(node)

    # ----- inventory -------------------------------------------------------------------------------
    def upsert_node(self, node: NodeView) -> None:
        """Add a node or update its state/cluster; a node holding bookings cannot change model or shrink."""
        old = self._nodes.get(node.id)
        if old is None:
            self._nodes[node.id] = _Node(node)
        else:
            if node.gpu_model != old.view.gpu_model and old.starts:
                raise ValueError(f"node {node.id} holds bookings; its GPU model cannot change")
            if node.gpu_count < old.n and any(old.gpu_starts[i] for i in range(node.gpu_count, old.n)):
                raise ValueError(f"node {node.id} holds bookings on GPUs beyond {node.gpu_count}")
            grow = node.gpu_count - old.n
            if grow > 0:
                for lst in (old.gpu_starts, old.gpu_ends, old.gpu_owners):
                    lst.extend([] for _ in range(grow))
            elif grow < 0:
                del old.gpu_starts[node.gpu_count :], old.gpu_ends[node.gpu_count :]
                del old.gpu_owners[node.gpu_count :]
            old.view = node
            old.open = node.schedulable
            old.n = node.gpu_count
        self._buckets = None

    def remove_node(self, node_id: int) -> set[int]:
        """Forget a node and every booking on it; returns the leases that had GPUs there."""
        node = self._nodes.pop(node_id)
        hit = {lid for owners in node.gpu_owners for lid in owners}
        for lid in hit:
            lease = self._leases[lid]
            lease.gpus = tuple(g for g in lease.gpus if g.node_id != node_id)
            if not lease.gpus:
                del self._leases[lid]
        self._buckets = None
        return hit

    def node(self, node_id: int) -> NodeView:
        return self._nodes[node_id].view

    def nodes(self) -> list[NodeView]:
        return [n.view for n in self._nodes.values()]

    def _bucketed(self) -> dict[str, dict[str, list[_Node]]]:
        if self._buckets is None:
            buckets: dict[str, dict[str, list[_Node]]] = {}
            for nid in sorted(self._nodes):
                node = self._nodes[nid]
                buckets.setdefault(node.view.gpu_model, {}).setdefault(node.view.cluster, []).append(node)
            self._buckets = {m: dict(sorted(cl.items())) for m, cl in buckets.items()}
            self._limits = {
                m: (
                    max(n.n for ns in cl.values() for n in ns),
                    max(sum(n.n for n in ns) for ns in cl.values()),
                    sum(n.n for ns in cl.values() for n in ns),
                )
                for m, cl in buckets.items()
            }
        return self._buckets

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
            if not node.gpu_free(g.index, start, e, frozenset()):
                other = self._overlapping_owners(node, g.index, start, e)
                raise DoubleBooking(
                    f"GPU {g.index} of node {g.node_id} is already booked by lease(s) "
                    f"{sorted(other)} during [{start}, {end}); lease {lease_id} was not booked"
                )
        for g in refs:
            self._insert(self._nodes[g.node_id], g.index, lease_id, start, e)
        self._leases[lease_id] = _Lease(refs, start, e)

    def release(self, lease_id: int) -> None:
        """Cancel: free all the lease's GPUs over its whole window. Unknown leases are ignored."""
        lease = self._leases.pop(lease_id, None)
        if lease is None:
            return
        for g in lease.gpus:
            self._delete(self._nodes[g.node_id], g.index, lease_id, lease.start, lease.end)

    def truncate(self, lease_id: int, new_end: int) -> None:
        """Ended early or preempted: the GPUs are free from new_end on (before start: freed entirely)."""
        lease = self._leases[lease_id]
        if new_end >= lease.end:
            return
        if new_end <= lease.start:
            self.release(lease_id)
            return
        self._reend(lease_id, lease, new_end)

    def can_extend(self, lease_id: int, new_end: int | None) -> bool:
        lease = self._leases[lease_id]
        e = OPEN_END if new_end is None else new_end
        if e <= lease.end:
            return True
        return all(self._nodes[g.node_id].gpu_free(g.index, lease.end, e, frozenset()) for g in lease.gpus)

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
        self._reend(lease_id, lease, e)

    def _reend(self, lease_id: int, lease: _Lease, e: int) -> None:
        for g in lease.gpus:
            node = self._nodes[g.node_id]
            starts = node.gpu_starts[g.index]
            j = bisect_left(starts, lease.start)
            node.gpu_ends[g.index][j] = e
            del node.ends[bisect_left(node.ends, lease.end)]
            insort(node.ends, e)
        lease.end = e

    def _insert(self, node: _Node, i: int, lease_id: int, s: int, e: int) -> None:
        starts = node.gpu_starts[i]
        j = bisect_left(starts, s)
        starts.insert(j, s)
        node.gpu_ends[i].insert(j, e)
        node.gpu_owners[i].insert(j, lease_id)
        insort(node.starts, s)
        insort(node.ends, e)

    def _delete(self, node: _Node, i: int, lease_id: int, s: int, e: int) -> None:
        starts = node.gpu_starts[i]
        j = bisect_left(starts, s)
        assert node.gpu_owners[i][j] == lease_id, "calendar index out of step with its leases"
        del starts[j], node.gpu_ends[i][j], node.gpu_owners[i][j]
        del node.starts[bisect_left(node.starts, s)]
        del node.ends[bisect_left(node.ends, e)]

    @staticmethod
    def _overlapping_owners(node: _Node, i: int, s: int, e: int) -> set[int]:
        starts, ends, owners = node.gpu_starts[i], node.gpu_ends[i], node.gpu_owners[i]
        j = bisect_left(starts, e) - 1
        found = set()
        while j >= 0 and ends[j] > s:
            found.add(owners[j])
            j -= 1
        return found

    # ----- queries ---------------------------------------------------------------------------------
    def free_gpus(self, node_id: int, start: int, end: int | None) -> list[int]:
        """Indices of the node's GPUs with no booking overlapping [start, end)."""
        return self._nodes[node_id].free_indices(start, OPEN_END if end is None else end)

    def leases_on(self, gpus: Iterable[GpuRef], start: int, end: int | None) -> set[int]:
        """Leases holding any of `gpus` at some time in [start, end)."""
        e = OPEN_END if end is None else end
        found: set[int] = set()
        for g in gpus:
            found |= self._overlapping_owners(self._nodes[g.node_id], g.index, start, e)
        return found

    def occupancy(self, node_id: int, start: int, end: int | None) -> list[frozenset[int]]:
        """Per GPU index of the node, the leases holding it at some time in [start, end)."""
        node = self._nodes[node_id]
        e = OPEN_END if end is None else end
        return [frozenset(self._overlapping_owners(node, i, start, e)) for i in range(node.n)]

    def bookings_of(self, lease_id: int) -> list[Booking]:
        lease = self._leases.get(lease_id)
        if lease is None:
            return []
        return [Booking(lease_id, g, lease.start, lease.end) for g in lease.gpus]

    def bookings(self) -> Iterator[Booking]:
        """Every booking, GPU by GPU in start order (for audits and property tests)."""
        for nid in sorted(self._nodes):
            node = self._nodes[nid]
            for i in range(node.n):
                for s, e, lid in zip(node.gpu_starts[i], node.gpu_ends[i], node.gpu_owners[i], strict=True):
                    yield Booking(lid, GpuRef(nid, i), s, e)

    def lease_ids(self) -> list[int]:
        return list(self._leases)

    def reservation_count(self) -> int:
        """Per-GPU bookings held (a lease on 8 GPUs counts 8)."""
        return sum(len(n.starts) for n in self._nodes.values())

    def free_now(self, gpu_model: str, at: int) -> tuple[int, int, int]:
        """At instant `at`, on schedulable nodes: (free GPUs, most free on one node, idle nodes)."""
        total = most = idle = 0
        for nodes in self._bucketed().get(gpu_model, {}).values():
            for node in nodes:
                if not node.open:
                    continue
                f = node.n - (bisect_right(node.starts, at) - bisect_right(node.ends, at))
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
            for i in range(node.n):
                for s, e in zip(node.gpu_starts[i], node.gpu_ends[i], strict=True):
                    booked += max(0, min(e, end) - max(s, start))
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
        free_total = sum(n.free_count(req.start, e) for n in schedulable)
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
        d = req.duration
        k = req.gpu_count
        if single:
            best_t, best_node = OPEN_END, None
            for nodes in clusters.values():
                for node in nodes:
                    if node.n < k or not node.open:
                        continue
                    t = node.first_fit(k, not_before, d, best_t)
                    if t is not None and t < best_t:
                        best_t, best_node = t, node
                        if t == not_before:
                            break
                if best_t == not_before:
                    break
            if best_node is None:
                return None
            e = OPEN_END if d is None else best_t + d
            # Place at that start with the usual best fit (the found node fits, another may fit better).
            placed = self._place_single(clusters, k, best_t, e, frozenset())
            assert placed is not None
            return best_t, placed
        best: tuple[int, Placement] | None = None
        for name, nodes in clusters.items():
            limit = OPEN_END if best is None else best[0]
            found = self._earliest_multi({name: nodes}, k, not_before, d, limit)
            if found is not None and (best is None or found[0] < best[0]):
                best = found
        return best

    def _shape(self, req: PlacementRequest) -> tuple[dict[str, list[_Node]], bool]:
        if req.gpu_count <= 0:
            raise Unplaceable("bad_request", f"a request needs at least one GPU, not {req.gpu_count}.")
        if req.end is not None and req.end <= req.start:
            raise Unplaceable("bad_request", f"the window must end after it starts ({req.start}..{req.end}).")
        clusters = self._bucketed().get(req.gpu_model)
        if not clusters:
            known = ", ".join(sorted(self._bucketed())) or "none"
            raise Unplaceable("unknown_model", f"no node has {req.gpu_model!r} GPUs; models in the facility: {known}.")
        biggest, largest, total = self._limits[req.gpu_model]
        single = req.gpu_count <= min(MAX_GPUS_PER_NODE, biggest)
        if not single and req.gpu_count > largest:
            raise Unplaceable(
                "too_large",
                f"{req.gpu_count} {req.gpu_model} GPUs asked, but a request above "
                f"{min(MAX_GPUS_PER_NODE, biggest)} must fit in one cluster and the largest cluster "
                f"has {largest} ({len(clusters)} cluster(s), {total} GPUs in all).",
            )
        return clusters, single

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
                ends_by_s = bisect_right(node.ends, s)
                c = bisect_left(node.starts, e) - ends_by_s
                if n - c >= best_free:  # free >= n - c: cannot beat (ties keep the lower id found first)
                    continue
                held_at_s = bisect_right(node.starts, s) - ends_by_s  # GPUs busy at instant s
                if c == 0:
                    f = n
                elif node.view.id in touched:
                    f = len(node.free_indices(s, e, ignore))
                elif n - held_at_s < k:  # free <= n - held_at_s
                    continue
                elif c == 1 or c == held_at_s:
                    f = n - c
                else:
                    f = 0
                    for starts, ends in zip(node.gpu_starts, node.gpu_ends, strict=True):
                        j = bisect_left(starts, e)
                        if j == 0 or ends[j - 1] <= s:
                            f += 1
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
            c = bisect_left(node.starts, e) - bisect_right(node.ends, s)
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
        self, clusters: dict[str, list[_Node]], k: int, t0: int, d: int | None, limit: int
    ) -> tuple[int, Placement] | None:
        nodes = [n for ns in clusters.values() for n in ns if n.open]
        if not nodes:
            return None
        biggest = max(n.n for n in nodes)
        need_whole = k // biggest  # at any feasible start at least this many nodes are entirely free
        if need_whole > len(nodes) or k > sum(n.n for n in nodes):
            return None
        whole_from = [-1] * len(nodes)  # per node: earliest start >= t with the whole node free
        t = t0
        while t < limit:
            e = OPEN_END if d is None else t + d
            found = self._multi_in_cluster(nodes, k, t, e, frozenset(), set())
            if found is not None:
                return t, found[1]
            # Two lower bounds on the next feasible start: the next end of any booking after t, and the
            # need_whole-th smallest "whole node free from" time (cached while still >= t).
            nxt = min((n.ends[j] for n in nodes if (j := bisect_right(n.ends, t)) < len(n.ends)), default=OPEN_END)
            if need_whole:
                for i, n in enumerate(nodes):
                    if whole_from[i] < t:
                        f = n.first_fit(n.n, t, d, OPEN_END)
                        whole_from[i] = OPEN_END if f is None else f
                nxt = max(nxt, sorted(whole_from)[need_whole - 1])
            if nxt >= OPEN_END:
                return None
            t = nxt
        return None
