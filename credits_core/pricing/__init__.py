"""The pricing rules engine: turns a generation request into a credit price.

`PriceBook.load()` reads data/pricing.toml (every version of the rules, checked whole);
`book.quote(model, **options)` prices one request with a readable breakdown;
`book.quote_frame(df)` prices a DataFrame at once; `catalog()` and `diff()` show the
book as a table and what changes between two books.
"""

from credits_core.pricing.book import PriceBook
from credits_core.pricing.errors import (
    InvalidOption,
    MissingOption,
    NoPriceBookInForce,
    PriceBookError,
    PricingError,
    UnknownModel,
    UnknownPlan,
    UnknownProvider,
)
from credits_core.pricing.quote import Quote, Step

__all__ = [
    "InvalidOption",
    "MissingOption",
    "NoPriceBookInForce",
    "PriceBook",
    "PriceBookError",
    "PricingError",
    "Quote",
    "Step",
    "UnknownModel",
    "UnknownPlan",
    "UnknownProvider",
]
