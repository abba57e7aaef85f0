"""Which SKU (model and options) a recorded generation was.

Generations reserved with a quote keep their options (holds.options, or the journal
entry's metadata {"options": {...}}); generations booked in bulk without options keep
only their model and what they were charged. For those, the options are recovered from
the price: every priced combination of the model's options is quoted under the book in
force that day (at noon), with the user's plan, and the first combination whose credits
equal the charge is taken (options that do not change the price keep their defaults).
A charge no combination explains stays unidentified.
"""

from __future__ import annotations

import json
from functools import cache

import pandas as pd

from credits_core.pricing import PriceBook, PricingError
from credits_core.pricing.options import format_value


def options_text(options: dict | None) -> str | None:
    """Options as the catalog writes them: "resolution=768P, duration=6" ("" for none)."""
    if options is None:
        return None
    return ", ".join(f"{k}={format_value(v)}" for k, v in options.items())


def catalog_label(book: PriceBook, model: str, options: dict | None, at: object) -> str | None:
    """The SKU as `PriceBook.catalog()` names it: the options that change the price,
    count left out (the catalog prices one unit)."""
    if options is None:
        return None
    try:
        _name, spec = book.model(model, at)
    except PricingError:
        return options_text(options)
    priced = [k for k in spec.priced_options if k != "count" and k in options]
    return ", ".join(f"{k}={format_value(options[k])}" for k in priced)


def parse_options(raw: object) -> dict | None:
    """Options from a JSON text or dict (None when not recorded)."""
    if raw is None or (isinstance(raw, float) and pd.isna(raw)):
        return None
    value = json.loads(raw) if isinstance(raw, str) else raw
    return dict(value) if isinstance(value, dict) else None


def combinations(book: PriceBook, model: str, at: object) -> list[dict]:
    """Every combination of the options that change a model's price (the others keep
    their defaults); [] if the model is not in the book at that time."""
    return _combinations(book, model, pd.Timestamp(at).isoformat())


@cache
def _combinations(book: PriceBook, model: str, at: str) -> list[dict]:
    try:
        _name, spec = book.model(model, at)
    except PricingError:
        return []
    return spec.combinations(spec.priced_options)


def identify(book: PriceBook, keys: pd.DataFrame) -> pd.Series:
    """The options of each row of `keys` (model, plan, charged, at, options): recorded
    ones as they are, missing ones recovered from the charge; None when unexplained."""
    found = keys["options"].map(parse_options)
    missing = keys.index[found.isna() & keys["charged"].gt(0)]
    if len(missing) == 0:
        return found
    todo = keys.loc[missing, ["model", "plan", "charged", "at"]]
    candidates = [
        {"key": index, "model": model, "plan": plan, "at": at, "charged": charged, **combo}
        for index, model, plan, charged, at in todo.itertuples(name=None)
        for combo in combinations(book, model, at)
    ]
    if not candidates:
        return found
    frame = pd.DataFrame(candidates)
    fixed = {"key", "model", "plan", "at", "charged"}
    option_columns = [c for c in frame.columns if c not in fixed]
    priced = book.quote_frame(frame)
    matches = frame[priced["credits"].eq(frame["charged"]).fillna(False).to_numpy(dtype=bool)]
    first = matches.drop_duplicates("key")
    recovered = [
        {c: _plain(v) for c, v in record.items() if not _missing(v)}
        for record in first[option_columns].to_dict("records")
    ]
    return found.where(~found.index.isin(first["key"]), pd.Series(recovered, index=first["key"]))


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def _plain(value: object) -> object:
    """numpy scalars (and floats holding whole numbers) as plain Python values."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
