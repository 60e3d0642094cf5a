"""A demo facility: two sites, 16 nodes of 8xA100-80GB at $10.00 per node-hour, 4 nodes of 8xH100."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gpulease.services import inventory, keys, prices
from gpulease.services.context import SYSTEM
from gpulease.store.models import Node

# (gpu model, plan) -> rate; long_term is per GPU-month (30 days), the rest per GPU-hour.
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


def seed_facility(session: Session, now: datetime) -> bool:
    """Add the demo nodes and prices unless the inventory already has nodes. Returns True if it seeded."""
    if session.scalar(select(func.count()).select_from(Node)):
        return False
    for i in range(16):
        site, cluster = ("fra1", "a100-a") if i < 8 else ("fra1", "a100-b")
        inventory.add_node(
            session,
            SYSTEM,
            site=site,
            cluster=cluster,
            name=f"fra1-a100-{i:02d}",
            gpu_model_name="A100-80GB",
            gpu_count=8,
            now=now,
        )
    for i in range(4):
        inventory.add_node(
            session,
            SYSTEM,
            site="iad1",
            cluster="h100-a",
            name=f"iad1-h100-{i:02d}",
            gpu_model_name="H100-80GB",
            gpu_count=8,
            now=now,
        )
    for (model, plan), rate in DEMO_PRICES.items():
        prices.set_price(session, SYSTEM, gpu_model_name=model, plan=plan, rate=rate, now=now)
    return True


def demo_keys(session: Session, customer_id: int | None, now: datetime) -> dict[str, str]:
    out = {
        "operator": keys.create_key(session, role="operator", customer_id=None, now=now, label="demo"),
        "compliance": keys.create_key(session, role="compliance", customer_id=None, now=now, label="demo"),
    }
    if customer_id is not None:
        out["customer"] = keys.create_key(session, role="customer", customer_id=customer_id, now=now, label="demo")
    return out
