"""Reads: a user's balance now, account details, and the journal as history.

`balance` is what the user can spend at this instant: grants that have lapsed but are
not yet booked out by `expire_grants` are already left out of it. `history` reads one
user's entries newest first; the filter on the account runs in a MATERIALIZED CTE
first so that DuckDB uses the journal's index instead of scanning the table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from credits_core.ledger import grants
from credits_core.ledger.errors import UnknownAccount
from credits_core.ledger.values import Account, Balance

HISTORY_COLUMNS = (
    "ts",
    "kind",
    "credits",
    "held",
    "balance_after",
    "held_after",
    "available_after",
    "transaction_id",
    "grant_id",
    "reason",
    "actor",
    "model",
    "metadata",
    "seq",
)


def account_no(cur: duckdb.DuckDBPyConnection, user_id: str) -> int:
    row = cur.execute("SELECT account_no FROM accounts WHERE user_id = ?", [user_id]).fetchone()
    if row is None:
        raise UnknownAccount(user_id)
    return row[0]


def account(cur: duckdb.DuckDBPyConnection, user_id: str) -> Account:
    row = cur.execute(
        "SELECT user_id, email, plan, created_at FROM accounts WHERE user_id = ?", [user_id]
    ).fetchone()
    if row is None:
        raise UnknownAccount(user_id)
    return Account(*row)


def balance(cur: duckdb.DuckDBPyConnection, user_id: str, now: datetime) -> Balance:
    row = cur.execute("SELECT total, held FROM accounts WHERE user_id = ?", [user_id]).fetchone()
    if row is None:
        raise UnknownAccount(user_id)
    total, held = row
    (lapsed,) = cur.execute(
        f"""
        WITH own AS MATERIALIZED (SELECT * FROM grants WHERE user_id = ?)
        SELECT coalesce(sum(remaining), 0) FROM own
        WHERE remaining > 0 AND NOT ({grants.LIVE})
        """,
        [user_id, now],
    ).fetchone()
    return Balance(total - lapsed, held, total - held - lapsed)


@dataclass(frozen=True)
class Window:
    """Which journal entries of one account: since <= ts < until, of these kinds."""

    since: datetime | None = None
    until: datetime | None = None
    kinds: Sequence[str] | None = None

    def where(self) -> tuple[str, list[object]]:
        filters, params = ["TRUE"], []
        if self.since is not None:
            filters.append("ts >= ?")
            params.append(self.since)
        if self.until is not None:
            filters.append("ts < ?")
            params.append(self.until)
        if self.kinds is not None:
            filters.append("list_contains(?, kind::VARCHAR)")
            params.append(list(self.kinds))
        return " AND ".join(filters), params


def history(
    cur: duckdb.DuckDBPyConnection,
    number: int,
    window: Window,
    *,
    limit: int | None,
    offset: int,
) -> pd.DataFrame:
    """One account's journal, newest first, `offset` entries skipped.

    One statement, so one snapshot. Rows come back as NumPy columns (cheaper than
    .df() for the usual hundred rows); ts is UTC.
    """
    where, params = window.where()
    columns = cur.execute(
        f"""
        WITH mine AS MATERIALIZED (
            SELECT seq, ts, kind, credits, held, balance_after, held_after, transaction_id,
                   grant_id, reason, actor, model, metadata
            FROM journal WHERE account_no = ?
        )
        SELECT ts, kind::VARCHAR AS kind, credits, held, balance_after, held_after,
               balance_after - held_after AS available_after, transaction_id, grant_id,
               reason, actor, model, metadata, seq
        FROM mine
        WHERE {where}
        ORDER BY seq DESC
        LIMIT ? OFFSET ?
        """,
        [number, *params, limit, offset],
    ).fetchnumpy()
    data = {name: _plain(values) for name, values in columns.items()}
    data["ts"] = pd.DatetimeIndex(data["ts"]).tz_localize("UTC")
    data["metadata"] = [None if text is None else json.loads(text) for text in data["metadata"]]
    return pd.DataFrame(data, copy=False)


def _plain(values: np.ndarray) -> np.ndarray:
    """A fetched column without NumPy's mask: NULL text becomes None."""
    if not isinstance(values, np.ma.MaskedArray):
        return values
    plain = values.data
    if plain.dtype == object:
        plain[np.ma.getmaskarray(values)] = None
    return plain


def count_history(cur: duckdb.DuckDBPyConnection, number: int, window: Window) -> int:
    where, params = window.where()
    (count,) = cur.execute(
        f"""
        WITH mine AS MATERIALIZED (SELECT ts, kind FROM journal WHERE account_no = ?)
        SELECT count(*) FROM mine WHERE {where}
        """,
        [number, *params],
    ).fetchone()
    return count


def grants_frame(cur: duckdb.DuckDBPyConnection, user_id: str, now: datetime) -> pd.DataFrame:
    """The user's grants in burn order, with what became of each as of `now`."""
    return cur.execute(
        f"""
        SELECT grant_id, kind, credits, remaining, priority, expires_at, created_at, reason,
               actor,
               CASE WHEN expired_at IS NOT NULL THEN 'expired'
                    WHEN expires_at <= ? THEN 'lapsed'
                    WHEN remaining = 0 THEN 'spent'
                    ELSE 'active' END AS status
        FROM grants WHERE user_id = ?
        ORDER BY {grants.BURN_ORDER}
        """,
        [now, user_id],
    ).df()
