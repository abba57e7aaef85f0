"""The deterministic simulation against cases computed by hand (prices from pricing.toml:
Music 1.5 = 90 credits, FLUX.1 Kontext [pro] = 110, no plan multiplier)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from credits_core.alerts.rules import AlertRules
from credits_core.simulation import (
    InvalidScenario,
    InvalidUsageMix,
    Lot,
    MixItem,
    PlanTerms,
    Scenario,
    TopUpPolicy,
    simulate,
)
from credits_core.simulation.scenario import deterministic_counts

START = datetime(2026, 12, 1, tzinfo=UTC)
MUSIC = MixItem(model="Music 1.5", per_day=1)
KONTEXT = MixItem(model="FLUX.1 Kontext [pro]", per_day=1)
NO_PLAN = PlanTerms(monthly_credits=0)


def scenario(**fields) -> Scenario:
    return Scenario.build(**{"plan": NO_PLAN, "start": START, "horizon_days": 20, **fields})


def test_plan_grant_expires_with_credits_left(book):
    plan = PlanTerms(monthly_credits=3000, price_usd=10)
    result = simulate(scenario(plan=plan, horizon_days=40, mix=[MUSIC]), book)
    daily = result.daily.set_index("day")
    assert daily.loc[29, "available"] == 3000 - 30 * 90  # 300 left at the cycle's end
    assert daily.loc[30, "expired"] == 300
    assert daily.loc[30, "plan_granted"] == 3000
    assert daily.loc[30, "available"] == 3000 - 90
    expiries = result.events[result.events["event"] == "expiry"]
    assert expiries[["day", "credits"]].values.tolist() == [[30, 300]]
    assert result.depletion_day is None
    money = result.money.set_index("item")["usd"]
    assert money["plan payments"] == 20  # day 0 and day 30
    assert money["provider cost"] == pytest.approx(40 * 0.03)


def test_plan_credits_that_never_expire_roll_over(book):
    plan = PlanTerms(monthly_credits=3000, credits_expire_after_days=None)
    result = simulate(scenario(plan=plan, horizon_days=40, mix=[MUSIC]), book)
    assert result.daily["expired"].sum() == 0
    assert result.daily.set_index("day").loc[30, "available"] == 300 + 3000 - 90


def test_pack_top_up_fires_exactly_at_the_threshold(book):
    # 1000 -> 910 (day 0) -> 820 (day 1): at the threshold, so a pack is bought on day 1
    policy = TopUpPolicy(kind="pack_below", threshold=820, pack_credits=10_000, pack_price_usd=5)
    result = simulate(scenario(starting_balance=1000, topup=policy, mix=[MUSIC]), book)
    daily = result.daily.set_index("day")
    assert daily.loc[0, "topped_up"] == 0
    assert daily.loc[1, "topped_up"] == 10_000
    assert daily.loc[1, "available"] == 10_820
    assert daily.loc[1, "topup_usd"] == 5
    assert result.daily["topped_up"].sum() == 10_000


def test_top_up_one_credit_below_the_threshold_waits_a_day(book):
    policy = TopUpPolicy(kind="pack_below", threshold=819)
    result = simulate(scenario(starting_balance=1000, topup=policy, mix=[MUSIC]), book)
    first = result.events[result.events["event"] == "top-up"]["day"].iloc[0]
    assert first == 2  # 730 <= 819; day 1 ended at 820


def test_refill_tops_up_to_the_target(book):
    policy = TopUpPolicy(kind="refill_to", threshold=820, target=5000, pack_credits=10_000,
                         pack_price_usd=5)  # fmt: skip
    result = simulate(scenario(starting_balance=1000, topup=policy, mix=[MUSIC]), book)
    daily = result.daily.set_index("day")
    assert daily.loc[1, "topped_up"] == 5000 - 820
    assert daily.loc[1, "available"] == 5000
    assert daily.loc[1, "topup_usd"] == pytest.approx(4180 * 5 / 10_000)


def test_usage_mix_depletes_on_a_known_day(book):
    # 1000 credits, 110 a day: 9 days paid (990), 10 left; day 9's generation is refused
    result = simulate(scenario(starting_balance=1000, mix=[KONTEXT]), book)
    assert result.depletion_day == 9
    assert result.depletion_date == START + timedelta(days=9)
    assert result.daily.set_index("day").loc[8, "available"] == 10
    burn = result.burn_by_model.iloc[0]
    assert (burn["generations"], burn["refused"], burn["credits"]) == (9, 20 - 9, 990)
    depleted = result.events[result.events["event"] == "depleted"]
    assert depleted["day"].tolist() == [9]


def test_cheaper_rows_still_fit_after_an_expensive_one_is_refused(book):
    video = MixItem(model="MiniMax-Hailuo-02", options={"resolution": "768P", "duration": 6},
                    per_day=1)  # fmt: skip
    result = simulate(scenario(starting_balance=700, horizon_days=2, mix=[video, MUSIC]), book)
    burn = result.burn_by_model.set_index("model")
    assert burn.loc["MiniMax-Hailuo-02", "generations"] == 1  # day 0: 680, 20 left
    assert burn.loc["Music 1.5", "generations"] == 0
    assert result.depletion_day == 0  # Music did not fit on day 0 (20 < 90)


def test_plan_credits_burn_before_top_ups(book):
    lots = [Lot(credits=1000, kind="topup"), Lot(credits=200, kind="plan", expires_day=5)]
    result = simulate(scenario(starting_lots=lots, horizon_days=6, mix=[MUSIC]), book)
    daily = result.daily.set_index("day")
    # the plan lot (priority 20) burns first: days 0-2 drain its 200 credits, so nothing
    # is left to expire on day 5 (top-up first would have let 200 expire)
    assert daily.loc[5, "expired"] == 0
    assert daily.loc[5, "available"] == 1200 - 6 * 90


def test_fractional_rates_make_the_exact_average():
    mix = [MixItem(model="Music 1.5", per_day=0.5), MixItem(model="Music 1.5", per_day=2.25)]
    counts = deterministic_counts(scenario(mix=mix, horizon_days=8))
    assert counts[:, 0].tolist() == [0, 1, 0, 1, 0, 1, 0, 1]
    assert counts[:, 1].sum() == 18


def test_the_day_each_alert_rule_fires(book):
    rules = AlertRules.loads(
        """
        [[rules]]
        name = "low"
        kind = "available_below"
        severity = "critical"
        below = 500
        resolve_at = 1000
        [[rules]]
        name = "usual"
        kind = "cannot_afford_usual"
        severity = "critical"
        [[rules]]
        name = "days-left"
        kind = "days_left_below"
        severity = "warning"
        below_days = 3
        resolve_at_days = 5
        burn_window_days = 7
        [[rules]]
        name = "plan"
        kind = "percent_of_plan_below"
        severity = "warning"
        below_percent = 10
        resolve_at_percent = 20
        """
    )
    result = simulate(scenario(starting_balance=1000, mix=[KONTEXT]), book, rules)
    first = {
        rule: None if pd.isna(day) else int(day)
        for rule, day in zip(result.alerts["rule"], result.alerts["first_day"], strict=True)
    }
    # end of day d: 1000 - 110 (d + 1): day 4 = 450 < 500; day 6 = 230 < 3 x 110;
    # day 8 = 10 < 110; no plan, so the plan rule never fires
    assert first == {"low": 4, "usual": 8, "days-left": 6, "plan": None}
    assert result.alerts.set_index("rule").loc["low", "times_fired"] == 1


def test_expiring_credits_alert_fires_three_days_before_the_expiry(book):
    rules = AlertRules.loads(
        '[[rules]]\nname = "expiring"\nkind = "expiring_within"\nseverity = "info"\n'
        "within_days = 3\nmin_credits = 500\n"
    )
    plan = PlanTerms(monthly_credits=3000)
    result = simulate(scenario(plan=plan, horizon_days=40, mix=[MUSIC]), book, rules)
    # the grant expires at the start of day 30; the end of day 26 is the first evening
    # within 3 days of it, and 3000 - 27 x 90 = 570 >= 500 credits are still left
    assert result.alerts["first_day"].tolist() == [26]


def test_bad_inputs_raise_typed_errors_naming_the_field(book):
    with pytest.raises(InvalidScenario, match="horizon_days"):
        scenario(horizon_days=0)
    with pytest.raises(InvalidScenario, match="refill_to needs a target above the threshold"):
        scenario(topup={"kind": "refill_to", "threshold": 500, "target": 400})
    with pytest.raises(InvalidScenario, match="There is no plan 'gold'"):
        PlanTerms.from_plans("gold")
    bad = MixItem(model="MiniMax-Hailuo-02", options={"resolution": "1080P", "duration": 10},
                  per_day=1)  # fmt: skip
    with pytest.raises(InvalidUsageMix, match=r"Usage mix row 2 .*valid duration values: 6"):
        simulate(scenario(mix=[MUSIC, bad]), book)
