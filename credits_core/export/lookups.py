"""What the export needs from the price book, as small tables DuckDB can join.

- `models_table`: model -> provider, modality (every model any version lists).
- `sku_costs_table`: (model, plan, credits) -> provider cost, for usage booked without
  its options: the SKU of that model whose price for the user's plan equals the credits
  the generation reserved, at any moment the book prices differently (each version and
  each promotion's start and end). Kept only where that names a single cost.
- `option_costs_table`: (model, options JSON text) -> provider cost, pricing each
  distinct set of options the ledger recorded with the book in force now.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from functools import cache

import pandas as pd

from credits_core.pricing import PriceBook, PricingError

NO_PLAN = ""  # the plan key of accounts without a plan (priced without plan rules)


def models_table(book: PriceBook) -> pd.DataFrame:
    rows = {
        name: (model.provider, model.modality)
        for version in book.versions
        for name, model in version.models.items()
    }
    return pd.DataFrame(
        [(name, provider, modality) for name, (provider, modality) in rows.items()],
        columns=["model", "provider", "modality"],
    )


def sku_costs_table(book: PriceBook) -> pd.DataFrame:
    return _sku_costs(book).copy()


@cache
def _sku_costs(book: PriceBook) -> pd.DataFrame:
    frames = []
    for moment in price_moments(book):
        for plan in [None, *book.plans(moment)]:
            catalog = book.catalog(at=moment, plan=plan)
            frames.append(
                pd.DataFrame(
                    {
                        "model": catalog["model"],
                        "plan": plan or NO_PLAN,
                        "credits": catalog["credits"].astype("int64"),
                        "provider_cost_usd": catalog["provider_cost_usd"],
                    }
                )
            )
    skus = pd.concat(frames, ignore_index=True).drop_duplicates()
    single = skus[~skus.duplicated(["model", "plan", "credits"], keep=False)]
    return single.dropna(subset=["provider_cost_usd"]).reset_index(drop=True)


def price_moments(book: PriceBook) -> list[datetime]:
    """Every moment from which the book's prices may differ from the moment before."""
    first = book.versions[0].effective_from
    moments = {v.effective_from for v in book.versions}
    for version in book.versions:
        for promotion in version.promotions:
            moments |= {promotion.starts, promotion.ends}
    return sorted(m for m in moments if m >= first)


def option_costs_table(book: PriceBook, recorded: Iterable[tuple[str, str]]) -> pd.DataFrame:
    """The provider cost of each recorded (model, options JSON), None where unpriceable."""
    rows = [(model, options, _cost(book, model, options)) for model, options in recorded]
    frame = pd.DataFrame(rows, columns=["model", "options", "provider_cost_usd"])
    return frame.astype({"model": "object", "options": "object", "provider_cost_usd": "float64"})


def _cost(book: PriceBook, model: str, options: str) -> float | None:
    try:
        chosen = json.loads(options)
        if not isinstance(chosen, dict):
            return None
        return book.quote(model, **chosen).provider_cost_usd
    except (PricingError, ValueError, TypeError):
        return None
