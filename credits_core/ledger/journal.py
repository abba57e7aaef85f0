"""The append-only journal and the materialised balance row it moves.

Every change to a user's credits is one journal entry: its kind, the change of the
total (`credits`) and of the held credits (`held`), the balance after it, the
transaction it belongs to, the actor and the reason. Entries are numbered 1, 2, ...
per account (`seq`). The account row keeps `total`, `held` and `entries`, and every
write updates that row with a guarded UPDATE in the same transaction as its entries,
so that DuckDB's conflict detection serialises concurrent writers of one account.
Nothing here ever updates or deletes an entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain

import duckdb
import pandas as pd

from credits_core.ledger.errors import UnknownAccount
from credits_core.ledger.store import StaleRead

JOURNAL_COLUMNS = 15


@dataclass
class Book:
    """One account's balance row as read by a write, and the entries that write posts."""

    user_id: str
    account_no: int
    total: int
    held: int
    entries: int
    rows: list[tuple] = field(default_factory=list)

    @property
    def seq(self) -> int:
        """The number of the last entry posted so far."""
        return self.entries + len(self.rows)

    @property
    def balance_total(self) -> int:
        return self.total + sum(row[5] for row in self.rows)

    @property
    def balance_held(self) -> int:
        return self.held + sum(row[6] for row in self.rows)

    def next_id(self, prefix: str) -> str:
        """A transaction or grant id made from the account and the next entry number."""
        return f"{prefix}-{self.account_no}-{self.seq + 1}"

    def post(
        self,
        ts: datetime,
        kind: str,
        transaction_id: str,
        *,
        credits: int = 0,
        held: int = 0,
        grant_id: str | None = None,
        reason: str | None = None,
        actor: str | None = None,
        model: str | None = None,
        metadata: str | None = None,
    ) -> int:
        """Append one entry; return the total balance after it."""
        total_after = self.balance_total + credits
        held_after = self.balance_held + held
        self.rows.append(
            (
                self.account_no,
                self.seq + 1,
                self.user_id,
                ts,
                kind,
                credits,
                held,
                total_after,
                held_after,
                transaction_id,
                grant_id,
                reason,
                actor,
                model,
                metadata,
            )
        )
        return total_after

    def save(self, cur: duckdb.DuckDBPyConnection, *, spend: int = 0) -> None:
        """Write the entries and move the balance row, guarded by what this write read.

        `spend` is how many available credits the write uses: the UPDATE also requires
        them to be there, so that a stale read can never overdraw the account. The guard
        is wrapped in IS TRUE: a plain condition beside `account_no = ?` makes DuckDB
        scan every account instead of looking the row up in the index.
        """
        (updated,) = cur.execute(
            """
            UPDATE accounts SET total = ?, held = ?, entries = ?
            WHERE account_no = ? AND (entries = ? AND total - held >= ?) IS TRUE
            """,
            [self.balance_total, self.balance_held, self.seq, self.account_no, self.entries, spend],
        ).fetchone()
        if updated != 1:
            raise StaleRead(self.user_id)
        placeholders = ", ".join(["(" + ", ".join(["?"] * JOURNAL_COLUMNS) + ")"] * len(self.rows))
        cur.execute(f"INSERT INTO journal VALUES {placeholders}", list(chain(*self.rows)))


def open_book(cur: duckdb.DuckDBPyConnection, user_id: str) -> Book:
    row = cur.execute(
        "SELECT account_no, total, held, entries FROM accounts WHERE user_id = ?", [user_id]
    ).fetchone()
    if row is None:
        raise UnknownAccount(user_id)
    return Book(user_id, *row)


def number_entries(cur: duckdb.DuckDBPyConnection, entries: pd.DataFrame) -> pd.DataFrame:
    """Give each entry its account number and entry number, in `ord` order per account."""
    users = pd.DataFrame({"user_id": entries["user_id"].unique()})
    cur.register("entry_users", users)
    accounts = cur.execute(
        "SELECT user_id, account_no, entries FROM accounts JOIN entry_users USING (user_id)"
    ).df()
    numbered = entries.merge(accounts, on="user_id", how="inner", validate="many_to_one")
    numbered = numbered.sort_values(["account_no", "ord"], kind="stable", ignore_index=True)
    numbered["seq"] = numbered["entries"] + numbered.groupby("account_no").cumcount() + 1
    return numbered.drop(columns="entries")


POST_FRAME = """
INSERT INTO journal
SELECT a.account_no, e.seq, e.user_id, e.ts, e.kind, e.credits, e.held,
       a.total + sum(e.credits) OVER w,
       a.held + sum(e.held) OVER w,
       e.transaction_id, e.grant_id, e.reason, e.actor, e.model, e.metadata
FROM posting AS e JOIN accounts AS a USING (account_no)
WINDOW w AS (PARTITION BY e.account_no ORDER BY e.seq ROWS UNBOUNDED PRECEDING)
"""

MOVE_BALANCES = """
UPDATE accounts
SET total = accounts.total + s.credits,
    held = accounts.held + s.held,
    entries = s.last_seq
FROM (SELECT account_no, sum(credits) AS credits, sum(held) AS held, max(seq) AS last_seq
      FROM posting GROUP BY account_no) AS s
WHERE accounts.account_no = s.account_no
"""

FRAME_COLUMNS = (
    "account_no",
    "seq",
    "user_id",
    "ts",
    "kind",
    "credits",
    "held",
    "transaction_id",
    "grant_id",
    "reason",
    "actor",
    "model",
    "metadata",
)


def post_frame(cur: duckdb.DuckDBPyConnection, entries: pd.DataFrame) -> None:
    """Post entries numbered by `number_entries`, with running balances, and move the rows."""
    if entries.empty:
        return
    cur.register("posting", entries[list(FRAME_COLUMNS)])
    cur.execute(POST_FRAME)
    cur.execute(MOVE_BALANCES)
