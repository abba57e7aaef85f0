"""Price-change replay: the real usage of the last N days priced again under a draft book.

Read only: one read snapshot of the ledger, nothing written. The generations (capture
entries) of the window are grouped in SQL by what prices them (model, the user's plan,
options, the charge, the day): a few thousand keys for millions of rows. Each key's
options are recorded or recovered from its charge (skus.py), and both books price every
key at one moment `at` (by default when the draft's newest version takes effect, or now
if later) through `quote_frame`, the engine's vectorized path. Credits and revenue
(credits x the book's credit_usd), provider cost and margin follow per model, plan and
SKU from the key counts.

Who runs out earlier: each user's available balance after every journal entry of the
window, minus the running sum of (repriced - charged) credits, is the balance the user
would have had. Extra spend is taken first from credits that expired unspent (and
savings expire with them): at the k-th expiry the rescued credits are
R_k = min(R_(k-1) + expired_k, D_k), i.e. R = E + min(0, running min of (D - E) at
expiries), with D the running extra spend and E the running expired credits: window
functions in SQL. A user runs out when that balance goes below zero. Both books are
treated alike, so an unchanged book shows no change at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd

from credits_core.ledger import Ledger
from credits_core.pricing import PriceBook
from credits_core.pricing.schema import MAX_PRICE_CREDITS
from credits_core.simulation import figures, skus
from credits_core.simulation.errors import InvalidEditedPrices, InvalidReplayWindow

MAX_DAYS = 366
BIG = 1 << 42  # larger than any running sum of credits; keeps users apart in cummin

# The window's journal entries with the user's plan and the generation's options (from
# the hold for reserved generations, else from the entry's metadata), read through the
# ledger's read surface (schema migration 8).
ENTRIES = """
WITH hold_options AS (
    SELECT a.account_no, h.transaction_id, h.options::VARCHAR AS options
    FROM ledger_holds AS h JOIN ledger_accounts AS a USING (user_id)
),
entries AS (
    SELECT j.account_no, j.seq, j.ts, j.kind, j.model, -j.credits AS charged,
           j.balance_after - j.held_after AS available, a.plan,
           coalesce(o.options, (j.metadata -> 'options')::VARCHAR) AS options,
           epoch_us(j.ts) // 86400000000 AS day  -- days since 1970 (UTC); date_trunc is slow
    FROM ledger_journal AS j
    JOIN ledger_accounts AS a USING (account_no)
    LEFT JOIN hold_options AS o
      ON o.account_no = j.account_no AND o.transaction_id = j.transaction_id
    WHERE j.ts >= ? AND j.ts < ?
)
"""

# What prices a generation, and how many generations share it: a few thousand keys.
USAGE = (
    ENTRIES
    + """
SELECT hash(model, plan, options, charged, day) AS key,
       model, plan, options, charged, day, count(*) AS generations
FROM entries
WHERE kind = 'capture'
GROUP BY ALL
"""
)

# Every entry of the window with what it changes: the extra credits each book charges
# for the generation it books (`deltas`: key -> delta_before, delta_after; 0 elsewhere).
PATHS = (
    ENTRIES
    + """
SELECT e.account_no, e.seq, e.available,
       CASE WHEN e.kind = 'grant_expired' THEN e.charged ELSE 0 END AS expired,
       coalesce(d.delta_before, 0) AS delta_before,
       coalesce(d.delta_after, 0) AS delta_after
FROM entries AS e
LEFT JOIN deltas AS d
  ON e.kind = 'capture' AND d.key = hash(e.model, e.plan, e.options, e.charged, e.day)
"""
)

# Each account's first and last entry number in the window, and how many entries.
SPANS = """
SELECT account_no, min(seq) AS first_seq, max(seq) AS last_seq, count(*) AS entries
FROM ledger_journal WHERE ts >= ? AND ts < ?
GROUP BY account_no
"""

# When the entries found below zero happened.
MOMENTS = """
SELECT f.account_no, f.seq, j.ts
FROM ledger_journal AS j JOIN found AS f ON j.account_no = f.account_no AND j.seq = f.seq
"""

COUNT_BASELINE = "SELECT count(*) FROM ledger_journal WHERE kind = 'capture' AND ts >= ? AND ts < ?"

USERS = "SELECT account_no, user_id, plan FROM ledger_accounts"


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


def default_moment(current: PriceBook, draft: PriceBook, now: datetime) -> datetime:
    """When the draft would be in force: its newest version's start, or now if later."""
    newest = max(current.versions[-1].effective_from, draft.versions[-1].effective_from)
    return max(now, newest)


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
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidReplayWindow(
            f"The replay window must be a whole number of days from 1 to {MAX_DAYS}, not {days!r}."
        )
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
        return baseline, priced, _run_out(cur, priced, window)

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


def reprice(
    keys: pd.DataFrame,
    current: PriceBook,
    draft: PriceBook,
    at: datetime,
    edited: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each usage key with its options, its credits and provider cost per generation
    under both books at `at`; keys either book cannot price keep their charge."""
    keys = keys.copy()
    keys["at"] = pd.to_datetime(keys["day"], unit="D", utc=True) + pd.Timedelta(hours=12)
    options = skus.identify(current, keys)
    keys["sku"] = [
        skus.catalog_label(current, model, found, at)
        for model, found in zip(keys["model"], options, strict=True)
    ]
    frame = _request_frame(keys, options)
    before = current.quote_frame(frame, at=at)
    after = draft.quote_frame(frame, at=at)
    ok = (options.notna() & before["error"].isna() & after["error"].isna()).to_numpy()
    charged = keys["charged"].to_numpy()
    keys["priced"] = ok
    keys["credits_before"] = np.where(ok, before["credits"].fillna(0).to_numpy(int), charged)
    keys["credits_after"] = np.where(ok, after["credits"].fillna(0).to_numpy(int), charged)
    keys["cost_before"] = np.where(ok, before["provider_cost_usd"].fillna(0).to_numpy(float), 0)
    keys["cost_after"] = np.where(ok, after["provider_cost_usd"].fillna(0).to_numpy(float), 0)
    keys["credit_usd_before"] = float(current.version_at(at).credit_usd)
    keys["credit_usd_after"] = float(draft.version_at(at).credit_usd)
    if edited is not None:
        keys["credits_after"] = _scaled(keys, edited, current.catalog(at))
    keys["sku"] = keys["sku"].fillna("(options unknown)")
    return keys.drop(columns="at")


def _scaled(keys: pd.DataFrame, edited: pd.DataFrame, catalog: pd.DataFrame) -> np.ndarray:
    """credits_after with edited SKUs scaled by edited / catalog credits (rounded up).
    Edited prices obey the price book's bounds (so no sum of them overflows int64)."""
    edited = _bounded_prices(edited)
    table = catalog[["model", "options", "credits"]].merge(
        edited[["model", "options", "credits"]], on=["model", "options"], suffixes=("", "_new")
    )
    table = table[table["credits_new"] != table["credits"]]
    ratio = keys.merge(table.rename(columns={"options": "sku"}), on=["model", "sku"], how="left")
    factor = (ratio["credits_new"] / ratio["credits"]).fillna(1.0).to_numpy()
    after = keys["credits_after"].to_numpy()
    return np.where(factor == 1.0, after, np.ceil(after * factor - 1e-9)).astype(np.int64)


def _bounded_prices(edited: pd.DataFrame) -> pd.DataFrame:
    credits = pd.to_numeric(edited["credits"], errors="coerce")
    whole = credits.notna() & (credits == credits.round())
    wrong = ~whole | (credits < 0) | (credits > MAX_PRICE_CREDITS)
    if wrong.any():
        rows = edited[wrong.to_numpy()].head(5)
        named = "; ".join(
            f"{model} {options or ''}: {value!r}".replace(" :", ":")
            for model, options, value in zip(
                rows["model"], rows["options"], rows["credits"], strict=True
            )
        )
        raise InvalidEditedPrices(
            f"Edited prices must be whole numbers of credits from 0 to {MAX_PRICE_CREDITS:,} "
            f"per generation; {int(wrong.sum())} are not ({named})."
        )
    return edited.assign(credits=credits.astype(np.int64))


def _request_frame(keys: pd.DataFrame, options: pd.Series) -> pd.DataFrame:
    names = sorted({name for found in options.dropna() for name in found})
    frame = pd.DataFrame({"model": keys["model"], "plan": keys["plan"]})
    for name in names:
        frame[name] = options.map(lambda found, n=name: None if found is None else found.get(n))
    return frame


def _run_out(cur: duckdb.DuckDBPyConnection, priced: pd.DataFrame, window: list) -> pd.DataFrame:
    """Per user: when the balance would go below zero under each book, and the extra
    credits the draft costs them over the window (see the module docstring)."""
    deltas = pd.DataFrame(
        {
            "key": priced["key"],
            "delta_before": (priced["credits_before"] - priced["charged"]).astype("int32"),
            "delta_after": (priced["credits_after"] - priced["charged"]).astype("int32"),
        }
    )
    deltas = deltas[(deltas["delta_before"] != 0) | (deltas["delta_after"] != 0)]
    if deltas.empty:
        return pd.DataFrame(columns=["user_id", "plan", "out_before", "out_after",
                                     "extra_credits"])  # fmt: skip
    cur.register("deltas", deltas)
    try:
        rows = cur.execute(PATHS, window).fetchnumpy()
    finally:
        cur.unregister("deltas")
    paths = _Paths(rows, cur.execute(SPANS, window).df())
    users = pd.DataFrame({"account_no": paths.accounts})
    extra = np.zeros(len(users), dtype=np.int64)
    for book in ("before", "after"):
        if not rows[f"delta_{book}"].any():  # the book charges what was charged: no change
            users[f"out_{book}"] = _never(len(users))
            continue
        spent = paths.running(paths.column(rows[f"delta_{book}"]))
        balance = paths.column(rows["available"]) - spent + paths.rescued(spent, rows["expired"])
        users[f"out_{book}"] = _moments(cur, paths, balance)
        extra += spent[paths.ends] * (1 if book == "after" else -1)
    users["extra_credits"] = extra
    touched = users[
        users["out_before"].notna() | users["out_after"].notna() | users["extra_credits"].ne(0)
    ]  # fmt: skip
    names = cur.execute(USERS).df()
    return names.merge(touched, on="account_no").drop(columns="account_no")


def _never(count: int) -> pd.Series:
    return pd.Series(pd.NaT, index=range(count), dtype="datetime64[us, UTC]")


class _Paths:
    """The window's entries in (account, seq) order: each account's entries are numbered
    first_seq..last_seq, so an entry's place is its account's offset plus seq - first_seq
    (no sort needed); accounts with gaps fall back to a sort."""

    def __init__(self, rows: dict, spans: pd.DataFrame) -> None:
        spans = spans.sort_values("account_no", ignore_index=True)
        account = rows["account_no"]
        if (spans["last_seq"] - spans["first_seq"] + 1).eq(spans["entries"]).all():
            size = int(spans["account_no"].max()) + 1
            offset = np.zeros(size, dtype=np.int64)
            first = np.zeros(size, dtype=np.int64)
            counts = spans["entries"].to_numpy()
            offset[spans["account_no"]] = np.cumsum(counts) - counts
            first[spans["account_no"]] = spans["first_seq"]
            self.place = offset[account] + rows["seq"] - first[account]
        else:
            order = np.argsort((account.astype(np.int64) << 32) | rows["seq"])
            self.place = np.empty_like(order)
            self.place[order] = np.arange(len(order))
        self.accounts = spans["account_no"].to_numpy()
        self.counts = spans["entries"].to_numpy()
        self.starts = np.cumsum(self.counts) - self.counts
        self.ends = self.starts + self.counts - 1
        self.seq = self.column(rows["seq"])

    def column(self, values: np.ndarray) -> np.ndarray:
        ordered = np.empty(len(values), dtype=np.int64)
        ordered[self.place] = values
        return ordered

    def running(self, values: np.ndarray) -> np.ndarray:
        """Running sums within each account."""
        total = np.cumsum(values)
        return total - np.repeat((total - values)[self.starts], self.counts)

    def rescued(self, spent: np.ndarray, expired_rows: np.ndarray) -> np.ndarray:
        """Extra spend taken from credits that expired unspent (negative: savings that
        expired): E + min(0, running min of (D - E) at expiries), per account."""
        expired = self.column(expired_rows)
        expired_so_far = self.running(expired)
        at_expiry = np.where(expired > 0, spent - expired_so_far, BIG)
        # later accounts far below: the running min restarts at each account
        apart = np.repeat(np.arange(len(self.counts)) * (4 * BIG), self.counts)
        running_min = np.minimum.accumulate(at_expiry - apart) + apart
        return expired_so_far + np.minimum(0, running_min)


def _moments(cur: duckdb.DuckDBPyConnection, paths: _Paths, balance: np.ndarray) -> pd.Series:
    """When each account's balance first goes below zero (NaT: never)."""
    below = np.flatnonzero(balance < 0)
    if len(below) == 0:
        return _never(len(paths.accounts))
    owners, index = np.unique(np.searchsorted(paths.starts, below, side="right") - 1,
                              return_index=True)  # fmt: skip
    found = pd.DataFrame({"account_no": paths.accounts[owners], "seq": paths.seq[below[index]]})
    cur.register("found", found)
    try:
        moments = cur.execute(MOMENTS).df()
    finally:
        cur.unregister("found")
    when = pd.Series(paths.accounts).map(moments.set_index("account_no")["ts"])
    return pd.to_datetime(when, utc=True).astype("datetime64[us, UTC]")


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
