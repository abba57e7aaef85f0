"""History marks: where in the journal an account's recent entries start.

One account's entries lie scattered over the whole journal, so its newest hundred
cost a fetch per row through the index. But the journal is only ever appended to, so
its row numbers (DuckDB's `rowid`) grow with time, and DuckDB skips every row group
below a `rowid >= n` bound. A mark says: the account's entry `seq` and every later one
sit at row `row_floor` or after. Every MARK_EVERY-th entry of an account gets one, and
the account's row keeps its last KEEP_MARKS (`accounts.mark_*`), read with the account
itself: a history of its newest hundred entries then scans only the journal's
rows from the mark just before them, a few percent of the journal for a heavy user.

A mark is only a lower bound, and a missing one only makes a read scan more, so marks
are written beside the journal, not with it: the applier marks the entries of each
transaction with the journal's length before it (rows appended later get higher
numbers), and a write that runs alone marks its rows, at their exact rows, once
committed.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

MARK_EVERY = 20  # entries of one account between two marks
KEEP_MARKS = 6  # marks kept per account: the oldest is at least 100 entries back
MARK = pa.struct([("seq", pa.int64()), ("row_floor", pa.int64())])
COLUMNS = [(f"mark_seq_{n}", f"mark_row_{n}") for n in range(1, KEEP_MARKS + 1)]
# The account's marks (kept in scalar columns, oldest first: DuckDB updates scalars in
# place, lists 30 times slower) followed by the new ones `n.marks`, the newest kept.
AS_STRUCTS = ", ".join(f"{{'seq': {s}, 'row_floor': {r}}}" for s, r in COLUMNS)
_KEPT = ", ".join(f"{{'seq': a.{s}, 'row_floor': a.{r}}}" for s, r in COLUMNS)
_MERGED = f"""
    SELECT n.account_no,
           list_slice(list_concat(list_filter([{_KEPT}], lambda m: m.seq IS NOT NULL), n.marks),
                      -{KEEP_MARKS}, -1) AS k
    FROM (NEW_MARKS) AS n JOIN accounts AS a ON a.account_no = n.account_no
"""
_SET = ", ".join(
    f"{s} = u.k[{i}].seq, {r} = u.k[{i}].row_floor" for i, (s, r) in enumerate(COLUMNS, 1)
)
MARKS_SQL = ", ".join(f"{s}, {r}" for s, r in COLUMNS)


def journal_length(cur: duckdb.DuckDBPyConnection) -> int:
    """Rows the journal holds (committed or in this transaction): the next row's number."""
    [(rows,)] = cur.execute("SELECT count(*) FROM journal").fetchall()
    return int(rows)


def _keep(
    cur: duckdb.DuckDBPyConnection, new: str, params: list, accounts: list[int] | None = None
) -> None:
    """Add the new marks (`new`: a query of account_no and marks, oldest first); when the
    `accounts` are known, DuckDB finds them through the index instead of scanning."""
    only, listed = "", []
    if accounts is not None:
        only = f" AND a.account_no IN ({', '.join(['?'] * len(accounts))})"
        listed = list(accounts)
    merged = _MERGED.replace("NEW_MARKS", new) + only.replace(" AND", " WHERE", 1)
    cur.execute(
        f"UPDATE accounts SET {_SET} FROM ({merged}) AS u "
        f"WHERE accounts.account_no = u.account_no{only.replace('a.', 'accounts.')}",
        [*params, *listed, *listed],
    )


def mark_entries(cur: duckdb.DuckDBPyConnection, entries: list[tuple], floor: int) -> None:
    """Mark the entries (journal rows, account_no and seq first, in order) about to be
    appended after row `floor`."""
    new: dict[int, list[dict]] = {}
    for row in entries:
        if row[1] % MARK_EVERY == 0:
            new.setdefault(row[0], []).append({"seq": row[1], "row_floor": floor})
    if not new:
        return
    cur.register("new_marks", pa.table({
        "account_no": pa.array(list(new), pa.int32()),
        "marks": pa.array(list(new.values()), pa.list_(MARK)),
    }))  # fmt: skip
    _keep(cur, "SELECT account_no, marks FROM new_marks", [], list(new))


def mark_appended(cur: duckdb.DuckDBPyConnection, floor: int) -> None:
    """Mark, at their exact rows, the entries committed from row `floor` on."""
    _keep(
        cur,
        f"""
        SELECT account_no, list({{'seq': seq, 'row_floor': rowid}} ORDER BY seq) AS marks
        FROM journal WHERE rowid >= ? AND seq % {MARK_EVERY} = 0
        GROUP BY account_no
        """,
        [floor],
    )


def kept(row: tuple) -> list[dict]:
    """The marks of an account from its MARKS_SQL columns."""
    pairs = zip(row[::2], row[1::2], strict=True)
    return [{"seq": seq, "row_floor": at} for seq, at in pairs if seq is not None]


def floor(marks: list[dict] | None, seq: int) -> int | None:
    """A row from which the account's entries `seq` and later all lie, or None."""
    below = [mark["row_floor"] for mark in marks or () if mark["seq"] <= seq]
    return max(below) if below else None
