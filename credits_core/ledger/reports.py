"""Read models for the back office: finding accounts, each hold's life on one row, and
the platform overview (the home page's figures). Plain SQL over the ledger's tables,
each in one read snapshot; nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from credits_core.ledger.reads import account_no


def find_accounts(cur: duckdb.DuckDBPyConnection, query: str, limit: int) -> pd.DataFrame:
    """Accounts whose user id or email contains `query` (ignoring case), exact first."""
    pattern = (
        "%" + query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    )
    return cur.execute(
        """
        SELECT user_id, email, plan, total, held, total - held AS available, created_at
        FROM accounts
        WHERE user_id ILIKE ? ESCAPE '\\' OR email ILIKE ? ESCAPE '\\'
        ORDER BY (lower(user_id) = lower(?) OR lower(email) = lower(?)) DESC,
                 length(user_id), user_id
        LIMIT ?
        """,
        [pattern, pattern, query.strip(), query.strip(), limit],
    ).df()


def holds_life(cur: duckdb.DuckDBPyConnection, user_id: str, now: datetime) -> pd.DataFrame:
    """One row per generation: reserved at, model, credits, what became of it and when,
    how long it was held; `stuck` marks holds still pending past their expiry. Usage
    booked in bulk was reserved and resolved at the same instant."""
    number = account_no(cur, user_id)
    return cur.execute(
        """
        WITH mine AS MATERIALIZED (
            SELECT ts, kind::VARCHAR AS kind, credits, transaction_id, model, metadata
            FROM journal WHERE account_no = ?
        ),
        holds_of_user AS (
            SELECT transaction_id, created_at AS reserved_at, model, credits, status,
                   captured, resolved_at, expires_at, refunded_at
            FROM holds WHERE user_id = ?
        ),
        bulk_usage AS (
            SELECT transaction_id, ts AS reserved_at, model,
                   -- a failed generation spent nothing; its entry keeps what it reserved
                   coalesce(TRY_CAST(metadata ->> 'reserved' AS BIGINT), -credits) AS credits,
                   CASE kind WHEN 'capture' THEN 'captured' ELSE 'released' END AS status,
                   -credits AS captured, ts AS resolved_at, ts AS expires_at,
                   NULL::TIMESTAMPTZ AS refunded_at
            FROM mine
            WHERE kind IN ('capture', 'release')
              AND transaction_id NOT IN (SELECT transaction_id FROM holds_of_user)
        ),
        refunds AS (
            SELECT transaction_id, min(ts) AS refunded_at FROM mine
            WHERE kind = 'refund' GROUP BY transaction_id
        )
        SELECT l.transaction_id, l.reserved_at, l.model, l.credits, l.status, l.captured,
               l.resolved_at, coalesce(l.refunded_at, r.refunded_at) AS refunded_at,
               l.expires_at,
               coalesce(l.resolved_at, ?::TIMESTAMPTZ) - l.reserved_at AS held_for,
               l.status = 'pending' AND l.expires_at <= ? AS stuck
        FROM (SELECT * FROM holds_of_user UNION ALL BY NAME SELECT * FROM bulk_usage) AS l
        LEFT JOIN refunds AS r USING (transaction_id)
        ORDER BY l.reserved_at DESC
        """,
        [number, user_id, now, now],
    ).df()


@dataclass(frozen=True)
class Overview:
    """The platform at a glance."""

    accounts: int
    outstanding: int
    held: int
    consumed_today: int
    consumed_7d: int
    low_balance_accounts: int


LOW_BALANCE = 100


def overview(cur: duckdb.DuckDBPyConnection, now: datetime) -> Overview:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    accounts, outstanding, held, low = cur.execute(
        """
        SELECT count(*), coalesce(sum(total), 0), coalesce(sum(held), 0),
               count(*) FILTER (WHERE total - held < ?)
        FROM accounts
        """,
        [LOW_BALANCE],
    ).fetchone()
    today, week = cur.execute(
        """
        SELECT coalesce(-sum(credits) FILTER (WHERE ts >= ?), 0),
               coalesce(-sum(credits), 0)
        FROM journal WHERE kind = 'capture' AND ts >= ? AND ts <= ?
        """,
        [day, now - timedelta(days=7), now],
    ).fetchone()
    return Overview(int(accounts), int(outstanding), int(held), int(today), int(week), int(low))


def consumption_by_day(cur: duckdb.DuckDBPyConnection, now: datetime, days: int) -> pd.DataFrame:
    """Credits captured per day over the last `days` days."""
    return cur.execute(
        """
        SELECT date_trunc('day', ts) AS day, -sum(credits) AS credits, count(*) AS generations
        FROM journal
        WHERE kind = 'capture' AND ts >= ? AND ts <= ?
        GROUP BY ALL ORDER BY day
        """,
        [now - timedelta(days=days), now],
    ).df()


def top_models(
    cur: duckdb.DuckDBPyConnection, now: datetime, days: int, limit: int
) -> pd.DataFrame:
    """The models that consumed the most credits over the last `days` days."""
    return cur.execute(
        """
        SELECT coalesce(model, 'unknown') AS model, -sum(credits) AS credits,
               count(*) AS generations
        FROM journal
        WHERE kind = 'capture' AND ts >= ? AND ts <= ?
        GROUP BY ALL ORDER BY credits DESC, model LIMIT ?
        """,
        [now - timedelta(days=days), now, limit],
    ).df()
