"""A batch: what one group of the writer's commands decided, gathered as it decides.

Deciding a command (holds.py, grants.py, adjustments.py) changes the writer's
AccountState at once and records here what must reach the file: journal entries
(numbered, with the balance after each), new accounts, grants and holds, the final
state of the grants and holds it changed, and the first result of each keyed write.
`changes()` then freezes all of it into rows of plain values (changes.py), which the
writer logs and the applier writes. A hold placed and resolved in one batch is
inserted once, as it ends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from credits_core.ledger.changes import (
    BALANCES,
    ENTRIES,
    HOLD_CHANGES,
    KEYS,
    NEW_ACCOUNTS,
    NEW_GRANTS,
    NEW_HOLDS,
    REFUNDS,
    REMAINING,
    Changes,
)
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

    # ---------------------------------------------------------------- freezing

    def changes(self) -> Changes:
        """What the batch decided, as rows of plain values (the accounts' values as they
        stand now: call it when deciding is done)."""
        placed_grants = {grant.grant_id for grant, _ in self.new_grants}
        left = {g.grant_id: g.remaining for g in self.grants.values()}
        changes = Changes()
        changes.add(NEW_ACCOUNTS, [
            (s.user_id, s.account_no, s.email, s.plan, s.created_at) for s in self.new_accounts
        ])  # fmt: skip
        changes.add(BALANCES, [
            (s.account_no, s.total, s.held, s.entries) for s in self.accounts.values()
        ])  # fmt: skip
        changes.add(ENTRIES, self.journal)
        changes.add(NEW_GRANTS, [
            (g.grant_id, g.user_id, g.kind, g.credits, left.get(g.grant_id, g.remaining),
             g.priority, g.expires_at, g.created_at, seq, g.transaction_id, g.reason, g.actor)
            for g, seq in self.new_grants
        ])  # fmt: skip
        changes.add(REMAINING, [
            (g.grant_id, g.remaining) for g in self.grants.values()
            if g.grant_id not in placed_grants
        ])  # fmt: skip
        changes.add(NEW_HOLDS, [_hold_row(hold, actor) for hold, actor in self.new_holds.values()])
        changes.add(HOLD_CHANGES, [
            (h.transaction_id, h.status, h.captured, h.released, h.resolved_at, h.expires_at)
            for h in self.holds.values()
        ])  # fmt: skip
        changes.add(REFUNDS, list(self.refunded.items()))
        changes.add(KEYS, [
            (key, r.operation, r.fingerprint, json.dumps(r.result), now)
            for key, (r, now) in self.keys.items()
        ])  # fmt: skip
        return changes


def _hold_row(hold: Reservation, actor: str | None) -> tuple:
    drawn = [{"grant_id": grant_id, "credits": credits} for grant_id, credits in hold.drawn]
    return (
        hold.transaction_id, hold.user_id, hold.credits, hold.status, hold.reason, actor,
        hold.model, hold.metadata_json, hold.options_json, hold.price_book_version,
        hold.created_at, hold.expires_at, hold.resolved_at, hold.captured, hold.released,
        hold.provider_cost_usd, drawn,
    )  # fmt: skip
