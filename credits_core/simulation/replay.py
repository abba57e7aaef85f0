"""Price-change replay: the real usage of the last N days priced again under a draft book.

Read only: one read snapshot of the ledger, nothing written. The window's usage is
repriced under both books (reprice.py) and each user's balance is replayed to see who
runs out earlier (run_out.py); this module runs both and reports: credits and revenue
(credits x the book's credit_usd), provider cost and margin per model, plan and SKU from
the key counts, the users who would run out earlier (most affected first), and a summary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import pandas as pd

from credits_core.ledger import Ledger
from credits_core.pricing import PriceBook
from credits_core.simulation import figures
from credits_core.simulation.errors import InvalidReplayWindow
from credits_core.simulation.reprice import USAGE, default_moment, reprice
from credits_core.simulation.run_out import run_out_per_user

MAX_DAYS = 366

COUNT_BASELINE = "SELECT count(*) FROM ledger_journal WHERE kind = 'capture' AND ts >= ? AND ts < ?"


@dataclass(frozen=True)
class Replay:
    since: datetime
    until: datetime
    at: datetime
    generations: int
    seconds: float  # the whole replay
    baseline_seconds: float  # a plain count of the same rows, in the same snapshot
    summary: pd.DataFrame  # measure, value
    by_model: pd.DataFrame
    by_plan: pd.DataFrame
    by_sku: pd.DataFrame  # margin per SKU, before and after
    users: pd.DataFrame  # users who would run out earlier, most affected first
    users_paying_more: int
    users_running_out_earlier: int

    @property
    def credits_before(self) -> int:
        return int(self.by_plan["credits_before"].sum())

    @property
    def credits_after(self) -> int:
        return int(self.by_plan["credits_after"].sum())

    @property
    def revenue_before(self) -> float:
        return float(self.by_plan["revenue_before"].sum())

    @property
    def revenue_after(self) -> float:
        return float(self.by_plan["revenue_after"].sum())

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "summary": self.summary,
            "by_model": self.by_model,
            "by_plan": self.by_plan,
            "by_sku": self.by_sku,
            "users": self.users,
        }


def replay(
    ledger: Ledger,
    draft: PriceBook,
    *,
    days: int = 30,
    current: PriceBook | None = None,
    until: datetime | None = None,
    at: datetime | None = None,
    most_affected: int = 50,
    edited: pd.DataFrame | None = None,
) -> Replay:
    """Price the last `days` days of usage again under `draft`; write nothing.

    `edited`: SKU prices edited in a table (catalog columns model, options, credits):
    each plan's price of an edited SKU scales by edited / catalog credits, rounded up.
    """
    _check_days(days)
    started = time.perf_counter()
    current = current or PriceBook.load()
    until = (until or ledger.now()).astimezone(UTC)
    since = until - timedelta(days=days)
    at = at or default_moment(current, draft, ledger.now())
    window = [since, until]

    def read(cur: duckdb.DuckDBPyConnection):
        counted = time.perf_counter()
        cur.execute(COUNT_BASELINE, window).fetchone()
        baseline = time.perf_counter() - counted
        keys = cur.execute(USAGE, window).df()
        priced = reprice(keys, current, draft, at, edited)
        return baseline, priced, run_out_per_user(cur, priced, window)

    baseline, priced, run_out = ledger.snapshot(read)
    users = _affected(run_out, until, most_affected)
    seconds = time.perf_counter() - started
    return Replay(
        since=since,
        until=until,
        at=at,
        generations=int(priced["generations"].sum()),
        seconds=seconds,
        baseline_seconds=baseline,
        summary=_summary(priced, run_out, users, seconds, baseline),
        by_model=_totals(priced, ["model"]),
        by_plan=_totals(priced, ["plan"]),
        by_sku=_totals(priced, ["model", "sku"]),
        users=users.head(most_affected),
        users_paying_more=int((run_out["extra_credits"] > 0).sum()),
        users_running_out_earlier=len(users),
    )


def _check_days(days: object) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidReplayWindow(
            f"The replay window must be a whole number of days from 1 to {MAX_DAYS}, not {days!r}."
        )


def _affected(run_out: pd.DataFrame, until: datetime, limit: int) -> pd.DataFrame:
    """Users who would run out earlier (or at all) under the draft, most affected first,
    each with a link to their history."""
    before = pd.to_datetime(run_out["out_before"], utc=True)
    after = pd.to_datetime(run_out["out_after"], utc=True)
    earlier = after.notna() & (before.isna() | (after < before))
    users = run_out[earlier].copy()
    reference = before[earlier].fillna(pd.Timestamp(until))
    users["days_earlier"] = ((reference - after[earlier]).dt.total_seconds() / 86_400).round(1)
    users["ran_out_before"] = before[earlier].notna()
    users["history"] = "/transaction_history?user=" + users["user_id"]
    users = users.sort_values(["days_earlier", "extra_credits", "user_id"],
                              ascending=[False, False, True], ignore_index=True)  # fmt: skip
    return users[["user_id", "plan", "days_earlier", "out_before", "out_after",
                  "ran_out_before", "extra_credits", "history"]]  # fmt: skip


def _totals(priced: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Generations, credits, revenue, provider cost and margin before and after."""
    n = priced["generations"]
    parts = (
        priced[by]
        .fillna("(none)")
        .assign(
            generations=n,
            credits_charged=n * priced["charged"],
            credits_before=n * priced["credits_before"],
            credits_after=n * priced["credits_after"],
            revenue_before=n * priced["credits_before"] * priced["credit_usd_before"],
            revenue_after=n * priced["credits_after"] * priced["credit_usd_after"],
            cost_before=n * priced["cost_before"],
            cost_after=n * priced["cost_after"],
        )
    )
    totals = parts.groupby(by, as_index=False, sort=True).sum()
    totals["credits_change"] = totals["credits_after"] - totals["credits_before"]
    totals["margin_before"] = totals["revenue_before"] - totals["cost_before"]
    totals["margin_after"] = totals["revenue_after"] - totals["cost_after"]
    totals["margin_pct_before"] = _percent(totals["margin_before"], totals["revenue_before"])
    totals["margin_pct_after"] = _percent(totals["margin_after"], totals["revenue_after"])
    money = [c for c in totals.columns if c.startswith(("revenue", "cost", "margin_"))]
    totals[money] = totals[money].round(4)
    return totals


def _percent(part: pd.Series, whole: pd.Series) -> pd.Series:
    return (100 * part / whole.where(whole != 0)).round(1)


def _summary(priced, run_out, users, seconds: float, baseline: float) -> pd.DataFrame:
    n = priced["generations"]
    before = int((n * priced["credits_before"]).sum())
    after = int((n * priced["credits_after"]).sum())
    revenue_before = float((n * priced["credits_before"] * priced["credit_usd_before"]).sum())
    revenue_after = float((n * priced["credits_after"] * priced["credit_usd_after"]).sum())
    earlier = float(users["days_earlier"].median()) if len(users) else None
    rows = [
        ("generations replayed", figures.count(n.sum())),
        (
            "generations whose options were not identified",
            figures.count(n[~priced["priced"]].sum()),
        ),
        ("credits burned before", figures.count(before)),
        ("credits burned after", figures.count(after)),
        ("revenue before", figures.usd(revenue_before)),
        ("revenue after", figures.usd(revenue_after)),
        ("users paying more", figures.count((run_out["extra_credits"] > 0).sum())),
        ("users paying less", figures.count((run_out["extra_credits"] < 0).sum())),
        ("users who would run out earlier", figures.count(len(users))),
        ("median days earlier", figures.days(earlier)),
        ("time taken", figures.seconds(seconds)),
        ("time for a plain count of the same rows", figures.seconds(baseline, 3)),
    ]  # fmt: skip
    return pd.DataFrame({"measure": [r[0] for r in rows], "value": [r[1] for r in rows]})
