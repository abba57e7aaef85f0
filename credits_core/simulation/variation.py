"""Random variation: many runs of a scenario with usage drawn per day around the mix.

Each run draws every day's generations of each mix row from a Poisson distribution whose
mean is the row's rate, with numpy's generator seeded by `seed`: the same scenario and
seed give the same runs. The runs are summarised per day as a median balance with a
band (10th to 90th percentile by default), and by when (and how often) they run dry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from credits_core.pricing import PriceBook
from credits_core.simulation import engine, figures
from credits_core.simulation.errors import InvalidScenario
from credits_core.simulation.scenario import Scenario, price_mix, schedule

MAX_RUNS = 20_000


@dataclass(frozen=True)
class Variation:
    runs: int
    seed: int
    band: pd.DataFrame  # day, date, low, median, high (available credits)
    per_run: pd.DataFrame  # run, depletion_day, spent, generations, refused, paid, cost
    summary: pd.DataFrame  # measure, value

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"band": self.band, "per_run": self.per_run, "summary": self.summary}


def draw_counts(scenario: Scenario, runs: int, seed: int) -> np.ndarray:
    """Generations per (run, day, mix row), Poisson around each row's rate."""
    rates = np.array([item.per_day for item in scenario.mix], dtype=float)
    rng = np.random.default_rng(seed)
    return rng.poisson(rates, size=(runs, scenario.horizon_days, len(rates)))


def vary(
    scenario: Scenario,
    book: PriceBook,
    *,
    runs: int = 200,
    seed: int = 0,
    band: tuple[float, float] = (10, 90),
) -> Variation:
    """Run the scenario `runs` times with seeded random usage; summarise the spread."""
    if not isinstance(runs, int) or not 1 <= runs <= MAX_RUNS:
        raise InvalidScenario(f"runs must be a whole number from 1 to {MAX_RUNS}, not {runs!r}.")
    if not (0 <= band[0] < band[1] <= 100):
        raise InvalidScenario(f"The band must be two percentiles low < high in 0..100: {band}.")
    priced = price_mix(scenario, book)
    result = engine.run(schedule(scenario, priced), draw_counts(scenario, runs, seed))
    low, median, high = np.percentile(result.available, [band[0], 50, band[1]], axis=0)
    days = np.arange(scenario.horizon_days)
    band_frame = pd.DataFrame(
        {
            "day": days,
            "date": pd.to_datetime([scenario.day_start(int(d)) for d in days]),
            "low": low,
            "median": median,
            "high": high,
        }
    )
    per_run = _per_run(priced, result)
    return Variation(runs, seed, band_frame, per_run, _summary(per_run, band))


def _per_run(priced, result: engine.Runs) -> pd.DataFrame:
    refused = result.refused.sum(axis=2)
    any_refused = refused > 0
    depletion = np.where(any_refused.any(axis=1), any_refused.argmax(axis=1), -1)
    made = result.made.sum(axis=1)
    cost = made @ np.array([p.provider_cost_usd for p in priced], dtype=float)
    return pd.DataFrame(
        {
            "run": np.arange(len(depletion)),
            "depletion_day": pd.array(np.where(depletion < 0, None, depletion), dtype="Int64"),
            "spent": result.spent.sum(axis=(1, 2)),
            "generations": made.sum(axis=1),
            "refused": refused.sum(axis=1),
            "paid_usd": np.round(result.plan_usd.sum() + result.topup_usd.sum(axis=1), 4),
            "provider_cost_usd": np.round(cost, 4),
        }
    )


def _summary(per_run: pd.DataFrame, band: tuple[float, float]) -> pd.DataFrame:
    depleted = per_run["depletion_day"].dropna()
    low, high = (per_run["paid_usd"].quantile(edge / 100) for edge in band)
    rows = [
        ("runs", figures.count(len(per_run))),
        ("runs that run dry", figures.percent(100 * len(depleted) / len(per_run))),
        ("median depletion day (of those)",
         figures.days(None if depleted.empty else float(depleted.median()))),
        ("median credits spent", figures.count(round(per_run["spent"].median()))),
        ("median paid", figures.usd(float(per_run["paid_usd"].median()))),
        (f"paid, {band[0]:g}th-{band[1]:g}th percentile",
         f"{figures.usd(low)} - {figures.usd(high)}"),
        ("median provider cost", figures.usd(float(per_run["provider_cost_usd"].median()))),
    ]  # fmt: skip
    return pd.DataFrame({"measure": [r[0] for r in rows], "value": [r[1] for r in rows]})
