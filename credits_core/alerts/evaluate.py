"""Evaluating the alert rules over every user (or a few), as one side write of the
ledger file (`Ledger.side_write`: one write transaction beside the writer): each (user,
rule) pair is judged in SQL (judge.py), then the alerts move accordingly (state.py):
alerts of users who recovered are resolved, those still open carry the latest available
credits, and pairs that match without an open alert open one with its outbox message.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

import duckdb

from credits_core.alerts import judge, state
from credits_core.alerts.reports import open_alert_counts
from credits_core.alerts.rules import AlertRules
from credits_core.ledger import Ledger
from credits_core.plans import Plans
from credits_core.pricing import PriceBook


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation did."""

    users: int
    opened: int
    resolved: int
    open: int
    seconds: float


class Evaluator:
    """Evaluates alert rules against one ledger, with the plans and price book given."""

    def __init__(
        self,
        ledger: Ledger,
        rules: AlertRules | None = None,
        *,
        plans: Plans | None = None,
        book: PriceBook | None = None,
    ) -> None:
        self.ledger = ledger
        self.rules = rules if rules is not None else AlertRules.load()
        self.plans = plans or Plans.load()
        self.book = book or PriceBook.load()

    def evaluate(self, users: Iterable[str] | None = None) -> Evaluation:
        """Evaluate every funded account (users=None) or just these users, in one
        side write; return what changed."""
        started = time.perf_counter()
        scope = None if users is None else sorted(set(users))
        if scope == []:
            return Evaluation(0, 0, 0, open_alert_counts(self.ledger).total, 0.0)
        now = self.ledger.now()
        result = self.ledger.side_write("evaluate_alerts", lambda cur: self._run(cur, now, scope))
        return replace(result, seconds=round(time.perf_counter() - started, 3))

    def _run(
        self, cur: duckdb.DuckDBPyConnection, now: datetime, scope: list[str] | None
    ) -> Evaluation:
        rules = self.rules.enabled
        judge.judge(cur, now, rules, self.plans, self.book, scope)
        resolved = state.resolve_recovered(cur, now, scope, [rule.name for rule in rules])
        state.refresh_available(cur)
        opened = state.open_matching(cur, now, self.plans.topup)
        (still_open,) = cur.execute("SELECT count(*) FROM alerts WHERE status = 'open'").fetchone()
        (users_seen,) = cur.execute("SELECT count(DISTINCT user_id) FROM scope").fetchone()
        judge.drop_tables(cur)
        return Evaluation(int(users_seen), opened, resolved, int(still_open), 0.0)
