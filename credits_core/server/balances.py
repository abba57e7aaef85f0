"""The balances of many users in one read, for a batch's answers.

One `Ledger.balance` costs a few milliseconds (DuckDB pushes the user filter into the
ledger's `account_balances`); a batch of 1,000 operations touches up to 1,000 users, so
it reads them all with one pass of `account_balances` (what "available" means, written
once in the ledger's schema) in one snapshot, in a worker thread. The read starts after
the batch's writes have committed, so it sees them.
"""

from __future__ import annotations

import asyncio

import duckdb

from credits_core.ledger import Balance, Ledger, UnknownAccount

QUERY = """
SELECT user_id, total, held, available
FROM account_balances(?)
WHERE user_id IN ({users})
"""


async def balances(ledger: Ledger, users: list[str]) -> dict[str, Balance]:
    """Each user's balance now (UnknownAccount if one has no account)."""
    if not users:
        return {}
    found = await asyncio.to_thread(_read, ledger, users)
    missing = [user for user in users if user not in found]
    if missing:
        raise UnknownAccount(missing[0])
    return found


def _read(ledger: Ledger, users: list[str]) -> dict[str, Balance]:
    now = ledger.now()
    listed = QUERY.format(users=", ".join("?" * len(users)))  # placeholders only

    def work(cur: duckdb.DuckDBPyConnection) -> dict[str, Balance]:
        rows = cur.execute(listed, [now, *users]).fetchall()
        return {user: Balance(total, held, available) for user, total, held, available in rows}

    return ledger.snapshot(work)
