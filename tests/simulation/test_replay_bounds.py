"""The replay never overflows: prices edited in the table obey the price book's bounds
(a typed error names the bad rows), so sums over millions of generations fit int64."""

from __future__ import annotations

import pytest

from credits_core.pricing.schema import MAX_PRICE_CREDITS
from credits_core.simulation import InvalidEditedPrices
from credits_core.simulation.replay import replay
from tests.simulation.conftest import END


def edited_catalog(book, change):
    edited = book.catalog()[["model", "options", "credits"]].copy()
    edited["credits"] = change(edited["credits"])
    return edited


CHANGES = {  # the probe's draft: every price x1e13 gave credits_after = -2675114073708993314
    "x1e13": lambda credits: credits * 10**13,
    "x1e13 as floats": lambda credits: credits * 1e13,
    "negative": lambda credits: -credits,
    "half credits": lambda credits: credits + 0.5,
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_edited_prices_out_of_bounds_are_refused(known, book, change):
    edited = edited_catalog(book, CHANGES[change])
    with pytest.raises(InvalidEditedPrices, match="from 0 to 10,000,000") as refused:
        replay(known, book, days=10, current=book, until=END, edited=edited)
    assert "FLUX" in str(refused.value) or "MiniMax" in str(refused.value)


def test_the_highest_edited_price_allowed_replays_without_overflow(known, book):
    edited = edited_catalog(book, lambda credits: credits * 0 + MAX_PRICE_CREDITS)
    result = replay(known, book, days=10, current=book, until=END, edited=edited)
    totals = result.by_model
    assert (totals["credits_after"] >= totals["credits_before"]).all()
    assert (totals["credits_after"] > 0).all()
