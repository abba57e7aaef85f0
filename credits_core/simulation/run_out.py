"""Who runs out earlier under a draft price book, and what the draft costs each user.

Each user's available balance after every journal entry of the window, minus the running
sum of (repriced - charged) credits, is the balance the user would have had. Extra spend
is taken first from credits that expired unspent (and savings expire with them): at the
k-th expiry the rescued credits are R_k = min(R_(k-1) + expired_k, D_k), i.e.
R = E + min(0, running min of (D - E) at expiries), with D the running extra spend and E
the running expired credits, per account with numpy over the entries in (account, seq)
order. A user runs out when that balance goes below zero. Both books are treated alike,
so an unchanged book shows no change at all.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from credits_core.simulation.reprice import ENTRIES

BIG = 1 << 42  # larger than any running sum of credits; keeps users apart in cummin

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


USERS = "SELECT account_no, user_id, plan FROM ledger_accounts"


def run_out_per_user(
    cur: duckdb.DuckDBPyConnection, priced: pd.DataFrame, window: list
) -> pd.DataFrame:
    """Per user: when the balance would go below zero under each book, and the extra
    credits the draft costs them over the window (see the module docstring)."""
    deltas = _deltas(priced)
    if deltas.empty:
        return pd.DataFrame(columns=["user_id", "plan", "out_before", "out_after",
                                     "extra_credits"])  # fmt: skip
    cur.register("deltas", deltas)
    try:
        rows = cur.execute(PATHS, window).fetchnumpy()
    finally:
        cur.unregister("deltas")
    users = _replayed(cur, _Paths(rows, cur.execute(SPANS, window).df()), rows)
    touched = users[
        users["out_before"].notna() | users["out_after"].notna() | users["extra_credits"].ne(0)
    ]  # fmt: skip
    names = cur.execute(USERS).df()
    return names.merge(touched, on="account_no").drop(columns="account_no")


def _deltas(priced: pd.DataFrame) -> pd.DataFrame:
    """The extra credits per generation of each usage key under each book (the keys
    neither book changes left out)."""
    deltas = pd.DataFrame(
        {
            "key": priced["key"],
            "delta_before": (priced["credits_before"] - priced["charged"]).astype("int32"),
            "delta_after": (priced["credits_after"] - priced["charged"]).astype("int32"),
        }
    )
    return deltas[(deltas["delta_before"] != 0) | (deltas["delta_after"] != 0)]


def _replayed(cur: duckdb.DuckDBPyConnection, paths: _Paths, rows: dict) -> pd.DataFrame:
    """Per account: when it first goes below zero under each book (out_before,
    out_after; NaT: never) and the extra credits the draft costs it (extra_credits)."""
    users = pd.DataFrame({"account_no": paths.accounts})
    extra = np.zeros(len(users), dtype=np.int64)
    for side in ("before", "after"):
        if not rows[f"delta_{side}"].any():  # that side's book charges what was charged: no change
            users[f"out_{side}"] = _never(len(users))
            continue
        spent = paths.running(paths.column(rows[f"delta_{side}"]))
        balance = paths.column(rows["available"]) - spent + paths.rescued(spent, rows["expired"])
        users[f"out_{side}"] = _moments(cur, paths, balance)
        extra += spent[paths.ends] * (1 if side == "after" else -1)
    users["extra_credits"] = extra
    return users


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
