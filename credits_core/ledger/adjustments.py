"""Support's corrections: adjustments either way, and refunds of captured generations.

A positive adjustment is a new grant of kind "adjustment" (no expiry, burns first).
A negative one takes credits from the available balance in burn order, like a
capture, and needs them to be there. A refund gives back what a captured hold (or a
booked usage event) spent, once, as a new adjustment grant; both are attributed to
an actor with a reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

import duckdb

from credits_core.ledger import grants, holds
from credits_core.ledger.errors import InsufficientCredits, NotRefundable, UnknownTransaction
from credits_core.ledger.values import DEFAULT_PRIORITY, Entry

if TYPE_CHECKING:
    from credits_core.ledger.context import Context


def adjust(
    context: Context,
    now: datetime,
    user_id: str,
    credits: int,
    *,
    reason: str,
    actor: str,
) -> Entry:
    state = context.account(user_id)
    transaction_id = state.next_id("adj")
    if credits > 0:
        grants.create(
            context.batch,
            state,
            now,
            credits=credits,
            kind="adjustment",
            priority=DEFAULT_PRIORITY["adjustment"],
            expires_at=None,
            reason=reason,
            actor=actor,
            entry_kind="adjust",
            prefix="adj",
        )
    else:
        sources = state.sources(now)
        available = sum(source.remaining for source in sources)
        if -credits > available:
            raise InsufficientCredits(-credits, available)
        grants.draw(context.batch, sources, -credits)
        context.batch.post(
            state, now, "adjust", transaction_id, credits=credits, reason=reason, actor=actor
        )
    return Entry(
        transaction_id=transaction_id,
        user_id=user_id,
        kind="adjust",
        credits=credits,
        balance_after=state.total,
        ts=now,
        reason=reason,
        actor=actor,
        grant_id=transaction_id if credits > 0 else None,
    )


def refund(
    context: Context,
    now: datetime,
    transaction_id: str,
    *,
    reason: str,
    actor: str,
) -> Entry:
    user_id, spent = refundable(context, transaction_id)
    state = context.account(user_id)
    grant = grants.create(
        context.batch,
        state,
        now,
        credits=spent,
        kind="adjustment",
        priority=DEFAULT_PRIORITY["adjustment"],
        expires_at=None,
        reason=reason,
        actor=actor,
        entry_kind="refund",
        prefix="refund",
        transaction_id=transaction_id,
    )
    context.batch.refunded[transaction_id] = now
    return Entry(
        transaction_id=transaction_id,
        user_id=user_id,
        kind="refund",
        credits=spent,
        balance_after=state.total,
        ts=now,
        reason=reason,
        actor=actor,
        grant_id=grant.grant_id,
    )


def refundable(context: Context, transaction_id: str) -> tuple[str, int]:
    """(user, credits spent) of a captured, not yet refunded transaction."""
    refunded = context.refunded_at(transaction_id)
    if refunded is not None:
        raise _already(transaction_id, "captured", refunded)
    if holds.account_of_hold(transaction_id) is None:  # booked usage has no hold
        return _refundable_usage(context.cur, transaction_id)
    hold, _ = context.hold(transaction_id)
    if hold.status != "captured":
        raise NotRefundable(
            transaction_id,
            hold.status,
            f"Hold {transaction_id} is {hold.status}, not captured: nothing was spent, so "
            "there is nothing to refund." + _pending_hint(hold.status),
        )
    (refunded,) = context.cur.execute(
        "SELECT refunded_at FROM holds WHERE transaction_id = ?", [transaction_id]
    ).fetchone() or (None,)
    if refunded is not None:
        raise _already(transaction_id, hold.status, refunded)
    return hold.user_id, hold.captured


class _UsageEntry(NamedTuple):
    kind: str
    user_id: str
    credits: int
    ts: datetime


def _refundable_usage(cur: duckdb.DuckDBPyConnection, transaction_id: str) -> tuple[str, int]:
    rows = cur.execute(
        """
        SELECT kind::VARCHAR, user_id, credits, ts FROM journal
        WHERE transaction_id = ? AND kind IN ('capture', 'release', 'refund')
        """,
        [transaction_id],
    ).fetchall()
    entries = [_UsageEntry(*row) for row in rows]
    booked = [e for e in entries if e.kind in ("capture", "release")]
    if not booked:
        raise UnknownTransaction(transaction_id)
    if booked[0].kind != "capture":
        raise NotRefundable(
            transaction_id,
            "released",
            f"Usage {transaction_id} failed and spent nothing, so there is nothing to refund.",
        )
    refunds = [e for e in entries if e.kind == "refund"]
    if refunds:
        raise _already(transaction_id, "captured", refunds[0].ts)
    return booked[0].user_id, -booked[0].credits


def _already(transaction_id: str, status: str, when: datetime) -> NotRefundable:
    return NotRefundable(
        transaction_id,
        status,
        f"{transaction_id} was already refunded at {when.isoformat()}; a generation is "
        "refunded at most once. Use adjust() for any further goodwill.",
    )


def _pending_hint(status: str) -> str:
    return " Release it instead with confirm(success=False)." if status == "pending" else ""
