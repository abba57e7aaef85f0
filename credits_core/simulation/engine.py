"""The simulator's engine: many runs of one scenario at once, one numpy step per day.

Every run has the same lots (columns, in burn order): the starting credits, one column
per plan grant (empty until its day), and the top-up pool. Spending x credits takes them
from the columns left to right (cumulative sums across the row), so the burn order is
the ledger's. Generations of a mix row cost the same, so how many of them fit is one
integer division; rows are paid in mix order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from credits_core.simulation.scenario import TopUpPolicy


@dataclass(frozen=True)
class Schedule:
    days: int
    initial: np.ndarray  # credits of each lot at the start (0 for grants still to come)
    grant_credits: np.ndarray  # credits each lot receives on its grant day
    grant_day: np.ndarray  # the day a lot is granted (-1: it exists at the start)
    expires_day: np.ndarray  # the day at whose start a lot expires (-1: never)
    is_plan: np.ndarray  # plan grants (the user pays the plan price on their day)
    pool: int  # the column of the top-up pool
    prices: np.ndarray  # credits of one generation of each mix row
    topup: TopUpPolicy
    plan_price_usd: float


@dataclass(frozen=True)
class Runs:
    """Per run and day: the available credits at the end of the day, what was spent,
    made and refused per mix row, expired, topped up; and for run 0 the lots."""

    available: np.ndarray  # (runs, days)
    spent: np.ndarray  # (runs, days, rows) credits
    made: np.ndarray  # (runs, days, rows) generations paid
    refused: np.ndarray  # (runs, days, rows) generations that did not fit
    expired: np.ndarray  # (runs, days)
    topped_up: np.ndarray  # (runs, days) credits
    topup_usd: np.ndarray  # (runs, days)
    granted: np.ndarray  # (days,) plan credits granted (the same in every run)
    plan_usd: np.ndarray  # (days,) plan payments
    first_run_lots: np.ndarray  # (days, lots) credits left in each lot, run 0, end of day


def run(schedule: Schedule, counts: np.ndarray) -> Runs:
    """Simulate `counts` (runs x days x mix rows generations) under `schedule`."""
    n_runs, days, rows = counts.shape
    lots = np.tile(schedule.initial, (n_runs, 1))
    out = _empty(n_runs, days, rows, lots.shape[1])
    for day in range(days):
        expiring = schedule.expires_day == day
        out.expired[:, day] = lots[:, expiring].sum(axis=1)
        lots[:, expiring] = 0
        granting = schedule.grant_day == day
        lots[:, granting] = schedule.grant_credits[granting]
        out.granted[day] = schedule.grant_credits[granting & schedule.is_plan].sum()
        out.plan_usd[day] = schedule.plan_price_usd * (granting & schedule.is_plan).sum()
        for row, price in enumerate(schedule.prices):
            wanted = counts[:, day, row]
            fit = wanted if price == 0 else np.minimum(wanted, lots.sum(axis=1) // price)
            _spend(lots, fit * price)
            out.made[:, day, row] = fit
            out.refused[:, day, row] = wanted - fit
            out.spent[:, day, row] = fit * price
        _top_up(schedule, lots, out, day)
        out.available[:, day] = lots.sum(axis=1)
        out.first_run_lots[day] = lots[0]
    return out


def _empty(n_runs: int, days: int, rows: int, n_lots: int) -> Runs:
    return Runs(
        available=np.zeros((n_runs, days), dtype=np.int64),
        spent=np.zeros((n_runs, days, rows), dtype=np.int64),
        made=np.zeros((n_runs, days, rows), dtype=np.int64),
        refused=np.zeros((n_runs, days, rows), dtype=np.int64),
        expired=np.zeros((n_runs, days), dtype=np.int64),
        topped_up=np.zeros((n_runs, days), dtype=np.int64),
        topup_usd=np.zeros((n_runs, days), dtype=float),
        granted=np.zeros(days, dtype=np.int64),
        plan_usd=np.zeros(days, dtype=float),
        first_run_lots=np.zeros((days, n_lots), dtype=np.int64),
    )


def _spend(lots: np.ndarray, amount: np.ndarray) -> None:
    """Take `amount` (per run) from the lots in column order; it always fits."""
    before = np.cumsum(lots, axis=1) - lots
    lots -= np.clip(amount[:, None] - before, 0, lots)


def _top_up(schedule: Schedule, lots: np.ndarray, out: Runs, day: int) -> None:
    policy = schedule.topup
    if policy.kind == "none":
        return
    available = lots.sum(axis=1)
    firing = available <= policy.threshold
    if policy.kind == "pack_below":
        credits = np.where(firing, policy.packs * policy.pack_credits, 0)
    else:
        credits = np.where(firing, policy.target - available, 0)
    lots[:, schedule.pool] += credits
    out.topped_up[:, day] = credits
    out.topup_usd[:, day] = credits * policy.pack_price_usd / policy.pack_credits
