"""Input checks: every public argument is checked here before anything is written.

Each check returns the value in the form the ledger stores (ints, aware UTC times,
canonical JSON) or raises the typed error that says what is valid.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from credits_core.ledger.errors import (
    AmountNotInteger,
    InvalidAmount,
    InvalidArgument,
    InvalidKind,
    InvalidMetadata,
    InvalidTimestamp,
    InvalidTTL,
    InvalidUserId,
    QuoteMismatch,
)
from credits_core.ledger.values import ENTRY_KINDS, GRANT_KINDS

MAX_CREDITS = 1_000_000_000  # per request; far above any real price or grant
MAX_PRIORITY = 1_000
MAX_TTL = timedelta(days=7)
MAX_TEXT = 500
MAX_ID = 200
MAX_METADATA_BYTES = 16_384
# Transaction ids the ledger makes itself; imported usage may not use this form.
LEDGER_MADE_ID = re.compile(r"^(hold|grant|adj|refund|use)-\d+-\d+$")


def credits(value: object, *, name: str = "credits", signed: bool = False) -> int:
    """A whole number of credits: positive (or non-zero when `signed`), at most MAX_CREDITS."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise AmountNotInteger(
            f"{name} must be a whole number of credits (int), not {type(value).__name__} "
            f"{value!r}. Round prices before booking them."
        )
    amount = int(value)
    if amount == 0:
        raise InvalidAmount(f"{name} must not be 0: a change of nothing is not booked.")
    if amount < 0 and not signed:
        raise InvalidAmount(
            f"{name} must be positive, not {amount}. To take credits away use adjust() "
            "with a negative amount."
        )
    if abs(amount) > MAX_CREDITS:
        raise InvalidAmount(
            f"{name}={amount} is beyond the limit of {MAX_CREDITS:,} credits per request; "
            "check the amount (split a genuine transfer this large)."
        )
    return amount


def user_id(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidUserId(f"A user id is a string such as 'u_123', not {value!r}.")
    if not value.strip() or value != value.strip() or len(value) > MAX_ID:
        raise InvalidUserId(
            f"User id {value!r} must be 1-{MAX_ID} characters without leading or trailing spaces."
        )
    return value


def transaction_id(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID:
        raise InvalidArgument(
            f"A transaction id is the non-empty string reserve() returned, not {value!r}."
        )
    return value


def idempotency_key(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID:
        raise InvalidArgument(
            f"An idempotency key is a non-empty string of at most {MAX_ID} characters "
            f"(such as a job id), not {value!r}."
        )
    return value


def text(value: object, name: str, *, required: bool = False) -> str | None:
    """A free-text field such as a reason or an actor."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        need = "is required and must be" if required else "must be"
        raise InvalidArgument(
            f"{name} {need} a non-empty string of at most {MAX_TEXT} characters, not {value!r}."
        )
    return value


def metadata(value: object) -> str | None:
    """Canonical JSON of a dict with string keys, or None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidMetadata(
            f"metadata must be a dict such as {{'model': 'Gen-4 Turbo'}}, not "
            f"{type(value).__name__}."
        )
    return json_object(value, "metadata")


def json_object(value: dict[Any, Any], name: str) -> str:
    bad_keys = [key for key in value if not isinstance(key, str)]
    if bad_keys:
        raise InvalidMetadata(f"{name} keys must be strings; got {bad_keys[:3]!r}.")
    try:
        encoded = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidMetadata(
            f"{name} must hold only JSON values (str, int, float, bool, None, lists and "
            f"dicts of them): {error}."
        ) from None
    if len(encoded.encode()) > MAX_METADATA_BYTES:
        raise InvalidMetadata(
            f"{name} is {len(encoded.encode()):,} bytes as JSON; the limit is "
            f"{MAX_METADATA_BYTES:,}. Keep large payloads elsewhere and store a reference."
        )
    return encoded


def model_of(metadata_json: str | None) -> str | None:
    if metadata_json is None:
        return None
    model = json.loads(metadata_json).get("model")
    return model if isinstance(model, str) else None


def moment(value: object, name: str) -> datetime:
    """An aware datetime, converted to UTC."""
    if not isinstance(value, datetime):
        raise InvalidTimestamp(f"{name} must be a timezone-aware datetime, not {value!r}.")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidTimestamp(
            f"{name}={value.isoformat()} has no time zone; pass an aware datetime such as "
            "datetime.now(UTC)."
        )
    return value.astimezone(UTC)


def future(value: object, name: str, now: datetime) -> datetime:
    when = moment(value, name)
    if when <= now:
        raise InvalidTimestamp(
            f"{name}={when.isoformat()} is not after now ({now.isoformat()}); give a "
            "future time, or none for credits that never expire."
        )
    return when


def ttl(value: object) -> timedelta:
    if not isinstance(value, timedelta) or value <= timedelta(0) or value > MAX_TTL:
        raise InvalidTTL(
            f"ttl must be a positive timedelta of at most {MAX_TTL.days} days, such as "
            f"timedelta(minutes=15), not {value!r}. Extend long jobs with extend()."
        )
    return value


def grant_kind(value: object) -> str:
    if value not in GRANT_KINDS:
        raise InvalidKind(f"Grant kind {value!r} is not one of: {', '.join(GRANT_KINDS)}.")
    return str(value)


def entry_kinds(values: Iterable[object] | str | None) -> list[str] | None:
    if values is None:
        return None
    chosen = [values] if isinstance(values, str) else list(values)
    unknown = [value for value in chosen if value not in ENTRY_KINDS]
    if unknown or not chosen:
        raise InvalidKind(
            f"Unknown journal entry kinds {unknown!r}; choose from: {', '.join(ENTRY_KINDS)}."
        )
    return [str(value) for value in chosen]


def priority(value: object) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not 0 <= int(value) <= MAX_PRIORITY
    ):
        raise InvalidArgument(
            f"priority must be an int from 0 (burns first) to {MAX_PRIORITY}, not {value!r}."
        )
    return int(value)


def limit(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise InvalidArgument(f"limit must be a positive int or None (all), not {value!r}.")
    return int(value)


def offset(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 0:
        raise InvalidArgument(f"offset must be an int >= 0 (entries to skip), not {value!r}.")
    return int(value)


def wait_seconds(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidArgument(f"wait must be a number of seconds >= 0, not {value!r}.")
    return float(value)


def quoted_credits(amount: object, quote: object | None) -> int:
    """The credits of a reservation, from `credits`, the quote, or both (then equal)."""
    if quote is None:
        if amount is None:
            raise InvalidAmount("reserve() needs credits, or a quote to take them from.")
        return credits(amount)
    quoted = credits(getattr(quote, "credits", None), name="quote.credits")
    if amount is not None and credits(amount) != quoted:
        raise QuoteMismatch(
            f"credits={amount} disagrees with the quote's {quoted} credits for "
            f"{getattr(quote, 'model', '?')}; pass only the quote, or the same number."
        )
    return quoted


def quote_fields(quote: object | None) -> dict[str, Any]:
    """What a hold keeps of a pricing quote: model, options, price book version, cost."""
    if quote is None:
        return {
            "model": None,
            "options_json": None,
            "price_book_version": None,
            "provider_cost_usd": None,
        }
    options = dict(getattr(quote, "options", None) or {})
    cost = getattr(quote, "provider_cost_usd", None)
    return {
        "model": str(quote.model),
        "options_json": json_object(options, "quote.options"),
        "price_book_version": str(quote.price_book_version),
        "provider_cost_usd": None if cost is None else float(cost),
    }
