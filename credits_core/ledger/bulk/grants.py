"""Bulk grants (`grant_many`): many grants, each with its journal entry, in one set-based
transaction. The frame is checked first (frames.check_grants); here, inside the
transaction, every user must have an account and every expiry must lie ahead."""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from credits_core.ledger.bulk.frames import tidy
from credits_core.ledger.errors import InvalidBatch
from credits_core.ledger.journal import number_entries, post_frame


def grant_many(cur: duckdb.DuckDBPyConnection, now: datetime, grants: pd.DataFrame) -> pd.DataFrame:
    _require_accounts(cur, grants, "grant_many")
    past = grants["expires_at"].notna() & (grants["expires_at"] <= now)
    if past.any():
        raise InvalidBatch(
            f"grant_many: {int(past.sum())} rows expire at or before now ({now.isoformat()}).",
            [(row, "expires_at is not in the future") for row in grants["row"][past]],
        )
    entries = grants.assign(
        ord=np.arange(len(grants)),
        ts=now,
        held=0,
        model=None,
        metadata=None,
    )
    numbered = number_entries(cur, entries)
    assert len(numbered) == len(grants), "a granted user has no balance row"
    numbered["grant_id"] = (
        "grant-" + numbered["account_no"].astype(str) + "-" + numbered["seq"].astype(str)
    )
    numbered["transaction_id"] = numbered["grant_id"]
    cur.register("new_grants", numbered)
    (inserted,) = cur.execute(
        """
        INSERT INTO grants (grant_id, user_id, kind, credits, remaining, priority,
                            expires_at, created_at, grant_seq, transaction_id, reason, actor)
        SELECT grant_id, user_id, kind, credits, credits, priority, expires_at, ts, seq,
               transaction_id, reason, actor
        FROM new_grants
        """
    ).fetchone()
    assert inserted == len(numbered), (inserted, len(numbered))
    post_frame(cur, numbered.assign(kind="grant"))
    result = numbered.sort_values("ord").set_index("row").rename_axis(None)
    columns = ["user_id", "grant_id", "credits", "kind", "priority", "expires_at"]
    return tidy(result[columns].copy())


def _require_accounts(cur: duckdb.DuckDBPyConnection, frame: pd.DataFrame, operation: str) -> None:
    cur.register("wanted", frame[["row", "user_id"]])
    missing = cur.execute(
        "SELECT row, user_id FROM wanted WHERE user_id NOT IN (SELECT user_id FROM accounts)"
    ).fetchall()
    if missing:
        raise InvalidBatch(
            f"{operation}: {len(missing)} rows name users without an account.",
            [(row, f"no account for user {user!r}") for row, user in missing],
        )
