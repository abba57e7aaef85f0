"""Support's corrections: adjustments either way, and refunds of captured generations.

A positive adjustment is a new grant of kind "adjustment" (no expiry, burns first).
A negative one takes credits from the available balance in burn order, like a
capture, and needs them to be there. A refund gives back what a captured hold (or a
booked usage event) spent, once, as a new adjustment grant; both are attributed to
an actor with a reason.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from credits_core.ledger import grants, holds
from credits_core.ledger.errors import InsufficientCredits, NotRefundable, UnknownTransaction
from credits_core.ledger.journal import open_book
from credits_core.ledger.values import DEFAULT_PRIORITY, Entry


def adjust(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    user_id: str,
    credits: int,
    *,
    reason: str,
    actor: str,
) -> Entry:
    book, sources = grants.open_with_sources(cur, user_id, now)
    transaction_id = book.next_id("adj")
    if credits > 0:
        grants.create(
            cur,
            book,
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
        book.save(cur)
    else:
        available = sum(source.remaining for source in sources)
        if -credits > available:
            raise InsufficientCredits(-credits, available)
        drawn = grants.draw(sources, -credits)
        book.post(now, "adjust", transaction_id, credits=credits, reason=reason, actor=actor)
        book.save(cur, spend=-credits)
        grants.take(cur, drawn)
    return Entry(
        transaction_id=transaction_id,
        user_id=user_id,
        kind="adjust",
        credits=credits,
        balance_after=book.balance_total,
        ts=now,
        reason=reason,
        actor=actor,
        grant_id=transaction_id if credits > 0 else None,
    )


def refund(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    transaction_id: str,
    *,
    reason: str,
    actor: str,
) -> Entry:
    user_id, spent = refundable(cur, transaction_id)
    book = open_book(cur, user_id)
    grant = grants.create(
        cur,
        book,
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
    book.save(cur)
    cur.execute("UPDATE holds SET refunded_at = ? WHERE transaction_id = ?", [now, transaction_id])
    return Entry(
        transaction_id=transaction_id,
        user_id=user_id,
        kind="refund",
        credits=spent,
        balance_after=book.balance_total,
        ts=now,
        reason=reason,
        actor=actor,
        grant_id=grant.grant_id,
    )


def refundable(cur: duckdb.DuckDBPyConnection, transaction_id: str) -> tuple[str, int]:
    """(user, credits spent) of a captured, not yet refunded transaction."""
    hold = holds.load(cur, transaction_id)
    if hold is None:
        return _refundable_usage(cur, transaction_id)
    if hold.status != "captured":
        raise NotRefundable(
            transaction_id,
            hold.status,
            f"Hold {transaction_id} is {hold.status}, not captured: nothing was spent, so "
            "there is nothing to refund." + _pending_hint(hold.status),
        )
    refunded = cur.execute(
        "SELECT refunded_at FROM holds WHERE transaction_id = ?", [transaction_id]
    ).fetchone()[0]
    if refunded is not None:
        raise _already(transaction_id, hold.status, refunded)
    return hold.user_id, hold.captured


def _refundable_usage(cur: duckdb.DuckDBPyConnection, transaction_id: str) -> tuple[str, int]:
    rows = cur.execute(
        """
        SELECT kind::VARCHAR, user_id, credits, ts FROM journal
        WHERE transaction_id = ? AND kind IN ('capture', 'release', 'refund')
        """,
        [transaction_id],
    ).fetchall()
    booked = [row for row in rows if row[0] in ("capture", "release")]
    if not booked:
        raise UnknownTransaction(transaction_id)
    kind, user_id, credits, _ = booked[0]
    if kind != "capture":
        raise NotRefundable(
            transaction_id,
            "released",
            f"Usage {transaction_id} failed and spent nothing, so there is nothing to refund.",
        )
    refunds = [row for row in rows if row[0] == "refund"]
    if refunds:
        raise _already(transaction_id, "captured", refunds[0][3])
    return user_id, -credits


def _already(transaction_id: str, status: str, when: datetime) -> NotRefundable:
    return NotRefundable(
        transaction_id,
        status,
        f"{transaction_id} was already refunded at {when.isoformat()}; a generation is "
        "refunded at most once. Use adjust() for any further goodwill.",
    )


def _pending_hint(status: str) -> str:
    return " Release it instead with confirm(success=False)." if status == "pending" else ""
