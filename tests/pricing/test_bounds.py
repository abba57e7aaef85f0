"""Every number of a price book is bounded, so no price can overflow what prices with it;
an uploaded draft that is not UTF-8 is a PriceBookError, not a UnicodeDecodeError."""

from __future__ import annotations

import pytest

from credits_core.pricing import PriceBook, PriceBookError
from tests.pricing.conftest import MINI_BOOK

FLUX = """
[models.Pic]
provider = "Acme"
modality = "image"
price = {{ kind = "fixed", credits = {credits} }}
"""


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("credits = 101", f"credits = {2**70}"), "more than the limit of 10,000,000"),
        (("credits = 101", "credits = 1_100_000_000_000_000"), "more than the limit"),
        (("multiplier = 0.5", "multiplier = 1e308"), "less than or equal to 100"),
        (("multiplier = 0.5", "multiplier = inf"), "finite"),
        (("multiplier = 0.5", "multiplier = nan"), "finite"),
        (("credit_usd = 0.0005", "credit_usd = 1e-30"), "greater than or equal to"),
        (("credit_usd = 0.0005", "credit_usd = 1e30"), "less than or equal to"),
    ],
)
def test_out_of_bounds_prices_and_multipliers_are_refused_at_load(load_book, change, problem):
    with pytest.raises(PriceBookError, match=problem):
        load_book(MINI_BOOK.replace(*change))


@pytest.mark.parametrize("credits", [2**70, 10_000_001])
def test_a_fixed_price_above_the_bound_is_refused(load_book, credits):
    with pytest.raises(PriceBookError, match="less than or equal to 10000000"):
        load_book(MINI_BOOK + FLUX.format(credits=credits))
    assert load_book(MINI_BOOK + FLUX.format(credits=10_000_000)).quote("Pic").credits == (
        10_000_000
    )


def test_a_draft_that_is_not_utf8_is_a_price_book_error():
    latin1 = MINI_BOOK.replace('"v1"', '"v1 \u00e9t\u00e9"').encode("latin-1")
    with pytest.raises(PriceBookError, match="not UTF-8 text") as refused:
        PriceBook.loads(latin1, source="draft.toml")
    assert "draft.toml" in str(refused.value)
    assert PriceBook.loads(MINI_BOOK.encode("utf-8")).quote("Clip", resolution="720P", duration=5)
