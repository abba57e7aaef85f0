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

    def __len__(self) -> int:
        return len(self.journal) + len(self.new_accounts) + len(self.keys)

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
        """Put the batch in the file: one statement per table it changes."""
        placed_grants = {grant.grant_id for grant, _ in self.new_grants}
        left = {g.grant_id: g.remaining for g in self.grants.values()}
        _run(cur, INSERT_ACCOUNTS, ACCOUNT_ROWS, [
            (s.user_id, s.account_no, s.email, s.plan, s.created_at) for s in self.new_accounts
        ])  # fmt: skip
        moved = _run(cur, MOVE_BALANCES, BALANCE_ROWS, [
            (s.account_no, s.total, s.held, s.entries) for s in self.accounts.values()
        ])  # fmt: skip
        assert moved in (None, len(self.accounts)), (moved, len(self.accounts))
        _run(cur, INSERT_ENTRIES, ENTRY_ROWS, self.journal)
        _run(cur, INSERT_GRANTS, GRANT_ROWS, [
            (g.grant_id, g.user_id, g.kind, g.credits, left.get(g.grant_id, g.remaining),
             g.priority, g.expires_at, g.created_at, seq, g.transaction_id, g.reason, g.actor)
            for g, seq in self.new_grants
        ])  # fmt: skip
        changed = [(g.grant_id, g.remaining) for g in self.grants.values()
                   if g.grant_id not in placed_grants]  # fmt: skip
        updated = _run(cur, MOVE_GRANTS, REMAINING_ROWS, changed)
        assert updated in (None, len(changed)), (updated, len(changed))
        _run(cur, INSERT_HOLDS, HOLD_ROWS, [
            _hold_row(hold, actor) for hold, actor in self.new_holds.values()
        ])  # fmt: skip
        updated = _run(cur, MOVE_HOLDS, HOLD_CHANGE_ROWS, [
            (h.transaction_id, h.status, h.captured, h.released, h.resolved_at, h.expires_at)
            for h in self.holds.values()
        ])  # fmt: skip
        assert updated in (None, len(self.holds)), (updated, len(self.holds))
        _run(cur, MARK_REFUNDS, REFUND_ROWS, list(self.refunded.items()))
        _run(cur, INSERT_KEYS, KEY_ROWS, [
            (key, r.operation, r.fingerprint, json.dumps(r.result), now)
            for key, (r, now) in self.keys.items()
        ])  # fmt: skip


# ------------------------------------------------------------------- row sources

VALUES_ROWS = 4  # up to this many rows go in as a VALUES list, more as an Arrow table
# An UPDATE of more rows than this also lists their keys (target.key IN (...)), so that
# DuckDB finds them through the table's index instead of scanning it for the join.
KEYED_UPDATE_ROWS = 16
TIMESTAMP = pa.timestamp("us", tz="UTC")
DRAWN_TYPE = "STRUCT(grant_id VARCHAR, credits BIGINT)[]"


@dataclass(frozen=True)
class RowSpec:
    """The rows of one statement: their alias and columns (name, DuckDB type, Arrow type)."""

    alias: str
    columns: tuple[tuple[str, str, pa.DataType], ...]


def _spec(alias: str, *columns: tuple[str, str, pa.DataType]) -> RowSpec:
    return RowSpec(alias, columns)


def _varchar(name: str) -> tuple[str, str, pa.DataType]:
    return (name, "VARCHAR", pa.string())


def _bigint(name: str) -> tuple[str, str, pa.DataType]:
    return (name, "BIGINT", pa.int64())


def _time(name: str) -> tuple[str, str, pa.DataType]:
    return (name, "TIMESTAMPTZ", TIMESTAMP)


ACCOUNT_ROWS = _spec(
    "a", _varchar("user_id"), ("account_no", "INTEGER", pa.int32()), _varchar("email"),
    _varchar("plan"), _time("created_at"),
)  # fmt: skip
BALANCE_ROWS = _spec(
    "b", ("account_no", "INTEGER", pa.int32()), _bigint("total"), _bigint("held"),
    _bigint("entries"),
)  # fmt: skip
ENTRY_ROWS = _spec(
    "e", ("account_no", "INTEGER", pa.int32()), _bigint("seq"), _varchar("user_id"),
    _time("ts"), _varchar("kind"), _bigint("credits"), _bigint("held"),
    _bigint("balance_after"), _bigint("held_after"), _varchar("transaction_id"),
    _varchar("grant_id"), _varchar("reason"), _varchar("actor"), _varchar("model"),
    _varchar("metadata"),
)  # fmt: skip
GRANT_ROWS = _spec(
    "g", _varchar("grant_id"), _varchar("user_id"), _varchar("kind"), _bigint("credits"),
    _bigint("remaining"), ("priority", "INTEGER", pa.int32()), _time("expires_at"),
    _time("created_at"), _bigint("grant_seq"), _varchar("transaction_id"), _varchar("reason"),
    _varchar("actor"),
)  # fmt: skip
REMAINING_ROWS = _spec("r", _varchar("grant_id"), _bigint("remaining"))
HOLD_ROWS = _spec(
    "h", _varchar("transaction_id"), _varchar("user_id"), _bigint("credits"),
    _varchar("status"), _varchar("reason"), _varchar("actor"), _varchar("model"),
    _varchar("metadata"), _varchar("options"), _varchar("price_book_version"),
    _time("created_at"), _time("expires_at"), _time("resolved_at"), _bigint("captured"),
    _bigint("released"), ("provider_cost_usd", "DOUBLE", pa.float64()),
    ("drawn", DRAWN_TYPE,
     pa.list_(pa.struct([("grant_id", pa.string()), ("credits", pa.int64())]))),
)  # fmt: skip
HOLD_CHANGE_ROWS = _spec(
    "h", _varchar("transaction_id"), _varchar("status"), _bigint("captured"),
    _bigint("released"), _time("resolved_at"), _time("expires_at"),
)  # fmt: skip
REFUND_ROWS = _spec("r", _varchar("transaction_id"), _time("refunded_at"))
KEY_ROWS = _spec(
    "k", _varchar("key"), _varchar("operation"), _varchar("fingerprint"), _varchar("result"),
    _time("created_at"),
)  # fmt: skip

INSERT_ACCOUNTS = """
INSERT INTO accounts (user_id, account_no, email, plan, created_at)
SELECT user_id, account_no, email, plan, created_at FROM {rows}
"""
MOVE_BALANCES = """
UPDATE accounts SET total = b.total, held = b.held, entries = b.entries
FROM {rows} WHERE accounts.account_no = b.account_no{keyed}
"""
INSERT_ENTRIES = """
INSERT INTO journal (account_no, seq, user_id, ts, kind, credits, held, balance_after,
                     held_after, transaction_id, grant_id, reason, actor, model, metadata)
SELECT account_no, seq, user_id, ts, kind, credits, held, balance_after, held_after,
       transaction_id, grant_id, reason, actor, model, metadata
FROM {rows}
"""
INSERT_GRANTS = """
INSERT INTO grants (grant_id, user_id, kind, credits, remaining, priority, expires_at,
                    created_at, grant_seq, transaction_id, reason, actor)
SELECT grant_id, user_id, kind, credits, remaining, priority, expires_at, created_at,
       grant_seq, transaction_id, reason, actor
FROM {rows}
"""
MOVE_GRANTS = """
UPDATE grants SET remaining = r.remaining
FROM {rows} WHERE grants.grant_id = r.grant_id{keyed}
"""
INSERT_HOLDS = """
INSERT INTO holds (transaction_id, user_id, credits, status, reason, actor, model, metadata,
                   options, price_book_version, created_at, expires_at, resolved_at,
                   captured, released, provider_cost_usd, drawn)
SELECT transaction_id, user_id, credits, status, reason, actor, model, metadata, options,
       price_book_version, created_at, expires_at, resolved_at, captured, released,
       provider_cost_usd, drawn
FROM {rows}
"""
MOVE_HOLDS = """
UPDATE holds SET status = h.status, captured = h.captured, released = h.released,
                 resolved_at = h.resolved_at, expires_at = h.expires_at
FROM {rows} WHERE holds.transaction_id = h.transaction_id{keyed}
"""
MARK_REFUNDS = """
UPDATE holds SET refunded_at = r.refunded_at
FROM {rows} WHERE holds.transaction_id = r.transaction_id{keyed}
"""
INSERT_KEYS = """
INSERT INTO idempotency_keys (key, operation, fingerprint, result, created_at)
SELECT key, operation, fingerprint, result, created_at FROM {rows}
"""


def _run(
    cur: duckdb.DuckDBPyConnection, statement: str, spec: RowSpec, rows: list[tuple]
) -> int | None:
    """Run `statement` over `rows` (nothing when there are none); the rows it changed."""
    if not rows:
        return None
    names = ", ".join(name for name, _, _ in spec.columns)
    if len(rows) <= VALUES_ROWS:
        one = "(" + ", ".join(f"?::{kind}" for _, kind, _ in spec.columns) + ")"
        source = f"(VALUES {', '.join([one] * len(rows))}) AS {spec.alias}({names})"
        params = [value for row in rows for value in row]
    else:
        table = pa.Table.from_arrays(
            [pa.array(column, arrow) for column, (_, _, arrow) in
             zip(zip(*rows, strict=True), spec.columns, strict=True)],
            names=[name for name, _, _ in spec.columns],
        )  # fmt: skip
        view = f"batch_{spec.alias}"
        cur.register(view, table)
        source, params = f"{view} AS {spec.alias}", []
    keyed = ""
    if "{keyed}" in statement and len(rows) > KEYED_UPDATE_ROWS:
        target = statement.split()[1]  # UPDATE <table> ...: keys are the rows' first column
        keyed = f" AND {target}.{spec.columns[0][0]} IN ({', '.join(['?'] * len(rows))})"
        params = [*params, *(row[0] for row in rows)]
    found = cur.execute(statement.format(rows=source, keyed=keyed), params).fetchone()
    return None if found is None else int(found[0])


def _hold_row(hold: Reservation, actor: str | None) -> tuple:
    drawn = [{"grant_id": grant_id, "credits": credits} for grant_id, credits in hold.drawn]
    return (
        hold.transaction_id, hold.user_id, hold.credits, hold.status, hold.reason, actor,
        hold.model, hold.metadata_json, hold.options_json, hold.price_book_version,
        hold.created_at, hold.expires_at, hold.resolved_at, hold.captured, hold.released,
        hold.provider_cost_usd, drawn,
    )  # fmt: skip
