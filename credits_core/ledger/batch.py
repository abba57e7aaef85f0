"""A batch: the rows that one commit of the writer writes, gathered as it decides.

Deciding a command (holds.py, grants.py, adjustments.py) changes the writer's
AccountState at once and records here what must reach the file: journal entries
(numbered, with the balance after each), new accounts, grants and holds, the final
state of the grants and holds it changed, and the first result of each keyed write.
`write()` then puts all of it in the file with one set-based statement per table,
inside the writer's transaction: a few rows as a parameterised VALUES list, many as
an Arrow table. A hold placed and resolved in one batch is inserted once, as it ends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from credits_core.ledger.state import AccountState, GrantState
from credits_core.ledger.values import Grant, Reservation


@dataclass(frozen=True)
class KeyRecord:
    """The first result of a keyed write, as stored in idempotency_keys."""

    operation: str
    fingerprint: str
    result: Any  # JSON-ready


@dataclass
class Batch:
    """What the writer has decided since its last commit."""

    journal: list[tuple] = field(default_factory=list)
    accounts: dict[int, AccountState] = field(default_factory=dict)  # touched
    new_accounts: list[AccountState] = field(default_factory=list)
    new_grants: list[tuple[Grant, int]] = field(default_factory=list)
    grants: dict[str, GrantState] = field(default_factory=dict)  # remaining changed
    new_holds: dict[str, tuple[Reservation, str | None]] = field(default_factory=dict)
    holds: dict[str, Reservation] = field(default_factory=dict)  # existing, changed
    refunded: dict[str, datetime] = field(default_factory=dict)
    keys: dict[str, tuple[KeyRecord, datetime]] = field(default_factory=dict)

    # ---------------------------------------------------------------- recording

    def post(
        self,
        state: AccountState,
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
        """Append one entry to the account and move its balance; return the total after."""
        state.total += credits
        state.held += held
        state.entries += 1
        assert 0 <= state.held <= state.total, (state.user_id, state.total, state.held)
        self.accounts[state.account_no] = state
        self.journal.append(
            (
                state.account_no,
                state.entries,
                state.user_id,
                ts,
                kind,
                credits,
                held,
                state.total,
                state.held,
                transaction_id,
                grant_id,
                reason,
                actor,
                model,
                metadata,
            )
        )
        return state.total

    def open_account(self, state: AccountState) -> None:
        self.new_accounts.append(state)

    def add_grant(self, grant: Grant, grant_seq: int) -> None:
        self.new_grants.append((grant, grant_seq))

    def grant_changed(self, grant: GrantState) -> None:
        self.grants[grant.grant_id] = grant

    def add_hold(self, hold: Reservation, actor: str | None) -> None:
        self.new_holds[hold.transaction_id] = (hold, actor)

    def hold_changed(self, hold: Reservation) -> None:
        placed = self.new_holds.get(hold.transaction_id)
        if placed is not None:
            self.new_holds[hold.transaction_id] = (hold, placed[1])
        else:
            self.holds[hold.transaction_id] = hold

    def hold(self, transaction_id: str) -> Reservation | None:
        """A hold placed or changed in this batch."""
        placed = self.new_holds.get(transaction_id)
        return placed[0] if placed is not None else self.holds.get(transaction_id)

    def remember(self, key: str, record: KeyRecord, now: datetime) -> None:
        self.keys[key] = (record, now)

    # ---------------------------------------------------------------- writing

    def write(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Put the batch in the file: one statement per table it changes (or, for a few
        rows, one small statement per row)."""
        placed_grants = {grant.grant_id for grant, _ in self.new_grants}
        left = {g.grant_id: g.remaining for g in self.grants.values()}
        insert(cur, NEW_ACCOUNTS, [
            (s.user_id, s.account_no, s.email, s.plan, s.created_at) for s in self.new_accounts
        ])  # fmt: skip
        update(cur, BALANCES, [
            (s.account_no, s.total, s.held, s.entries) for s in self.accounts.values()
        ])  # fmt: skip
        insert(cur, ENTRIES, self.journal)
        insert(cur, NEW_GRANTS, [
            (g.grant_id, g.user_id, g.kind, g.credits, left.get(g.grant_id, g.remaining),
             g.priority, g.expires_at, g.created_at, seq, g.transaction_id, g.reason, g.actor)
            for g, seq in self.new_grants
        ])  # fmt: skip
        update(cur, REMAINING, [
            (g.grant_id, g.remaining) for g in self.grants.values()
            if g.grant_id not in placed_grants
        ])  # fmt: skip
        insert(cur, NEW_HOLDS, [_hold_row(hold, actor) for hold, actor in self.new_holds.values()])
        update(cur, HOLD_CHANGES, [
            (h.transaction_id, h.status, h.captured, h.released, h.resolved_at, h.expires_at)
            for h in self.holds.values()
        ])  # fmt: skip
        update(cur, REFUNDS, list(self.refunded.items()), exact=False)  # usage has no hold
        insert(cur, KEYS, [
            (key, r.operation, r.fingerprint, json.dumps(r.result), now)
            for key, (r, now) in self.keys.items()
        ])  # fmt: skip


# ------------------------------------------------------------------- rows to tables

# Up to this many rows go in as parameters of plain statements; more as an Arrow table
# in one set-based statement, whose UPDATEs also list the rows' keys
# (`key IN (...)`) so that DuckDB finds them through the table's index.
FEW_ROWS = 4
STR, INT, BIG = pa.string(), pa.int32(), pa.int64()
TIMESTAMP = pa.timestamp("us", tz="UTC")
DRAWN = pa.list_(pa.struct([("grant_id", pa.string()), ("credits", pa.int64())]))


@dataclass(frozen=True)
class Rows:
    """Rows for one table: its name and columns (name, Arrow type, cast for parameters).
    For an UPDATE the first column is the key and the others are set."""

    table: str
    columns: tuple[tuple[str, pa.DataType, str], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.columns]


def _c(name: str, kind: pa.DataType = STR, cast: str = "") -> tuple:
    return (name, kind, cast)


NEW_ACCOUNTS = Rows("accounts", (
    _c("user_id"), _c("account_no", INT), _c("email"), _c("plan"), _c("created_at", TIMESTAMP),
))  # fmt: skip
BALANCES = Rows("accounts", (
    _c("account_no", INT), _c("total", BIG), _c("held", BIG), _c("entries", BIG),
))  # fmt: skip
ENTRIES = Rows("journal", (
    _c("account_no", INT), _c("seq", BIG), _c("user_id"), _c("ts", TIMESTAMP), _c("kind"),
    _c("credits", BIG), _c("held", BIG), _c("balance_after", BIG), _c("held_after", BIG),
    _c("transaction_id"), _c("grant_id"), _c("reason"), _c("actor"), _c("model"),
    _c("metadata"),
))  # fmt: skip
NEW_GRANTS = Rows("grants", (
    _c("grant_id"), _c("user_id"), _c("kind"), _c("credits", BIG), _c("remaining", BIG),
    _c("priority", INT), _c("expires_at", TIMESTAMP), _c("created_at", TIMESTAMP),
    _c("grant_seq", BIG), _c("transaction_id"), _c("reason"), _c("actor"),
))  # fmt: skip
REMAINING = Rows("grants", (_c("grant_id"), _c("remaining", BIG)))
NEW_HOLDS = Rows("holds", (
    _c("transaction_id"), _c("user_id"), _c("credits", BIG), _c("status"), _c("reason"),
    _c("actor"), _c("model"), _c("metadata"), _c("options"), _c("price_book_version"),
    _c("created_at", TIMESTAMP), _c("expires_at", TIMESTAMP), _c("resolved_at", TIMESTAMP),
    _c("captured", BIG), _c("released", BIG), _c("provider_cost_usd", pa.float64()),
    _c("drawn", DRAWN, "::STRUCT(grant_id VARCHAR, credits BIGINT)[]"),
))  # fmt: skip
HOLD_CHANGES = Rows("holds", (
    _c("transaction_id"), _c("status"), _c("captured", BIG), _c("released", BIG),
    _c("resolved_at", TIMESTAMP), _c("expires_at", TIMESTAMP),
))  # fmt: skip
REFUNDS = Rows("holds", (_c("transaction_id"), _c("refunded_at", TIMESTAMP)))
KEYS = Rows("idempotency_keys", (
    _c("key"), _c("operation"), _c("fingerprint"), _c("result"), _c("created_at", TIMESTAMP),
))  # fmt: skip


def insert(cur: duckdb.DuckDBPyConnection, rows: Rows, values: list[tuple]) -> None:
    """INSERT the rows (named columns): as parameters when few, else from Arrow."""
    if not values:
        return
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


def update(
    cur: duckdb.DuckDBPyConnection, rows: Rows, values: list[tuple], *, exact: bool = True
) -> None:
    """UPDATE the rows found by their key (the first column) with the other columns;
    `exact`: every row must exist (asserted)."""
    if not values:
        return
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
    assert not exact or changed == len(values), (rows.table, changed, len(values))


def _register(cur: duckdb.DuckDBPyConnection, rows: Rows, values: list[tuple]) -> str:
    columns = zip(*values, strict=True)
    table = pa.Table.from_arrays(
        [pa.array(column, kind) for column, (_, kind, _) in zip(columns, rows.columns,
                                                                 strict=True)],
        names=rows.names,
    )  # fmt: skip
    view = f"batch_{rows.table}"
    cur.register(view, table)
    return view


def _hold_row(hold: Reservation, actor: str | None) -> tuple:
    drawn = [{"grant_id": grant_id, "credits": credits} for grant_id, credits in hold.drawn]
    return (
        hold.transaction_id, hold.user_id, hold.credits, hold.status, hold.reason, actor,
        hold.model, hold.metadata_json, hold.options_json, hold.price_book_version,
        hold.created_at, hold.expires_at, hold.resolved_at, hold.captured, hold.released,
        hold.provider_cost_usd, drawn,
    )  # fmt: skip
