"""Grants: credits given to a user, the order they burn in, and their expiry.

Credits burn by priority (lower first), then soonest expiry (none last), then oldest,
then grant number. A grant is spendable until the instant it expires
(`now < expires_at`); from then on its credits are no longer available, and
`expire_grants` books them out of the balance (`grant_expired` entries). Credits given
back to a grant that has expired (a hold released after its grant lapsed) expire at
once, with a `grant_expired` entry that says so.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from credits_core.ledger.batch import Batch
from credits_core.ledger.journal import number_entries, post_frame
from credits_core.ledger.state import AccountState, GrantState
from credits_core.ledger.values import Grant, Sweep

GRANT_COLUMNS = (
    "grant_id, user_id, kind, credits, remaining, priority, expires_at, created_at, "
    "transaction_id, reason, actor, expired_at"
)
BURN_ORDER = "priority, expires_at NULLS LAST, created_at, grant_seq"
LIVE = "(expires_at IS NULL OR expires_at > ?) AND expired_at IS NULL"


def draw(batch: Batch, sources: list[GrantState], amount: int) -> list[tuple[str, int]]:
    """Take `amount` from the sources in order: [(grant_id, credits taken), ...]. The
    caller has checked that they hold that much; a draw that cannot be whole is refused
    (asserted) before any grant changes, never returned short."""
    held = sum(source.remaining for source in sources)
    assert 0 < amount <= held, f"a draw of {amount} credits from grants holding {held}"
    taken = []
    left = amount
    for source in sources:
        if left == 0:
            break
        take = min(source.remaining, left)
        assert take > 0, f"grant {source.grant_id} has {source.remaining} credits to draw"
        source.remaining -= take
        batch.grant_changed(source)
        taken.append((source.grant_id, take))
        left -= take
    assert left == 0 and sum(credits for _, credits in taken) == amount, (amount, taken)
    return taken


def give_back(
    batch: Batch,
    state: AccountState,
    drawn: list[tuple[str, int]],
    now: datetime,
    transaction_id: str,
    model: str | None = None,
) -> None:
    """Return credits to the grants they came from; those of lapsed grants expire at once,
    with a `grant_expired` entry each."""
    for grant_id, credits in drawn:
        assert credits > 0, f"{credits} credits given back to grant {grant_id}"
        grant = state.grants[grant_id]  # kept: a pending hold drew from it
        if grant.live(now):
            grant.remaining += credits
            batch.grant_changed(grant)
        else:
            batch.post(
                state,
                now,
                "grant_expired",
                transaction_id,
                credits=-credits,
                grant_id=grant_id,
                reason="credits returned to a grant that had expired",
                actor="system",
                model=model,
            )


def create(
    batch: Batch,
    state: AccountState,
    now: datetime,
    *,
    credits: int,
    kind: str,
    priority: int,
    expires_at: datetime | None,
    reason: str | None,
    actor: str | None,
    entry_kind: str = "grant",
    prefix: str = "grant",
    transaction_id: str | None = None,
) -> Grant:
    """Create a grant and post its entry."""
    assert credits > 0, f"a grant of {credits} credits"
    grant_id = state.next_id(prefix)
    grant = Grant(
        grant_id=grant_id,
        user_id=state.user_id,
        kind=kind,
        credits=credits,
        remaining=credits,
        priority=priority,
        expires_at=expires_at,
        created_at=now,
        transaction_id=transaction_id or grant_id,
        reason=reason,
        actor=actor,
    )
    total_before = state.total
    total_after = batch.post(
        state,
        now,
        entry_kind,
        grant.transaction_id,
        credits=credits,
        grant_id=grant_id,
        reason=reason,
        actor=actor,
    )
    assert total_after == total_before + credits, (grant_id, total_before, total_after)
    batch.add_grant(grant, state.entries)
    state.grants[grant_id] = GrantState(grant_id, credits, priority, expires_at, now, state.entries)
    return grant


def listing(cur: duckdb.DuckDBPyConnection, user_id: str) -> list[Grant]:
    rows = cur.execute(
        f"SELECT {GRANT_COLUMNS} FROM grants WHERE user_id = ? ORDER BY {BURN_ORDER}",
        [user_id],
    ).fetchall()
    return [Grant(*row) for row in rows]


# A grant that has lapsed by a moment (the parameter) with credits not booked out yet.
LAPSED = "remaining > 0 AND expires_at <= ?"


def any_lapsed(cur: duckdb.DuckDBPyConnection, now: datetime) -> bool:
    """Whether expire(now) would book anything."""
    return cur.execute(f"SELECT EXISTS (SELECT 1 FROM grants WHERE {LAPSED})", [now]).fetchone()[0]


def expire(cur: duckdb.DuckDBPyConnection, now: datetime) -> Sweep:
    """Book every grant that has lapsed by `now` out of the balance, in one transaction."""
    lapsed = cur.execute(
        f"""
        SELECT user_id, grant_id, transaction_id, remaining, expires_at FROM grants
        WHERE {LAPSED}
        ORDER BY user_id, expires_at, grant_seq
        """,
        [now],
    ).df()
    if lapsed.empty:
        return Sweep(0, 0)
    entries = pd.DataFrame(
        {
            "user_id": lapsed["user_id"],
            "ord": range(len(lapsed)),
            "ts": now,
            "kind": "grant_expired",
            "credits": -lapsed["remaining"],
            "held": 0,
            "transaction_id": lapsed["transaction_id"],
            "grant_id": lapsed["grant_id"],
            "reason": "grant expired at " + lapsed["expires_at"].map(_iso),
            "actor": "system",
            "model": None,
            "metadata": None,
        }
    )
    numbered = number_entries(cur, entries)
    assert len(numbered) == len(lapsed), "a lapsed grant's user has no balance row"
    post_frame(cur, numbered)
    cur.register("lapsed", lapsed[["grant_id"]])
    (booked_out,) = cur.execute(
        """
        UPDATE grants SET remaining = 0, expired_at = ?
        WHERE grant_id IN (SELECT grant_id FROM lapsed)
        """,
        [now],
    ).fetchone()
    assert booked_out == len(lapsed), (booked_out, len(lapsed))
    users = tuple(sorted(set(lapsed["user_id"])))
    return Sweep(len(lapsed), int(lapsed["remaining"].sum()), tuple(lapsed["grant_id"]), users)


def _iso(value: pd.Timestamp) -> str:
    return value.isoformat()
