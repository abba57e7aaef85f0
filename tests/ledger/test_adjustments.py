"""Corrections (adjustments.py): adjustments either way and refunds, attributed and once."""

from __future__ import annotations

import pytest

from credits_core.ledger import InsufficientCredits, NotRefundable, TransactionClosed
from tests.ledger.support import funded, unchanged


def test_a_positive_adjustment_is_a_new_grant_that_burns_first(ledger):
    funded(ledger, credits=100)
    entry = ledger.adjust("u_1", 250, reason="goodwill: slow queue", actor="support@corp")
    assert (entry.kind, entry.credits, entry.balance_after) == ("adjust", 250, 350)
    assert (entry.reason, entry.actor) == ("goodwill: slow queue", "support@corp")
    first = ledger.grants("u_1")[0]
    assert (first.grant_id, first.kind, first.priority, first.expires_at) == (
        entry.grant_id,
        "adjustment",
        0,
        None,
    )
    row = ledger.history("u_1").iloc[0]
    assert (row["kind"], row["credits"], row["actor"]) == ("adjust", 250, "support@corp")


def test_a_negative_adjustment_takes_available_credits(ledger):
    funded(ledger, credits=100)
    ledger.reserve("u_1", 30)
    entry = ledger.adjust("u_1", -70, reason="chargeback", actor="billing")
    assert (entry.credits, entry.balance_after, entry.grant_id) == (-70, 30, None)
    assert tuple(ledger.balance("u_1")) == (30, 30, 0)


def test_a_negative_adjustment_must_fit(ledger):
    funded(ledger, credits=100)
    ledger.reserve("u_1", 30)
    with unchanged(ledger), pytest.raises(InsufficientCredits) as info:
        ledger.adjust("u_1", -71, reason="chargeback", actor="billing")
    assert str(info.value) == (
        "Insufficient credits. You need 71 credits but only have 70. You're 1 credits short."
    )


def test_a_refund_gives_back_what_a_hold_spent_once(ledger):
    funded(ledger, credits=500)
    hold = ledger.reserve("u_1", 300)
    ledger.confirm(hold.transaction_id, success=True, credits=200)
    entry = ledger.refund(hold.transaction_id, reason="broken render", actor="support@corp")
    assert (entry.kind, entry.credits, entry.transaction_id) == ("refund", 200, hold.transaction_id)
    assert tuple(ledger.balance("u_1")) == (500, 0, 500)
    life = ledger.history("u_1")
    assert list(life[life["transaction_id"] == hold.transaction_id]["kind"]) == [
        "refund",
        "release",
        "capture",
        "reserve",
    ]
    with unchanged(ledger), pytest.raises(NotRefundable, match="already refunded"):
        ledger.refund(hold.transaction_id, reason="again", actor="support@corp")


@pytest.mark.parametrize("outcome", ["pending", "released"])
def test_a_hold_that_spent_nothing_cannot_be_refunded(ledger, outcome):
    funded(ledger)
    hold = ledger.reserve("u_1", 100)
    if outcome == "released":
        ledger.confirm(hold.transaction_id, success=False)
    with unchanged(ledger), pytest.raises(NotRefundable, match="nothing to refund") as info:
        ledger.refund(hold.transaction_id, reason="r", actor="a")
    assert isinstance(info.value, TransactionClosed)
