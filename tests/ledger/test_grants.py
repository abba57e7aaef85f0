"""Grants (grants.py): kinds and default priorities, expiry at the instant, expire_grants."""

from __future__ import annotations

from datetime import timedelta

import pytest

from credits_core.ledger import DEFAULT_PRIORITY, InsufficientCredits, InvalidTimestamp, grants
from credits_core.ledger.batch import Batch
from credits_core.ledger.state import GrantState
from tests.ledger.support import START, funded, unchanged


@pytest.mark.parametrize("kind", ["plan", "topup", "promo", "adjustment"])
def test_a_grant_adds_credits_with_its_kinds_default_priority(ledger, kind):
    ledger.create_account("u_1")
    grant = ledger.grant("u_1", 250, kind=kind, reason="welcome", actor="billing")
    assert (grant.kind, grant.credits, grant.remaining) == (kind, 250, 250)
    assert grant.priority == DEFAULT_PRIORITY[kind]
    assert tuple(ledger.balance("u_1")) == (250, 0, 250)
    entry = ledger.history("u_1").iloc[0]
    assert (entry["kind"], entry["credits"], entry["balance_after"]) == ("grant", 250, 250)
    assert (entry["reason"], entry["actor"], entry["grant_id"]) == (
        "welcome",
        "billing",
        grant.grant_id,
    )


def test_default_priorities_burn_free_credits_before_bought_ones():
    order = sorted(DEFAULT_PRIORITY, key=DEFAULT_PRIORITY.get)
    assert order == ["adjustment", "promo", "plan", "topup"]


def test_an_explicit_priority_wins(ledger):
    ledger.create_account("u_1")
    promo = ledger.grant("u_1", 10, kind="promo")
    topup = ledger.grant("u_1", 10, kind="topup", priority=0)
    assert ledger.reserve("u_1", 15).drawn == ((topup.grant_id, 10), (promo.grant_id, 5))


def test_a_grant_is_spendable_until_the_instant_it_expires(ledger, clock):
    ledger.create_account("u_1")
    grant = ledger.grant("u_1", 100, kind="promo", expires_at=clock.now + timedelta(hours=1))
    clock.now = grant.expires_at - timedelta(microseconds=1)
    assert ledger.balance("u_1").available == 100
    clock.now = grant.expires_at
    # lapsed: gone from the balance at once, before expire_grants books it
    assert tuple(ledger.balance("u_1")) == (0, 0, 0)
    with pytest.raises(InsufficientCredits, match="only have 0"):
        ledger.reserve("u_1", 1)


def test_expire_grants_books_what_lapsed_once(ledger, clock):
    ledger.create_account("u_1")
    short = ledger.grant("u_1", 100, kind="promo", expires_at=clock.now + timedelta(days=1))
    ledger.grant("u_1", 50, kind="topup")
    ledger.reserve("u_1", 30)  # from the promo grant: 70 left in it
    clock.advance(days=2)
    sweep = ledger.expire_grants()
    assert (sweep.count, sweep.credits, sweep.ids, sweep.users) == (
        1,
        70,
        (short.grant_id,),
        ("u_1",),
    )
    assert ledger.expire_grants().count == 0
    assert tuple(ledger.balance("u_1")) == (80, 30, 50)
    entry = ledger.history("u_1").iloc[0]
    assert (entry["kind"], entry["credits"], entry["grant_id"]) == (
        "grant_expired",
        -70,
        short.grant_id,
    )
    assert short.expires_at.isoformat() in entry["reason"]
    expired = {g.grant_id: g for g in ledger.grants("u_1")}[short.grant_id]
    assert (expired.remaining, expired.expired_at) == (0, clock.now)
    assert ledger.check_invariants() == []


def test_a_hold_released_after_expire_grants_still_expires_its_credits(ledger, clock):
    ledger.create_account("u_1")
    ledger.grant("u_1", 100, kind="promo", expires_at=clock.now + timedelta(minutes=5))
    hold = ledger.reserve("u_1", 60, ttl=timedelta(hours=1))
    clock.advance(minutes=10)
    assert ledger.expire_grants().credits == 40
    ledger.confirm(hold.transaction_id, success=False)
    assert tuple(ledger.balance("u_1")) == (0, 0, 0)
    assert ledger.check_invariants() == []


def test_expire_grants_takes_an_explicit_time(ledger, clock):
    ledger.create_account("u_1")
    grant = ledger.grant("u_1", 100, kind="plan", expires_at=clock.now + timedelta(days=30))
    assert ledger.expire_grants(now=grant.expires_at - timedelta(seconds=1)).count == 0
    assert ledger.expire_grants(now=grant.expires_at).credits == 100


def test_an_expiry_that_is_not_in_the_future_is_refused(ledger, clock):
    ledger.create_account("u_1")
    with unchanged(ledger), pytest.raises(InvalidTimestamp, match="not after now"):
        ledger.grant("u_1", 100, kind="promo", expires_at=clock.now)


def test_grants_lists_every_grant_in_burn_order(ledger, clock):
    funded(ledger, credits=100)
    ledger.grant("u_1", 5, kind="promo")
    kinds = [(g.kind, g.credits) for g in ledger.grants("u_1")]
    assert kinds == [("promo", 5), ("plan", 100)]


def test_grants_have_ids_made_from_the_account_and_entry(ledger):
    ledger.create_account("u_1")
    ledger.create_account("u_2")
    assert ledger.grant("u_2", 1, kind="plan").grant_id == "grant-2-1"
    assert ledger.grant("u_2", 1, kind="plan").grant_id == "grant-2-2"


def test_a_draw_that_cannot_be_whole_is_refused_before_any_grant_changes():
    sources = [
        GrantState("grant-1-1", 30, 10, None, START, 1),
        GrantState("grant-1-2", 20, 20, None, START, 2),
    ]
    batch = Batch()
    with pytest.raises(AssertionError, match="a draw of 60 credits from grants holding 50"):
        grants.draw(batch, sources, 60)
    assert [source.remaining for source in sources] == [30, 20] and not batch.grants
    assert grants.draw(batch, sources, 40) == [("grant-1-1", 30), ("grant-1-2", 10)]
    assert [source.remaining for source in sources] == [0, 10]
