"""The append-only journal, posted set-based: entries and the balance rows they move.

Every change to a user's credits is one journal entry: its kind, the change of the
total (`credits`) and of the held credits (`held`), the balance after it, the
transaction it belongs to, the actor and the reason. Entries are numbered 1, 2, ...
per account (`seq`), and the account row keeps `total`, `held` and `entries`. The
writer's batches post entries through batch.py; the set-based writes (sweeps, bulk
grants) post frames here. Nothing here ever updates or deletes an entry.
"""

from __future__ import annotations

import duckdb
import pandas as pd


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
