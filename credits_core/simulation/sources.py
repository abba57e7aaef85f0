"""A real user, read from the ledger, as scenario inputs: their usage mix over the last
days and the credits they hold now. Read only (one snapshot each), through the ledger's
read surface (schema migration 8) and its API."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from credits_core.ledger import Ledger
from credits_core.plans import Plans
from credits_core.pricing import PriceBook
from credits_core.simulation import skus
from credits_core.simulation.errors import InvalidScenario
from credits_core.simulation.scenario import Lot, MixItem, PlanTerms

USER_USAGE = """
WITH mine AS MATERIALIZED (
    SELECT ts, kind, model, credits, metadata, transaction_id
    FROM ledger_journal
    WHERE account_no = (SELECT account_no FROM ledger_accounts WHERE user_id = ?)
      AND kind = 'capture' AND ts >= ? AND ts < ?
)
SELECT m.model, a.plan,
       coalesce(h.options::VARCHAR, (m.metadata -> 'options')::VARCHAR) AS options,
       -m.credits AS charged, date_trunc('day', m.ts) + INTERVAL 12 HOUR AS at,
       count(*) AS generations
FROM mine AS m
CROSS JOIN (SELECT plan FROM ledger_accounts WHERE user_id = ?) AS a
LEFT JOIN ledger_holds AS h ON h.transaction_id = m.transaction_id AND h.user_id = ?
GROUP BY ALL
"""


def usage_mix_of(
    ledger: Ledger,
    user_id: str,
    *,
    days: int = 30,
    book: PriceBook | None = None,
    until: datetime | None = None,
) -> tuple[MixItem, ...]:
    """The user's generations per day over the last `days` days, per model and options
    (most used first). Generations whose options cannot be identified are left out."""
    ledger.account(user_id)  # UnknownAccount, with its message, for a wrong id
    until = until or ledger.now()
    params = [user_id, until - timedelta(days=days), until, user_id, user_id]

    def read(cur: duckdb.DuckDBPyConnection) -> pd.DataFrame:
        return cur.execute(USER_USAGE, params).df()

    keys = ledger.snapshot(read)
    if keys.empty:
        return ()
    keys["found"] = skus.identify(book or PriceBook.load(), keys)
    keys = keys[keys["found"].notna()]
    keys["sku"] = keys["found"].map(skus.options_text)
    counts = keys.groupby(["model", "sku"], sort=False).agg(
        generations=("generations", "sum"), options=("found", "first")
    )
    counts = counts.sort_values("generations", ascending=False, kind="stable")
    return tuple(
        MixItem(model=model, options=row.options, per_day=round(row.generations / days, 3))
        for (model, _sku), row in counts.iterrows()
    )


def current_state_of(
    ledger: Ledger, user_id: str, start: datetime, plans: Plans | None = None
) -> dict:
    """The user's plan, the credits they can spend now as lots (their grants' remaining
    credits and expiry days from `start`) and their next plan renewal day, as Scenario
    fields."""
    account = ledger.account(user_id)
    plans = plans or Plans.load()
    if account.plan not in plans.plans:
        raise InvalidScenario(
            f"{user_id} is on plan {account.plan!r}, which data/plans.toml does not define; "
            f"plans: {', '.join(plans.plans)}."
        )
    now = ledger.now()
    lots, renewal = [], 0
    for grant in ledger.grants(user_id):
        if not grant.is_live(now):
            continue
        expires = None
        if grant.expires_at is not None:
            expires = max(0, math.ceil((grant.expires_at - start) / timedelta(days=1)))
            if grant.kind == "plan":  # a plan grant lasts until the next renewal
                renewal = max(renewal, expires)
        if grant.remaining > 0:
            lots.append(Lot(credits=grant.remaining, kind=grant.kind, expires_day=expires))
    return {
        "plan": PlanTerms.from_plans(account.plan, plans),
        "starting_lots": tuple(lots),
        "first_grant_day": renewal,
    }
