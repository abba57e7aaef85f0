"""The writer's accounts: each account as the last committed write left it.

Every write of a ledger file in this process goes through its one writer (writer.py),
and DuckDB's lock keeps other processes out, so what the writer keeps here is
authoritative: it decides each command against it and never reads back what it wrote.
An account is loaded from the database the first time a batch touches it (one
statement per table for all the accounts a batch needs) and then kept, least recently
used dropped first. The writer drops everything when a batch fails to commit, and
after a set-based write (sweeps, bulk usage) it did not decide here.

Kept per account: the balance row (total, held, entries), the grants that can still
matter (credits left, or drawn by a pending hold) and the pending holds.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from credits_core.ledger.values import Balance, Reservation

CAPACITY_ACCOUNTS = 100_000  # least recently used dropped first, never within a batch
NEVER = datetime.max.replace(tzinfo=UTC)
HOLD_FIELDS = (
    "transaction_id",
    "user_id",
    "credits",
    "status",
    "reason",
    "created_at",
    "expires_at",
    "captured",
    "released",
    "resolved_at",
    "model",
    "metadata",
    "price_book_version",
    "options",
    "provider_cost_usd",
    "drawn",
)


@dataclass
class GrantState:
    """A grant as the writer keeps it: what is left of it and how it burns."""

    grant_id: str
    remaining: int
    priority: int
    expires_at: datetime | None
    created_at: datetime
    grant_seq: int
    booked_out: bool = False  # expire_grants booked it (expired_at is set)

    def live(self, now: datetime) -> bool:
        """Spendable at `now`: until the instant it expires, and never once booked out."""
        return not self.booked_out and (self.expires_at is None or now < self.expires_at)

    def burn_key(self) -> tuple:
        return (self.priority, self.expires_at or NEVER, self.created_at, self.grant_seq)


@dataclass
class AccountState:
    """One account as the writer keeps it between and within batches."""

    user_id: str
    account_no: int
    email: str | None
    plan: str | None
    created_at: datetime
    total: int
    held: int
    entries: int
    grants: dict[str, GrantState] = field(default_factory=dict)
    pending: dict[str, Reservation] = field(default_factory=dict)
    logged: int = 0  # the last logged batch that changed it (redo.py)

    def sources(self, now: datetime) -> list[GrantState]:
        """The grants credits can be drawn from at `now`, in burn order."""
        live = [g for g in self.grants.values() if g.remaining > 0 and g.live(now)]
        return sorted(live, key=GrantState.burn_key)

    def available(self, now: datetime) -> int:
        """Credits that can be spent at `now`: what is left in live grants."""
        return sum(g.remaining for g in self.grants.values() if g.remaining > 0 and g.live(now))

    def balance(self, now: datetime) -> Balance:
        """The balance as `Ledger.balance()` reads it at `now`: credits of lapsed grants
        that no sweep has booked out yet are left out of total and available."""
        lapsed = sum(g.remaining for g in self.grants.values() if g.remaining > 0
                     and not g.live(now))  # fmt: skip
        return Balance(self.total - lapsed, self.held, self.total - self.held - lapsed)

    def next_id(self, prefix: str) -> str:
        """A transaction or grant id made from the account and its next entry number."""
        return f"{prefix}-{self.account_no}-{self.entries + 1}"


class Accounts:
    """The kept accounts of one ledger file, by user id and by account number."""

    def __init__(self, capacity: int | None = None) -> None:
        self._by_user: OrderedDict[str, AccountState] = OrderedDict()
        self._by_no: dict[int, str] = {}
        self._capacity = CAPACITY_ACCOUNTS if capacity is None else capacity
        self.next_account_no: int | None = None

    def clear(self) -> None:
        self._by_user.clear()
        self._by_no.clear()
        self.next_account_no = None

    def get(self, user_id: str) -> AccountState | None:
        return self._by_user.get(user_id)

    def get_no(self, account_no: int) -> AccountState | None:
        user_id = self._by_no.get(account_no)
        return None if user_id is None else self._by_user[user_id]

    def keep(self, state: AccountState) -> None:
        self._by_user[state.user_id] = state
        self._by_user.move_to_end(state.user_id)
        self._by_no[state.account_no] = state.user_id

    def trim(self, applied: int) -> None:
        """Drop the least recently used accounts beyond capacity (between batches only),
        except those changed by a logged batch after `applied`, which the file may not
        hold yet."""
        for _ in range(len(self._by_user) - self._capacity):
            user_id, state = next(iter(self._by_user.items()))
            if state.logged > applied:
                self._by_user.move_to_end(user_id)
                continue
            del self._by_user[user_id]
            del self._by_no[state.account_no]

    def load(
        self,
        cur: duckdb.DuckDBPyConnection,
        user_ids: Iterable[str] = (),
        account_nos: Iterable[int] = (),
    ) -> None:
        """Load the accounts not kept yet, by user id or number, in three statements."""
        users = sorted({u for u in user_ids if u not in self._by_user})
        numbers = sorted({n for n in account_nos if n not in self._by_no})
        if not users and not numbers:
            return
        for state in _load(cur, users, numbers):
            self.keep(state)

    def allocate_account_no(self, cur: duckdb.DuckDBPyConnection) -> int:
        """The next account number: given out here only, so never twice."""
        if self.next_account_no is None:
            (top,) = cur.execute("SELECT coalesce(max(account_no), 0) FROM accounts").fetchone()
            self.next_account_no = int(top) + 1
        number = self.next_account_no
        self.next_account_no += 1
        return number


def _in_list(values: list) -> str:
    return ", ".join(["?"] * len(values))


def _load(
    cur: duckdb.DuckDBPyConnection, users: list[str], numbers: list[int]
) -> list[AccountState]:
    conditions, params = [], []
    if users:
        conditions.append(f"user_id IN ({_in_list(users)})")
        params += users
    if numbers:
        conditions.append(f"account_no IN ({_in_list(numbers)})")
        params += numbers
    rows = cur.execute(
        f"""
        SELECT user_id, account_no, email, plan, created_at, total, held, entries
        FROM accounts WHERE {" OR ".join(conditions)}
        """,
        params,
    ).fetchall()
    states = {row[0]: AccountState(*row) for row in rows}
    if not states:
        return []
    found = list(states)
    for hold in _pending_holds(cur, found):
        states[hold.user_id].pending[hold.transaction_id] = hold
    drawn = sorted({grant_id for s in states.values() for h in s.pending.values()
                    for grant_id, _ in h.drawn})  # fmt: skip
    for user_id, grant in _grants(cur, found, drawn):
        states[user_id].grants[grant.grant_id] = grant
    return list(states.values())


def _pending_holds(cur: duckdb.DuckDBPyConnection, users: list[str]) -> list[Reservation]:
    rows = cur.execute(
        f"""
        SELECT {", ".join(HOLD_FIELDS)} FROM holds
        WHERE user_id IN ({_in_list(users)}) AND status = 'pending'
        """,
        users,
    ).fetchall()
    return [reservation(row) for row in rows]


def reservation(row: tuple) -> Reservation:
    """A Reservation from a holds row selected as HOLD_FIELDS."""
    *fields, drawn = row
    return Reservation(*fields, drawn=tuple((d["grant_id"], d["credits"]) for d in drawn))


def _grants(
    cur: duckdb.DuckDBPyConnection, users: list[str], drawn: list[str]
) -> list[tuple[str, GrantState]]:
    """Grants with credits left, and those pending holds drew from (to give back to)."""
    wanted = f" OR grant_id IN ({_in_list(drawn)})" if drawn else ""
    rows = cur.execute(
        f"""
        SELECT user_id, grant_id, remaining, priority, expires_at, created_at, grant_seq,
               expired_at IS NOT NULL
        FROM grants
        WHERE user_id IN ({_in_list(users)}) AND (remaining > 0{wanted})
        """,
        [*users, *drawn],
    ).fetchall()
    return [(row[0], GrantState(*row[1:])) for row in rows]
