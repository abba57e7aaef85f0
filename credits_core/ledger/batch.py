"""A batch: the rows that one commit of the writer writes, gathered as it decides.

Deciding a command (holds.py, grants.py, adjustments.py) changes the writer's
AccountState at once and records here what must reach the file: journal entries
(numbered, with the balance after each), new accounts, grants and holds, the final
state of the grants and holds it changed, and the first result of each keyed write.
`write()` then puts all of it in the file with one set-based statement per table,
inside the writer's transaction. A hold placed and resolved in one batch is inserted
once, as it ends.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from credits_core.ledger.state import AccountState, GrantState
from credits_core.ledger.values import Grant, Reservation

TIMESTAMP = pa.timestamp("us", tz="UTC")
DRAWN = pa.list_(pa.struct([("grant_id", pa.string()), ("credits", pa.int64())]))
JOURNAL_SCHEMA = pa.schema(
    [
        ("account_no", pa.int32()),
        ("seq", pa.int64()),
        ("user_id", pa.string()),
        ("ts", TIMESTAMP),
        ("kind", pa.string()),
        ("credits", pa.int64()),
        ("held", pa.int64()),
        ("balance_after", pa.int64()),
        ("held_after", pa.int64()),
        ("transaction_id", pa.string()),
        ("grant_id", pa.string()),
        ("reason", pa.string()),
        ("actor", pa.string()),
        ("model", pa.string()),
        ("metadata", pa.string()),
    ]
)


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
        self._write_accounts(cur)
        self._write_journal(cur)
        self._write_grants(cur)
        self._write_holds(cur)
        self._write_keys(cur)

    def _write_accounts(self, cur: duckdb.DuckDBPyConnection) -> None:
        if self.new_accounts:
            opened = pa.table(
                {
                    "user_id": [s.user_id for s in self.new_accounts],
                    "account_no": pa.array([s.account_no for s in self.new_accounts], pa.int32()),
                    "email": pa.array([s.email for s in self.new_accounts], pa.string()),
                    "plan": pa.array([s.plan for s in self.new_accounts], pa.string()),
                    "created_at": pa.array([s.created_at for s in self.new_accounts], TIMESTAMP),
                }
            )
            cur.register("batch_new_accounts", opened)
            cur.execute(
                """
                INSERT INTO accounts (user_id, account_no, email, plan, created_at)
                SELECT user_id, account_no, email, plan, created_at FROM batch_new_accounts
                """
            )
        if not self.accounts:
            return
        moved = pa.table(
            {
                "account_no": pa.array(list(self.accounts), pa.int32()),
                "total": pa.array([s.total for s in self.accounts.values()], pa.int64()),
                "held": pa.array([s.held for s in self.accounts.values()], pa.int64()),
                "entries": pa.array([s.entries for s in self.accounts.values()], pa.int64()),
            }
        )
        cur.register("batch_balances", moved)
        (updated,) = cur.execute(
            """
            UPDATE accounts SET total = b.total, held = b.held, entries = b.entries
            FROM batch_balances AS b WHERE accounts.account_no = b.account_no
            """
        ).fetchone()
        assert updated == len(self.accounts), (updated, len(self.accounts))

    def _write_journal(self, cur: duckdb.DuckDBPyConnection) -> None:
        if not self.journal:
            return
        columns = list(zip(*self.journal, strict=True))
        entries = pa.Table.from_arrays(
            [pa.array(column, f.type) for column, f in zip(columns, JOURNAL_SCHEMA, strict=True)],
            schema=JOURNAL_SCHEMA,
        )
        cur.register("batch_journal", entries)
        cur.execute(
            """
            INSERT INTO journal (account_no, seq, user_id, ts, kind, credits, held,
                                 balance_after, held_after, transaction_id, grant_id, reason,
                                 actor, model, metadata)
            SELECT account_no, seq, user_id, ts, kind, credits, held, balance_after,
                   held_after, transaction_id, grant_id, reason, actor, model, metadata
            FROM batch_journal
            """
        )

    def _write_grants(self, cur: duckdb.DuckDBPyConnection) -> None:
        placed = {grant.grant_id for grant, _ in self.new_grants}
        if self.new_grants:
            remaining = {g.grant_id: g.remaining for g in self.grants.values()}
            rows = [(g, remaining.get(g.grant_id, g.remaining), seq) for g, seq in self.new_grants]
            granted = pa.table(
                {
                    "grant_id": [g.grant_id for g, _, _ in rows],
                    "user_id": [g.user_id for g, _, _ in rows],
                    "kind": [g.kind for g, _, _ in rows],
                    "credits": pa.array([g.credits for g, _, _ in rows], pa.int64()),
                    "remaining": pa.array([left for _, left, _ in rows], pa.int64()),
                    "priority": pa.array([g.priority for g, _, _ in rows], pa.int32()),
                    "expires_at": pa.array([g.expires_at for g, _, _ in rows], TIMESTAMP),
                    "created_at": pa.array([g.created_at for g, _, _ in rows], TIMESTAMP),
                    "grant_seq": pa.array([seq for _, _, seq in rows], pa.int64()),
                    "transaction_id": [g.transaction_id for g, _, _ in rows],
                    "reason": pa.array([g.reason for g, _, _ in rows], pa.string()),
                    "actor": pa.array([g.actor for g, _, _ in rows], pa.string()),
                }
            )
            cur.register("batch_new_grants", granted)
            cur.execute(
                """
                INSERT INTO grants (grant_id, user_id, kind, credits, remaining, priority,
                                    expires_at, created_at, grant_seq, transaction_id, reason,
                                    actor)
                SELECT grant_id, user_id, kind, credits, remaining, priority, expires_at,
                       created_at, grant_seq, transaction_id, reason, actor
                FROM batch_new_grants
                """
            )
        changed = [g for g in self.grants.values() if g.grant_id not in placed]
        if changed:
            left = pa.table(
                {
                    "grant_id": [g.grant_id for g in changed],
                    "remaining": pa.array([g.remaining for g in changed], pa.int64()),
                }
            )
            cur.register("batch_grants", left)
            (updated,) = cur.execute(
                """
                UPDATE grants SET remaining = b.remaining
                FROM batch_grants AS b WHERE grants.grant_id = b.grant_id
                """
            ).fetchone()
            assert updated == len(changed), (updated, len(changed))

    def _write_holds(self, cur: duckdb.DuckDBPyConnection) -> None:
        if self.new_holds:
            placed = [hold for hold, _ in self.new_holds.values()]
            table = _holds_table(placed)
            table = table.append_column("actor", pa.array([a for _, a in self.new_holds.values()],
                                                          pa.string()))  # fmt: skip
            cur.register("batch_new_holds", table)
            cur.execute(f"INSERT INTO holds BY NAME SELECT {HOLD_INSERT} FROM batch_new_holds")
        if self.holds:
            cur.register("batch_holds", _holds_table(list(self.holds.values())))
            (updated,) = cur.execute(
                """
                UPDATE holds SET status = b.status, captured = b.captured,
                       released = b.released, resolved_at = b.resolved_at,
                       expires_at = b.expires_at
                FROM batch_holds AS b WHERE holds.transaction_id = b.transaction_id
                """
            ).fetchone()
            assert updated == len(self.holds), (updated, len(self.holds))
        if self.refunded:
            refunds = pa.table(
                {
                    "transaction_id": list(self.refunded),
                    "refunded_at": pa.array(list(self.refunded.values()), TIMESTAMP),
                }
            )
            cur.register("batch_refunds", refunds)
            cur.execute(
                """
                UPDATE holds SET refunded_at = r.refunded_at
                FROM batch_refunds AS r WHERE holds.transaction_id = r.transaction_id
                """
            )

    def _write_keys(self, cur: duckdb.DuckDBPyConnection) -> None:
        if not self.keys:
            return
        records = [(key, record, now) for key, (record, now) in self.keys.items()]
        keys = pa.table(
            {
                "key": [key for key, _, _ in records],
                "operation": [r.operation for _, r, _ in records],
                "fingerprint": [r.fingerprint for _, r, _ in records],
                "result": [json.dumps(r.result) for _, r, _ in records],
                "created_at": pa.array([now for _, _, now in records], TIMESTAMP),
            }
        )
        cur.register("batch_keys", keys)
        cur.execute(
            """
            INSERT INTO idempotency_keys (key, operation, fingerprint, result, created_at)
            SELECT key, operation, fingerprint, result, created_at FROM batch_keys
            """
        )


HOLD_INSERT = (
    "transaction_id, user_id, credits, status, reason, actor, model, metadata, options, "
    "price_book_version, created_at, expires_at, resolved_at, captured, released, "
    "provider_cost_usd, drawn"
)


def _holds_table(holds: list[Reservation]) -> pa.Table:
    def column(name: str, kind: pa.DataType) -> pa.Array:
        return pa.array([getattr(h, name) for h in holds], kind)

    values = {
        "transaction_id": column("transaction_id", pa.string()),
        "user_id": column("user_id", pa.string()),
        "credits": column("credits", pa.int64()),
        "status": column("status", pa.string()),
        "reason": column("reason", pa.string()),
        "model": column("model", pa.string()),
        "metadata": column("metadata_json", pa.string()),
        "options": column("options_json", pa.string()),
        "price_book_version": column("price_book_version", pa.string()),
        "created_at": column("created_at", TIMESTAMP),
        "expires_at": column("expires_at", TIMESTAMP),
        "resolved_at": column("resolved_at", TIMESTAMP),
        "captured": column("captured", pa.int64()),
        "released": column("released", pa.int64()),
        "provider_cost_usd": column("provider_cost_usd", pa.float64()),
        "drawn": pa.array(
            [[{"grant_id": g, "credits": c} for g, c in h.drawn] for h in holds], DRAWN
        ),
    }
    return pa.table(values)


def replaced(hold: Reservation, **changes: object) -> Reservation:
    return dataclasses.replace(hold, **changes)
