"""A demo facility: two sites, 16 nodes of 8xA100-80GB at $10.00 per node-hour, 4 nodes of 8xH100, and 2 CPU nodes
(2 x AMD EPYC 9654, 192 cores, 1,536 GiB) rented per core-hour."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from gpulease.services import inventory, keys, prices
from gpulease.services.context import SYSTEM
from gpulease.services.work import Work
from gpulease.store.models import Node

# (gpu model, plan) -> rate; long_term is per GPU-month (a calendar month), the rest per GPU-hour.
DEMO_PRICES: dict[tuple[str, str], str] = {
    ("A100-80GB", "on_demand"): "1.25",  # 8 GPUs x $1.25 = $10.00 per node-hour
    ("A100-80GB", "reserved"): "1.00",
    ("A100-80GB", "long_term"): "600.00",
    ("A100-80GB", "interruptible"): "0.50",
    ("H100-80GB", "on_demand"): "2.50",
    ("H100-80GB", "reserved"): "2.10",
    ("H100-80GB", "long_term"): "1300.00",
    ("H100-80GB", "interruptible"): "1.00",
}

DEMO_CPU_PRICES = {  # EPYC-9654, per core-hour (long_term: per core-month)
    "on_demand": "0.045",
    "reserved": "0.038",
    "long_term": "24.00",
    "interruptible": "0.018",
}


def seed_facility(work: Work) -> bool:
    """Add the demo nodes and prices unless the inventory already has nodes. Returns True if it seeded."""
    if work.session.scalar(select(func.count()).select_from(Node)):
        return False
    for i in range(16):
        site, cluster = ("fra1", "a100-a") if i < 8 else ("fra1", "a100-b")
        inventory.add_node(
            work,
            actor=SYSTEM,
            site=site,
            cluster=cluster,
            name=f"fra1-a100-{i:02d}",
            gpu_model_name="A100-80GB",
            gpu_count=8,
        )
    for i in range(4):
        inventory.add_node(
            work,
            actor=SYSTEM,
            site="iad1",
            cluster="h100-a",
            name=f"iad1-h100-{i:02d}",
            gpu_model_name="H100-80GB",
            gpu_count=8,
        )
    for i in range(2):
        inventory.add_node(
            work,
            actor=SYSTEM,
            site="fra1",
            cluster="cpu-a",
            name=f"fra1-cpu-{i:02d}",
            gpu_model_name=None,
            cpus=inventory.NodeCpus(cpu_model="EPYC-9654", cpu_cores=192, memory_gib=1536),
        )
    for (model, plan), rate in DEMO_PRICES.items():
        prices.set_price(work, actor=SYSTEM, gpu_model_name=model, plan=plan, rate=rate)
    for plan, rate in DEMO_CPU_PRICES.items():
        prices.set_price(work, actor=SYSTEM, gpu_model_name=None, cpu_model_name="EPYC-9654", plan=plan, rate=rate)
    return True


@dataclass(frozen=True)
class DemoKeys:
    keys: dict[str, str]  # role -> secret
    minted: list[str]  # the roles whose key is new this time (the others were given before and still work)


def demo_keys(work: Work, customer_id: int | None, known: dict[str, str] | None = None) -> DemoKeys:
    """An operator, a compliance and (with a customer) a customer key: the `known` ones (kept by the demo from
    an earlier run) again where they still work for that role and customer, new ones where not."""
    wanted: dict[str, int | None] = {"operator": None, "compliance": None}
    if customer_id is not None:
        wanted["customer"] = customer_id
    out: dict[str, str] = {}
    minted: list[str] = []
    for role, customer in wanted.items():
        old = (known or {}).get(role)
        actor = keys.authenticate(work.session, old, work.now) if isinstance(old, str) and old else None
        if old and actor is not None and actor.role.value == role and actor.customer_id == customer:
            out[role] = old
            continue
        out[role] = keys.create_key(work, actor=SYSTEM, role=role, customer_id=customer, label="demo")
        minted.append(role)
    return DemoKeys(out, minted)
