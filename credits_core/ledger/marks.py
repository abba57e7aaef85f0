"""History marks: where in the journal an account's recent entries start.

One account's entries lie scattered over the whole journal, so its newest hundred
cost a fetch per row through the index. But the journal is only ever appended to, so
its row numbers (DuckDB's `rowid`) grow with time, and DuckDB skips every row group
below a `rowid >= n` bound. A mark says: the account's entry `seq` and every later one
sit at row `row_floor` or after. Every MARK_EVERY-th entry of an account gets one, and
the account's row keeps its last KEEP_MARKS (`accounts.mark_*`, one slot each, taken in
turn), read with the account itself: a history of its newest hundred entries then scans
only the journal's rows from the mark just before them, a few percent of the journal for
a heavy user.

A mark is only a lower bound, and a missing one only makes a read scan more, so marks
are written beside the journal, not with it: the applier marks the entries of each
transaction with the journal's length before it (rows appended later get higher
numbers), and a large set-based write (bulk usage, a write run alone) marks its rows at
their exact rows, once committed (before that, DuckDB numbers them apart).
"""

from __future__ import annotations

import logging

import duckdb
import numpy as np
import pyarrow as pa

from credits_core.ledger.store import rollback

logger = logging.getLogger(__name__)

MARK_EVERY = 20  # entries of one account between two marks
KEEP_MARKS = 6  # marks kept per account: the oldest is at least 100 entries back
COLUMNS = [(f"mark_seq_{n}", f"mark_row_{n}") for n in range(1, KEEP_MARKS + 1)]
AS_STRUCTS = ", ".join(f"{{'seq': {s}, 'row_floor': {r}}}" for s, r in COLUMNS)
MARKS_SQL = ", ".join(f"{s}, {r}" for s, r in COLUMNS)


def journal_length(cur: duckdb.DuckDBPyConnection) -> int:
    """Rows the journal holds (committed or in this transaction): the next row's number."""
    [(rows,)] = cur.execute("SELECT count(*) FROM journal").fetchall()
    return int(rows)


def mark_entries(cur: duckdb.DuckDBPyConnection, entries: list[tuple], floor: int) -> None:
    """Mark the entries (journal rows, account_no and seq first, in order) about to be
    appended after row `floor`."""
    new = [(row[0], row[1]) for row in entries if row[1] % MARK_EVERY == 0]
    if new:
        account_no, seq = np.array(new, dtype=np.int64).T
        _keep(cur, account_no, seq, np.full(len(new), floor, dtype=np.int64))


def mark_appended(cur: duckdb.DuckDBPyConnection, floor: int) -> None:
    """Mark, at their exact rows, the entries committed from row `floor` on."""
    new = cur.execute(
        f"""
        SELECT account_no, seq, rowid FROM journal
        WHERE rowid >= ? AND seq % {MARK_EVERY} = 0
        """,
        [floor],
    ).fetchnumpy()
    if len(new["seq"]):
        cur.execute("BEGIN")  # one commit for the slots' updates
        _keep(cur, *(np.asarray(new[c], dtype=np.int64) for c in ("account_no", "seq", "rowid")))
        cur.execute("COMMIT")


def mark_committed(cur: duckdb.DuckDBPyConnection, floor: int) -> None:
    """`mark_appended`, as the hint it is: on failure it is rolled back and logged, and
    the write it marks stands (its histories only read slower)."""
    try:
        mark_appended(cur, floor)
    except duckdb.Error as error:
        rollback(cur)
        logger.warning("history marks not written (histories read slower): %s", error)


def _keep(
    cur: duckdb.DuckDBPyConnection, account_no: np.ndarray, seq: np.ndarray, row: np.ndarray
) -> None:
    """Keep the new marks in their accounts' slots: mark `seq` goes to slot
    (seq / MARK_EVERY) mod KEEP_MARKS, over the mark KEEP_MARKS marks older, so the slots
    hold the newest KEEP_MARKS without reading them first. One UPDATE writes the slots
    that got a mark (each DuckDB statement costs the applier milliseconds under load)."""
    slot = (seq // MARK_EVERY) % KEEP_MARKS
    order = np.lexsort((seq, slot, account_no))
    account_no, seq, row, slot = account_no[order], seq[order], row[order], slot[order]
    newest = np.r_[(account_no[1:] != account_no[:-1]) | (slot[1:] != slot[:-1]), True]
    account_no, seq, row, slot = account_no[newest], seq[newest], row[newest], slot[newest]
    accounts, at = np.unique(account_no, return_inverse=True)
    columns: dict[str, pa.Array] = {"account_no": pa.array(accounts.astype(np.int32))}
    sets = []
    for n in np.unique(slot):
        mine = slot == n
        absent = np.ones(len(accounts), dtype=bool)
        absent[at[mine]] = False
        for column, values in zip(COLUMNS[n], (seq, row), strict=True):
            filled = np.zeros(len(accounts), dtype=np.int64)
            filled[at[mine]] = values[mine]
            columns[column] = pa.array(filled, mask=absent)
            sets.append(f"{column} = coalesce(m.{column}, accounts.{column})")
    cur.register("new_marks", pa.table(columns))
    cur.execute(
        f"UPDATE accounts SET {', '.join(sets)} "
        "FROM new_marks AS m WHERE accounts.account_no = m.account_no"
    )


def kept(row: tuple) -> list[dict]:
    """The marks of an account from its MARKS_SQL columns, oldest first."""
    pairs = zip(row[::2], row[1::2], strict=True)
    return sorted(
        ({"seq": seq, "row_floor": at} for seq, at in pairs if seq is not None),
        key=lambda mark: mark["seq"],
    )


def floor(marks: list[dict] | None, seq: int) -> int | None:
    """A row from which the account's entries `seq` and later all lie, or None."""
    below = [mark["row_floor"] for mark in marks or () if mark["seq"] <= seq]
    return max(below) if below else None
