"""A real user's usage mix and credits, read from the known ledger."""

from __future__ import annotations

import pytest

from credits_core.ledger import UnknownAccount
from credits_core.simulation import Lot, MixItem, Scenario, simulate
from credits_core.simulation.sources import current_state_of, usage_mix_of
from tests.simulation.conftest import END, HAILUO


def test_usage_mix_of_the_last_days(known, book):
    mix = usage_mix_of(known, "u_1", days=10, book=book)
    # two Hailuo (their options recovered from 680 credits) and one Music in 10 days;
    # the failed Hailuo was released and does not count
    assert mix == (
        MixItem(model="MiniMax-Hailuo-02", options=HAILUO, per_day=0.2),
        MixItem(model="Music 1.5", options={}, per_day=0.1),
    )


def test_usage_mix_keeps_the_holds_options(known, book):
    (veo,) = usage_mix_of(known, "u_4", days=10, book=book)
    # the quote recorded every option (defaults too); 3320 alone would have said 4 s + audio
    assert veo.model == "Veo 3"
    assert (veo.options["duration"], veo.options["audio"]) == (8, False)


def test_current_state_as_scenario_fields(known, book):
    state = current_state_of(known, "u_1", END)
    # the plan grant of T0 expires 30 days after T0, i.e. 25 days after END
    assert state["starting_lots"] == (Lot(credits=550, kind="plan", expires_day=25),)
    assert state["first_grant_day"] == 25
    assert state["plan"].name == "standard"
    u_3 = current_state_of(known, "u_3", END)
    assert u_3["starting_lots"] == (Lot(credits=145, kind="topup"),)  # the promo expired
    scenario = Scenario.build(**state, start=END, horizon_days=30,
                              mix=usage_mix_of(known, "u_1", days=10, book=book))  # fmt: skip
    result = simulate(scenario, book)
    assert result.daily["available"].iloc[0] == 550  # 0.2 and 0.1 a day: nothing on day 0
    assert result.daily.set_index("day").loc[25, "plan_granted"] == 20_000


def test_unknown_user_is_refused(known):
    with pytest.raises(UnknownAccount):
        usage_mix_of(known, "u_404")
