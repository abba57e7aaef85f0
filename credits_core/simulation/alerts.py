"""The day each low-credit alert rule would fire on a simulated balance series.

The rules are the alerting module's own (`AlertRule.matches` / `.recovered` on a
`Snapshot`), applied at the end of each simulated day: an alert opens when its rule
matches and stays open until the user has recovered, as on the live platform. The
burn rate of `days_left_below` is the credits spent over the rule's window, counting
only simulated days (the first days have a shorter window).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from credits_core.alerts.rules import AlertRules, DaysLeftBelow, Snapshot

if TYPE_CHECKING:
    from credits_core.simulation.engine import Runs, Schedule
    from credits_core.simulation.scenario import PricedItem, Scenario

COLUMNS = ["rule", "kind", "severity", "first_day", "first_date", "times_fired", "description"]


def first_firings(
    scenario: Scenario,
    schedule: Schedule,
    priced: tuple[PricedItem, ...],
    daily: pd.DataFrame,
    runs: Runs,
    rules: AlertRules | None,
) -> pd.DataFrame:
    """One row per enabled rule: the first day it fires (None: never) and how often."""
    if rules is None:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for rule in rules.enabled:
        fired = _firings(scenario, schedule, priced, daily, runs, rule)
        first = fired[0] if fired else None
        rows.append(
            {
                "rule": rule.name,
                "kind": rule.kind,
                "severity": rule.severity,
                "first_day": first,
                "first_date": None if first is None else scenario.day_start(first),
                "times_fired": len(fired),
                "description": rule.description,
            }
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["first_day"] = frame["first_day"].astype("Int64")
    return frame


def _firings(scenario, schedule, priced, daily, runs, rule) -> list[int]:
    """The days on which the rule opens an alert (it must recover before it reopens)."""
    spent = daily["spent"].to_numpy()
    window = rule.burn_window_days if isinstance(rule, DaysLeftBelow) else 7
    opened, is_open = [], False
    for day in range(scenario.horizon_days):
        snapshot = _snapshot(scenario, schedule, priced, runs, spent, day, window)
        if not is_open and rule.matches(snapshot):
            opened.append(day)
            is_open = True
        elif is_open and rule.recovered(snapshot):
            is_open = False
    return opened


def _snapshot(scenario, schedule, priced, runs, spent: np.ndarray, day: int, window: int):
    first = max(0, day + 1 - window)
    burn = float(spent[first : day + 1].sum()) / (day + 1 - first)
    lots = runs.first_run_lots[day]
    expiring = tuple(
        (scenario.day_start(int(expires)), int(left))
        for expires, left in zip(schedule.expires_day, lots, strict=True)
        if expires > day and left > 0
    )
    return Snapshot(
        now=scenario.day_start(day) + timedelta(days=1),
        available=int(runs.available[0, day]),
        plan_monthly_credits=scenario.plan.monthly_credits or None,
        usual_credits=_usual(priced),
        burn_per_day=burn,
        expiring=expiring,
    )


def _usual(priced: tuple[PricedItem, ...]) -> int | None:
    """The price of the user's most used generation (the mix row with the highest rate)."""
    used = [p for p in priced if p.item.per_day > 0]
    if not used:
        return None
    return max(used, key=lambda p: p.item.per_day).credits
