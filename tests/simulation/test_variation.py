"""Seeded Monte Carlo runs: deterministic for a seed, spread around the mix."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from credits_core.simulation import InvalidScenario, MixItem, PlanTerms, Scenario, simulate
from credits_core.simulation.variation import vary

START = datetime(2026, 12, 1, tzinfo=UTC)


def scenario(per_day: float = 1, **fields) -> Scenario:
    return Scenario.build(
        **{"plan": PlanTerms(monthly_credits=5000), "start": START, "horizon_days": 60,
           "mix": [MixItem(model="Music 1.5", per_day=per_day)], **fields}
    )  # fmt: skip


def test_the_same_seed_gives_the_same_runs(book):
    first, again = vary(scenario(), book, runs=50, seed=7), vary(scenario(), book, runs=50, seed=7)
    pd.testing.assert_frame_equal(first.band, again.band)
    pd.testing.assert_frame_equal(first.per_run, again.per_run)
    other = vary(scenario(), book, runs=50, seed=8)
    assert not other.per_run["spent"].equals(first.per_run["spent"])


def test_band_holds_the_median_and_spreads_around_the_mix(book):
    result = vary(scenario(), book, runs=2000, seed=1)
    band = result.band
    assert (band["low"] <= band["median"]).all() and (band["median"] <= band["high"]).all()
    assert (band["high"] - band["low"]).iloc[20] > 0
    # one a day for 60 days, 5000 credits a month: all paid; the mean is near 60
    assert result.per_run["refused"].sum() == 0
    assert abs(result.per_run["generations"].mean() - 60) < 1


def test_without_usage_every_run_is_the_deterministic_run(book):
    result = vary(scenario(per_day=0), book, runs=20, seed=3)
    deterministic = simulate(scenario(per_day=0), book).daily["available"].to_numpy()
    assert np.array_equal(result.band["median"].to_numpy(), deterministic)
    assert np.array_equal(result.band["low"].to_numpy(), result.band["high"].to_numpy())


def test_share_of_runs_running_dry(book):
    # 5000 a month at 90 credits: 55 generations fit a month; at 3 a day every run runs
    # dry around day 18, before the next grant on day 30
    result = vary(scenario(per_day=3), book, runs=200, seed=2)
    summary = result.summary.set_index("measure")["value"]
    assert summary["runs that run dry"] == "100.0%"
    assert result.per_run["depletion_day"].between(10, 29).all()
    assert result.per_run["depletion_day"].nunique() > 3


def test_runs_out_of_range_are_refused(book):
    with pytest.raises(InvalidScenario, match="runs must be a whole number from 1 to"):
        vary(scenario(), book, runs=0)
