"""A demo facility: two sites, 16 nodes of 8xA100-80GB at $10.00 per node-hour, 4 nodes of 8xH100."""

from __future__ import annotations

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
    for (model, plan), rate in DEMO_PRICES.items():
        prices.set_price(work, actor=SYSTEM, gpu_model_name=model, plan=plan, rate=rate)
    return True


def demo_keys(work: Work, customer_id: int | None) -> dict[str, str]:
    out = {
        "operator": keys.create_key(work, actor=SYSTEM, role="operator", label="demo"),
        "compliance": keys.create_key(work, actor=SYSTEM, role="compliance", label="demo"),
    }
    if customer_id is not None:
        out["customer"] = keys.create_key(work, actor=SYSTEM, role="customer", customer_id=customer_id, label="demo")
    return out
