"""services/customer_terms.py: what a booking reads of its customer, as plain values, on both stores."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from gpulease.runtime import Runtime
from gpulease.services.customer_terms import CustomerTerms, customer_terms
from gpulease.store.models import Customer
from tests.conftest import Facility


def test_a_customers_terms_are_read_as_this_transaction_has_them(facility: Facility, runtime: Runtime) -> None:
    cid = facility.customer()["id"]
    with runtime.work() as w:
        assert customer_terms(w, cid) == CustomerTerms(
            cid, "Acme Robotics Inc.", "cleared", date(2015, 1, 1), 0.0, None, {}
        )
        c = w.session.get(Customer, cid)
        assert c is not None
        # Changed in this transaction and not flushed yet (an operator setting limits, then a check): read as changed.
        c.monthly_spend_limit = Decimal("1250.50")
        c.gpu_quota = {"A100-80GB": 16}
        c.cumulative_flop = 2.5e24
        terms = customer_terms(w, cid)
        assert terms is not None
        assert terms.monthly_spend_limit == Decimal("1250.50") and isinstance(terms.monthly_spend_limit, Decimal)
        assert terms.gpu_quota == {"A100-80GB": 16} and terms.cumulative_flop == 2.5e24
        assert customer_terms(w, cid + 1000) is None
        w.session.rollback()
