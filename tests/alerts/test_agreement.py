"""The SQL evaluation over all users agrees with each rule's Python form (the one the
balance simulator uses) on random ledgers, for the shipped rule set."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credits_core.alerts import AlertRules, Evaluator, Snapshot
from credits_core.ledger import Ledger
from tests.alerts.conftest import DEFAULT_RULES, NOW, open_pairs
from tests.conftest import examples
from tests.ledger.support import FakeClock

USER = st.fixed_dictionaries(
    {
        "plan": st.sampled_from(["free", "standard", "pro", None]),
        "topup": st.integers(0, 3_000),
        "plan_credits": st.integers(0, 3_000),
        "expires_in_hours": st.integers(1, 24 * 6),
        "spends": st.lists(st.tuples(st.integers(0, 9), st.integers(1, 3)), max_size=6),
    }
)


def build(ledger: Ledger, clock: FakeClock, users: list[dict], book) -> None:
    """Each user: grants ten days ago, then Music generations `days_ago` days ago."""
    start = clock.now
    for number, user in enumerate(users):
        user_id = f"u_{number}"
        ledger.create_account(user_id, plan=user["plan"])
        expiry = start + timedelta(days=10, hours=user["expires_in_hours"])
        if user["plan_credits"]:
            ledger.grant(user_id, user["plan_credits"], kind="plan", expires_at=expiry)
        if user["topup"]:
            ledger.grant(user_id, user["topup"], kind="topup")
    for days_ago in range(9, -1, -1):
        clock.now = start + timedelta(days=10 - days_ago)
        for number, user in enumerate(users):
            for _ in (n for when, n in user["spends"] if when == days_ago for _ in range(n)):
                quote = book.quote("Music 1.5", plan=user["plan"], at=clock.now)
                if ledger.balance(f"u_{number}").available >= quote.credits:
                    hold = ledger.reserve(f"u_{number}", quote=quote)
                    ledger.confirm(hold.transaction_id, success=True)
    clock.now = start + timedelta(days=10, minutes=30)


def snapshot(ledger: Ledger, user_id: str, plans, book, window: int) -> Snapshot:
    now = ledger.now()
    history = ledger.history(user_id, limit=None, kinds="capture")
    recent = history[history["ts"] >= now - timedelta(days=window)]
    plan = ledger.account(user_id).plan
    expiring = tuple(
        (g.expires_at, g.remaining)
        for g in ledger.grants(user_id)
        if g.expires_at is not None and g.remaining > 0
    )
    usual_window = history[history["ts"] >= now - timedelta(days=30)]
    return Snapshot(
        now=now,
        available=ledger.balance(user_id).available,
        plan_monthly_credits=plans.plans[plan].monthly_credits if plan else None,
        usual_credits=(book.quote("Music 1.5", plan=plan, at=now).credits
                       if len(usual_window) else None),
        burn_per_day=-int(recent["credits"].sum()) / window,
        expiring=expiring,
    )  # fmt: skip


@settings(max_examples=examples(20), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(users=st.lists(USER, min_size=1, max_size=5))
def test_sql_and_python_rules_agree(users, book, plans):
    rules = AlertRules.load(DEFAULT_RULES)
    clock = FakeClock(NOW)
    with Ledger.open(":memory:", clock=clock) as ledger:
        build(ledger, clock, users, book)
        Evaluator(ledger, rules, book=book, plans=plans).evaluate()
        got = open_pairs(ledger)
        funded = [f"u_{n}" for n, u in enumerate(users) if u["topup"] or u["plan_credits"]]
        expected = set()
        for user_id in funded:
            for rule in rules:
                window = getattr(rule, "burn_window_days", 7)
                if rule.matches(snapshot(ledger, user_id, plans, book, window)):
                    expected.add((user_id, rule.name))
    assert got == expected


SPENDER = st.fixed_dictionaries(
    {
        "plan": st.sampled_from(["free", "standard", "pro", None]),
        "topup": st.integers(0, 4_000),
        # (days ago, how): through a priced hold, a hold with only a model named, bulk
        # usage without options, or a failed generation; some before every window
        "spends": st.lists(
            st.tuples(st.integers(0, 45), st.sampled_from(["quote", "model", "bulk", "failed"])),
            max_size=8,
        ),
    }
)


def build_history(ledger: Ledger, clock: FakeClock, users: list[dict], book) -> list[str]:
    """Each user's spends, oldest first, up to 45 days back; returns the user ids."""
    start = clock.now
    ids = [f"u_{number}" for number in range(len(users))]
    for user_id, user in zip(ids, users, strict=True):
        ledger.create_account(user_id, plan=user["plan"])
        if user["topup"]:
            ledger.grant(user_id, user["topup"], kind="topup")
    for days_ago in range(45, -1, -1):
        clock.now = start + timedelta(days=46 - days_ago)
        for user_id, user in zip(ids, users, strict=True):
            for how in (how for when, how in user["spends"] if when == days_ago):
                spend(ledger, user_id, user["plan"], how, book)
    clock.now += timedelta(minutes=30)
    return ids


def spend(ledger: Ledger, user_id: str, plan: str | None, how: str, book) -> None:
    quote = book.quote("Music 1.5", plan=plan, at=ledger.now())
    if ledger.balance(user_id).available < quote.credits:
        return
    if how == "bulk":
        usage = {"user_id": [user_id], "credits": [quote.credits], "ts": [ledger.now()],
                 "success": [True], "model": ["Music 1.5"]}  # fmt: skip
        ledger.apply_usage(pd.DataFrame(usage))
        return
    if how == "quote":
        hold = ledger.reserve(user_id, quote=quote)
    else:
        hold = ledger.reserve(user_id, quote.credits, metadata={"model": "Music 1.5"})
    ledger.confirm(hold.transaction_id, success=how != "failed")


def alerts_of(ledger: Ledger) -> list[tuple]:
    return ledger.snapshot(
        lambda cur: cur.execute(
            "SELECT user_id, rule, status, available FROM alerts ORDER BY ALL"
        ).fetchall()
    )


@settings(max_examples=examples(10), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(users=st.lists(SPENDER, min_size=1, max_size=4))
def test_evaluating_named_users_agrees_with_evaluating_everyone(users, book, plans):
    """The touched-users evaluation reads only each user's captures within the widest
    window and the captured holds that name a model: it opens the same alerts, with the
    same figures, as the evaluation of everyone."""
    rules = AlertRules.load(DEFAULT_RULES)
    found = []
    for named in (False, True):
        clock = FakeClock(NOW)
        with Ledger.open(":memory:", clock=clock) as ledger:
            ids = build_history(ledger, clock, users, book)
            Evaluator(ledger, rules, book=book, plans=plans).evaluate(ids if named else None)
            found.append(alerts_of(ledger))
    assert found[0] == found[1]
