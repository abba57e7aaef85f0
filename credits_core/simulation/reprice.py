"""Repricing for the price-change replay: the window's usage priced under both books.

The window's journal entries, read through the ledger's read surface (schema migration
8), are grouped in SQL by what prices a generation (model, the user's plan, options, the
charge, the day: its key): a few thousand keys for millions of rows. Each key's options
are recorded or recovered from its charge (skus.py), and both books price every key at
one moment `at` (by default when the draft's newest version takes effect, or now if
later) through `quote_frame`, the engine's vectorized path. Prices edited in a table
scale each plan's price of the SKU.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from credits_core.pricing import PriceBook
from credits_core.pricing.schema import MAX_PRICE_CREDITS
from credits_core.simulation import skus
from credits_core.simulation.errors import InvalidEditedPrices

# The window's journal entries with the user's plan and the generation's options (from
# the hold for reserved generations, else from the entry's metadata), read through the
# ledger's read surface (schema migration 8); run_out.py replays the same entries.
ENTRIES = """
WITH hold_options AS (
    SELECT a.account_no, h.transaction_id, h.options::VARCHAR AS options
    FROM ledger_holds AS h JOIN ledger_accounts AS a USING (user_id)
),
entries AS (
    SELECT j.account_no, j.seq, j.ts, j.kind, j.model, -j.credits AS charged,
           j.balance_after - j.held_after AS available, a.plan,
           coalesce(o.options, (j.metadata -> 'options')::VARCHAR) AS options,
           epoch_us(j.ts) // 86400000000 AS day  -- days since 1970 (UTC); date_trunc is slow
    FROM ledger_journal AS j
    JOIN ledger_accounts AS a USING (account_no)
    LEFT JOIN hold_options AS o
      ON o.account_no = j.account_no AND o.transaction_id = j.transaction_id
    WHERE j.ts >= ? AND j.ts < ?
)
"""

# What prices a generation, and how many generations share it: a few thousand keys.
USAGE = (
    ENTRIES
    + """
SELECT hash(model, plan, options, charged, day) AS key,
       model, plan, options, charged, day, count(*) AS generations
FROM entries
WHERE kind = 'capture'
GROUP BY ALL
"""
)


def default_moment(current: PriceBook, draft: PriceBook, now: datetime) -> datetime:
    """When the draft would be in force: its newest version's start, or now if later."""
    newest = max(current.versions[-1].effective_from, draft.versions[-1].effective_from)
    return max(now, newest)


def reprice(
    keys: pd.DataFrame,
    current: PriceBook,
    draft: PriceBook,
    at: datetime,
    edited: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each usage key with its options, its credits and provider cost per generation
    under both books at `at`; keys either book cannot price keep their charge."""
    keys = keys.copy()
    keys["at"] = pd.to_datetime(keys["day"], unit="D", utc=True) + pd.Timedelta(hours=12)
    options = skus.identify(current, keys)
    keys["sku"] = [
        skus.catalog_label(current, model, found, at)
        for model, found in zip(keys["model"], options, strict=True)
    ]
    frame = _request_frame(keys, options)
    before = current.quote_frame(frame, at=at)
    after = draft.quote_frame(frame, at=at)
    ok = (options.notna() & before["error"].isna() & after["error"].isna()).to_numpy()
    charged = keys["charged"].to_numpy()
    keys["priced"] = ok
    keys["credits_before"] = np.where(ok, before["credits"].fillna(0).to_numpy(int), charged)
    keys["credits_after"] = np.where(ok, after["credits"].fillna(0).to_numpy(int), charged)
    keys["cost_before"] = np.where(ok, before["provider_cost_usd"].fillna(0).to_numpy(float), 0)
    keys["cost_after"] = np.where(ok, after["provider_cost_usd"].fillna(0).to_numpy(float), 0)
    keys["credit_usd_before"] = float(current.version_at(at).credit_usd)
    keys["credit_usd_after"] = float(draft.version_at(at).credit_usd)
    if edited is not None:
        keys["credits_after"] = _scaled(keys, edited, current.catalog(at))
    keys["sku"] = keys["sku"].fillna("(options unknown)")
    return keys.drop(columns="at")


def _scaled(keys: pd.DataFrame, edited: pd.DataFrame, catalog: pd.DataFrame) -> np.ndarray:
    """credits_after with edited SKUs scaled by edited / catalog credits (rounded up).
    Edited prices obey the price book's bounds (so no sum of them overflows int64)."""
    edited = _bounded_prices(edited)
    table = catalog[["model", "options", "credits"]].merge(
        edited[["model", "options", "credits"]], on=["model", "options"], suffixes=("", "_new")
    )
    table = table[table["credits_new"] != table["credits"]]
    ratio = keys.merge(table.rename(columns={"options": "sku"}), on=["model", "sku"], how="left")
    factor = (ratio["credits_new"] / ratio["credits"]).fillna(1.0).to_numpy()
    after = keys["credits_after"].to_numpy()
    return np.where(factor == 1.0, after, np.ceil(after * factor - 1e-9)).astype(np.int64)


def _bounded_prices(edited: pd.DataFrame) -> pd.DataFrame:
    credits = pd.to_numeric(edited["credits"], errors="coerce")
    whole = credits.notna() & (credits == credits.round())
    wrong = ~whole | (credits < 0) | (credits > MAX_PRICE_CREDITS)
    if wrong.any():
        rows = edited[wrong.to_numpy()].head(5)
        named = "; ".join(
            f"{model} {options or ''}: {value!r}".replace(" :", ":")
            for model, options, value in zip(
                rows["model"], rows["options"], rows["credits"], strict=True
            )
        )
        raise InvalidEditedPrices(
            f"Edited prices must be whole numbers of credits from 0 to {MAX_PRICE_CREDITS:,} "
            f"per generation; {int(wrong.sum())} are not ({named})."
        )
    return edited.assign(credits=credits.astype(np.int64))


def _request_frame(keys: pd.DataFrame, options: pd.Series) -> pd.DataFrame:
    names = sorted({name for found in options.dropna() for name in found})
    frame = pd.DataFrame({"model": keys["model"], "plan": keys["plan"]})
    for name in names:
        frame[name] = options.map(lambda found, n=name: None if found is None else found.get(n))
    return frame
