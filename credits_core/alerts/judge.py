"""Each (user, rule) pair judged in SQL, over every funded account or a few of them.

The figures of every funded account (one with at least one journal entry), read through
the ledger's read surface (schema migration 8): available credits (`account_balances`,
as `Ledger.balance`), the plan's monthly credits, credits captured per burn window,
credits of spendable grants expiring per window, and the most used generation (model +
options) per window, priced once per distinct SKU by `PriceBook.quote_frame` (where the
journal lacks options the price needs, the last price the user paid for it). Then for
each pair: does the rule match, has the user recovered. `judge` leaves every pair that
matches or has an open alert in the temporary table `evaluation`, and the users judged
in `scope`, for state.py to act on in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import pandas as pd
import pyarrow as pa

from credits_core.alerts.rules import AlertRule
from credits_core.plans import Plans
from credits_core.pricing import PriceBook, PricingError

RULE_COLUMNS = {
    "rule": pa.string(),
    "kind": pa.string(),
    "severity": pa.string(),
    "description": pa.string(),
    "below": pa.float64(),
    "resolve_at": pa.float64(),
    "below_percent": pa.float64(),
    "resolve_at_percent": pa.float64(),
    "window_days": pa.int64(),
    "resolve_at_multiple": pa.float64(),
    "below_days": pa.float64(),
    "resolve_at_days": pa.float64(),
    "burn_window_days": pa.int64(),
    "within_days": pa.int64(),
    "min_credits": pa.float64(),
    "resolve_below": pa.float64(),
}

# The holds the judgement reads: captured ones that tell what a generation cost, resolved
# within the widest window (USUAL, GENERATIONS).
PRICED_HOLDS = """
SELECT user_id, model, options, status, captured, resolved_at FROM ledger_holds
WHERE status = 'captured' AND captured > 0 AND model IS NOT NULL
  AND resolved_at >= $since AND resolved_at <= $now"""

# Accounts in scope: every funded account, or those numbered $accounts, with their
# available credits, read through the ledger's read surface (schema migration 8) once,
# into the temporary table `scope`; the statements after it read `people` from there.
PEOPLE_ALL = """
SELECT b.user_id, b.account_no, b.email, b.plan, b.available
FROM account_balances($now) AS b JOIN ledger_accounts AS a USING (account_no)
WHERE a.entries > 0"""
PEOPLE_SOME = f"{PEOPLE_ALL} AND list_contains($accounts, b.account_no)"
# Their captures since $since, grants spendable now and holds: for a few accounts from
# temporary tables filled through the tables' indexes (see SCOPED_TABLES).
SOURCES_ALL = f"""
people AS (SELECT * FROM scope),
captures AS NOT MATERIALIZED (
    SELECT account_no, user_id, ts, credits, held, model, metadata FROM ledger_journal
    WHERE kind = 'capture' AND ts >= $since AND ts <= $now
),
scoped_grants AS NOT MATERIALIZED (SELECT * FROM spendable_grants($now)),
scoped_holds AS NOT MATERIALIZED ({PRICED_HOLDS})"""
SOURCES_SOME = """
people AS (SELECT * FROM scope),
captures AS NOT MATERIALIZED (SELECT * FROM own_captures WHERE ts >= $since AND ts <= $now),
scoped_grants AS NOT MATERIALIZED (SELECT * FROM own_grants),
scoped_holds AS NOT MATERIALIZED (SELECT * FROM own_holds)"""
# Each holds only the rows and columns the judgement reads: a heavy user's evaluation
# then copies its captures within the widest window, not its whole journal and holds.
SCOPED_TABLES = (  # table, its rows, the parameters they take
    (
        "own_captures",
        """
        SELECT account_no, user_id, ts, credits, held, model, metadata FROM ledger_journal
        WHERE account_no IN (SELECT unnest($accounts))
          AND kind = 'capture' AND ts >= $since AND ts <= $now
        """,
        ("accounts", "since", "now"),
    ),
    (
        "own_grants",
        "SELECT * FROM spendable_grants($now) WHERE user_id IN (SELECT unnest($users))",
        ("now", "users"),
    ),
    (
        "own_holds",
        f"{PRICED_HOLDS} AND user_id IN (SELECT unnest($users))",
        ("users", "since", "now"),
    ),
)

# Each user's most used generation per window ($usual_windows, in days): the (model,
# options) with the most captures (the latest on a tie), priced by `sku_prices`, else the
# last price paid for it. Captures of holds (held <> 0 in the journal) are read from
# `holds`, which keeps their options; usage booked in bulk keeps them in the metadata.
USUAL = """
uses AS (
    SELECT c.account_no, w.days, c.model, c.metadata, count(*) AS uses,
           max(c.ts) AS last_ts, arg_max(-c.credits, c.ts) AS paid
    FROM captures c JOIN (SELECT unnest($usual_windows) AS days) w
      ON c.ts >= $now - to_days(w.days)
    WHERE c.held = 0 AND c.model IS NOT NULL AND c.credits < 0
    GROUP BY ALL
),
all_uses AS (
    SELECT account_no, days, model,
           CAST(json_extract(metadata, '$.options') AS VARCHAR) AS options,
           uses, last_ts, paid
    FROM uses
    UNION ALL
    SELECT p.account_no, w.days, h.model, CAST(h.options AS VARCHAR), count(*),
           max(h.resolved_at), arg_max(h.captured, h.resolved_at)
    FROM scoped_holds h JOIN people p USING (user_id)
    JOIN (SELECT unnest($usual_windows) AS days) w ON h.resolved_at >= $now - to_days(w.days)
    GROUP BY ALL
),
picked AS (
    SELECT account_no, days,
           arg_max(struct_pack(model, options, paid), struct_pack(uses, last_ts)) AS pick
    FROM (
        SELECT account_no, days, model, options, sum(uses) AS uses,
               max(last_ts) AS last_ts, arg_max(paid, last_ts) AS paid
        FROM all_uses GROUP BY ALL
    )
    GROUP BY ALL
),
usual_priced AS (
    SELECT p.user_id, k.days, coalesce(s.price, k.pick.paid) AS credits
    FROM picked k JOIN people p USING (account_no)
    LEFT JOIN sku_prices s
      ON s.model = k.pick.model AND s.options IS NOT DISTINCT FROM k.pick.options
         AND s.plan IS NOT DISTINCT FROM p.plan
)"""

# The generations (model, options) used within the widest usual window, to be priced.
GENERATIONS = """
SELECT DISTINCT model, CAST(json_extract(metadata, '$.options') AS VARCHAR) AS options
FROM (
    SELECT DISTINCT model, metadata FROM captures
    WHERE held = 0 AND model IS NOT NULL AND credits < 0 AND ts >= $start
)
UNION
SELECT DISTINCT model, CAST(options AS VARCHAR) FROM scoped_holds WHERE resolved_at >= $start
"""

FIGURES = """
expiring AS (  -- spendable now, and expiring within the window
    SELECT g.user_id, w.days, CAST(sum(g.remaining) AS BIGINT) AS credits
    FROM scoped_grants g JOIN (SELECT unnest($expiry_windows) AS days) w
      ON g.expires_at <= $now + to_days(w.days)
    GROUP BY ALL
),
burn AS (
    SELECT c.user_id, w.days, CAST(-sum(c.credits) AS BIGINT) AS credits
    FROM captures c JOIN (SELECT unnest($burn_windows) AS days) w
      ON c.ts >= $now - to_days(w.days)
    GROUP BY ALL
),
figures AS (
    SELECT p.user_id, p.email, p.plan, p.available, pc.monthly_credits
    FROM people p
    LEFT JOIN plan_credits pc ON pc.plan = p.plan
)"""

PAIRS = """
pairs AS (
    SELECT f.user_id, f.email, f.plan, f.available, f.monthly_credits, r.*,
           coalesce(b.credits, 0) AS burn, coalesce(e.credits, 0) AS expiring,
           u.credits AS usual
    FROM figures f CROSS JOIN rule_params r
    LEFT JOIN burn b ON b.user_id = f.user_id AND b.days = r.burn_window_days
    LEFT JOIN expiring e ON e.user_id = f.user_id AND e.days = r.within_days
    LEFT JOIN usual_priced u ON u.user_id = f.user_id AND u.days = r.window_days
),
judged AS (
    SELECT *,
        CASE kind
            WHEN 'available_below' THEN available < below
            WHEN 'percent_of_plan_below'
                THEN monthly_credits IS NOT NULL
                     AND available * 100 < below_percent * monthly_credits
            WHEN 'cannot_afford_usual' THEN usual IS NOT NULL AND available < usual
            WHEN 'days_left_below'
                THEN burn > 0 AND greatest(available, 0) * burn_window_days < below_days * burn
            WHEN 'expiring_within' THEN expiring >= min_credits
        END AS matches,
        CASE kind
            WHEN 'available_below' THEN available >= resolve_at
            WHEN 'percent_of_plan_below'
                THEN monthly_credits IS NULL
                     OR available * 100 >= resolve_at_percent * monthly_credits
            WHEN 'cannot_afford_usual'
                THEN usual IS NULL OR available >= resolve_at_multiple * usual
            WHEN 'days_left_below'
                THEN burn <= 0
                     OR greatest(available, 0) * burn_window_days >= resolve_at_days * burn
            WHEN 'expiring_within' THEN expiring < resolve_below
        END AS recovered,
        CASE kind
            WHEN 'available_below' THEN available
            WHEN 'percent_of_plan_below' THEN 100.0 * available / monthly_credits
            WHEN 'cannot_afford_usual' THEN usual
            WHEN 'days_left_below'
                THEN CASE WHEN burn > 0
                          THEN greatest(available, 0) * burn_window_days / burn END
            WHEN 'expiring_within' THEN expiring
        END AS measure,
        CASE kind
            WHEN 'available_below' THEN resolve_at
            WHEN 'percent_of_plan_below' THEN ceil(resolve_at_percent * monthly_credits / 100)
            WHEN 'cannot_afford_usual' THEN ceil(resolve_at_multiple * usual)
            WHEN 'days_left_below' THEN ceil(resolve_at_days * burn / burn_window_days)
        END AS resolve_credits
    FROM pairs
),
open_now AS (
    SELECT user_id, rule, alert_id FROM alerts
    WHERE status = 'open' AND user_id IN (SELECT user_id FROM people)
)
SELECT j.user_id, j.email, j.rule, j.kind, j.severity, j.description, j.available,
       j.measure, j.matches, j.recovered, o.alert_id AS open_alert,
       CASE WHEN j.resolve_credits IS NOT NULL
            THEN CAST(greatest(1, ceil((j.resolve_credits - j.available) / $pack)) AS BIGINT)
       END AS topup_packs
FROM judged j LEFT JOIN open_now o USING (user_id, rule)
WHERE j.matches OR o.alert_id IS NOT NULL
"""


TEMP_TABLES = ("evaluation", "scope", "own_captures", "own_grants", "own_holds")


@dataclass(frozen=True)
class Windows:
    """The windows, in days, that the enabled rules look back or ahead over ([0] when no
    rule of the kind is enabled)."""

    usual: list[int]
    burn: list[int]
    expiry: list[int]

    @classmethod
    def of(cls, rules: tuple[AlertRule, ...]) -> Windows:
        def days(kind: str, field: str) -> list[int]:
            return sorted({getattr(r, field) for r in rules if r.kind == kind}) or [0]

        return cls(
            usual=days("cannot_afford_usual", "window_days"),
            burn=days("days_left_below", "burn_window_days"),
            expiry=days("expiring_within", "within_days"),
        )


def judge(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    rules: tuple[AlertRule, ...],
    plans: Plans,
    book: PriceBook,
    users: list[str] | None,
) -> None:
    """Judge every (user, rule) pair of the enabled `rules`, for every funded account
    (users=None) or these users: the temporary tables `evaluation` and `scope`."""
    windows = Windows.of(rules)
    params = {"now": now, "since": now - timedelta(days=max(windows.burn + windows.usual))}
    people, scope = PEOPLE_ALL, SOURCES_ALL
    chosen = {"now": now}
    if users is not None:
        people, scope = PEOPLE_SOME, SOURCES_SOME
        chosen["accounts"] = _account_numbers(cur, users)
        _fill_scoped_tables(cur, params | chosen | {"users": users})
    cur.execute(f"CREATE OR REPLACE TEMP TABLE scope AS {people}", chosen).fetchall()
    frames = {
        "sku_prices": _sku_prices(cur, scope, params, windows.usual, book),
        "rule_params": _rule_table(rules),
        "plan_credits": _plan_table(plans),
    }
    params |= {
        "usual_windows": windows.usual,
        "burn_windows": windows.burn,
        "expiry_windows": windows.expiry,
        "pack": plans.topup.pack_credits,
    }
    sql = f"CREATE OR REPLACE TEMP TABLE evaluation AS WITH {scope}, {USUAL}, {FIGURES}, {PAIRS}"
    for name, frame in frames.items():
        cur.register(name, frame)
    try:
        cur.execute(sql, params).fetchall()
    finally:
        for name in frames:
            cur.unregister(name)


def drop_tables(cur: duckdb.DuckDBPyConnection) -> None:
    """Drop the temporary tables `judge` made."""
    for table in TEMP_TABLES:
        cur.execute(f"DROP TABLE IF EXISTS {table}")


def _account_numbers(cur: duckdb.DuckDBPyConnection, users: list[str]) -> list[int]:
    rows = cur.execute(
        "SELECT account_no FROM ledger_accounts WHERE user_id IN (SELECT unnest(?))", [users]
    ).fetchall()
    return [number for (number,) in rows]


def _fill_scoped_tables(cur: duckdb.DuckDBPyConnection, values: dict) -> None:
    for table, select, names in SCOPED_TABLES:
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS {select}",
            {name: values[name] for name in names},
        ).fetchall()


def _sku_prices(
    cur: duckdb.DuckDBPyConnection, scope: str, params: dict, usual: list[int], book: PriceBook
) -> pd.DataFrame:
    """The generations used within the widest usual window, priced on each plan in scope."""
    now = params["now"]
    start = now - timedelta(days=max(usual))
    generations = cur.execute(f"WITH {scope} {GENERATIONS}", params | {"start": start}).df()
    plans = [plan for (plan,) in cur.execute("SELECT DISTINCT plan FROM scope").fetchall()]
    return _price(book, generations, plans, now)


def _price(book: PriceBook, generations: pd.DataFrame, plans: list, now: datetime) -> pd.DataFrame:
    """The price now of each generation (model, options) on each plan, by the pricing
    engine; NaN where it cannot price it (options it needs are not known)."""
    skus = generations.astype(object).merge(pd.DataFrame({"plan": plans}), how="cross")
    skus = skus.astype(object).where(skus.notna(), None)
    if skus.empty:
        return skus.assign(price=pd.Series(dtype="float64"))
    try:
        known_plans = set(book.plans(now))
    except PricingError:  # no price book in force: the last prices paid stand
        return skus.assign(price=float("nan"))
    options = pd.DataFrame([json.loads(o) if o else {} for o in skus["options"]], index=skus.index)
    requests = pd.concat([skus[["model"]], options], axis=1)
    requests["plan"] = [p if p in known_plans else None for p in skus["plan"]]
    quoted = book.quote_frame(requests, at=now)
    price = quoted["credits"].where(quoted["error"].isna()).astype("float64")
    return skus.assign(price=price.to_numpy())


def _rule_table(rules: Iterable[AlertRule]) -> pa.Table:
    rows = []
    for rule in rules:
        row = dict.fromkeys(RULE_COLUMNS)
        data = rule.model_dump()
        row.update({k: v for k, v in data.items() if k in RULE_COLUMNS})
        row["rule"] = rule.name
        if rule.kind == "expiring_within":
            row["resolve_below"] = rule.resolve_below
        rows.append(row)
    schema = pa.schema(list(RULE_COLUMNS.items()))
    return pa.Table.from_pylist(rows, schema=schema)


def _plan_table(plans: Plans) -> pa.Table:
    return pa.table(
        {
            "plan": list(plans.plans),
            "monthly_credits": [p.monthly_credits for p in plans.plans.values()],
        }
    )
