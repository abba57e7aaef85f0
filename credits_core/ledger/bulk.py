"""Bulk writes: usage events, grants and accounts by the frame, set-based, one transaction.

`apply_usage` books finished generations. Per user, events are taken in (ts, row)
order and each must fit the credits left after the events before it; one that does
not is rejected and the next is tried, exactly as one-by-one reservations would. That
greedy rule is computed for every user at once in rounds (no Python loop per event):
each round accepts the prefix that fits, rejects the first event that does not, and
drops the events that can no longer fit (the balance only falls). Consumption is
then allocated across each user's grants in burn order with cumulative sums.

Each accepted event is one journal entry: `capture` (credits spent) or `release` (a
failed generation, nothing spent). The reserve and its resolution happen at the same
instant, so no pending hold is written for it. A batch is one transaction: all of it
is booked or none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from credits_core.ledger import checks
from credits_core.ledger.errors import InvalidBatch
from credits_core.ledger.grants import BURN_ORDER, LIVE
from credits_core.ledger.journal import number_entries, post_frame
from credits_core.ledger.values import DEFAULT_PRIORITY, GRANT_KINDS

USAGE_REQUIRED = ("user_id", "credits", "ts", "success")
USAGE_OPTIONAL = ("model", "options", "transaction_id")
OUTCOMES = ("captured", "released", "rejected_insufficient", "duplicate", "unknown_account")
CAPTURED, RELEASED, REJECTED, DUPLICATE, UNKNOWN = range(5)
UNDECIDED = -1
GRANT_REQUIRED = ("user_id", "credits", "kind")
GRANT_OPTIONAL = ("expires_at", "priority", "reason", "actor")
ACCOUNT_REQUIRED = ("user_id",)
ACCOUNT_OPTIONAL = ("email", "plan")


# --------------------------------------------------------------------------- usage


@dataclass(frozen=True)
class Usage:
    """A checked usage frame as arrays (row i of each is event i of the frame)."""

    index: pd.Index
    user_id: pa.Array
    credits: np.ndarray
    ts: pa.Array
    success: np.ndarray
    transaction_id: pa.Array | None
    model: pa.Array | None
    options: pa.Array | None

    def __len__(self) -> int:
        return len(self.credits)


def check_usage(events: object, now: datetime | None = None) -> Usage:
    """Check every column of a usage frame; raise InvalidBatch naming the bad rows. With
    `now`, no event may be stamped after now (give or take the clock skew allowed)."""
    frame = _frame(events, "apply_usage", USAGE_REQUIRED, USAGE_OPTIONAL)
    n = len(frame)
    if n == 0:
        return Usage(
            frame.index,
            pa.array([], pa.string()),
            np.zeros(0, np.int64),
            pa.array([], pa.timestamp("us", "UTC")),
            np.zeros(0, bool),
            None,
            None,
            None,
        )
    problems: list[tuple[object, str]] = []
    user_id = _strings(frame["user_id"], "user_id", problems, frame.index)
    credits = _amounts(frame["credits"], problems, frame.index)
    success = _booleans(frame["success"], problems, frame.index)
    ts = _times(frame["ts"], "ts", problems, frame.index, required=True)
    if ts is not None:
        earliest, latest = checks.event_window(now)
        outside = pc.less(ts, pa.scalar(earliest, ts.type))
        if latest is not None:
            outside = pc.or_(outside, pc.greater(ts, pa.scalar(latest, ts.type)))
        rows = frame.index[pc.fill_null(outside, False).to_numpy(zero_copy_only=False)]
        within = f"from {earliest:%Y-%m-%d}" + ("" if latest is None else " to now")
        problems += [(row, f"ts must be {within} (a finished generation)") for row in rows]
    transaction_id = None
    if "transaction_id" in frame:
        transaction_id = _strings(frame["transaction_id"], "transaction_id", problems, frame.index)
        if not problems:
            _unique_ids(transaction_id, problems, frame.index)
    model = _optional_strings(frame, "model", problems)
    options = _options(frame, problems) if "options" in frame else None
    if problems:
        raise InvalidBatch(f"apply_usage: {len(problems)} problem(s) in the frame.", problems)
    return Usage(frame.index, user_id, credits, ts, success, transaction_id, model, options)


def apply_usage(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    usage: Usage,
    *,
    reason: str,
    actor: str,
) -> pd.DataFrame:
    if not len(usage):
        return _outcome(
            usage,
            np.zeros(0, np.int8),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            pa.array([], pa.string()),
        )
    users, codes = _factorize(usage.user_id)
    accounts = _accounts(cur, users)
    account_of = accounts.attrs["position"][codes]  # -1 for users without an account
    status = np.full(len(usage), UNDECIDED, dtype=np.int8)
    status[account_of < 0] = UNKNOWN
    if usage.transaction_id is not None:
        status[(status == UNDECIDED) & _booked(cur, usage.transaction_id)] = DUPLICATE
        _refuse_made_ids(usage, status)

    live = _live_grants(cur, users, accounts.attrs["position"], now)
    owner, remaining = live["position"].to_numpy(), live["remaining"].to_numpy()
    available = _group_sums(owner, remaining, len(accounts))

    order = _event_order(usage, account_of, status)
    group = account_of[order]
    fits = _greedy_fit(group, usage.credits[order], usage.success[order], available)
    booked = order[fits]
    succeeded = usage.success[booked]
    status[booked] = np.where(succeeded, CAPTURED, RELEASED)
    status[order[~fits]] = REJECTED

    spent = np.where(succeeded, usage.credits[booked], 0)
    ids = _book(cur, usage, (users, codes), accounts, account_of, booked, spent, now, reason, actor)
    _burn(cur, live, accounts, account_of[booked], spent)
    return _outcome(usage, status, booked, spent, ids)


def _refuse_made_ids(usage: Usage, status: np.ndarray) -> None:
    """New ids may not have the form of ids the ledger makes (they would collide later)."""
    made = pc.match_substring_regex(usage.transaction_id, checks.LEDGER_MADE_ID.pattern)
    made = pc.fill_null(made, False).to_numpy(zero_copy_only=False) & (status == UNDECIDED)
    if made.any():
        raise InvalidBatch(
            f"apply_usage: {int(made.sum())} new transaction ids have the form of ids the "
            "ledger makes itself (hold-, grant-, adj-, refund-, use-N-N).",
            [(row, "use another transaction_id") for row in usage.index[made]],
        )


def _event_order(usage: Usage, account_of: np.ndarray, status: np.ndarray) -> np.ndarray:
    """Rows still to decide, by account, then ts, then row."""
    rows = np.flatnonzero(status == UNDECIDED)
    ts = pc.cast(usage.ts, pa.int64()).to_numpy()[rows]
    if np.all(ts[1:] >= ts[:-1]):  # already in time order: sort by (account, row)
        shift = len(usage).bit_length()  # both in one int64 key: a plain sort, not a stable one
        return np.sort((account_of[rows] << shift) | rows) & ((1 << shift) - 1)
    return rows[np.lexsort((rows, ts, account_of[rows]))]


def _greedy_fit(
    group: np.ndarray, credits: np.ndarray, success: np.ndarray, available: np.ndarray
) -> np.ndarray:
    """Which events fit, taken one by one per group in order (see the module docstring)."""
    fits = np.zeros(len(group), dtype=bool)
    undecided = np.arange(len(group))
    left = available.copy()
    while len(undecided):
        undecided = undecided[credits[undecided] <= left[group[undecided]]]  # others never fit
        if not len(undecided):
            break
        g, c = group[undecided], credits[undecided]
        spend = np.where(success[undecided], c, 0)
        before = left[g] - _exclusive_group_cumsum(g, spend)
        bad = np.flatnonzero(c > before)
        first_bad = np.full(len(left), len(undecided))
        bad_groups, first = np.unique(g[bad], return_index=True)
        first_bad[bad_groups] = bad[first]
        position = np.arange(len(undecided))
        cut = first_bad[g]
        fits[undecided[position < cut]] = True
        left[bad_groups] = before[bad[first]]
        undecided = undecided[position > cut]
    return fits


def _group_sums(group: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Exact integer sums of `values` per group (rows of a group are adjacent), by group."""
    sums = np.zeros(size, dtype=np.int64)
    if len(values):
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        sums[group[starts]] = np.add.reduceat(values, starts)
    return sums


def _exclusive_group_cumsum(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per run of equal `group`, the sum of the values before each position."""
    if not len(values):
        return values
    total = np.cumsum(values)
    starts = np.r_[True, group[1:] != group[:-1]]
    run = np.cumsum(starts) - 1
    return total - values - (total - values)[starts][run]


def _book(
    cur: duckdb.DuckDBPyConnection,
    usage: Usage,
    coded: tuple[pa.Array, np.ndarray],
    accounts: pd.DataFrame,
    account_of: np.ndarray,
    booked: np.ndarray,
    spent: np.ndarray,
    now: datetime,
    reason: str,
    actor: str,
) -> pa.Array:
    """Insert one journal entry per booked event and move the balances; return the ids."""
    users, codes = coded
    position = account_of[booked]
    entries_before = accounts["entries"].to_numpy()[position]
    rank = np.arange(len(booked)) - np.searchsorted(position, position, side="left")
    seq = entries_before + rank + 1
    account_no = accounts["account_no"].to_numpy()[position]
    spent_before = _exclusive_group_cumsum(position, spent)
    balance_after = accounts["total"].to_numpy()[position] - spent_before - spent
    made = pc.binary_join_element_wise(
        "use", pc.cast(pa.array(account_no), pa.string()), pc.cast(pa.array(seq), pa.string()), "-"
    )
    ids = made if usage.transaction_id is None else usage.transaction_id.take(booked)
    rows = pa.table(
        {
            "account_no": account_no.astype(np.int32),
            "seq": seq,
            "user_id": pa.DictionaryArray.from_arrays(codes[booked], users),
            "ts": usage.ts.take(booked),
            "success": usage.success[booked],
            "credits": -spent,
            "reserved": usage.credits[booked],
            "balance_after": balance_after,
            "held_after": accounts["held"].to_numpy()[position],
            "transaction_id": ids,
            "model": _column(usage.model, booked),
            "metadata": _column(usage.options, booked),
        }
    )
    cur.register("usage_rows", rows)
    cur.execute(
        """
        INSERT INTO journal
        SELECT account_no, seq, user_id, ts,
               CASE WHEN success THEN 'capture' ELSE 'release' END,
               credits, 0, balance_after, held_after, transaction_id, NULL, ?, ?,
               model,
               CASE WHEN NOT success  -- a failed generation: what it had reserved
                    THEN '{"reserved":' || reserved
                         || coalesce(',"options":' || metadata, '') || '}'
                    WHEN metadata IS NOT NULL THEN '{"options":' || metadata || '}' END
        FROM usage_rows
        """,
        [reason, actor],
    )
    (moved,) = cur.execute(
        """
        UPDATE accounts
        SET total = accounts.total + s.credits, entries = s.last_seq
        FROM (SELECT account_no, sum(credits) AS credits, min(seq) AS first_seq,
                     max(seq) AS last_seq
              FROM usage_rows GROUP BY account_no) AS s
        WHERE accounts.account_no = s.account_no AND accounts.entries = s.first_seq - 1
        """
    ).fetchone()
    distinct_accounts = np.count_nonzero(np.diff(position)) + 1 if len(position) else 0
    # the one writer runs this alone, so the balance rows are the ones read above
    assert moved == distinct_accounts, (moved, distinct_accounts)  # position is sorted
    return ids


def _burn(
    cur: duckdb.DuckDBPyConnection,
    live: pd.DataFrame,
    accounts: pd.DataFrame,
    position: np.ndarray,
    spent: np.ndarray,
) -> None:
    """Take each user's spent credits from their live grants in burn order."""
    used = _group_sums(position, spent, len(accounts))
    owner = live["position"].to_numpy()
    remaining = live["remaining"].to_numpy()
    before = _exclusive_group_cumsum(owner, remaining)
    taken = np.clip(used[owner] - before, 0, remaining)
    burnt = pd.DataFrame({"grant_id": live["grant_id"], "taken": taken})[taken > 0]
    if burnt.empty:
        return
    cur.register("burnt", burnt)
    cur.execute(
        """
        UPDATE grants SET remaining = grants.remaining - b.taken
        FROM burnt AS b WHERE grants.grant_id = b.grant_id
        """
    )


def _outcome(
    usage: Usage, status: np.ndarray, booked: np.ndarray, spent: np.ndarray, ids: pa.Array
) -> pd.DataFrame:
    credits = np.zeros(len(usage), dtype=np.int64)
    credits[booked] = spent
    if usage.transaction_id is None:
        slot = np.full(len(usage), -1)
        slot[booked] = np.arange(len(booked))
        transaction_id = pc.take(ids, pa.array(slot, mask=slot < 0))
    else:
        transaction_id = usage.transaction_id
    return pd.DataFrame(
        {
            "status": pd.Categorical.from_codes(status, categories=list(OUTCOMES)),
            "credits": credits,
            "transaction_id": pd.arrays.ArrowExtensionArray(transaction_id),
        },
        index=usage.index,
    )


def tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as Arrow strings, missing values as pd.NA (stable through Parquet)."""
    for name in frame.columns:
        dtype = frame[name].dtype
        if pd.api.types.is_string_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
            frame[name] = frame[name].astype(pd.ArrowDtype(pa.string()))
    return frame


def _accounts(cur: duckdb.DuckDBPyConnection, users: pa.Array) -> pd.DataFrame:
    """The batch's known accounts by account number; attrs["position"] maps each distinct
    user (by its code) to its row, or -1 for a user without an account."""
    cur.register("batch_users", pa.table({"user_id": users, "code": np.arange(len(users))}))
    found = cur.execute(
        """
        SELECT b.code, a.account_no, a.total, a.held, a.entries
        FROM batch_users AS b JOIN accounts AS a USING (user_id)
        ORDER BY a.account_no
        """
    ).df()
    position = np.full(len(users), -1)
    position[found["code"].to_numpy()] = np.arange(len(found))
    found.attrs["position"] = position
    return found


def _factorize(user_id: pa.Array) -> tuple[pa.Array, np.ndarray]:
    encoded = user_id.dictionary_encode()
    return encoded.dictionary, encoded.indices.to_numpy()


def _booked(cur: duckdb.DuckDBPyConnection, transaction_id: pa.Array) -> np.ndarray:
    """Which of the ids are already in the ledger (a hold or booked usage)."""
    cur.register("batch_ids", pa.table({"transaction_id": transaction_id}))
    known = cur.sql(  # the batch is the small side: hash it, scan the journal once
        """
        SELECT transaction_id FROM journal SEMI JOIN batch_ids USING (transaction_id)
        UNION ALL
        SELECT transaction_id FROM holds SEMI JOIN batch_ids USING (transaction_id)
        """
    ).to_arrow_table()
    return pc.is_in(transaction_id, value_set=known.column(0)).to_numpy(zero_copy_only=False)


def _live_grants(
    cur: duckdb.DuckDBPyConnection, users: pa.Array, position: np.ndarray, now: datetime
) -> pd.DataFrame:
    """The batch users' spendable grants, each user's together and in burn order."""
    cur.register("grant_users", pa.table({"user_id": users, "code": np.arange(len(users))}))
    live = cur.execute(
        f"""
        SELECT u.code, g.grant_id, g.remaining
        FROM grants AS g JOIN grant_users AS u USING (user_id)
        WHERE g.remaining > 0 AND {LIVE}
        ORDER BY u.code, {BURN_ORDER}
        """,
        [now],
    ).df()
    live["position"] = position[live["code"].to_numpy()]
    return live


def _column(values: pa.Array | None, rows: np.ndarray) -> pa.Array:
    return pa.nulls(len(rows), pa.string()) if values is None else values.take(rows)


# --------------------------------------------------------------------------- grants


def check_grants(frame: object) -> pd.DataFrame:
    """Check a grants frame; return it normalised (defaults filled, times in UTC).

    What depends on the ledger (accounts exist, expiries lie ahead) is checked by
    grant_many inside its transaction."""
    grants = _frame(frame, "grant_many", GRANT_REQUIRED, GRANT_OPTIONAL)
    problems: list[tuple[object, str]] = []
    index = grants.index
    user_id = _strings(grants["user_id"], "user_id", problems, index)
    credits = _amounts(grants["credits"], problems, index)
    kind = _strings(grants["kind"], "kind", problems, index)
    if kind is not None:
        wrong = ~pc.is_in(kind, value_set=pa.array(GRANT_KINDS)).to_numpy(zero_copy_only=False)
        problems += [(row, f"kind must be one of {', '.join(GRANT_KINDS)}") for row in index[wrong]]
    expires_at = _times(grants.get("expires_at"), "expires_at", problems, index, required=False)
    priority = _priorities(grants.get("priority"), kind, problems, index)
    reason = _optional_strings(grants, "reason", problems)
    actor = _optional_strings(grants, "actor", problems, normalise=checks.actor_column)
    if problems:
        raise InvalidBatch(f"grant_many: {len(problems)} problem(s) in the frame.", problems)
    return pd.DataFrame(
        {
            "row": index,
            "user_id": user_id.to_pandas(),
            "credits": credits,
            "kind": kind.to_pandas(),
            "priority": priority,
            "expires_at": _to_series(expires_at, len(grants)),
            "reason": _to_series(reason, len(grants)),
            "actor": _to_series(actor, len(grants)),
        }
    )


def grant_many(cur: duckdb.DuckDBPyConnection, now: datetime, grants: pd.DataFrame) -> pd.DataFrame:
    _require_accounts(cur, grants, "grant_many")
    past = grants["expires_at"].notna() & (grants["expires_at"] <= now)
    if past.any():
        raise InvalidBatch(
            f"grant_many: {int(past.sum())} rows expire at or before now ({now.isoformat()}).",
            [(row, "expires_at is not in the future") for row in grants["row"][past]],
        )
    entries = grants.assign(
        ord=np.arange(len(grants)),
        ts=now,
        held=0,
        model=None,
        metadata=None,
    )
    numbered = number_entries(cur, entries)
    numbered["grant_id"] = (
        "grant-" + numbered["account_no"].astype(str) + "-" + numbered["seq"].astype(str)
    )
    numbered["transaction_id"] = numbered["grant_id"]
    cur.register("new_grants", numbered)
    cur.execute(
        """
        INSERT INTO grants (grant_id, user_id, kind, credits, remaining, priority,
                            expires_at, created_at, grant_seq, transaction_id, reason, actor)
        SELECT grant_id, user_id, kind, credits, credits, priority, expires_at, ts, seq,
               transaction_id, reason, actor
        FROM new_grants
        """
    )
    post_frame(cur, numbered.assign(kind="grant"))
    result = numbered.sort_values("ord").set_index("row").rename_axis(None)
    columns = ["user_id", "grant_id", "credits", "kind", "priority", "expires_at"]
    return tidy(result[columns].copy())


# --------------------------------------------------------------------------- accounts


def check_accounts(frame: object) -> pd.DataFrame:
    accounts = _frame(frame, "create_accounts", ACCOUNT_REQUIRED, ACCOUNT_OPTIONAL)
    problems: list[tuple[object, str]] = []
    index = accounts.index
    user_id = _strings(accounts["user_id"], "user_id", problems, index)
    if user_id is not None:
        repeated = accounts["user_id"].duplicated(keep=False).to_numpy()
        problems += [(row, "user_id appears more than once") for row in index[repeated]]
    email = _optional_strings(accounts, "email", problems)
    plan = _optional_strings(accounts, "plan", problems)
    if problems:
        raise InvalidBatch(f"create_accounts: {len(problems)} problem(s) in the frame.", problems)
    return pd.DataFrame(
        {
            "row": index,
            "user_id": user_id.to_pandas(),
            "email": _to_series(email, len(accounts)),
            "plan": _to_series(plan, len(accounts)),
        }
    )


def create_accounts(cur: duckdb.DuckDBPyConnection, now: datetime, accounts: pd.DataFrame) -> int:
    cur.register("new_accounts", accounts)
    existing = cur.execute(
        "SELECT row FROM new_accounts WHERE user_id IN (SELECT user_id FROM accounts)"
    ).fetchall()
    if existing:
        raise InvalidBatch(
            "create_accounts: some users already have an account.",
            [(row, "an account with this user_id exists") for (row,) in existing],
        )
    cur.execute(
        """
        INSERT INTO accounts (user_id, account_no, email, plan, created_at)
        SELECT user_id,
               (SELECT coalesce(max(account_no), 0) FROM accounts)
                   + row_number() OVER (ORDER BY row),
               email, plan, ?
        FROM new_accounts
        """,
        [now],
    )
    return len(accounts)


# --------------------------------------------------------------------------- checks


def _require_accounts(cur: duckdb.DuckDBPyConnection, frame: pd.DataFrame, operation: str) -> None:
    cur.register("wanted", frame[["row", "user_id"]])
    missing = cur.execute(
        "SELECT row, user_id FROM wanted WHERE user_id NOT IN (SELECT user_id FROM accounts)"
    ).fetchall()
    if missing:
        raise InvalidBatch(
            f"{operation}: {len(missing)} rows name users without an account.",
            [(row, f"no account for user {user!r}") for row, user in missing],
        )


def _frame(
    value: object, operation: str, required: tuple[str, ...], optional: tuple[str, ...]
) -> pd.DataFrame:
    if isinstance(value, pa.Table):
        value = value.to_pandas()
    if not isinstance(value, pd.DataFrame):
        raise InvalidBatch(
            f"{operation} takes a pandas DataFrame (or Arrow table) with columns "
            f"{', '.join(required)}, not {type(value).__name__}."
        )
    missing = [name for name in required if name not in value.columns]
    unknown = [name for name in value.columns if name not in required + optional]
    if missing or unknown:
        raise InvalidBatch(
            f"{operation} needs columns {', '.join(required)} (optional: "
            f"{', '.join(optional)}); missing {missing or 'none'}, unknown {unknown or 'none'}."
        )
    if value.index.has_duplicates:
        raise InvalidBatch(
            f"{operation}: the frame's index has repeated labels, so rows cannot be named; "
            "call .reset_index(drop=True) first."
        )
    return value


def _strings(series: pd.Series, name: str, problems: list, index: pd.Index) -> pa.Array | None:
    """A required text column under its field's rule (checks.text_problem)."""
    values = _text_array(series, name, problems, index)
    if values is None:
        return None
    missing = pc.is_null(values).to_numpy(zero_copy_only=False)
    problems += [(row, f"{name} is missing") for row in index[missing]]
    problems += [(index[row], problem) for row, problem in checks.column_problems(values, name)]
    return values


def _optional_strings(
    frame: pd.DataFrame, name: str, problems: list, normalise=None
) -> pa.Array | None:
    """An optional text column (missing values allowed) under its field's rule."""
    if name not in frame:
        return None
    values = _text_array(frame[name], name, problems, frame.index)
    if values is None:
        return None
    values = values if normalise is None else normalise(values)
    found = checks.column_problems(values, name)
    problems += [(frame.index[row], problem) for row, problem in found]
    return values


def _text_array(series: pd.Series, name: str, problems: list, index: pd.Index) -> pa.Array | None:
    """The column as Arrow strings; None (and each bad row named) when it holds values
    that are not strings, or strings that are not valid Unicode."""
    try:
        return pa.array(series, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError):
        for row, value in zip(index, series, strict=True):
            if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
                continue
            problem = checks.text_problem(value, name)
            if problem is not None:
                problems.append((row, f"{name} {problem}"))
        return None


def _amounts(series: pd.Series, problems: list, index: pd.Index) -> np.ndarray | None:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_integer_dtype(dtype):
        problems.append(
            (
                "column credits",
                f"credits must be an integer column, not {dtype}; "
                "round and convert with .astype('int64')",
            )
        )
        return None
    if series.isna().any():
        problems += [(row, "credits is missing") for row in index[series.isna().to_numpy()]]
        return None
    values = series.to_numpy(dtype=np.int64)
    bad = (values <= 0) | (values > checks.MAX_CREDITS)
    problems += [
        (row, f"credits must be from 1 to {checks.MAX_CREDITS:,}, not {value}")
        for row, value in zip(index[bad], values[bad], strict=True)
    ]
    return values


def _booleans(series: pd.Series, problems: list, index: pd.Index) -> np.ndarray | None:
    if not pd.api.types.is_bool_dtype(series.dtype):
        problems.append(("column success", f"success must be a bool column, not {series.dtype}"))
        return None
    if series.isna().any():
        problems += [(row, "success is missing") for row in index[series.isna().to_numpy()]]
        return None
    return series.to_numpy(dtype=bool)


def _times(
    series: pd.Series | None, name: str, problems: list, index: pd.Index, *, required: bool
) -> pa.Array | None:
    if series is None:
        return None
    if series.isna().all() and not required:
        return None
    if not isinstance(series.dtype, pd.DatetimeTZDtype):
        problems.append(
            (
                f"column {name}",
                f"{name} must hold timezone-aware times (dtype {series.dtype}); "
                "use pd.to_datetime(..., utc=True)",
            )
        )
        return None
    if required and series.isna().any():
        problems += [(row, f"{name} is missing") for row in index[series.isna().to_numpy()]]
    utc = series.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    return pa.array(utc, type=pa.timestamp("us", "UTC"), from_pandas=True)


def _priorities(
    series: pd.Series | None, kind: pa.Array | None, problems: list, index: pd.Index
) -> np.ndarray | None:
    """Given priorities, or the kind's default where none is given."""
    defaults = None if kind is None else kind.to_pandas().map(DEFAULT_PRIORITY).to_numpy()
    if series is None or series.isna().all():
        return defaults
    numeric = pd.api.types.is_numeric_dtype(series.dtype)
    if not numeric or pd.api.types.is_bool_dtype(series.dtype):
        problems.append(("column priority", f"priority must be integers, not {series.dtype}"))
        return None
    given = series.to_numpy(dtype=float, na_value=np.nan)
    whole = np.isnan(given) | (given == np.round(given))
    bad = ~whole | (given < 0) | (given > checks.MAX_PRIORITY)
    problems += [(row, f"priority must be an int 0..{checks.MAX_PRIORITY}") for row in index[bad]]
    if defaults is None:
        return None
    return np.where(np.isnan(given), defaults, np.nan_to_num(given)).astype(np.int64)


def _unique_ids(ids: pa.Array, problems: list, index: pd.Index) -> None:
    repeated = pd.Series(ids.to_pandas()).duplicated(keep=False).to_numpy()
    problems += [(row, "transaction_id appears more than once") for row in index[repeated]]


def _options(frame: pd.DataFrame, problems: list) -> pa.Array:
    """Options as normalised JSON text. Each distinct value is checked once, so a column
    of a few SKUs' JSON strings costs little however long it is; dicts (unhashable) are
    encoded one by one."""
    values = frame["options"]
    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    except TypeError:
        codes, uniques = np.arange(len(values)), values.to_numpy(dtype=object)
    texts, reasons = [], []
    for value in uniques:
        text, reason = _option_text(value)
        texts.append(text)
        reasons.append(reason)
    failed = np.array([reason is not None for reason in reasons] + [False])  # -1: missing
    problems += [(frame.index[row], reasons[codes[row]]) for row in np.flatnonzero(failed[codes])]
    encoded = pa.array([*texts, None], type=pa.string())
    return encoded.take(pa.array(np.where(codes < 0, len(texts), codes)))


def _option_text(value: object) -> tuple[str | None, str | None]:
    """(JSON text, None) for a valid options value; (None, the problem) otherwise."""
    if value is None or (not isinstance(value, dict | str) and pd.isna(value)):
        return None, None
    if isinstance(value, str):
        try:
            return checks.json_object(json.loads(value), "options"), None
        except (ValueError, AttributeError):
            return None, "options must be a JSON object"
    if isinstance(value, dict):
        try:
            return checks.json_object(value, "options"), None
        except ValueError as error:
            return None, str(error)
    return None, "options must be a dict, a JSON string or missing"


def _to_series(values: pa.Array | None, n: int) -> pd.Series | list[None]:
    return [None] * n if values is None else values.to_pandas()
