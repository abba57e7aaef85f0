"""Checking bulk frames (usage events, grants, accounts) before anything is written.

Each column is checked under its field's rule (ledger/checks.py, the same rules as the
single calls, the CLI and the API); a frame with problems raises InvalidBatch naming every
bad row and what is valid. A good frame comes back checked: usage as arrays (`Usage`),
grants and accounts as normalised frames. What depends on the ledger (accounts exist,
expiries lie ahead, ids already booked) is checked by the writes, in their transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from credits_core.ledger import checks
from credits_core.ledger.errors import InvalidBatch
from credits_core.ledger.values import DEFAULT_PRIORITY, GRANT_KINDS

USAGE_REQUIRED = ("user_id", "credits", "ts", "success")
USAGE_OPTIONAL = ("model", "options", "transaction_id")
MAX_USAGE_EVENTS = 10_000_000
GRANT_REQUIRED = ("user_id", "credits", "kind")
GRANT_OPTIONAL = ("expires_at", "priority", "reason", "actor")
ACCOUNT_REQUIRED = ("user_id",)
ACCOUNT_OPTIONAL = ("email", "plan")


@dataclass(frozen=True)
class Usage:
    """A checked usage frame as arrays (row i of each is event i of the frame); user ids
    and models dictionary-encoded (a batch repeats them)."""

    index: pd.Index
    user_id: pa.DictionaryArray
    credits: np.ndarray
    ts: pa.Array
    success: np.ndarray
    transaction_id: pa.Array | None
    model: pa.DictionaryArray | None
    options: pa.Array | None

    def __len__(self) -> int:
        return len(self.credits)


def check_usage(events: object, now: datetime | None = None) -> Usage:
    """Check every column of a usage frame; raise InvalidBatch naming the bad rows. With
    `now`, no event may be stamped after now (give or take the clock skew allowed)."""
    frame = _frame(events, "apply_usage", USAGE_REQUIRED, USAGE_OPTIONAL)
    n = len(frame)
    if n > MAX_USAGE_EVENTS:  # one batch is one redo log record (up to 4 GiB)
        raise InvalidBatch(
            f"apply_usage takes at most {MAX_USAGE_EVENTS:,} events per call, not {n:,}; "
            "split the frame."
        )
    if n == 0:
        return Usage(
            frame.index,
            pc.dictionary_encode(pa.array([], pa.string())),
            np.zeros(0, np.int64),
            pa.array([], pa.timestamp("us", "UTC")),
            np.zeros(0, bool),
            None,
            None,
            None,
        )
    problems: list[tuple[object, str]] = []
    user_id = _strings(frame["user_id"], "user_id", problems, frame.index, encoded=True)
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
    model = _optional_strings(frame, "model", problems, encoded=True)
    options = _options(frame, problems) if "options" in frame else None
    if problems:
        raise InvalidBatch(f"apply_usage: {len(problems)} problem(s) in the frame.", problems)
    return Usage(frame.index, user_id, credits, ts, success, transaction_id, model, options)


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


def tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as Arrow strings, missing values as pd.NA (stable through Parquet)."""
    for name in frame.columns:
        dtype = frame[name].dtype
        if pd.api.types.is_string_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
            frame[name] = frame[name].astype(pd.ArrowDtype(pa.string()))
    return frame


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


def _strings(
    series: pd.Series, name: str, problems: list, index: pd.Index, *, encoded: bool = False
) -> pa.Array | None:
    """A required text column under its field's rule (checks.text_problem); dictionary-
    encoded when asked."""
    values = _text_array(series, name, problems, index)
    if values is None:
        return None
    values = pc.dictionary_encode(values) if encoded else values
    missing = pc.is_null(values).to_numpy(zero_copy_only=False)
    problems += [(row, f"{name} is missing") for row in index[missing]]
    problems += [(index[row], problem) for row, problem in checks.column_problems(values, name)]
    return values


def _optional_strings(
    frame: pd.DataFrame, name: str, problems: list, normalise=None, *, encoded: bool = False
) -> pa.Array | None:
    """An optional text column (missing values allowed) under its field's rule;
    dictionary-encoded when asked."""
    if name not in frame:
        return None
    values = _text_array(frame[name], name, problems, frame.index)
    if values is None:
        return None
    values = values if normalise is None else normalise(values)
    values = pc.dictionary_encode(values) if encoded else values
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
