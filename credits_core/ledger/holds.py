"""Holds: two-phase spending of credits (reserve, then capture, release or expiry).

A hold is placed only if it fits the credits available now; it draws them from the
user's grants in burn order and remembers which (`drawn`). It then resolves exactly
once:

- captured: all or part of it is spent; the first drawn credits are the ones spent
  and the rest goes back to its grants;
- released: everything goes back;
- expired: nobody confirmed it before `expires_at`; everything goes back.

Credits going back to a grant that has expired meanwhile expire at once.

The instant of expiry: a hold is live while `now < expires_at`. A capture, release
or extend arriving at `now >= expires_at` (the very instant included) is refused with
`HoldExpired` and writes nothing, even if `expire_holds` has not run yet; its credits
stay held until `expire_holds` books the expiry. So a late capture never succeeds or
fails depending on when the sweeper ran.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from credits_core.ledger import grants
from credits_core.ledger.errors import (
    HoldExpired,
    InsufficientCredits,
    InvalidAmount,
    TransactionClosed,
    UnknownTransaction,
)
from credits_core.ledger.journal import number_entries, post_frame
from credits_core.ledger.state import HOLD_FIELDS, reservation
from credits_core.ledger.values import Reservation, Sweep

if TYPE_CHECKING:
    from credits_core.ledger.context import Context

HOLD_ID = re.compile(r"^hold-(?P<account_no>\d+)-\d+$")  # as reserve() makes them


def reserve(
    context: Context,
    now: datetime,
    user_id: str,
    credits: int,
    *,
    reason: str | None,
    actor: str | None,
    ttl: timedelta,
    metadata: str | None,
    model: str | None,
    options: str | None,
    price_book_version: str | None,
    provider_cost_usd: float | None,
) -> Reservation:
    """Place the hold, drawing its credits from the user's grants in burn order."""
    state = context.account(user_id)
    sources = state.sources(now)
    available = sum(source.remaining for source in sources)
    if credits > available:
        raise InsufficientCredits(credits, available)
    drawn = grants.draw(context.batch, sources, credits)
    hold = Reservation(
        transaction_id=state.next_id("hold"),
        user_id=user_id,
        credits=credits,
        status="pending",
        reason=reason,
        created_at=now,
        expires_at=now + ttl,
        model=model,
        metadata_json=metadata,
        price_book_version=price_book_version,
        options_json=options,
        provider_cost_usd=provider_cost_usd,
        drawn=tuple(drawn),
    )
    context.batch.post(
        state,
        now,
        "reserve",
        hold.transaction_id,
        held=credits,
        reason=reason,
        actor=actor,
        model=model,
        metadata=metadata,
    )
    context.batch.add_hold(hold, actor)
    state.pending[hold.transaction_id] = hold
    return hold


def load(cur: duckdb.DuckDBPyConnection, transaction_id: str) -> Reservation | None:
    """The hold as stored, found through its index."""
    row = cur.execute(
        f"SELECT {', '.join(HOLD_FIELDS)} FROM holds WHERE transaction_id = ?",
        [transaction_id],
    ).fetchone()
    return None if row is None else reservation(row)


def account_of_hold(transaction_id: str) -> int | None:
    """The account number a hold's id was made from (`hold-<account>-<entry>`), or None
    for an id no hold can have."""
    found = HOLD_ID.match(transaction_id)
    return None if found is None else int(found["account_no"])


def require(cur: duckdb.DuckDBPyConnection, transaction_id: str) -> Reservation:
    """The hold; UnknownTransaction, or TransactionClosed for bulk usage."""
    hold = load(cur, transaction_id) if account_of_hold(transaction_id) is not None else None
    if hold is not None:
        return hold
    refuse_bulk(cur, transaction_id)
    raise UnknownTransaction(transaction_id)


def refuse_bulk(cur: duckdb.DuckDBPyConnection, transaction_id: str) -> None:
    """Raise TransactionClosed if apply_usage booked this id (it has no hold)."""
    booked = bulk_booked(cur, transaction_id)
    if booked is None:
        return
    kind, _ = booked
    status = "captured" if kind == "capture" else "released"
    raise TransactionClosed(
        transaction_id,
        status,
        f"Transaction {transaction_id} was booked {status} by apply_usage (a finished "
        "generation); it has no pending hold to confirm or extend.",
    )


def bulk_booked(cur: duckdb.DuckDBPyConnection, transaction_id: str) -> tuple[str, int] | None:
    """(kind, credits) of usage booked by apply_usage under this id, or None."""
    row = cur.execute(
        """
        SELECT kind::VARCHAR, credits FROM journal
        WHERE transaction_id = ? AND kind IN ('capture', 'release') AND held = 0
        LIMIT 1
        """,
        [transaction_id],
    ).fetchone()
    return None if row is None else (row[0], row[1])


def confirm(
    context: Context,
    now: datetime,
    transaction_id: str,
    *,
    success: bool,
    credits: int | None,
    actor: str | None,
) -> Reservation:
    """Resolve the hold: capture all or `credits` of it (the rest returns), or release it."""
    hold, state = context.hold(transaction_id)
    outcome = "captured" if success else "released"
    if hold.status != "pending":
        if hold.status == outcome and (credits is None or credits == hold.captured):
            return hold  # the same confirmation again: nothing to do
        raise closed(hold, f"confirming it as {outcome}" + (f" ({credits})" if credits else ""))
    if now >= hold.expires_at:
        raise HoldExpired(transaction_id, hold.expires_at)
    captured = (hold.credits if credits is None else credits) if success else 0
    if captured > hold.credits:
        raise InvalidAmount(
            f"Cannot capture {captured} credits from hold {transaction_id} of "
            f"{hold.credits}; capture at most {hold.credits} (the rest returns on its own)."
        )
    returned = hold.credits - captured
    batch = context.batch
    if captured:
        batch.post(
            state,
            now,
            "capture",
            transaction_id,
            credits=-captured,
            held=-captured,
            reason=hold.reason,
            actor=actor,
            model=hold.model,
        )
    if returned:
        batch.post(
            state,
            now,
            "release",
            transaction_id,
            held=-returned,
            reason=hold.reason if not success else "rest of a partial capture",
            actor=actor,
            model=hold.model,
        )
        grants.give_back(batch, state, tail(hold.drawn, returned), now, transaction_id, hold.model)
    resolved = hold.resolved(outcome, captured, returned, now)
    del state.pending[transaction_id]
    batch.hold_changed(resolved)
    return resolved


def tail(drawn: tuple[tuple[str, int], ...], amount: int) -> list[tuple[str, int]]:
    """The last `amount` credits of what a hold drew: the ones a partial capture returns."""
    back = []
    for grant_id, credits in reversed(drawn):
        if amount == 0:
            break
        part = min(credits, amount)
        back.append((grant_id, part))
        amount -= part
    return back


def extend(
    context: Context,
    now: datetime,
    transaction_id: str,
    ttl: timedelta,
    actor: str | None,
) -> Reservation:
    """Renew a pending, live hold's lease to now + ttl."""
    hold, state = context.hold(transaction_id)
    if hold.status != "pending":
        raise closed(hold, "extending it")
    if now >= hold.expires_at:
        raise HoldExpired(transaction_id, hold.expires_at)
    expires_at = now + ttl
    context.batch.post(
        state,
        now,
        "extend",
        transaction_id,
        reason=f"hold extended to {expires_at.isoformat()}",
        actor=actor,
        model=hold.model,
    )
    extended = dataclasses.replace(hold, expires_at=expires_at)
    state.pending[transaction_id] = extended
    context.batch.hold_changed(extended)
    return extended


# A hold that has lapsed by a moment (the parameter) and is not booked out yet.
LAPSED = "status = 'pending' AND expires_at <= ?"


def any_lapsed(cur: duckdb.DuckDBPyConnection, now: datetime) -> bool:
    """Whether expire(now) would book anything."""
    return cur.execute(f"SELECT EXISTS (SELECT 1 FROM holds WHERE {LAPSED})", [now]).fetchone()[0]


def expire(cur: duckdb.DuckDBPyConnection, now: datetime) -> Sweep:
    """Expire every pending hold whose `expires_at` is at or before `now`, set-based."""
    parts = cur.execute(
        f"""
        WITH lapsed AS (
            SELECT transaction_id, user_id, credits, model, expires_at, drawn
            FROM holds WHERE {LAPSED}
        ),
        back AS (
            SELECT l.transaction_id, d.grant_id, d.credits
            FROM lapsed AS l, unnest(l.drawn) AS u(d)
        )
        SELECT l.transaction_id, l.user_id, l.credits, l.model, l.expires_at,
               b.grant_id, b.credits AS back,
               g.grant_id IS NOT NULL AND g.expired_at IS NULL
                   AND (g.expires_at IS NULL OR g.expires_at > ?) AS live
        FROM lapsed AS l
        LEFT JOIN back AS b USING (transaction_id)
        LEFT JOIN grants AS g ON g.grant_id = b.grant_id
        ORDER BY l.user_id, l.expires_at, l.transaction_id, b.grant_id
        """,
        [now, now],
    ).df()
    if parts.empty:
        return Sweep(0, 0)
    holds = parts.drop_duplicates("transaction_id")
    lost = parts[~parts["live"].astype(bool)]
    entries = pd.concat(
        [
            _entries(holds, now, "expire", held=-holds["credits"], reason="hold expired"),
            _entries(
                lost,
                now,
                "grant_expired",
                credits=-lost["back"],
                grant_id=lost["grant_id"],
                reason="credits returned to a grant that had expired",
            ),
        ],
        ignore_index=True,
    )
    rank = {transaction_id: n for n, transaction_id in enumerate(holds["transaction_id"])}
    entries["ord"] = entries["transaction_id"].map(rank) * 2 + (entries["kind"] != "expire")
    post_frame(cur, number_entries(cur, entries))
    kept = parts[parts["live"].astype(bool)].groupby("grant_id", as_index=False)["back"].sum()
    cur.register("given_back", kept)
    cur.register("expiring", holds[["transaction_id"]])
    cur.execute(
        """
        UPDATE grants SET remaining = grants.remaining + r.back
        FROM given_back AS r WHERE grants.grant_id = r.grant_id
        """
    )
    cur.execute(
        """
        UPDATE holds SET status = 'expired', released = credits, resolved_at = ?
        WHERE transaction_id IN (SELECT transaction_id FROM expiring)
        """,
        [now],
    )
    users = tuple(sorted(set(holds["user_id"])))
    return Sweep(len(holds), int(holds["credits"].sum()), tuple(holds["transaction_id"]), users)


def _entries(rows: pd.DataFrame, now: datetime, kind: str, **columns: object) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "user_id": rows["user_id"],
            "ts": now,
            "kind": kind,
            "credits": 0,
            "held": 0,
            "transaction_id": rows["transaction_id"],
            "grant_id": None,
            "reason": None,
            "actor": "system",
            "model": rows["model"],
            "metadata": None,
        }
    )
    for name, value in columns.items():
        frame[name] = value
    return frame


def closed(hold: Reservation, attempt: str) -> TransactionClosed:
    detail = {
        "captured": f"it was captured ({hold.captured} of {hold.credits} credits)",
        "released": "it was released and its credits returned",
        "expired": "it expired and its credits returned",
        "pending": "it is still pending",
    }[hold.status]
    return TransactionClosed(
        hold.transaction_id,
        hold.status,
        f"Hold {hold.transaction_id} is {hold.status}: {detail}, so {attempt} is refused. "
        "A hold resolves exactly once; reserve again for a new generation.",
    )
