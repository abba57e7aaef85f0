"""Grants: credits given to a user, the order they burn in, and their expiry.

Credits burn by priority (lower first), then soonest expiry (none last), then oldest,
then grant number. A grant is spendable until the instant it expires
(`now < expires_at`); from then on its credits are no longer available, and
`expire_grants` books them out of the balance (`grant_expired` entries). Credits given
back to a grant that has expired (a hold released after its grant lapsed) expire at
once, with a `grant_expired` entry that says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pandas as pd

from credits_core.ledger.errors import UnknownAccount
from credits_core.ledger.journal import Book, number_entries, post_frame
from credits_core.ledger.values import Grant, Sweep

GRANT_COLUMNS = (
    "grant_id, user_id, kind, credits, remaining, priority, expires_at, created_at, "
    "transaction_id, reason, actor, expired_at"
)
BURN_ORDER = "priority, expires_at NULLS LAST, created_at, grant_seq"
LIVE = "(expires_at IS NULL OR expires_at > ?) AND expired_at IS NULL"
NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Source:
    """A spendable grant as a write sees it."""

    grant_id: str
    remaining: int
    priority: int
    expires_at: datetime | None
    created_at: datetime
    grant_seq: int

    def burn_key(self) -> tuple:
        return (self.priority, self.expires_at or NEVER, self.created_at, self.grant_seq)

    def live(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


def open_with_sources(
    cur: duckdb.DuckDBPyConnection, user_id: str, now: datetime
) -> tuple[Book, list[Source]]:
    """The user's balance row and spendable grants (live at `now`, in burn order), read
    in one statement."""
    rows = cur.execute(
        f"""
        WITH own AS MATERIALIZED (  -- alone, the user_id filter can use the index
            SELECT grant_id, remaining, priority, grant_seq, expires_at, created_at, expired_at
            FROM grants WHERE user_id = ?
        )
        SELECT NULL AS grant_id, account_no, total, held, entries, NULL AS expires_at,
               NULL AS created_at
        FROM accounts WHERE user_id = ?
        UNION ALL
        SELECT grant_id, remaining, priority, grant_seq, NULL, expires_at, created_at
        FROM own WHERE remaining > 0 AND {LIVE}
        """,
        [user_id, user_id, now],
    ).fetchall()
    account = [row for row in rows if row[0] is None]
    if not account:
        raise UnknownAccount(user_id)
    book = Book(user_id, *account[0][1:5])
    sources = [
        Source(grant_id, remaining, priority, expires_at, created_at, grant_seq)
        for grant_id, remaining, priority, grant_seq, _, expires_at, created_at in rows
        if grant_id is not None
    ]
    return book, sorted(sources, key=Source.burn_key)


def draw(sources: list[Source], amount: int) -> list[tuple[str, int]]:
    """Take `amount` from the sources in order: [(grant_id, credits taken), ...]."""
    taken = []
    for source in sources:
        if amount == 0:
            break
        take = min(source.remaining, amount)
        taken.append((source.grant_id, take))
        amount -= take
    return taken


def after_draw(sources: list[Source], drawn: list[tuple[str, int]]) -> tuple[Source, ...]:
    """The sources with what a draw took out of them (emptied ones dropped)."""
    taken = dict(drawn)
    left = (
        dataclasses.replace(source, remaining=source.remaining - taken.get(source.grant_id, 0))
        for source in sources
    )
    return tuple(source for source in left if source.remaining > 0)


def take(cur: duckdb.DuckDBPyConnection, drawn: list[tuple[str, int]]) -> None:
    """Take credits out of grants, in one UPDATE however many grants a draw touches."""
    if len(drawn) == 1:
        ((grant_id, credits),) = drawn
        cur.execute(
            "UPDATE grants SET remaining = remaining - ? WHERE grant_id = ?", [credits, grant_id]
        )
        return
    cur.execute(
        """
        UPDATE grants SET remaining = grants.remaining - d.credits
        FROM (SELECT unnest(?) AS grant_id, unnest(?) AS credits) AS d
        WHERE grants.grant_id = d.grant_id
        """,
        [[grant_id for grant_id, _ in drawn], [credits for _, credits in drawn]],
    )


def give_back(
    cur: duckdb.DuckDBPyConnection,
    book: Book,
    drawn: list[tuple[str, int]],
    now: datetime,
    transaction_id: str,
    model: str | None = None,
) -> int:
    """Return credits to the grants they came from; those of lapsed grants expire at once.

    Returns the credits that expired on the way back.
    """
    if not drawn:
        return 0
    live = {
        grant_id
        for (grant_id,) in cur.execute(
            f"SELECT grant_id FROM grants WHERE grant_id IN (SELECT unnest(?)) AND {LIVE}",
            [[grant_id for grant_id, _ in drawn], now],
        ).fetchall()
    }
    expired = 0
    for grant_id, credits in drawn:
        if grant_id in live:
            cur.execute(
                "UPDATE grants SET remaining = remaining + ? WHERE grant_id = ?",
                [credits, grant_id],
            )
        else:
            expired += credits
            book.post(
                now,
                "grant_expired",
                transaction_id,
                credits=-credits,
                grant_id=grant_id,
                reason="credits returned to a grant that had expired",
                actor="system",
                model=model,
            )
    return expired


def insert(cur: duckdb.DuckDBPyConnection, grant: Grant, grant_seq: int) -> None:
    cur.execute(
        f"INSERT INTO grants ({GRANT_COLUMNS}, grant_seq) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            grant.grant_id,
            grant.user_id,
            grant.kind,
            grant.credits,
            grant.remaining,
            grant.priority,
            grant.expires_at,
            grant.created_at,
            grant.transaction_id,
            grant.reason,
            grant.actor,
            grant.expired_at,
            grant_seq,
        ],
    )


def create(
    cur: duckdb.DuckDBPyConnection,
    book: Book,
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
    """Create a grant and post its entry in `book` (saved by the caller)."""
    grant_id = book.next_id(prefix)
    grant = Grant(
        grant_id=grant_id,
        user_id=book.user_id,
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
    book.post(
        now,
        entry_kind,
        grant.transaction_id,
        credits=credits,
        grant_id=grant_id,
        reason=reason,
        actor=actor,
    )
    insert(cur, grant, book.seq)
    return grant


def listing(cur: duckdb.DuckDBPyConnection, user_id: str) -> list[Grant]:
    rows = cur.execute(
        f"SELECT {GRANT_COLUMNS} FROM grants WHERE user_id = ? ORDER BY {BURN_ORDER}",
        [user_id],
    ).fetchall()
    return [Grant(*row) for row in rows]


def expire(cur: duckdb.DuckDBPyConnection, now: datetime) -> Sweep:
    """Book every grant that has lapsed by `now` out of the balance, in one transaction."""
    lapsed = cur.execute(
        """
        SELECT user_id, grant_id, transaction_id, remaining, expires_at FROM grants
        WHERE remaining > 0 AND expires_at <= ?
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
    post_frame(cur, number_entries(cur, entries))
    cur.register("lapsed", lapsed[["grant_id"]])
    cur.execute(
        """
        UPDATE grants SET remaining = 0, expired_at = ?
        WHERE grant_id IN (SELECT grant_id FROM lapsed)
        """,
        [now],
    )
    return Sweep(len(lapsed), int(lapsed["remaining"].sum()), tuple(lapsed["grant_id"]))


def _iso(value: pd.Timestamp) -> str:
    return value.isoformat()
