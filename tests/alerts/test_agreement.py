"""The SQL evaluation over all users agrees with each rule's Python form (the one the
balance simulator uses) on random ledgers, for the shipped rule set."""

from __future__ import annotations

from datetime import timedelta

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
