"""Set-based evaluation of the alert rules over every user (or a few), and alert state.

One write transaction of the ledger file (retried whole on conflicts):

1. the figures of every funded account (one with at least one journal entry) in SQL:
   available credits (`account_balances`, as `Ledger.balance`), the plan's monthly
   credits, credits captured per burn window, credits expiring per window, and the
   most used generation (model + options) per window, priced once per distinct SKU by
   `PriceBook.quote_frame` (where the journal lacks options the price needs, the last
   price the user paid for it);
2. each (user, rule) pair: does the rule match, has the user recovered;
3. open alerts whose user recovered are resolved; pairs that match without an open
   alert open one (id `user/rule/n`), and each opening writes its outbox message in the
   same transaction: one message per user per evaluation, however many of their
   rules opened, keyed by the id of the most severe alert it announces.

What the page reads and acknowledging are in state.py.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from credits_core.alerts.rules import AlertRules
from credits_core.alerts.state import open_alert_counts
from credits_core.errors import CreditsError
from credits_core.ledger import Ledger
from credits_core.plans import Plans
from credits_core.pricing import PriceBook, PricingError

logger = logging.getLogger(__name__)

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

# Accounts in scope (`people`): every funded account, or those numbered $accounts; and
# their captures since $since, grants spendable now and holds, all read through the
# ledger's read surface (schema migration 8). For a few accounts these come from
# temporary tables filled through the tables' indexes (see SCOPED_TABLES).
SCOPE_ALL = """
people AS MATERIALIZED (
    SELECT b.user_id, b.account_no, b.email, b.plan, b.available
    FROM account_balances($now) AS b JOIN ledger_accounts AS a USING (account_no)
    WHERE a.entries > 0
),
captures AS NOT MATERIALIZED (
    SELECT account_no, user_id, ts, credits, held, model, metadata FROM ledger_journal
    WHERE kind = 'capture' AND ts >= $since AND ts <= $now
),
scoped_grants AS NOT MATERIALIZED (SELECT * FROM spendable_grants($now)),
scoped_holds AS NOT MATERIALIZED (SELECT * FROM ledger_holds)"""
SCOPE_SOME = """
people AS MATERIALIZED (
    SELECT b.user_id, b.account_no, b.email, b.plan, b.available
    FROM account_balances($now) AS b JOIN ledger_accounts AS a USING (account_no)
    WHERE a.entries > 0 AND list_contains($accounts, b.account_no)
),
captures AS NOT MATERIALIZED (
    SELECT account_no, user_id, ts, credits, held, model, metadata FROM own_journal
    WHERE kind = 'capture' AND ts >= $since AND ts <= $now
),
scoped_grants AS NOT MATERIALIZED (SELECT * FROM own_grants),
scoped_holds AS NOT MATERIALIZED (SELECT * FROM own_holds)"""
SCOPED_TABLES = (  # table, its rows, the parameters they take
    (
        "own_journal",
        "SELECT * FROM ledger_journal WHERE account_no IN (SELECT unnest($accounts))",
        ("accounts",),
    ),
    (
        "own_grants",
        "SELECT * FROM spendable_grants($now) WHERE user_id IN (SELECT unnest($users))",
        ("now", "users"),
    ),
    (
        "own_holds",
        "SELECT * FROM ledger_holds WHERE user_id IN (SELECT unnest($users))",
        ("users",),
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
    WHERE h.status = 'captured' AND h.captured > 0 AND h.model IS NOT NULL
      AND h.resolved_at <= $now
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
SELECT DISTINCT h.model, CAST(h.options AS VARCHAR) FROM scoped_holds h
WHERE h.status = 'captured' AND h.captured > 0 AND h.model IS NOT NULL
  AND h.resolved_at >= $start AND h.resolved_at <= $now
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


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation did."""

    users: int
    opened: int
    resolved: int
    open: int
    seconds: float


class Evaluator:
    """Evaluates alert rules against one ledger, with the plans and price book given."""

    def __init__(
        self,
        ledger: Ledger,
        rules: AlertRules | None = None,
        *,
        plans: Plans | None = None,
        book: PriceBook | None = None,
    ) -> None:
        self.ledger = ledger
        self.rules = rules if rules is not None else AlertRules.load()
        self.plans = plans or Plans.load()
        self.book = book or PriceBook.load()

    def evaluate(self, users: Iterable[str] | None = None) -> Evaluation:
        """Evaluate every funded account (users=None) or just these users, in one
        write transaction (run alone by the writer); return what changed."""
        started = time.perf_counter()
        scope = None if users is None else sorted(set(users))
        if scope == []:
            return Evaluation(0, 0, 0, open_alert_counts(self.ledger).total, 0.0)
        now = self.ledger.now()

        def work(cur: duckdb.DuckDBPyConnection) -> Evaluation:
            accounts = None if scope is None else _account_numbers(cur, scope)
            self._judge(cur, now, scope, accounts)
            resolved = _resolve(cur, now, scope, [r.name for r in self.rules.enabled])
            _refresh(cur)
            opened = _open(cur, now, self.plans)
            (still_open,) = cur.execute(
                "SELECT count(*) FROM alerts WHERE status = 'open'"
            ).fetchone()
            (users_seen,) = cur.execute("SELECT count(DISTINCT user_id) FROM scope").fetchone()
            for table in ("evaluation", "scope", "own_journal", "own_grants", "own_holds"):
                cur.execute(f"DROP TABLE IF EXISTS {table}")
            return Evaluation(int(users_seen), opened, resolved, int(still_open), 0.0)

        result = self.ledger.transaction("evaluate_alerts", work)  # the writer runs it alone
        seconds = round(time.perf_counter() - started, 3)
        return Evaluation(result.users, result.opened, result.resolved, result.open, seconds)

    def _judge(
        self,
        cur: duckdb.DuckDBPyConnection,
        now: datetime,
        users: list[str] | None,
        accounts: list[int] | None,
    ) -> None:
        """Every (user, rule) pair that matches or has an open alert, with its figures:
        the temporary table `evaluation` (and `scope`, the users evaluated)."""
        rules = self.rules.enabled
        usual = sorted({r.window_days for r in rules if r.kind == "cannot_afford_usual"}) or [0]
        burn = sorted({r.burn_window_days for r in rules if r.kind == "days_left_below"}) or [0]
        expiry = sorted({r.within_days for r in rules if r.kind == "expiring_within"}) or [0]
        scope = SCOPE_ALL if accounts is None else SCOPE_SOME
        base = {"now": now, "since": now - timedelta(days=max(burn + usual))}
        if accounts is not None:
            base["accounts"] = accounts
            values = {"now": now, "accounts": accounts, "users": users}
            for table, select, names in SCOPED_TABLES:
                cur.execute(
                    f"CREATE OR REPLACE TEMP TABLE {table} AS {select}",
                    {name: values[name] for name in names},
                ).fetchall()
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE scope AS WITH {scope} SELECT user_id, plan FROM people",
            base,
        ).fetchall()
        generations = cur.execute(
            f"WITH {scope} {GENERATIONS}", base | {"start": now - timedelta(days=max(usual))}
        ).df()
        plans = [plan for (plan,) in cur.execute("SELECT DISTINCT plan FROM scope").fetchall()]
        cur.register("sku_prices", self._price(generations, plans, now))
        cur.register("rule_params", _rule_table(rules))
        cur.register("plan_credits", _plan_table(self.plans))
        params = base | {
            "usual_windows": usual,
            "burn_windows": burn,
            "expiry_windows": expiry,
            "pack": self.plans.topup.pack_credits,
        }
        try:
            cur.execute(
                f"CREATE OR REPLACE TEMP TABLE evaluation AS "
                f"WITH {scope}, {USUAL}, {FIGURES}, {PAIRS}",
                params,
            ).fetchall()
        finally:
            for name in ("rule_params", "plan_credits", "sku_prices"):
                cur.unregister(name)

    def _price(self, generations: pd.DataFrame, plans: list, now: datetime) -> pd.DataFrame:
        """The price now of each generation (model, options) on each plan, by the pricing
        engine; NaN where it cannot price it (options it needs are not known)."""
        skus = generations.astype(object).merge(pd.DataFrame({"plan": plans}), how="cross")
        skus = skus.astype(object).where(skus.notna(), None)
        if skus.empty:
            return skus.assign(price=pd.Series(dtype="float64"))
        try:
            known_plans = set(self.book.plans(now))
        except PricingError:  # no price book in force: the last prices paid stand
            return skus.assign(price=float("nan"))
        options = pd.DataFrame(
            [json.loads(o) if o else {} for o in skus["options"]], index=skus.index
        )
        requests = pd.concat([skus[["model"]], options], axis=1)
        requests["plan"] = [p if p in known_plans else None for p in skus["plan"]]
        quoted = self.book.quote_frame(requests, at=now)
        price = quoted["credits"].where(quoted["error"].isna()).astype("float64")
        return skus.assign(price=price.to_numpy())


def _account_numbers(cur: duckdb.DuckDBPyConnection, users: list[str]) -> list[int]:
    rows = cur.execute(
        "SELECT account_no FROM ledger_accounts WHERE user_id IN (SELECT unnest(?))", [users]
    ).fetchall()
    return [number for (number,) in rows]


def _rule_table(rules: Iterable) -> pa.Table:
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


def _resolve(
    cur: duckdb.DuckDBPyConnection, now: datetime, scope: list[str] | None, rules: list[str]
) -> int:
    """Resolve open alerts whose user recovered, or whose rule is gone or disabled."""
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE resolving AS
        SELECT a.alert_id, e.available, NULL::VARCHAR AS note
        FROM alerts a JOIN evaluation e ON e.open_alert = a.alert_id
        WHERE e.recovered
        UNION ALL
        SELECT a.alert_id, a.available, 'rule removed or disabled'
        FROM alerts a
        WHERE a.status = 'open' AND NOT list_contains($rules, a.rule)
          AND ($everyone OR list_contains($users, a.user_id))
        """,
        {"rules": rules, "everyone": scope is None, "users": scope or [""]},
    )
    cur.execute(
        """
        INSERT INTO alert_events (alert_id, ts, event, available, actor, note)
        SELECT alert_id, $now, 'resolved', available, 'system', note FROM resolving
        """,
        {"now": now},
    )
    (count,) = cur.execute(
        """
        UPDATE alerts SET status = 'resolved', resolved_at = $now, available = r.available
        FROM resolving r WHERE alerts.alert_id = r.alert_id
        """,
        {"now": now},
    ).fetchone()
    cur.execute("DROP TABLE resolving")
    return int(count)


def _refresh(cur: duckdb.DuckDBPyConnection) -> None:
    """Open alerts that stay open carry the latest available credits."""
    cur.execute(
        """
        UPDATE alerts SET available = e.available
        FROM evaluation e
        WHERE alerts.alert_id = e.open_alert AND NOT e.recovered
          AND alerts.available <> e.available
        """
    ).fetchall()


def _open(cur: duckdb.DuckDBPyConnection, now: datetime, plans: Plans) -> int:
    """Open an alert for each matching pair without one; one outbox message per user
    whose alerts opened (every rule that opened, the most severe first)."""
    pack = plans.topup
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE opening AS
        SELECT e.*, e.user_id || '/' || e.rule || '/' || (coalesce(c.n, 0) + 1) AS alert_id
        FROM evaluation e
        LEFT JOIN (
            SELECT user_id, rule, count(*) AS n FROM alerts
            WHERE user_id IN (SELECT user_id FROM evaluation WHERE matches AND open_alert IS NULL)
            GROUP BY ALL
        ) c USING (user_id, rule)
        WHERE e.matches AND e.open_alert IS NULL
        """
    )
    (count,) = cur.execute(
        """
        INSERT INTO alerts (alert_id, user_id, rule, kind, severity, status, opened_at,
                            available_at_open, measure_at_open, available)
        SELECT alert_id, user_id, rule, kind, severity, 'open', $now, available, measure,
               available
        FROM opening
        """,
        {"now": now},
    ).fetchone()
    cur.execute(
        """
        INSERT INTO alert_events (alert_id, ts, event, available, actor, note)
        SELECT alert_id, $now, 'opened', available, 'system', NULL FROM opening
        """,
        {"now": now},
    )
    cur.execute(
        """
        INSERT INTO alert_outbox (message_id, user_id, email, rule, severity, available,
                                  topup_packs, topup_credits, topup_usd, message, created_at,
                                  status, attempts, next_attempt_at)
        WITH ranked AS (
            SELECT *, struct_pack(
                       r := CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,
                       rule := rule) AS rank
            FROM opening
        ),
        per_user AS (
            SELECT user_id, arg_min(alert_id, rank) AS message_id, any_value(email) AS email,
                   string_agg(rule, ', ' ORDER BY rank) AS rules,
                   arg_min(severity, rank) AS severity, any_value(available) AS available,
                   max(topup_packs) AS topup_packs,
                   string_agg(description, ' ' ORDER BY rank) AS descriptions
            FROM ranked GROUP BY user_id
        )
        SELECT message_id, user_id, email, rules, severity, available, topup_packs,
               topup_packs * $pack_credits, topup_packs * $pack_usd,
               concat_ws(' ', descriptions,
                         format('You have {:,} credits available.', available),
                         CASE WHEN topup_packs IS NOT NULL
                              THEN format('Suggested top-up: {} pack(s) of {:,} credits (${}).',
                                          topup_packs, $pack_credits, topup_packs * $pack_usd)
                         END),
               $now, 'pending', 0, $now
        FROM per_user
        """,
        {"now": now, "pack_credits": pack.pack_credits, "pack_usd": pack.pack_price_usd},
    )
    cur.execute("DROP TABLE opening")
    return int(count)


def watch(ledger: Ledger, rules_path: str | Path | None = None) -> Callable[[], None]:
    """Evaluate the users each committed balance-changing write of `ledger` touched (all
    users after a sweep), right after it. The plans, the price book and the rules are
    loaded on the first write (the rules again when their file changes); when one of
    them cannot be loaded, the write stands and a warning says why the alerts were not
    evaluated. A failing evaluation is logged by the ledger and never undoes the write.
    Returns a function that stops watching."""
    path = Path(rules_path) if rules_path is not None else AlertRules.default_path()
    loaded: dict[tuple[int, int], AlertRules] = {}
    inputs: list[tuple[Plans, PriceBook]] = []

    def listener(user_ids: frozenset[str] | None) -> None:
        try:
            if not inputs:
                inputs.append((Plans.load(), PriceBook.load()))
            stat = path.stat()
            version = (stat.st_mtime_ns, stat.st_size)
            if version not in loaded:
                loaded.clear()
                loaded[version] = AlertRules.load(path)
        except (CreditsError, OSError) as error:
            logger.warning("Low-credit alerts were not evaluated after this write: %s", error)
            return
        plans, book = inputs[0]
        Evaluator(ledger, loaded[version], plans=plans, book=book).evaluate(user_ids)

    return ledger.on_balance_change(listener)
