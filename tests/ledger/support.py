"""Helpers of the ledger tests: a fake clock, funded accounts, and checks that a failed
call wrote nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from credits_core.ledger import Ledger

START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def funded(ledger: Ledger, user_id: str = "u_1", credits: int = 500, **grant) -> str:
    """An account with one grant (a plan grant unless told otherwise)."""
    ledger.create_account(user_id, email=f"{user_id}@example.com", plan="pro")
    ledger.grant(user_id, credits, kind=grant.pop("kind", "plan"), **grant)
    return user_id


def journal(ledger: Ledger) -> list[tuple]:
    """Every journal entry of every user, in booking order."""
    cur = ledger._store.cursor()
    try:
        return cur.execute("SELECT * FROM journal ORDER BY account_no, seq").fetchall()
    finally:
        cur.close()


def state(ledger: Ledger) -> tuple:
    """Everything a write could change: journal, balances, grants, holds, keys."""
    cur = ledger._store.cursor()
    try:
        return tuple(
            cur.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
            for table in ("journal", "accounts", "grants", "holds", "idempotency_keys")
        )
    finally:
        cur.close()


@contextmanager
def unchanged(ledger: Ledger) -> Iterator[None]:
    """Assert that the block leaves the whole ledger as it was."""
    before = state(ledger)
    yield
    assert state(ledger) == before


def sql(ledger: Ledger, query: str, params: list | None = None) -> list[tuple]:
    """Run SQL against the ledger's file (tests tamper with it to prove checks work)."""
    cur = ledger._store.cursor()
    try:
        return cur.execute(query, params).fetchall()
    finally:
        cur.close()
