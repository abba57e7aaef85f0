"""Idempotency keys: the first result of a keyed write, returned again for the same request.

A key is recorded in the same transaction as the write it guards, with the operation,
a fingerprint of the request and the result. Seeing the key again with the same
fingerprint returns that result and writes nothing; with another fingerprint it raises
`IdempotencyConflict`. The one writer decides keyed writes in order, so two callers
with one key cannot both write: the second finds the first's result.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from credits_core.ledger.batch import KeyRecord
from credits_core.ledger.errors import IdempotencyConflict


@dataclass(frozen=True)
class Stored:
    operation: str
    fingerprint: str
    result: Any
    frame: pd.DataFrame | None


def fingerprint(operation: str, request: dict[str, Any]) -> str:
    canonical = json.dumps([operation, request], sort_keys=True, default=_plain)
    return hashlib.sha256(canonical.encode()).hexdigest()


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """A digest of a frame's columns, values and index."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object:
            column = column.map(repr)  # dicts and lists are not hashable as they are
        digest.update(pd.util.hash_pandas_object(column, index=False).to_numpy().tobytes())
    digest.update(pd.util.hash_pandas_object(frame.index).to_numpy().tobytes())
    return digest.hexdigest()


def recall(
    cur: duckdb.DuckDBPyConnection, key: str, operation: str, fingerprint_: str
) -> Stored | None:
    """The stored first result for `key`, or None; raises if the key meant another request."""
    row = cur.execute(
        "SELECT operation, fingerprint, result, frame FROM idempotency_keys WHERE key = ?",
        [key],
    ).fetchone()
    if row is None:
        return None
    stored_operation, stored_fingerprint, result, frame = row
    if (stored_operation, stored_fingerprint) != (operation, fingerprint_):
        raise IdempotencyConflict(key, operation, stored_operation)
    return Stored(
        stored_operation,
        stored_fingerprint,
        None if result is None else json.loads(result),
        None if frame is None else pd.read_parquet(io.BytesIO(frame)),
    )


def recall_many(cur: duckdb.DuckDBPyConnection, keys: list[str]) -> dict[str, KeyRecord]:
    """The first results of the keys already used, in one statement (bulk results are
    only ever recalled one at a time, by recall())."""
    marks = ", ".join(["?"] * len(keys))
    rows = cur.execute(
        f"SELECT key, operation, fingerprint, result FROM idempotency_keys WHERE key IN ({marks})",
        keys,
    ).fetchall()
    return {
        key: KeyRecord(operation, fingerprint_, None if result is None else json.loads(result))
        for key, operation, fingerprint_, result in rows
    }


def remember(
    cur: duckdb.DuckDBPyConnection,
    key: str,
    operation: str,
    fingerprint_: str,
    now: datetime,
    *,
    result: Any = None,
    frame: pd.DataFrame | None = None,
) -> None:
    blob = None if frame is None else frame_blob(frame)
    cur.execute(
        "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?, ?)",
        [key, operation, fingerprint_, None if result is None else json.dumps(result), blob, now],
    )


def frame_blob(frame: pd.DataFrame) -> bytes:
    """A bulk write's first result as it is stored: the frame as Parquet."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
