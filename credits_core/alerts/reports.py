"""Alerts in force, as support works them on the alerts page: one row per user in alert
(their most severe open alert and every rule that matches), true counts and pages, open
alerts by severity (the home page's tile), alerts per day and alert history. Read only:
each read is one snapshot, through the ledger's read surface (schema migration 8);
available credits are `account_balances`'s."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import pandas as pd

from credits_core.alerts.rules import SEVERITIES
from credits_core.ledger import Ledger


@dataclass(frozen=True)
class OpenAlerts:
    """How many alerts are open now, by severity, and how many users they concern."""

    total: int
    by_severity: dict[str, int]
    users: int = 0

    def describe(self) -> str:
        return ", ".join(f"{self.by_severity.get(s, 0):,} {s}" for s in reversed(SEVERITIES))


@dataclass(frozen=True)
class AlertFilter:
    """Which users in alert: their most severe open alert is of one of `severities`; one
    of their open alerts is of one of `rules` (empty: any); user id or email contains
    `search` (any case); with `unacknowledged_only`, users with an open alert nobody has
    acknowledged yet."""

    severities: tuple[str, ...] = SEVERITIES
    rules: tuple[str, ...] = ()
    search: str = ""
    unacknowledged_only: bool = False

    def params(self) -> dict:
        return {
            "severities": list(self.severities or SEVERITIES),
            "rules": list(self.rules),
            "search": f"%{self.search.strip().lower()}%",
            "unacked": self.unacknowledged_only,
        }


def open_alert_counts(ledger: Ledger) -> OpenAlerts:
    """Open alerts now, in total and by severity, and the users in alert (the home
    page's tile)."""

    def read(cur: duckdb.DuckDBPyConnection) -> OpenAlerts:
        rows = cur.execute(
            "SELECT severity, count(*) FROM alerts WHERE status = 'open' GROUP BY ALL"
        ).fetchall()
        (users,) = cur.execute(
            "SELECT count(DISTINCT user_id) FROM alerts WHERE status = 'open'"
        ).fetchone()
        by_severity = {severity: 0 for severity in SEVERITIES} | {s: int(n) for s, n in rows}
        return OpenAlerts(sum(by_severity.values()), by_severity, int(users))

    return ledger.snapshot(read)


# Users in alert, one row each: their most severe open alert (then the rule's name, for
# a stable pick), every rule open for them, and whether all are acknowledged.
SHOWN_USERS = """
WITH open_alerts AS MATERIALIZED (
    SELECT *, CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END AS rank
    FROM alerts WHERE status = 'open'
),
per_user AS MATERIALIZED (
    SELECT user_id, min(rank) AS rank,
           arg_min(severity, struct_pack(rank, rule)) AS severity,
           arg_min(alert_id, struct_pack(rank, rule)) AS alert_id,
           string_agg(rule, ', ' ORDER BY rank, rule) AS rules,
           list(rule) AS rule_list,
           count(*) AS alerts,
           count(*) FILTER (WHERE acknowledged_at IS NULL) AS unacknowledged,
           min(opened_at) AS opened_at,
           max(acknowledged_at) AS acknowledged_at,
           arg_max(acknowledged_by, acknowledged_at) AS acknowledged_by,
           arg_max(note, acknowledged_at) AS note
    FROM open_alerts GROUP BY user_id
),
shown AS MATERIALIZED (
    SELECT p.*, b.account_no, b.email, b.plan, b.available
    FROM per_user AS p JOIN account_balances($now) AS b USING (user_id)
    WHERE list_contains($severities, p.severity)
      AND (len($rules) = 0 OR list_has_any($rules, p.rule_list))
      AND (lower(p.user_id) LIKE $search OR lower(coalesce(b.email, '')) LIKE $search)
      AND (NOT $unacked OR p.unacknowledged > 0)
)"""

USERS_PAGE = f"""
{SHOWN_USERS},
page AS MATERIALIZED (
    SELECT * FROM shown ORDER BY rank, available, user_id LIMIT $limit OFFSET $offset
),
burn AS (
    SELECT account_no, CAST(-sum(credits) AS BIGINT) AS credits FROM ledger_journal
    WHERE kind = 'capture' AND ts >= $now - to_days($days) AND ts <= $now
      AND account_no IN (SELECT account_no FROM page)
    GROUP BY ALL
)
SELECT p.user_id, p.email, p.plan, p.severity, p.rules, p.alerts, p.available,
       round(coalesce(b.credits, 0) / $days, 1) AS burn_per_day,
       CASE WHEN coalesce(b.credits, 0) > 0
            THEN round(greatest(p.available, 0) * $days / b.credits, 1) END AS days_left,
       p.opened_at,
       CASE WHEN p.unacknowledged = 0 THEN p.acknowledged_at END AS acknowledged_at,
       CASE WHEN p.unacknowledged = 0 THEN p.acknowledged_by END AS acknowledged_by,
       CASE WHEN p.unacknowledged = 0 THEN p.note END AS note,
       '/transaction_history?user=' || p.user_id AS history,
       p.alert_id
FROM page AS p LEFT JOIN burn AS b USING (account_no)
ORDER BY p.rank, p.available, p.user_id
"""


def users_in_alert(
    ledger: Ledger,
    *,
    severities: Iterable[str] | None = None,
    rules: Iterable[str] | None = None,
    search: str = "",
    unacknowledged_only: bool = False,
    burn_window_days: int = 7,
    limit: int | None = 1_000,
    offset: int = 0,
) -> pd.DataFrame:
    """Users in alert, one row each, most severe first (then least available): severity
    and alert_id of their most severe open alert, `rules` (every open rule, most severe
    first), `alerts` (how many), available credits now, burn per day over the last
    `burn_window_days` days and days left at that rate; acknowledged_at/_by and note
    once every open alert of the user is acknowledged. `limit` and `offset` page."""
    where = AlertFilter(tuple(severities or SEVERITIES), tuple(rules or ()), search,
                        unacknowledged_only)  # fmt: skip
    params = where.params() | {
        "now": ledger.now(),
        "days": burn_window_days,
        "limit": limit,
        "offset": offset,
    }
    return ledger.snapshot(lambda cur: cur.execute(USERS_PAGE, params).df())


def count_users_in_alert(
    ledger: Ledger,
    *,
    severities: Iterable[str] | None = None,
    rules: Iterable[str] | None = None,
    search: str = "",
    unacknowledged_only: bool = False,
) -> int:
    """How many users users_in_alert lists with these filters, without a limit."""
    where = AlertFilter(tuple(severities or SEVERITIES), tuple(rules or ()), search,
                        unacknowledged_only)  # fmt: skip
    params = where.params() | {"now": ledger.now()}
    (count,) = ledger.snapshot(
        lambda cur: cur.execute(f"{SHOWN_USERS} SELECT count(*) FROM shown", params).fetchone()
    )
    return int(count)


def alerts_per_day(ledger: Ledger, *, days: int = 30) -> pd.DataFrame:
    """Alerts opened and resolved per day over the last `days` days (long format:
    day, event, alerts), every day present."""
    now = ledger.now()
    return ledger.snapshot(
        lambda cur: cur.execute(
            """
            WITH days AS (
                SELECT CAST(d AS DATE) AS day
                FROM range(CAST($now AS DATE) - ($days - 1), CAST($now AS DATE) + 1,
                           INTERVAL 1 DAY) t(d)
            ),
            events AS (SELECT unnest(['opened', 'resolved']) AS event),
            counted AS (
                SELECT CAST(ts AS DATE) AS day, event, count(*) AS alerts FROM alert_events
                WHERE event IN ('opened', 'resolved')
                  AND ts >= CAST($now AS DATE) - ($days - 1)
                GROUP BY ALL
            )
            SELECT d.day, e.event, coalesce(c.alerts, 0) AS alerts
            FROM days d CROSS JOIN events e LEFT JOIN counted c USING (day, event)
            ORDER BY d.day, e.event
            """,
            {"now": now, "days": days},
        ).df()
    )


def alert_history(ledger: Ledger, user_id: str | None = None, *, limit: int = 500) -> pd.DataFrame:
    """Every alert event, newest first (one user's when `user_id` is given)."""
    return ledger.snapshot(
        lambda cur: cur.execute(
            """
            SELECT e.ts, e.event, e.alert_id, a.user_id, a.rule, a.severity, e.available,
                   e.actor, e.note
            FROM alert_events e JOIN alerts a USING (alert_id)
            WHERE $user IS NULL OR a.user_id = $user
            ORDER BY e.ts DESC, e.alert_id,
                     CASE e.event WHEN 'opened' THEN 0 WHEN 'acknowledged' THEN 1 ELSE 2 END DESC
            LIMIT $limit
            """,
            {"user": user_id, "limit": limit},
        ).df()
    )
