"""Many operations per request: `POST /v1/batch` (reserve and confirm, answered in
order) and `POST /v1/usage` (finished generations as JSON lines or Parquet).

A batch checks every operation, then submits them all to the ledger's writer at one
instant (`Ledger.submit_many`) before awaiting any, so the writer can commit them
together; each operation succeeds or fails alone. A reserve's
or confirm's `balance` is the user's balance once the whole batch is done.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import threading
from datetime import timedelta
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from pydantic import TypeAdapter, ValidationError

from credits_core.ledger import DEFAULT_TTL, Balance, Reservation
from credits_core.ledger.checks import MAX_TTL
from credits_core.ledger.context import WriteFuture
from credits_core.ledger.ledger import Call
from credits_core.server import views
from credits_core.server.api import Context, answer_for, validation_answer
from credits_core.server.balances import balances
from credits_core.server.bodies import (
    MAX_BATCH,
    ConfirmOperation,
    Operation,
    ReserveBody,
    ReserveOperation,
)
from credits_core.server.errors import invalid

OPERATION: TypeAdapter = TypeAdapter(Operation)
OPERATION_TAGS = ("reserve", "confirm")
USAGE_COLUMNS = ("user_id", "credits", "ts", "success", "model", "options", "transaction_id")
JSON_LINES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")
PARQUET_MAGIC = b"PAR1"


def ttl(seconds: float | None) -> timedelta:
    if seconds is None:
        return DEFAULT_TTL
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_TTL.total_seconds():
        raise invalid(
            f"ttl_seconds must be a number of seconds above 0 and at most "
            f"{MAX_TTL.total_seconds():g} ({MAX_TTL.days} days), not {seconds!r}.",
            "ttl_seconds",
        )
    return timedelta(seconds=seconds)


def reserve_call(context: Context, body: ReserveBody, key: str | None, actor: str) -> Call:
    """The ledger call of a reserve, priced by `credits` or quoted from `model` at the
    user's plan."""
    quote = None
    if body.model is not None:
        quote = context.book.quote(
            body.model,
            provider=body.provider,
            plan=context.plan_of(body.user_id),
            **body.options,
        )
    elif body.credits is None:
        raise invalid("Send credits, or model with its options, to reserve.", "credits")
    elif body.provider is not None or body.options:
        raise invalid("provider and options price a model: send model with them.", "model")
    keywords = {
        "reason": body.reason,
        "metadata": body.metadata,
        "idempotency_key": key,
        "ttl": ttl(body.ttl_seconds),
        "quote": quote,
        "actor": actor,
    }
    return "reserve", (body.user_id, body.credits), keywords


def submit_reserve(context: Context, body: ReserveBody, key: str | None, actor: str) -> WriteFuture:
    """Queue a reserve (see reserve_call)."""
    operation, args, keywords = reserve_call(context, body, key, actor)
    return context.ledger.submit(operation, *args, **keywords)


def operations(raw: bytes) -> list[Any]:
    """The `operations` list of a batch body (each operation is checked on its own)."""
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise invalid(f"Invalid request: the body is not valid JSON ({error}).") from None
    except RecursionError:
        raise invalid("Invalid request: the body's JSON is nested too deep.") from None
    if not isinstance(data, dict) or set(data) != {"operations"}:
        raise invalid('A batch body is {"operations": [...]} and nothing else.', "operations")
    listed = data["operations"]
    if not isinstance(listed, list):
        raise invalid("operations must be a list of operations.", "operations")
    if len(listed) > MAX_BATCH:
        raise invalid(
            f"A batch holds at most {MAX_BATCH:,} operations, not {len(listed):,}; split it.",
            "operations",
        )
    return listed


async def run(context: Context, listed: list[Any], actor: str) -> list[dict[str, Any]]:
    calls: list[Call | BaseException] = []
    for raw in listed:
        try:
            calls.append(_call(context, raw, actor))
        except Exception as error:
            calls.append(error)
    queued = iter(context.ledger.submit_many(c for c in calls if not _failed(c)))
    pending = [call if _failed(call) else next(queued) for call in calls]
    await all_done([p for p in pending if isinstance(p, WriteFuture)])
    outcomes = [p.exception() or p.result() if isinstance(p, WriteFuture) else p
                for p in pending]  # fmt: skip
    after: dict[str, Balance] = {}  # each user's balance after this batch's last write
    for future, outcome in zip(pending, outcomes, strict=True):
        if isinstance(outcome, Reservation) and getattr(future, "balance", None) is not None:
            after[outcome.user_id] = future.balance
    unsaid = sorted({o.user_id for o in outcomes if isinstance(o, Reservation)} - set(after))
    after |= await balances(context.ledger, unsaid)
    return [_result(context, outcome, after) for outcome in outcomes]


def _failed(call: Call | BaseException) -> bool:
    return isinstance(call, BaseException)


async def answered(future: WriteFuture) -> Any:
    """The result of one write queued on the writer (cheaper than `asyncio.wrap_future`,
    which chains two futures both ways)."""
    if not future.done():
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(_wake, waiter))
        await waiter
    return future.result()


def _wake(waiter: asyncio.Future) -> None:
    if not waiter.done():  # not cancelled: the client is still there
        waiter.set_result(None)


async def all_done(futures: list[WriteFuture]) -> None:
    """Wait until every future is done, woken once (not once per future: the writer
    answers a whole batch at once, and each wake-up of the event loop costs)."""
    if not futures:
        return
    loop = asyncio.get_running_loop()
    finished = loop.create_future()
    left = [len(futures)]
    lock = threading.Lock()

    def one_done(_: WriteFuture) -> None:  # on the writer's thread, or here if already done
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last:
            loop.call_soon_threadsafe(finished.set_result, None)

    for future in futures:
        future.add_done_callback(one_done)
    await finished


def _call(context: Context, raw: Any, actor: str) -> Call:
    try:
        operation = OPERATION.validate_python(raw)
    except ValidationError as error:
        raise validation_answer([_untagged(item) for item in error.errors()]) from None
    if isinstance(operation, ReserveOperation):  # a ReserveBody with op and key
        return reserve_call(context, operation, operation.idempotency_key, actor)
    assert isinstance(operation, ConfirmOperation)
    keywords = {
        "success": operation.success,
        "credits": operation.credits,
        "actor": actor,
        "idempotency_key": operation.idempotency_key,
    }
    return "confirm", (operation.transaction_id,), keywords


def _untagged(item: dict[str, Any]) -> dict[str, Any]:
    """A validation error with its field named as in the operation: pydantic puts the
    operation's tag (`reserve`, `confirm`) before the field."""
    loc = item["loc"]
    return {**item, "loc": loc[1:]} if loc and loc[0] in OPERATION_TAGS else item


def _result(context: Context, outcome: Any, after_batch: dict) -> dict[str, Any]:
    if isinstance(outcome, BaseException):
        error = answer_for(outcome, context.book)
        return {"status": error.status, "error": error.body()["error"]}
    after = after_batch[outcome.user_id]
    if outcome.status == "pending":
        return {"status": 201, "body": views.reserved(outcome, after)}
    return {"status": 200, "body": views.confirmed(outcome, after)}


# --------------------------------------------------------------------------- usage


def usage_frame(raw: bytes, content_type: str) -> pd.DataFrame:
    """Finished generations from JSON lines or Parquet, as `apply_usage` takes them.
    Times without a zone are UTC."""
    if raw.startswith(PARQUET_MAGIC) or "parquet" in content_type:
        try:
            frame = pq.read_table(io.BytesIO(raw)).to_pandas()
        except Exception as error:
            raise invalid(f"The body is not a readable Parquet file ({error}).") from None
    elif not content_type or content_type.split(";")[0].strip() in (*JSON_LINES, "text/plain"):
        frame = pd.DataFrame(_json_lines(raw))
    else:
        raise invalid(
            f"Send usage as JSON lines (Content-Type {JSON_LINES[0]}) or Parquet "
            f"(application/vnd.apache.parquet), not {content_type!r}."
        )
    unknown = [c for c in frame.columns if c not in USAGE_COLUMNS]
    if unknown:
        raise invalid(
            f"Unknown usage column(s) {unknown}; valid: {', '.join(USAGE_COLUMNS)}.", unknown[0]
        )
    if "ts" in frame and not isinstance(frame["ts"].dtype, pd.DatetimeTZDtype):
        try:
            frame["ts"] = pd.to_datetime(frame["ts"], format="ISO8601", utc=True)
        except (ValueError, TypeError) as error:
            raise invalid(f"ts must hold ISO 8601 times ({error}).", "ts") from None
    return frame


def _json_lines(raw: bytes) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as error:
            raise invalid(f"Line {number} is not valid JSON ({error}).") from None
        if not isinstance(row, dict):
            raise invalid(f"Line {number} is not a JSON object with the usage columns.")
        rows.append(row)
    return rows


def usage_answer(outcome: pd.DataFrame) -> dict[str, Any]:
    booked = int(outcome["status"].isin(["captured", "released"]).sum())
    return {
        "booked": booked,
        "rejected": len(outcome) - booked,
        "outcomes": views.frame_rows(outcome.reset_index(drop=True)),
    }
