"""Accounts in bulk (`create_accounts`): many accounts in one statement, numbered after the
last account. The frame is checked first (frames.check_accounts); here, inside the
transaction, no user may already have an account."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from credits_core.ledger.errors import InvalidBatch


def create_accounts(cur: duckdb.DuckDBPyConnection, now: datetime, accounts: pd.DataFrame) -> int:
    cur.register("new_accounts", accounts)
    existing = cur.execute(
        "SELECT row FROM new_accounts WHERE user_id IN (SELECT user_id FROM accounts)"
    ).fetchall()
    if existing:
        raise InvalidBatch(
            "create_accounts: some users already have an account.",
            [(row, "an account with this user_id exists") for (row,) in existing],
        )
    (inserted,) = cur.execute(
        """
        INSERT INTO accounts (user_id, account_no, email, plan, created_at)
        SELECT user_id,
               (SELECT coalesce(max(account_no), 0) FROM accounts)
                   + row_number() OVER (ORDER BY row),
               email, plan, ?
        FROM new_accounts
        """,
        [now],
    ).fetchone()
    assert inserted == len(accounts), (inserted, len(accounts))
    return len(accounts)
