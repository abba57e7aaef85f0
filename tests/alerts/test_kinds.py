"""Each rule kind on hand-built ledgers: it matches just past its threshold and not at
it, by SQL over every user at once, and the Python form of the rule agrees."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from credits_core.alerts import Snapshot
from credits_core.pricing import PriceBook
from tests.alerts.conftest import account, evaluator, open_pairs

AVAILABLE = {"name": "low", "kind": "available_below", "severity": "critical",
             "below": 200, "resolve_at": 500}  # fmt: skip


def spend(ledger, user_id: str, credits: int, model: str = "Music 1.5", quote=None) -> None:
    hold = ledger.reserve(user_id, credits, metadata={"model": model}, quote=quote)
    ledger.confirm(hold.transaction_id, success=True)


def test_available_below_matches_below_the_threshold_only(ledger):
    account(ledger, "u_below", 199)
    account(ledger, "u_at", 200)
    account(ledger, "u_never_funded")
    result = evaluator(ledger, AVAILABLE).evaluate()
    assert open_pairs(ledger) == {("u_below", "low")}
    assert result.users == 2  # an account that never had credits is not running out
    rule = evaluator(ledger, AVAILABLE).rules.get("low")
    now = ledger.now()
    assert rule.matches(Snapshot(now, available=199))
    assert not rule.matches(Snapshot(now, available=200))


def test_available_counts_held_credits_and_lapsed_grants_out(ledger, clock):
    account(ledger, "u_held", 300)
    ledger.reserve("u_held", 150, metadata={"model": "Music 1.5"})
    account(ledger, "u_lapsing", 1_000, kind="plan", expires_at=clock.now + timedelta(hours=1))
    evaluator(ledger, AVAILABLE).evaluate()
    assert open_pairs(ledger) == {("u_held", "low")}
    clock.advance(hours=2)  # the grant lapsed; no sweep has booked it yet
    evaluator(ledger, AVAILABLE).evaluate()
    assert ledger.balance("u_lapsing").available == 0
    assert open_pairs(ledger) == {("u_held", "low"), ("u_lapsing", "low")}


def test_percent_of_plan_uses_the_plans_monthly_credits(ledger, plans):
    rule = {"name": "plan-low", "kind": "percent_of_plan_below", "severity": "warning",
            "below_percent": 10, "resolve_at_percent": 20}  # fmt: skip
    monthly = plans.plans["pro"].monthly_credits
    account(ledger, "u_below", monthly // 10 - 1)
    account(ledger, "u_at", monthly // 10)
    account(ledger, "u_free_below", plans.plans["free"].monthly_credits // 10 - 1, plan="free")
    account(ledger, "u_no_plan", 1, plan=None)
    account(ledger, "u_unknown_plan", 1, plan="gold")
    tested = evaluator(ledger, rule)
    tested.evaluate()
    assert open_pairs(ledger) == {("u_below", "plan-low"), ("u_free_below", "plan-low")}
    python_rule = tested.rules.get("plan-low")
    now = ledger.now()
    assert python_rule.matches(Snapshot(now, monthly // 10 - 1, plan_monthly_credits=monthly))
    assert not python_rule.matches(Snapshot(now, monthly // 10, plan_monthly_credits=monthly))
    assert not python_rule.matches(Snapshot(now, 1, plan_monthly_credits=None))


def test_cannot_afford_usual_prices_the_most_used_generation_with_the_engine(ledger, book):
    rule = {"name": "usual", "kind": "cannot_afford_usual", "severity": "critical",
            "window_days": 30, "resolve_at_multiple": 2}  # fmt: skip
    video = book.quote(
        "MiniMax-Hailuo-02", plan="pro", at=ledger.now(), resolution="1080P", duration=6
    )
    music = book.quote("Music 1.5", plan="pro", at=ledger.now())
    assert video.credits > music.credits
    for user_id, left in (("u_short", video.credits - 1), ("u_enough", video.credits)):
        account(ledger, user_id, 3 * video.credits + music.credits + left)
        for _ in range(3):  # the video is their usual generation, music only once
            spend(ledger, user_id, video.credits, quote=video)
        spend(ledger, user_id, music.credits, quote=music)
        assert ledger.balance(user_id).available == left
    evaluator(ledger, rule, book=book).evaluate()
    assert open_pairs(ledger) == {("u_short", "usual")}


def test_cannot_afford_usual_ignores_generations_older_than_its_window(ledger, clock, book):
    rule = {"name": "usual", "kind": "cannot_afford_usual", "severity": "critical",
            "window_days": 7, "resolve_at_multiple": 2}  # fmt: skip
    video = book.quote("Gen-4 Turbo", plan="pro", at=ledger.now(), duration=10)
    music = book.quote("Music 1.5", plan="pro", at=ledger.now())
    account(ledger, "u_1", 2 * video.credits + music.credits + music.credits)
    spend(ledger, "u_1", video.credits, quote=video)
    spend(ledger, "u_1", video.credits, quote=video)
    clock.advance(days=8)  # the videos fall out of the 7-day window
    spend(ledger, "u_1", music.credits, quote=music)
    evaluator(ledger, rule, book=book).evaluate()
    assert open_pairs(ledger) == set()  # can afford music, its only recent generation


def test_cannot_afford_usual_without_options_falls_back_to_the_last_price_paid(ledger, book):
    """Usage booked in bulk without options cannot be quoted (the price needs the
    resolution): the rule then uses what the user last paid for that model."""
    rule = {"name": "usual", "kind": "cannot_afford_usual", "severity": "critical"}
    account(ledger, "u_1", 1_000)
    ledger.apply_usage(
        pd.DataFrame({"user_id": ["u_1"], "credits": [600], "ts": [ledger.now()],
                      "success": [True], "model": ["MiniMax-Hailuo-02"]})
    )  # fmt: skip
    evaluator(ledger, rule, book=book).evaluate()
    assert open_pairs(ledger) == {("u_1", "usual")}  # 400 left < 600 last paid


def test_days_left_uses_the_burn_of_the_last_seven_days(ledger, clock):
    rule = {"name": "days", "kind": "days_left_below", "severity": "warning",
            "below_days": 3, "resolve_at_days": 5, "burn_window_days": 7}  # fmt: skip
    # 700 credits captured over the window: 100 a day; 3 days left is 300 credits
    for user_id, left in (("u_short", 299), ("u_enough", 300)):
        account(ledger, user_id, 700 + left + 5_000)
        spend(ledger, user_id, 5_000)  # eight days ago: outside the window
    clock.advance(days=8)
    for user_id in ("u_short", "u_enough"):
        for _ in range(7):
            spend(ledger, user_id, 100)
    account(ledger, "u_idle", 10)  # no burn: never runs out at its rate
    clock.advance(hours=1)
    tested = evaluator(ledger, rule)
    tested.evaluate()
    assert open_pairs(ledger) == {("u_short", "days")}
    python_rule = tested.rules.get("days")
    now = ledger.now()
    assert python_rule.matches(Snapshot(now, 299, burn_per_day=100))
    assert not python_rule.matches(Snapshot(now, 300, burn_per_day=100))
    assert not python_rule.matches(Snapshot(now, 10, burn_per_day=0))


def test_expiring_within_warns_before_plan_credits_are_forfeited(ledger, clock):
    rule = {"name": "expiring", "kind": "expiring_within", "severity": "info",
            "within_days": 3, "min_credits": 500, "resolve_below_credits": 250}  # fmt: skip
    soon = clock.now + timedelta(days=2)
    account(ledger, "u_soon", 500, kind="plan", expires_at=soon)
    account(ledger, "u_too_few", 499, kind="plan", expires_at=soon)
    account(ledger, "u_later", 5_000, kind="plan", expires_at=clock.now + timedelta(days=4))
    account(ledger, "u_topup", 5_000)  # top-ups never expire
    tested = evaluator(ledger, rule)
    tested.evaluate()
    assert open_pairs(ledger) == {("u_soon", "expiring")}
    python_rule = tested.rules.get("expiring")
    now = ledger.now()
    assert python_rule.matches(Snapshot(now, 500, expiring=((soon, 500),)))
    assert not python_rule.matches(
        Snapshot(now, 5_000, expiring=((now + timedelta(days=4), 5_000),))
    )
    clock.advance(days=1, hours=12)  # u_later's credits now expire within 3 days
    tested.evaluate()
    assert open_pairs(ledger) == {("u_soon", "expiring"), ("u_later", "expiring")}
    clock.advance(days=1)  # u_soon's credits are forfeited: nothing left to warn about
    tested.evaluate()
    assert open_pairs(ledger) == {("u_later", "expiring")}


@pytest.mark.parametrize("scope", [None, ["u_lapsing"]], ids=["everyone", "one user"])
def test_expiring_credits_count_until_the_instant_they_expire(ledger, clock, scope):
    """The grant is spendable until its expiry (not at it): its credits are expiring a
    microsecond before, and gone (nothing left to warn about) at the instant itself."""
    rule = {"name": "expiring", "kind": "expiring_within", "severity": "info",
            "within_days": 3, "min_credits": 500, "resolve_below_credits": 250}  # fmt: skip
    expiry = clock.now + timedelta(days=2)
    account(ledger, "u_lapsing", 500, kind="plan", expires_at=expiry)
    tested = evaluator(ledger, rule)
    clock.now = expiry - timedelta(microseconds=1)
    tested.evaluate(scope)
    assert open_pairs(ledger) == {("u_lapsing", "expiring")}
    clock.now = expiry
    tested.evaluate(scope)
    assert open_pairs(ledger) == set()
    assert ledger.balance("u_lapsing").available == 0


def test_cannot_afford_usual_uses_todays_price_not_the_price_paid(ledger, book):
    """A price rise makes the usual generation unaffordable: the engine's price counts."""
    rule = {"name": "usual", "kind": "cannot_afford_usual", "severity": "critical"}
    music = book.quote("Music 1.5", plan="pro", at=ledger.now())
    account(ledger, "u_1", music.credits + 500)
    spend(ledger, "u_1", music.credits, quote=music)
    evaluator(ledger, rule, book=book).evaluate()
    assert open_pairs(ledger) == set()
    text = Path(book.source).read_text(encoding="utf-8")
    fixed = 'description = "One song of up to 90 s."\nprice = { kind = "fixed", credits = 90 }'
    assert fixed in text
    dearer = PriceBook.loads(text.replace(fixed, fixed.replace("90 }", "900 }")))
    assert dearer.quote("Music 1.5", plan="pro", at=ledger.now()).credits > 500
    evaluator(ledger, rule, book=dearer).evaluate()
    assert open_pairs(ledger) == {("u_1", "usual")}
