"""Reads: a user's balance now, account details, and the journal as history.

`balance` is what the user can spend at this instant, as the `account_balances` macro
(schema migration 6) defines it: grants that have lapsed but are not yet booked out by
`expire_grants` are already left out of it. `history` reads one
user's entries newest first through the journal's index on the account, or a long
history's newest from the account's history mark (marks.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import NamedTuple

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from credits_core.ledger import grants
from credits_core.ledger.errors import UnknownAccount
from credits_core.ledger.marks import MARKS_SQL, kept
from credits_core.ledger.marks import floor as floor_of
from credits_core.ledger.values import Account, Balance

HISTORY_COLUMNS = (
    "ts",
    "kind",
    "credits",
    "held",
    "balance_after",
    "held_after",
    "available_after",
    "transaction_id",
    "grant_id",
    "reason",
    "actor",
    "model",
    "metadata",
    "seq",
)


def account_no(cur: duckdb.DuckDBPyConnection, user_id: str) -> int:
    return account_size(cur, user_id)[0]


class AccountSize(NamedTuple):
    """An account's number, its journal entries so far, and its recent history marks."""

    number: int
    entries: int
    marks: list[dict]


def account_size(cur: duckdb.DuckDBPyConnection, user_id: str) -> AccountSize:
    row = cur.execute(
        f"SELECT account_no, entries, {MARKS_SQL} FROM accounts WHERE user_id = ?", [user_id]
    ).fetchone()
    if row is None:
        raise UnknownAccount(user_id)
    return AccountSize(row[0], row[1], kept(row[2:]))


def long_histories(cur: duckdb.DuckDBPyConnection) -> dict[str, AccountSize]:
    """The accounts whose history is read from their marks, by user id."""
    rows = cur.execute(
        f"""
        SELECT user_id, account_no, entries, {MARKS_SQL} FROM accounts
        WHERE entries > ?
        """,
        [LONG_HISTORY],
    ).fetchall()
    return {row[0]: AccountSize(row[1], row[2], kept(row[3:])) for row in rows}


def account(cur: duckdb.DuckDBPyConnection, user_id: str) -> Account:
    row = cur.execute(
        "SELECT user_id, email, plan, created_at FROM accounts WHERE user_id = ?", [user_id]
    ).fetchone()
    if row is None:
        raise UnknownAccount(user_id)
    return Account(*row)


def balance(cur: duckdb.DuckDBPyConnection, user_id: str, now: datetime) -> Balance:
    """The user's balance as `account_balances` (schema migration 6) defines it."""
    row = cur.execute(
        "SELECT total, held, available FROM account_balances(?) WHERE user_id = ?",
        [now, user_id],
    ).fetchone()
    if row is None:
        raise UnknownAccount(user_id)
    return Balance(*row)


@dataclass(frozen=True)
class Window:
    """Which journal entries of one account: since <= ts < until, of these kinds."""

    since: datetime | None = None
    until: datetime | None = None
    kinds: Sequence[str] | None = None
    # the bounds in microseconds since the epoch, as the history statements give ts
    since_us: int | None = field(init=False, repr=False, compare=False)
    until_us: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "since_us", _epoch_us(self.since))
        object.__setattr__(self, "until_us", _epoch_us(self.until))

    @property
    def everything(self) -> bool:
        return self.since is None and self.until is None and self.kinds is None

    def admits(self, ts_us: int, kind: str) -> bool:
        return (
            (self.since_us is None or ts_us >= self.since_us)
            and (self.until_us is None or ts_us < self.until_us)
            and (self.kinds is None or kind in self.kinds)
        )


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def _epoch_us(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - EPOCH) // MICROSECOND


# The columns fetched: ts as microseconds since the epoch (an integer costs far less to
# fetch than an aware datetime), available_after computed here.
FETCHED = [name for name in HISTORY_COLUMNS if name != "available_after"]
SELECTED = ", ".join("epoch_us(ts) AS ts" if name == "ts" else name for name in FETCHED)
# The filter on the account alone: with any other condition beside it DuckDB scans the
# whole journal instead of using its index, so the window is applied here, in Python.
ACCOUNT_ENTRIES = f"""
SELECT {SELECTED}
FROM journal WHERE account_no = ?
"""
# For a long history DuckDB first picks the newest entries by seq, then fetches only
# their columns (a bound `<= ?` lets it, BETWEEN does not); for the usual hundred
# entries that costs more than fetching them all.
NEWEST_ENTRIES = f"""
{ACCOUNT_ENTRIES}
QUALIFY row_number() OVER (ORDER BY seq DESC) <= ?
"""
# A long history's newest entries from the journal rows at or after its history mark
# (marks.py): DuckDB then scans only those rows' groups.
RECENT_ENTRIES = f"""
SELECT {SELECTED}
FROM journal WHERE rowid >= ? AND account_no = ?
ORDER BY seq DESC LIMIT ?
"""
LONG_HISTORY = 1_000  # entries
TS, KIND, SEQ = 0, 1, 12
TEXT = pd.StringDtype(na_value=np.nan)  # pandas' "str"
INTEGER_COLUMNS = frozenset({"credits", "held", "balance_after", "held_after", "seq"})


def history(
    cur: duckdb.DuckDBPyConnection,
    number: int,
    window: Window,
    *,
    limit: int | None,
    offset: int,
    entries: int,
    marks: list[dict],
) -> tuple[pd.DataFrame, int]:
    """One account's journal, newest first, `offset` entries skipped; and the highest
    entry number (seq) read, 0 for none.

    Every entry of the account through the journal's index, then filtered, ordered and
    cut here (cheaper than a sort in DuckDB for the usual hundred rows), in one
    statement; or, when the account has over LONG_HISTORY `entries` and the whole
    window is asked for, only the newest, from the account's history mark. `entries`
    and `marks` may be stale (read earlier, directory.py): entries are only ever added,
    so they then only make the read scan more. ts is UTC.
    """
    if limit is not None and window.everything and entries > LONG_HISTORY:
        rows = _newest(cur, number, offset + limit, entries, marks)
    else:
        rows = [row for row in _entries(cur, number) if window.admits(row[TS], row[KIND])]
    rows.sort(key=itemgetter(SEQ), reverse=True)
    newest = rows[0][SEQ] if rows else 0
    return _frame(rows[offset:] if limit is None else rows[offset : offset + limit]), newest


def _newest(
    cur: duckdb.DuckDBPyConnection, number: int, count: int, entries: int, marks: list[dict]
) -> list:
    """The account's newest `count` of at least `entries` entries."""
    return cur.execute(*newest_statement(number, count, entries, marks)).fetchall()


def newest_statement(
    number: int, count: int, entries: int, marks: list[dict]
) -> tuple[str, list[int]]:
    """The statement, and its values, that reads an account's newest `count` of at least
    `entries` entries: from its history mark when it has one, else through the index."""
    row = floor_of(marks, entries - count + 1)
    if row is None:
        return NEWEST_ENTRIES, [number, count]
    return RECENT_ENTRIES, [row, number, count]


def count_history(cur: duckdb.DuckDBPyConnection, number: int, window: Window) -> int:
    return sum(window.admits(row[TS], row[KIND]) for row in _entries(cur, number))


def _entries(cur: duckdb.DuckDBPyConnection, number: int) -> list[tuple]:
    return cur.execute(ACCOUNT_ENTRIES, [number]).fetchall()


def _frame(rows: list[tuple]) -> pd.DataFrame:
    """The entries as a frame with HISTORY_COLUMNS, built column by column (cheaper
    than from records); text columns are always pandas strings, missing ones NaN."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(FETCHED)
    fetched = dict(zip(FETCHED, columns, strict=True))
    data: dict[str, object] = {}
    for name in HISTORY_COLUMNS:
        if name == "available_after":
            data[name] = data["balance_after"] - data["held_after"]
        elif name in INTEGER_COLUMNS:
            data[name] = np.array(fetched[name], dtype=np.int64)
        elif name == "ts":
            micros = np.array(fetched[name], dtype=np.int64).view("datetime64[us]")
            data[name] = pd.DatetimeIndex(micros).tz_localize(UTC)
        elif name == "metadata":
            data[name] = np.array([_json(text) for text in fetched[name]], dtype=object)
        else:  # through Arrow: a third of what pd.array(..., dtype="str") costs
            data[name] = TEXT.__from_arrow__(pa.array(fetched[name], pa.large_string()))
    return pd.DataFrame(data, copy=False)


def _json(text: str | None) -> object:
    return None if text is None else json.loads(text)


def grants_frame(cur: duckdb.DuckDBPyConnection, user_id: str, now: datetime) -> pd.DataFrame:
    """The user's grants in burn order, with what became of each as of `now`."""
    return cur.execute(
        f"""
        SELECT grant_id, kind, credits, remaining, priority, expires_at, created_at, reason,
               actor,
               CASE WHEN expired_at IS NOT NULL THEN 'expired'
                    WHEN NOT grant_is_live(expires_at, expired_at, ?) THEN 'lapsed'
                    WHEN remaining = 0 THEN 'spent'
                    ELSE 'active' END AS status
        FROM grants WHERE user_id = ?
        ORDER BY {grants.BURN_ORDER}
        """,
        [now, user_id],
    ).df()
