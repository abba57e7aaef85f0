"""Changes: the rows a batch puts in the file, table by table, as plain values.

A batch (batch.py) records what its commands decided against the writer's live
accounts; `Batch.changes()` freezes that into `Changes`: for each kind of row (new
accounts, balances, entries, ...) a list of tuples of plain values, in the order the
rows must be written. Changes are what the redo log (redo.py) stores and what the
applier (applier.py) writes, several batches' worth merged into one transaction:
inserts are concatenated, and an update of a row keeps only its latest values.

`write()` puts them in the file with one set-based statement per kind: a few rows as
a parameterised VALUES list, many as an Arrow table. Inserts come before updates, so
an update may change a row inserted by an earlier batch of the same transaction.

A bulk usage batch (`apply_usage`, decided on the file) carries what it `Booked` as
Arrow tables instead (`usage`), which the applier writes after its rows (its first
result, when keyed). Its balance updates are relative to what the file holds, so it
is never merged with other batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

if TYPE_CHECKING:
    from credits_core.ledger.bulk import Booked

# Up to this many rows go in as parameters of plain statements; more as an Arrow table
# in one set-based statement, whose UPDATEs also list the rows' keys
# (`key IN (...)`) so that DuckDB finds them through the table's index.
FEW_ROWS = 4
STR, INT, BIG = pa.string(), pa.int32(), pa.int64()
TIMESTAMP = pa.timestamp("us", tz="UTC")
DRAWN = pa.list_(pa.struct([("grant_id", pa.string()), ("credits", pa.int64())]))


@dataclass(frozen=True)
class Rows:
    """One kind of row: its table and columns (name, Arrow type, cast for parameters).
    For an update the first column is the key and the others are set; `exact`: every
    updated row must exist (asserted)."""

    name: str
    table: str
    columns: tuple[tuple[str, pa.DataType, str], ...]
    update: bool = False
    exact: bool = True

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.columns]


def _c(name: str, kind: pa.DataType = STR, cast: str = "") -> tuple:
    return (name, kind, cast)


NEW_ACCOUNTS = Rows("new_accounts", "accounts", (
    _c("user_id"), _c("account_no", INT), _c("email"), _c("plan"), _c("created_at", TIMESTAMP),
))  # fmt: skip
BALANCES = Rows("balances", "accounts", (
    _c("account_no", INT), _c("total", BIG), _c("held", BIG), _c("entries", BIG),
), update=True)  # fmt: skip
ENTRIES = Rows("entries", "journal", (
    _c("account_no", INT), _c("seq", BIG), _c("user_id"), _c("ts", TIMESTAMP), _c("kind"),
    _c("credits", BIG), _c("held", BIG), _c("balance_after", BIG), _c("held_after", BIG),
    _c("transaction_id"), _c("grant_id"), _c("reason"), _c("actor"), _c("model"),
    _c("metadata"),
))  # fmt: skip
NEW_GRANTS = Rows("new_grants", "grants", (
    _c("grant_id"), _c("user_id"), _c("kind"), _c("credits", BIG), _c("remaining", BIG),
    _c("priority", INT), _c("expires_at", TIMESTAMP), _c("created_at", TIMESTAMP),
    _c("grant_seq", BIG), _c("transaction_id"), _c("reason"), _c("actor"),
))  # fmt: skip
REMAINING = Rows("remaining", "grants", (_c("grant_id"), _c("remaining", BIG)), update=True)
NEW_HOLDS = Rows("new_holds", "holds", (
    _c("transaction_id"), _c("user_id"), _c("credits", BIG), _c("status"), _c("reason"),
    _c("actor"), _c("model"), _c("metadata"), _c("options"), _c("price_book_version"),
    _c("created_at", TIMESTAMP), _c("expires_at", TIMESTAMP), _c("resolved_at", TIMESTAMP),
    _c("captured", BIG), _c("released", BIG), _c("provider_cost_usd", pa.float64()),
    _c("drawn", DRAWN, "::STRUCT(grant_id VARCHAR, credits BIGINT)[]"),
))  # fmt: skip
HOLD_CHANGES = Rows("hold_changes", "holds", (
    _c("transaction_id"), _c("status"), _c("captured", BIG), _c("released", BIG),
    _c("resolved_at", TIMESTAMP), _c("expires_at", TIMESTAMP),
), update=True)  # fmt: skip
# where each changed column of a hold sits in a NEW_HOLDS row
HOLD_CHANGE_COLUMNS = tuple(NEW_HOLDS.names.index(name) for name in HOLD_CHANGES.names[1:])
# usage booked by apply_usage has no hold, so a refund of it updates no row
REFUNDS = Rows("refunds", "holds", (_c("transaction_id"), _c("refunded_at", TIMESTAMP)),
               update=True, exact=False)  # fmt: skip
KEYS = Rows("keys", "idempotency_keys", (
    _c("key"), _c("operation"), _c("fingerprint"), _c("result"), _c("created_at", TIMESTAMP),
))  # fmt: skip
# the first result of a keyed bulk write: a frame, as Parquet (idempotency.frame_blob)
FRAME_KEYS = Rows("frame_keys", "idempotency_keys", (
    _c("key"), _c("operation"), _c("fingerprint"), _c("frame", pa.binary()),
    _c("created_at", TIMESTAMP),
))  # fmt: skip

# The order rows are written in: every insert before any update.
KINDS = (NEW_ACCOUNTS, ENTRIES, NEW_GRANTS, NEW_HOLDS, KEYS, FRAME_KEYS,
         BALANCES, REMAINING, HOLD_CHANGES, REFUNDS)  # fmt: skip
BY_NAME = {rows.name: rows for rows in KINDS}


@dataclass
class Changes:
    """Rows to write, by kind (Rows.name): plain values only, so that they can be
    logged; and bulk usage, booked in Arrow tables."""

    rows: dict[str, list[tuple]] = field(default_factory=dict)
    usage: list[Booked] = field(default_factory=list)

    def add(self, kind: Rows, values: list[tuple]) -> None:
        if values:
            self.rows.setdefault(kind.name, []).extend(values)

    @property
    def empty(self) -> bool:
        return not self.rows and not self.usage

    def count(self) -> int:
        rows = sum(len(values) for values in self.rows.values())
        return rows + sum(booked.count() for booked in self.usage)

    @staticmethod
    def merge(several: list[Changes]) -> Changes:
        """One Changes for several batches in order: inserts in order, and for each
        updated row only its last values."""
        if len(several) == 1:
            return several[0]
        assert not any(c.usage for c in several), "bulk usage is written on its own"
        merged = Changes()
        for kind in KINDS:
            parts = [c.rows[kind.name] for c in several if kind.name in c.rows]
            if not parts:
                continue
            if kind.update:
                latest = {row[0]: row for part in parts for row in part}
                merged.rows[kind.name] = list(latest.values())
            else:
                merged.rows[kind.name] = [row for part in parts for row in part]
        merged._fold_hold_changes()
        return merged

    def _fold_hold_changes(self) -> None:
        """A hold placed by one of the merged batches and changed by a later one is
        inserted as it ends, rather than inserted then updated."""
        changed = self.rows.get(HOLD_CHANGES.name)
        placed = self.rows.get(NEW_HOLDS.name)
        if not changed or not placed:
            return
        at = {row[0]: i for i, row in enumerate(placed)}
        left = []
        for row in changed:
            i = at.get(row[0])
            if i is None:
                left.append(row)
                continue
            folded = list(placed[i])
            for column, value in zip(HOLD_CHANGE_COLUMNS, row[1:], strict=True):
                folded[column] = value
            placed[i] = tuple(folded)
        if left:
            self.rows[HOLD_CHANGES.name] = left
        else:
            del self.rows[HOLD_CHANGES.name]

    def write(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Put the rows in the file, inside the caller's transaction: one statement per
        kind (or, for a few rows, one small statement per row); not the bulk usage."""
        for kind in KINDS:
            values = self.rows.get(kind.name)
            if not values:
                continue
            if kind.update:
                update(cur, kind, values)
            else:
                insert(cur, kind, values)


def insert(cur: duckdb.DuckDBPyConnection, rows: Rows, values: list[tuple]) -> None:
    """INSERT the rows (named columns): as parameters when few, else from Arrow."""
    names = ", ".join(rows.names)
    if len(values) <= FEW_ROWS:
        one = "(" + ", ".join(f"?{cast}" for _, _, cast in rows.columns) + ")"
        cur.execute(
            f"INSERT INTO {rows.table} ({names}) VALUES {', '.join([one] * len(values))}",
            [value for row in values for value in row],
        )
        return
    view = _register(cur, rows, values)
    cur.execute(f"INSERT INTO {rows.table} ({names}) SELECT {names} FROM {view}")


def update(cur: duckdb.DuckDBPyConnection, rows: Rows, values: list[tuple]) -> None:
    """UPDATE the rows found by their key (the first column) with the other columns."""
    key, *fields = rows.names
    if len(values) <= FEW_ROWS:
        sets = ", ".join(f"{name} = ?" for name in fields)
        statement = f"UPDATE {rows.table} SET {sets} WHERE {key} = ?"
        changed = sum(cur.execute(statement, [*row[1:], row[0]]).fetchone()[0] for row in values)
    else:
        view = _register(cur, rows, values)
        sets = ", ".join(f"{name} = v.{name}" for name in fields)
        marks = ", ".join(["?"] * len(values))
        (changed,) = cur.execute(
            f"UPDATE {rows.table} SET {sets} FROM {view} AS v "
            f"WHERE {rows.table}.{key} = v.{key} AND {rows.table}.{key} IN ({marks})",
            [row[0] for row in values],
        ).fetchone()
    assert not rows.exact or changed == len(values), (rows.name, changed, len(values))


def _register(cur: duckdb.DuckDBPyConnection, rows: Rows, values: list[tuple]) -> str:
    columns = zip(*values, strict=True)
    table = pa.Table.from_arrays(
        [pa.array(column, kind) for column, (_, kind, _) in zip(columns, rows.columns,
                                                                 strict=True)],
        names=rows.names,
    )  # fmt: skip
    view = f"batch_{rows.name}"
    cur.register(view, table)
    return view
