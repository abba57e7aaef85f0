"""History marks: where in the journal an account's recent entries start.

One account's entries lie scattered over the whole journal, so its newest hundred
cost a fetch per row through the index. But the journal is only ever appended to, so
its row numbers (DuckDB's `rowid`) grow with time, and DuckDB skips every row group
below a `rowid >= n` bound. A mark says: the account's entry `seq` and every later one
sit at row `row_floor` or after. For every MARK_EVERY-th entry of an account one mark
is kept; a history of the newest N entries then scans only the journal's rows from
the mark just before them, a few percent of the journal for a heavy user.

A mark is only a lower bound, and a missing one only makes a read scan more, so
marks are written beside the journal, not with it: the applier marks the entries of
each transaction with the journal's length before it (rows appended later get higher
numbers), and a write that runs alone marks its rows once committed.
"""

from __future__ import annotations

import duckdb

from credits_core.ledger import changes
from credits_core.ledger.changes import BIG, INT, Rows

MARK_EVERY = 20  # entries of one account between two marks
MARKS = Rows("marks", "history_marks", (
    ("account_no", INT, ""), ("seq", BIG, ""), ("row_floor", BIG, ""),
))  # fmt: skip


def journal_length(cur: duckdb.DuckDBPyConnection) -> int:
    """Rows the journal holds (committed or in this transaction): the next row's number."""
    [(rows,)] = cur.execute("SELECT count(*) FROM journal").fetchall()
    return int(rows)


def mark_entries(cur: duckdb.DuckDBPyConnection, entries: list[tuple], floor: int) -> None:
    """Mark the entries (journal rows: account_no, seq first) about to be appended after
    row `floor`."""
    marks = [(row[0], row[1], floor) for row in entries if row[1] % MARK_EVERY == 0]
    if marks:
        changes.insert(cur, MARKS, marks)


def mark_appended(cur: duckdb.DuckDBPyConnection, floor: int) -> None:
    """Mark, at their exact rows, the entries committed from row `floor` on."""
    cur.execute(
        f"""
        INSERT INTO history_marks (account_no, seq, row_floor)
        SELECT account_no, seq, rowid FROM journal
        WHERE rowid >= ? AND seq % {MARK_EVERY} = 0
        """,
        [floor],
    )


def floor(cur: duckdb.DuckDBPyConnection, account_no: int, seq: int) -> int | None:
    """A row from which the account's entries `seq` and later all lie, or None."""
    rows = cur.execute(
        "SELECT seq, row_floor FROM history_marks WHERE account_no = ?", [account_no]
    ).fetchall()
    below = [row_floor for mark_seq, row_floor in rows if mark_seq <= seq]
    return max(below) if below else None
