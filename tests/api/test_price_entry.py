"""A booking reads its own price (`prices.price_entry`), not the whole book: the same entry the book has, the
latest one set, and the book's own refusal when there is none."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gpulease.domain.leases import Plan
from gpulease.domain.pricing import PricingError
from gpulease.runtime import Runtime
from gpulease.services.prices import price_book, price_entry
from tests.conftest import Facility


def test_one_price_is_the_book_s(facility: Facility, runtime: Runtime) -> None:
    facility.prices()
    facility.prices("H100-80GB", on_demand="2.40")
    facility.prices("H100-80GB", on_demand="2.10")  # the one in force now
    facility.prices("H200", on_demand="3.123457")  # every digit a rate may have, read back exactly
    with runtime.store.reading() as s:
        book = price_book(s)
        for (model, plan), entry in book.entries.items():
            assert price_entry(s, model, plan) == entry
        assert price_entry(s, "H100-80GB", Plan.ON_DEMAND).rate == Decimal("2.10")
        assert str(price_entry(s, "H200", Plan.ON_DEMAND).rate) == "3.123457"
        with pytest.raises(PricingError, match="no on_demand price for B200 in the price book"):
            price_entry(s, "B200", Plan.ON_DEMAND)
