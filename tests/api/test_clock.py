"""The lease clock cannot stop: holds, failures, nodes going down and random sequences of events never wedge
the tick.

Everything goes through the API and the server's own tick (`Runtime.tick`), as in production.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import or_, select, update

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.model import ListEntry
from gpulease.domain.leases import HOLDS_CAPACITY, TERMINAL, LeaseState
from gpulease.runtime import Runtime
from gpulease.services import node_failure
from gpulease.services.customer_screening import rescreen_all
from gpulease.store.models import Alert, Allocation, Lease, Node
from tests.conftest import Clock, Facility

HIT_NAME = "Orchid Frontier Computing Pte. Ltd."


def _hold(runtime: Runtime, clock: Clock, name: str = HIT_NAME) -> None:
    """A list load that newly hits `name`: the production re-screening path, over a one-entry list."""
    entry = ListEntry(id="EL-test-1", list="EL", list_name="Entity List", type="Entity", name=name, countries=("SG",))
    with runtime.work() as w:
        rescreen_all(
            w, ScreeningIndex.build([entry], version="test"), trigger="list version test", list_version_id=None
        )


def _state(facility: Facility, lease_id: int) -> str:
    r = facility.c.get(f"/api/v1/leases/{lease_id}", headers=facility.k.op)
    assert r.status_code == 200, r.text
    return str(r.json()["state"])


def test_a_held_lease_that_reaches_its_end_does_not_stop_the_clock(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    """The outage of issue 7: a started lease with an end, suspended by compliance, reaching its end."""
    facility.nodes(2)
    facility.prices()
    held_customer = facility.customer(HIT_NAME, country="SG")
    other = facility.customer("Acme Robotics Inc.")
    held = facility.lease(
        customer_id=held_customer["id"],
        gpu_model="A100-80GB",
        gpu_count=8,
        end=(clock() + timedelta(hours=2)).isoformat(),
    )
    later = facility.lease(
        customer_id=other["id"],
        gpu_model="A100-80GB",
        gpu_count=4,
        plan="reserved",
        start=(clock() + timedelta(hours=3)).isoformat(),
        end=(clock() + timedelta(hours=5)).isoformat(),
    )
    _hold(runtime, clock)
    assert _state(facility, held["id"]) == "suspended"

    clock.advance(hours=2, seconds=30)
    result = runtime.tick()
    assert result.failed == {}
    assert held["id"] in result.ended
    assert _state(facility, held["id"]) in ("ending", "ended")

    clock.advance(hours=1)
    result = runtime.tick()
    assert result.failed == {} and later["id"] in result.started  # the clock still runs for everyone
    assert _state(facility, held["id"]) == "ended"


def test_a_suspended_lease_can_be_ended_and_cancelled(facility: Facility, runtime: Runtime, clock: Clock) -> None:
    facility.nodes(1)
    facility.prices()
    c = facility.customer(HIT_NAME, country="SG")
    running = facility.lease(customer_id=c["id"], gpu_model="A100-80GB", gpu_count=2)
    future = facility.lease(
        customer_id=c["id"],
        gpu_model="A100-80GB",
        gpu_count=2,
        plan="reserved",
        start=(clock() + timedelta(days=2)).isoformat(),
        end=(clock() + timedelta(days=3)).isoformat(),
    )
    _hold(runtime, clock)
    customer = facility.customer_key(c["id"])
    r = facility.c.post(f"/api/v1/leases/{running['id']}/end", headers=customer)
    assert r.status_code == 200, r.text
    assert r.json()["state"] in ("ending", "ended")
    r = facility.c.post(f"/api/v1/leases/{future['id']}/cancel", headers=facility.k.op)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled"
    assert runtime.tick().failed == {}


def test_one_lease_that_cannot_advance_is_alerted_once_and_holds_back_no_other(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    facility.nodes(2)
    facility.prices()
    c = facility.customer()
    broken = facility.lease(
        customer_id=c["id"], gpu_model="A100-80GB", gpu_count=1, end=(clock() + timedelta(hours=1)).isoformat()
    )
    fine = facility.lease(
        customer_id=c["id"], gpu_model="A100-80GB", gpu_count=1, end=(clock() + timedelta(hours=1)).isoformat()
    )
    starts = facility.lease(
        customer_id=c["id"],
        gpu_model="A100-80GB",
        gpu_count=1,
        start=(clock() + timedelta(minutes=30)).isoformat(),
        end=(clock() + timedelta(hours=2)).isoformat(),
    )
    good_quote: dict[str, Any]
    with runtime.store.transaction() as s:  # a corrupt row: billing it at its end fails
        lease = s.get(Lease, broken["id"])
        assert lease is not None
        good_quote = dict(lease.quote)
        s.execute(update(Lease).where(Lease.id == broken["id"]).values(quote={"corrupt": True}))

    clock.advance(hours=1, minutes=1)
    for _ in range(3):  # it keeps failing, every tick
        result = runtime.tick()
        assert set(result.failed) == {broken["id"]}
        clock.advance(seconds=1)
    assert _state(facility, fine["id"]) in ("ending", "ended")
    assert _state(facility, starts["id"]) == "active"
    with runtime.store.transaction() as s:
        assert s.get(Lease, broken["id"]).state == "active"  # type: ignore[union-attr]
        alerts = s.scalars(select(Alert).where(Alert.kind == "clock_failure")).all()
        assert len(alerts) == 1 and alerts[0].data["lease_id"] == broken["id"]

    with runtime.store.transaction() as s:  # repaired: the next tick closes it
        s.execute(update(Lease).where(Lease.id == broken["id"]).values(quote=good_quote))
    assert runtime.tick().failed == {}
    assert _state(facility, broken["id"]) in ("ending", "ended")


# --------------------------------------------------------------------------------------------- random sequences

PLANS = ("on_demand", "reserved", "interruptible", "long_term")
book = st.tuples(
    st.just("book"),
    st.integers(0, 1),  # customer
    st.sampled_from(PLANS),
    st.sampled_from((1, 2, 4, 8)),
    st.sampled_from((0, 0, 1, 30)),  # start offset in hours
    st.sampled_from((None, 1, 3, 24 * 31)),  # hours long; None = open-ended
    st.booleans(),  # asap (join the queue)
)
hold = st.tuples(st.just("hold"), st.integers(0, 1))
jump = st.tuples(st.just("jump"), st.sampled_from((1, 59, 600, 3600, 5 * 3600, 40 * 86400)))
# Bookings, holds and time passing weigh more: the interesting cases are leases that are held while time runs.
step = st.one_of(
    book,
    book,
    hold,
    jump,
    jump,
    st.tuples(st.sampled_from(("end", "cancel", "preempt")), st.integers(0, 50)),
    st.tuples(st.just("extend"), st.integers(0, 50), st.sampled_from((1, 5))),
    st.tuples(st.sampled_from(("approve", "deny")), st.integers(0, 1)),
    st.tuples(st.sampled_from(("node_down", "node_lost", "node_up")), st.integers(0, 1)),  # a node fails, returns
)


def _apply(
    f: Facility, rt: Runtime, clock: Clock, people: list[dict[str, Any]], leases: list[int], ev: tuple[Any, ...]
) -> None:
    kind = ev[0]
    if kind == "book":
        _, who, plan, n, start_h, hours, asap = ev
        body: dict[str, Any] = {
            "customer_id": people[who]["id"],
            "gpu_model": "A100-80GB",
            "gpu_count": n,
            "plan": plan,
        }
        if asap and plan != "reserved":
            body.update(start="asap", duration_s=None if hours is None else hours * 3600, max_wait_s=7200)
        else:
            start = clock() + timedelta(hours=start_h)
            body["start"] = start.isoformat() if start_h else "now"
            if hours is not None:
                body["end"] = (start + timedelta(hours=hours)).isoformat()
        r = f.c.post("/api/v1/leases", headers=f.k.op, json=body)
        assert r.status_code < 500, r.text
        if r.status_code == 201:
            leases.append(r.json()["id"])
    elif kind in ("end", "cancel", "preempt", "extend"):
        if not leases:
            return
        lease_id = leases[ev[1] % len(leases)]
        if kind == "extend":
            current = f.c.get(f"/api/v1/leases/{lease_id}", headers=f.k.op).json()
            if current["end"] is None:
                return
            r = f.c.post(
                f"/api/v1/leases/{lease_id}/extend",
                headers=f.k.op,
                json={"end": (clock() + timedelta(hours=ev[2])).isoformat()},
            )
        else:
            r = f.c.post(f"/api/v1/leases/{lease_id}/{kind}", headers=f.k.op)
        assert r.status_code < 500, r.text
    elif kind == "hold":
        _hold(rt, clock, people[ev[1]]["legal_name"])
    elif kind in ("approve", "deny"):
        open_items = f.c.get("/api/v1/reviews", headers=f.k.co).json()
        mine = [i for i in open_items if i["customer_id"] == people[ev[1]]["id"]]
        if mine:
            r = f.c.post(
                f"/api/v1/reviews/{mine[0]['id']}/decision",
                headers=f.k.co,
                json={"decision": kind, "comment": "checked in the property test"},
            )
            assert r.status_code < 500, r.text
    elif kind == "jump":
        clock.advance(seconds=ev[1])
    elif kind in ("node_down", "node_up"):
        node_id = f.c.get("/api/v1/nodes", headers=f.k.op).json()[ev[1]]["id"]
        state = "down" if kind == "node_down" else "available"
        r = f.c.put(f"/api/v1/nodes/{node_id}/state", headers=f.k.op, json={"state": state})
        assert r.status_code == 200, r.text
    elif kind == "node_lost":  # the backend reports it (the Slurm helper's path)
        node_id = f.c.get("/api/v1/nodes", headers=f.k.op).json()[ev[1]]["id"]
        rt.perform(node_failure.node_lost, node_id=node_id, reason="backend: node not responding")
    result = rt.tick()
    assert result.failed == {}, result.failed
    # No lease holds a GPU of a node that is down, now or later: a failure moved or ended them all.
    with rt.store.transaction() as s:
        down = set(s.scalars(select(Node.id).where(Node.state == "down")))
        held = s.scalars(
            select(Allocation.node_id)
            .join(Lease, Allocation.lease_id == Lease.id)
            .where(
                Allocation.released.is_(False),
                or_(Allocation.ends_at.is_(None), Allocation.ends_at > clock()),
                Lease.state.in_([state.value for state in HOLDS_CAPACITY]),
            )
        )
        assert not set(held) & down


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(step, min_size=3, max_size=30))
@example(events=[("book", 0, "on_demand", 8, 0, 3, False), ("hold", 0), ("jump", 5 * 3600)])  # the issue-7 outage
@example(events=[("book", 1, "interruptible", 8, 0, None, False), ("hold", 1), ("preempt", 0), ("jump", 3600)])
@example(events=[("book", 0, "on_demand", 8, 0, None, True), ("book", 1, "on_demand", 8, 0, 1, True), ("hold", 1)])
@example(  # a lease moved off a failed node, then extended: its GPUs before the move stay closed at the failure
    events=[
        ("book", 0, "on_demand", 1, 0, 1, False),
        ("jump", 1),
        ("book", 0, "on_demand", 1, 0, None, False),
        ("node_down", 0),
        ("extend", 0, 1),
    ]
)
@example(  # a held lease on a node that fails, while the other node is full: it ends, billed to the failure
    events=[
        ("book", 0, "reserved", 8, 0, 3, False),
        ("book", 1, "on_demand", 8, 0, None, False),
        ("hold", 0),
        ("node_down", 0),
        ("jump", 5 * 3600),
        ("node_up", 0),
    ]
)
@example(  # a queued request and a future window on a node that is lost, then both nodes fail and return
    events=[
        ("book", 0, "on_demand", 8, 0, None, False),
        ("book", 1, "interruptible", 8, 0, None, True),
        ("book", 0, "reserved", 4, 30, 3, False),
        ("node_lost", 1),
        ("node_down", 0),
        ("jump", 3600),
        ("node_up", 1),
        ("jump", 40 * 86400),
    ]
)
def test_random_event_sequences_never_stop_the_clock_and_every_lease_ends(
    fresh_runtime: Any, events: list[tuple[Any, ...]]
) -> None:
    with fresh_runtime() as (rt, clock, f):
        f.nodes(2)
        f.prices()
        people = [f.customer("Acme Robotics Inc."), f.customer("Borealis Vision AB", country="SE")]
        leases: list[int] = []
        for ev in events:
            _apply(f, rt, clock, people, leases, ev)
        # Every lease can be brought to an end: end what is open-ended, then let the clock run past everything.
        for lease_id in leases:
            before = _state(f, lease_id)
            r = f.c.post(f"/api/v1/leases/{lease_id}/end", headers=f.k.op)
            if LeaseState(before) in TERMINAL or before == "ending":
                assert r.status_code == 409, r.text
            else:
                assert r.status_code == 200, f"{before}: {r.text}"
        for _ in range(2):
            clock.advance(days=100)
            assert rt.tick().failed == {}
        with rt.store.transaction() as s:
            states = {lease.id: lease.state for lease in s.scalars(select(Lease))}
        assert all(LeaseState(v) in TERMINAL for v in states.values()), states
