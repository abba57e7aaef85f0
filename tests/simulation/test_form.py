"""The simulator form's rules (ScenarioForm), called directly: empty monthly credits mean
the plan's, 0 days of expiry mean never, and a real user's state replaces the form's plan
fields. Plans from data/plans.toml: standard grants 20,000 a month; packs of 10,000 for $5."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from credits_core.plans import Plans
from credits_core.simulation import InvalidScenario, Lot, MixItem, simulate
from credits_core.simulation.scenario import ScenarioForm
from credits_core.simulation.sources import current_state_of
from tests.simulation.conftest import END

PLANS = Plans.load()
MUSIC = MixItem(model="Music 1.5", per_day=1)  # 90 credits a day


def form(**fields) -> ScenarioForm:
    defaults = {"plan": "standard", "start_day": date(2026, 12, 1), "horizon_days": 40}
    return ScenarioForm(**{**defaults, "mix": (MUSIC,), **fields})


def test_empty_monthly_credits_mean_the_plans_own(book):
    result = simulate(form(monthly_credits=None).scenario(PLANS), book)
    assert result.daily["plan_granted"].iloc[0] == 20_000
    assert form(monthly_credits=None).plan_terms(PLANS).monthly_credits == 20_000
    assert form(monthly_credits=0).plan_terms(PLANS).monthly_credits == 0
    assert form(monthly_credits=3000).plan_terms(PLANS).monthly_credits == 3000


def test_zero_days_of_expiry_mean_plan_credits_never_expire(book):
    kept = simulate(form(monthly_credits=3000, expire_after_days=0).scenario(PLANS), book)
    assert kept.daily["expired"].sum() == 0
    assert kept.daily.set_index("day").loc[30, "available"] == 3000 - 30 * 90 + 3000 - 90
    lapsing = simulate(form(monthly_credits=3000, expire_after_days=30).scenario(PLANS), book)
    assert lapsing.daily.set_index("day").loc[30, "expired"] == 3000 - 30 * 90


def test_the_form_starts_at_midnight_utc_with_the_plans_packs():
    scenario = form(topup_kind="pack_below", threshold=500, packs=2).scenario(PLANS)
    assert scenario.start == datetime(2026, 12, 1, tzinfo=UTC)
    assert (scenario.topup.pack_credits, scenario.topup.pack_price_usd) == (10_000, 5)
    assert (scenario.topup.kind, scenario.topup.packs) == ("pack_below", 2)


def test_a_real_users_state_replaces_the_forms_plan(known, book):
    typed = form(plan="business", monthly_credits=1, expire_after_days=0, first_grant_day=3,
                 starting_balance=100, start_day=END.date(), user_id=" u_1 ",
                 from_user=True)  # fmt: skip
    assert typed.starting_user == "u_1"
    state = current_state_of(known, typed.starting_user, typed.start, PLANS)
    scenario = typed.scenario(PLANS, state)
    assert scenario.plan.name == "standard" and scenario.plan.monthly_credits == 20_000
    assert scenario.first_grant_day == 25
    assert scenario.starting_lots == (Lot(credits=550, kind="plan", expires_day=25),)
    result = simulate(scenario, book)
    assert result.daily["available"].iloc[0] == 550 + 100 - 90  # the starting balance adds
    assert result.daily.set_index("day").loc[25, "plan_granted"] == 20_000


def test_the_user_replaces_the_form_only_when_asked_and_named():
    assert form(user_id="u_1").starting_user is None
    assert form(user_id="  ", from_user=True).starting_user is None
    assert form(from_user=True).starting_user is None


def test_a_bad_top_up_rule_is_a_typed_error_naming_the_field():
    bad = form(topup_kind="refill_to", threshold=500, target=400)
    with pytest.raises(InvalidScenario, match=r"topup: refill_to needs a target above the thresh"):
        bad.scenario(PLANS)
    with pytest.raises(InvalidScenario, match="There is no plan 'gold'"):
        form(plan="gold").scenario(PLANS)
    with pytest.raises(InvalidScenario, match="horizon_days"):
        form(horizon_days=0).scenario(PLANS)
