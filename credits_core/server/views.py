"""JSON shapes of the API's answers: the ledger's values as plain dicts."""

from __future__ import annotations

import functools
import math
from datetime import datetime, tzinfo
from typing import Any

import numpy as np
import pandas as pd

from credits_core.ledger import Balance, Reservation
from credits_core.pricing import Quote


def balance(value: Balance) -> dict[str, int]:
    return {"total": value.total, "held": value.held, "available": value.available}


def reservation(hold: Reservation) -> dict[str, Any]:
    return {
        "transaction_id": hold.transaction_id,
        "user_id": hold.user_id,
        "status": hold.status,
        "credits": hold.credits,
        "captured": hold.captured,
        "released": hold.released,
        "reason": hold.reason,
        "created_at": iso(hold.created_at),
        "expires_at": iso(hold.expires_at),
        "resolved_at": iso(hold.resolved_at) if hold.resolved_at else None,
        "model": hold.model,
        "options": hold.options,
        "metadata": hold.metadata,
        "price_book_version": hold.price_book_version,
        "provider_cost_usd": hold.provider_cost_usd,
        "drawn": [{"grant_id": grant, "credits": credits} for grant, credits in hold.drawn],
    }


def iso(moment: datetime) -> str:
    """ISO 8601 text of a time. The writes of one batch share their times, and isoformat
    of an aware time costs more than the rest of a hold's answer, so it is cached."""
    return _iso(moment, moment.tzinfo)  # equal instants in other zones read otherwise


@functools.lru_cache(maxsize=1024)
def _iso(moment: datetime, zone: tzinfo | None) -> str:
    return moment.isoformat()


def reserved(hold: Reservation, after: Balance) -> dict[str, Any]:
    """A reserve's or confirm's answer: the hold, and the user's balance after it."""
    return {**reservation(hold), "balance": balance(after)}


confirmed = reserved


def quote(value: Quote) -> dict[str, Any]:
    return {
        "model": value.model,
        "provider": value.provider,
        "options": {k: plain(v) for k, v in value.options.items()},
        "credits": value.credits,
        "price_book_version": value.price_book_version,
        "breakdown": [
            {"rule": step.rule, "detail": step.detail, "credits": step.credits}
            for step in value.breakdown
        ],
        "provider_cost_usd": value.provider_cost_usd,
        "plan": value.plan,
    }


def record(value: Any) -> dict[str, Any]:
    """A ledger record (Account, Grant, Entry, Sweep) as JSON."""
    return value.to_dict()


def frame_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-able dicts (times ISO 8601, NaN as null)."""
    return [{k: plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def plain(value: Any) -> Any:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
