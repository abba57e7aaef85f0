"""Holds (holds.py): reserve, confirm (capture, partial capture, release), extend, expiry,
and the rule at the instant a hold expires."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from credits_core.ledger import (
    HoldExpired,
    InsufficientCredits,
    InvalidAmount,
    QuoteMismatch,
    TransactionClosed,
    UnknownTransaction,
)
from tests.ledger.support import funded, journal, sql, unchanged


@dataclass(frozen=True)
class FakeQuote:
    credits: int = 1100
    model: str = "MiniMax-Hailuo-02"
    options: dict = field(default_factory=lambda: {"resolution": "1080P", "duration": 6})
    price_book_version: str = "2025-01"
    provider_cost_usd: float | None = 0.49


def test_reserve_holds_credits_until_confirmed(ledger):
    funded(ledger, credits=500)
    hold = ledger.reserve("u_1", 300, reason="video-generation")
    assert (hold.status, hold.credits, hold.user_id) == ("pending", 300, "u_1")
    assert tuple(ledger.balance("u_1")) == (500, 300, 200)


def test_insufficient_credits_has_the_platform_message(ledger):
    funded(ledger, credits=500)
    with unchanged(ledger), pytest.raises(InsufficientCredits) as info:
        ledger.reserve("u_1", 1100)
    assert str(info.value) == (
        "Insufficient credits. You need 1100 credits but only have 500. You're 600 credits short."
    )
    assert (info.value.required, info.value.available, info.value.shortfall) == (1100, 500, 600)


def test_validate_agrees_with_reserve(ledger):
    funded(ledger, credits=500)
    assert ledger.validate("u_1", 500).available == 500
    ledger.reserve("u_1", 450)
    with pytest.raises(InsufficientCredits) as info:
        ledger.validate("u_1", 100)
    assert str(info.value).endswith(
        "You need 100 credits but only have 50. You're 50 credits short."
    )


def test_a_hold_fits_only_what_is_available_not_what_is_held(ledger):
    funded(ledger, credits=100)
    ledger.reserve("u_1", 60)
    with pytest.raises(InsufficientCredits):
        ledger.reserve("u_1", 60)
    assert tuple(ledger.balance("u_1")) == (100, 60, 40)


def test_full_capture_spends_the_hold(ledger):
    funded(ledger, credits=500)
    hold = ledger.reserve("u_1", 300)
    done = ledger.confirm(hold.transaction_id, success=True)
    assert (done.status, done.captured, done.released) == ("captured", 300, 0)
    assert tuple(ledger.balance("u_1")) == (200, 0, 200)


def test_partial_capture_returns_the_rest(ledger):
    funded(ledger, credits=500)
    hold = ledger.reserve("u_1", 300)
    done = ledger.confirm(hold.transaction_id, success=True, credits=200)
    assert (done.status, done.captured, done.released) == ("captured", 200, 100)
    assert tuple(ledger.balance("u_1")) == (300, 0, 300)


def test_release_returns_everything(ledger):
    funded(ledger, credits=500)
    hold = ledger.reserve("u_1", 300)
    done = ledger.confirm(hold.transaction_id, success=False)
    assert (done.status, done.captured, done.released) == ("released", 0, 300)
    assert tuple(ledger.balance("u_1")) == (500, 0, 500)


def test_capturing_more_than_the_hold_is_refused(ledger):
    funded(ledger, credits=500)
    hold = ledger.reserve("u_1", 100)
    with unchanged(ledger), pytest.raises(InvalidAmount, match="at most 100"):
        ledger.confirm(hold.transaction_id, success=True, credits=101)


@pytest.mark.parametrize(
    ("first", "again"),
    [
        ({"success": True}, {"success": True}),
        ({"success": True, "credits": 40}, {"success": True, "credits": 40}),
        ({"success": True, "credits": 40}, {"success": True}),
        ({"success": False}, {"success": False}),
    ],
)
def test_confirming_again_with_the_same_outcome_returns_the_same_result(ledger, first, again):
    funded(ledger, credits=500)
    hold = ledger.reserve("u_1", 100)
    result = ledger.confirm(hold.transaction_id, **first)
    with unchanged(ledger):
        assert ledger.confirm(hold.transaction_id, **again) == result


@pytest.mark.parametrize(
    ("first", "other"),
    [
        ({"success": True}, {"success": False}),
        ({"success": False}, {"success": True}),
        ({"success": True, "credits": 40}, {"success": True, "credits": 41}),
    ],
)
def test_confirming_with_another_outcome_is_refused(ledger, first, other):
    funded(ledger, credits=500)
    hold = ledger.reserve("u_1", 100)
    ledger.confirm(hold.transaction_id, **first)
    with unchanged(ledger), pytest.raises(TransactionClosed, match="resolves exactly once"):
        ledger.confirm(hold.transaction_id, **other)


def test_burn_order_follows_priority_then_expiry_then_age(ledger, clock):
    ledger.create_account("u_1")
    topup = ledger.grant("u_1", 100, kind="topup")  # priority 30
    later = ledger.grant("u_1", 100, kind="plan", expires_at=clock.now + timedelta(days=20))
    sooner = ledger.grant("u_1", 100, kind="plan", expires_at=clock.now + timedelta(days=10))
    promo = ledger.grant("u_1", 100, kind="promo")  # priority 10
    hold = ledger.reserve("u_1", 350)
    assert hold.drawn == (
        (promo.grant_id, 100),
        (sooner.grant_id, 100),
        (later.grant_id, 100),
        (topup.grant_id, 50),
    )


def test_among_equals_the_oldest_grant_burns_first_then_the_first_made(ledger, clock):
    ledger.create_account("u_1")
    first = ledger.grant("u_1", 10, kind="plan")
    second = ledger.grant("u_1", 10, kind="plan")  # same instant, made second
    clock.advance(minutes=1)
    ledger.grant("u_1", 10, kind="plan")
    assert ledger.reserve("u_1", 15).drawn == ((first.grant_id, 10), (second.grant_id, 5))


def test_a_partial_capture_spends_the_first_drawn_credits(ledger):
    ledger.create_account("u_1")
    promo = ledger.grant("u_1", 100, kind="promo")
    plan = ledger.grant("u_1", 100, kind="plan")
    hold = ledger.reserve("u_1", 150)
    ledger.confirm(hold.transaction_id, success=True, credits=120)
    remaining = {g.grant_id: g.remaining for g in ledger.grants("u_1")}
    assert remaining == {promo.grant_id: 0, plan.grant_id: 80}


def test_credits_returned_to_a_lapsed_grant_expire_at_once(ledger, clock):
    ledger.create_account("u_1")
    short = ledger.grant("u_1", 100, kind="promo", expires_at=clock.now + timedelta(minutes=5))
    ledger.grant("u_1", 100, kind="topup")
    hold = ledger.reserve("u_1", 150, ttl=timedelta(hours=1))
    clock.advance(minutes=10)  # the promo grant lapses while its credits are held
    ledger.confirm(hold.transaction_id, success=False)
    assert tuple(ledger.balance("u_1")) == (100, 0, 100)
    expired = ledger.history("u_1", kinds=["grant_expired"])
    assert list(expired["credits"]) == [-100]
    assert expired["grant_id"].iloc[0] == short.grant_id
    assert expired["transaction_id"].iloc[0] == hold.transaction_id
    assert "expired" in expired["reason"].iloc[0]
    assert ledger.check_invariants() == []


def test_metadata_and_model_are_kept_on_the_hold(ledger):
    funded(ledger)
    hold = ledger.reserve("u_1", 10, metadata={"model": "Gen-4 Turbo", "job": 42})
    assert hold.model == "Gen-4 Turbo"
    assert hold.metadata == {"model": "Gen-4 Turbo", "job": 42}
    assert ledger.reservation(hold.transaction_id) == hold


def test_a_quote_sets_the_credits_model_options_and_price_book(ledger):
    funded(ledger, credits=5000)
    hold = ledger.reserve("u_1", quote=FakeQuote(), metadata={"model": "ignored"})
    assert (hold.credits, hold.model, hold.price_book_version) == (
        1100,
        "MiniMax-Hailuo-02",
        "2025-01",
    )
    assert hold.options == {"resolution": "1080P", "duration": 6}
    assert hold.provider_cost_usd == 0.49
    assert ledger.reservation(hold.transaction_id) == hold


def test_credits_and_quote_must_agree(ledger):
    funded(ledger, credits=5000)
    assert ledger.reserve("u_1", 1100, quote=FakeQuote()).credits == 1100
    with unchanged(ledger), pytest.raises(QuoteMismatch, match="disagrees"):
        ledger.reserve("u_1", 1000, quote=FakeQuote())


def test_the_pricing_engines_quote_is_accepted(ledger):
    from credits_core.pricing import PriceBook

    quote = PriceBook.load().quote("MiniMax-Hailuo-02", resolution="1080P", duration=6)
    funded(ledger, credits=5000)
    hold = ledger.reserve("u_1", quote=quote)
    assert (hold.credits, hold.model) == (quote.credits, quote.model)
    assert hold.price_book_version == quote.price_book_version


# --------------------------------------------------------------------------- expiry


def test_a_capture_at_the_instant_of_expiry_is_refused_and_writes_nothing(ledger, clock):
    funded(ledger)
    hold = ledger.reserve("u_1", 100, ttl=timedelta(minutes=15))
    clock.now = hold.expires_at  # the very instant
    with unchanged(ledger), pytest.raises(HoldExpired) as info:
        ledger.confirm(hold.transaction_id, success=True)
    assert isinstance(info.value, TransactionClosed)
    assert hold.expires_at.isoformat() in str(info.value)
    # its credits stay held until the sweep books the expiry
    assert tuple(ledger.balance("u_1")) == (500, 100, 400)
    assert ledger.expire_holds().ids == (hold.transaction_id,)
    assert tuple(ledger.balance("u_1")) == (500, 0, 500)


def test_a_capture_just_before_expiry_succeeds(ledger, clock):
    funded(ledger)
    hold = ledger.reserve("u_1", 100, ttl=timedelta(minutes=15))
    clock.now = hold.expires_at - timedelta(microseconds=1)
    assert ledger.confirm(hold.transaction_id, success=True).status == "captured"


def test_release_and_extend_are_refused_once_the_hold_expired(ledger, clock):
    funded(ledger)
    hold = ledger.reserve("u_1", 100)
    clock.now = hold.expires_at
    with unchanged(ledger):
        with pytest.raises(HoldExpired):
            ledger.confirm(hold.transaction_id, success=False)
        with pytest.raises(HoldExpired):
            ledger.extend(hold.transaction_id, timedelta(minutes=5))


def test_expire_holds_returns_credits_and_runs_once(ledger, clock):
    funded(ledger)
    first = ledger.reserve("u_1", 100, ttl=timedelta(minutes=5))
    second = ledger.reserve("u_1", 50, ttl=timedelta(minutes=30))
    clock.advance(minutes=10)
    sweep = ledger.expire_holds()
    assert (sweep.count, sweep.credits, sweep.ids) == (1, 100, (first.transaction_id,))
    assert sweep.users == ("u_1",)
    assert ledger.expire_holds().count == 0
    assert ledger.reservation(first.transaction_id).status == "expired"
    assert ledger.reservation(second.transaction_id).status == "pending"
    assert tuple(ledger.balance("u_1")) == (500, 50, 450)
    with pytest.raises(TransactionClosed, match="expired"):
        ledger.confirm(first.transaction_id, success=True)


def test_expire_holds_takes_an_explicit_time(ledger, clock):
    funded(ledger)
    hold = ledger.reserve("u_1", 100, ttl=timedelta(minutes=5))
    assert ledger.expire_holds(now=hold.expires_at - timedelta(seconds=1)).count == 0
    assert ledger.expire_holds(now=hold.expires_at).count == 1


def test_expiry_gives_back_to_live_grants_and_expires_lapsed_ones(ledger, clock):
    ledger.create_account("u_1")
    ledger.grant("u_1", 100, kind="promo", expires_at=clock.now + timedelta(minutes=5))
    ledger.grant("u_1", 100, kind="topup")
    ledger.reserve("u_1", 150, ttl=timedelta(minutes=10))
    clock.advance(minutes=20)
    assert ledger.expire_holds().credits == 150
    assert tuple(ledger.balance("u_1")) == (100, 0, 100)
    assert list(ledger.history("u_1", limit=2)["kind"]) == ["grant_expired", "expire"]
    assert ledger.check_invariants() == []


# --------------------------------------------------------------------------- extend


def test_extend_renews_the_lease(ledger, clock):
    funded(ledger)
    hold = ledger.reserve("u_1", 100, ttl=timedelta(minutes=15))
    clock.advance(minutes=10)
    renewed = ledger.extend(hold.transaction_id, timedelta(minutes=15))
    assert renewed.expires_at == clock.now + timedelta(minutes=15)
    clock.advance(minutes=10)  # past the first expiry, inside the renewed one
    assert ledger.expire_holds().count == 0
    assert ledger.confirm(hold.transaction_id, success=True).status == "captured"
    assert "extend" in list(ledger.history("u_1")["kind"])


def test_extend_is_refused_once_the_hold_is_closed(ledger):
    funded(ledger)
    hold = ledger.reserve("u_1", 100)
    ledger.confirm(hold.transaction_id, success=True)
    with unchanged(ledger), pytest.raises(TransactionClosed, match="captured"):
        ledger.extend(hold.transaction_id, timedelta(minutes=5))


# --------------------------------------------------------------------------- lookups


def test_unknown_transactions_are_named(ledger):
    funded(ledger)
    with unchanged(ledger), pytest.raises(UnknownTransaction, match="hold-9-9"):
        ledger.confirm("hold-9-9", success=True)
    with pytest.raises(UnknownTransaction):
        ledger.reservation("nope")


def test_every_hold_step_is_one_journal_entry(ledger):
    funded(ledger)
    before = len(journal(ledger))
    hold = ledger.reserve("u_1", 100)
    ledger.confirm(hold.transaction_id, success=True, credits=60)
    kinds = [row[4] for row in journal(ledger)[before:]]
    assert kinds == ["reserve", "capture", "release"]
    assert sql(ledger, "SELECT status FROM holds") == [("captured",)]
