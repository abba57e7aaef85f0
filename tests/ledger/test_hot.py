"""Hot accounts (hot.py): a ledger starts a reserve or confirm from the state its last
write left, and another writer of the same file never makes that state decide wrongly.

Each test has two ledgers on one file: `mine` keeps the account's state from its own
writes, `other` writes the same accounts behind its back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from credits_core.ledger import InsufficientCredits, Ledger, TransactionClosed
from tests.ledger.support import FakeClock, funded


@pytest.fixture
def pair(db_path: str, clock: FakeClock) -> Iterator[tuple[Ledger, Ledger]]:
    with Ledger.open(db_path, clock=clock) as mine, Ledger.open(db_path, clock=clock) as other:
        yield mine, other


def test_credits_granted_elsewhere_can_be_held(pair):
    mine, other = pair
    funded(mine, credits=100)
    mine.reserve("u_1", 60)  # mine now keeps 40 available
    other.grant("u_1", 500, kind="topup")
    hold = mine.reserve("u_1", 300)
    assert hold.status == "pending"
    assert mine.balance("u_1") == (600, 360, 240)
    assert mine.check_invariants() == []


def test_credits_spent_elsewhere_cannot_be_held_twice(pair):
    mine, other = pair
    funded(mine, credits=100)
    mine.reserve("u_1", 10)  # mine now keeps 90 available
    other.reserve("u_1", 80)
    with pytest.raises(InsufficientCredits) as refused:
        mine.reserve("u_1", 20)
    assert (refused.value.required, refused.value.available) == (20, 10)
    assert mine.balance("u_1") == (100, 90, 10)


def test_a_hold_confirmed_elsewhere_is_not_confirmed_again(pair):
    mine, other = pair
    funded(mine, credits=100)
    hold = mine.reserve("u_1", 30)
    first = other.confirm(hold.transaction_id, success=True)
    again = mine.confirm(hold.transaction_id, success=True)
    assert again == first
    with pytest.raises(TransactionClosed):
        mine.confirm(hold.transaction_id, success=False)
    assert mine.balance("u_1") == (70, 0, 70)
    assert [row for row in mine.history("u_1")["kind"]] == ["capture", "reserve", "grant"]


def test_a_hold_extended_elsewhere_can_still_be_captured(pair, clock):
    mine, other = pair
    funded(mine, credits=100)
    hold = mine.reserve("u_1", 30, ttl=timedelta(minutes=5))
    other.extend(hold.transaction_id, timedelta(minutes=30))
    clock.advance(minutes=10)  # past the expiry mine saw, before the new one
    assert mine.confirm(hold.transaction_id, success=True).status == "captured"
    assert mine.balance("u_1") == (70, 0, 70)


def test_a_hold_expired_elsewhere_cannot_be_captured(pair, clock):
    mine, other = pair
    funded(mine, credits=100)
    hold = mine.reserve("u_1", 30, ttl=timedelta(minutes=5))
    clock.advance(minutes=5)
    other.expire_holds()
    with pytest.raises(TransactionClosed, match="expired"):
        mine.confirm(hold.transaction_id, success=True)
    assert mine.balance("u_1") == (100, 0, 100)
    assert mine.reservation(hold.transaction_id).status == "expired"


def test_interleaved_writers_conserve_every_credit(pair, clock):
    mine, other = pair
    funded(mine, credits=1_000)
    held = [mine.reserve("u_1", 50) for _ in range(4)]
    other.adjust("u_1", -100, reason="chargeback", actor="support@corp")
    mine.confirm(held[0].transaction_id, success=True, credits=20)
    other.confirm(held[1].transaction_id, success=False)
    mine.confirm(held[2].transaction_id, success=True)
    other.grant("u_1", 5, kind="promo")
    mine.confirm(held[3].transaction_id, success=False)
    late = mine.reserve("u_1", 800)
    mine.confirm(late.transaction_id, success=True)
    spent = 100 + 20 + 50 + 800
    assert mine.balance("u_1") == (1_005 - spent, 0, 1_005 - spent)
    assert other.balance("u_1") == mine.balance("u_1")
    assert mine.check_invariants() == []
