"""Input checks: every public argument is checked here before anything is written.

Each check returns the value in the form the ledger stores (ints, aware UTC times,
canonical JSON) or raises the typed error that says what is valid. These are the only
rules: the single calls, the bulk frames (bulk.check_*), the CLI and the API all apply
them, so a value refused by one entry point is refused by every one.

Text rules, by field (`TEXT_RULES`):
- ids (user_id, transaction_id, idempotency key): 1-MAX_ID printable characters, no
  white space at either end (no NUL, newline, zero-width or other invisible characters);
- names (email, plan) and actors: 1-MAX_TEXT printable characters; an actor is trimmed of
  ASCII white space and, when all ASCII, lowercased (" SAM@corp.example " is
  "sam@corp.example", as the access rules compare people);
- free text (reason, note): 1-MAX_TEXT characters, no control characters other than
  newline, tab and carriage return;
- every text must be valid Unicode (no lone surrogates, so it can be stored as UTF-8).
"""

from __future__ import annotations

import json
import math
import numbers
import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
NESTING = (dict, list, tuple)  # the JSON values that nest
MAX_METADATA_BYTES = 16_384
MAX_METADATA_DEPTH = 32  # nesting of dicts and lists
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)  # usage before this is a mistake
MAX_CLOCK_SKEW = timedelta(hours=1)  # usage may be stamped this far after the ledger's now
ASCII_SPACE = " \t\n\r\f\v"
TextRule = Literal["id", "name", "actor", "text"]
TEXT_RULES: dict[str, TextRule] = {
    "user_id": "id",
    "transaction_id": "id",
    "idempotency key": "id",
    "email": "name",
    "plan": "name",
    "model": "name",
    "actor": "actor",
}  # any other field (reason, text, note, ...) is free text
# Transaction ids the ledger makes itself; imported usage may not use this form.
LEDGER_MADE_ID = re.compile(r"^(hold|grant|adj|refund|use)-\d+-\d+$")
BOOLEANS = (bool, np.bool_)  # integers to Python, not amounts


def credits(value: object, *, name: str = "credits", signed: bool = False) -> int:
    """A whole number of credits: positive (or non-zero when `signed`), at most MAX_CREDITS."""
    if type(value) is not int and (  # a plain int, the usual case, skips the slow checks
        isinstance(value, BOOLEANS) or not isinstance(value, numbers.Integral)
    ):
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
    problem = text_problem(value, "user_id")
    if problem is not None:
        raise InvalidUserId(
            f"User id {value!r} {problem}. A user id is 1-{MAX_ID} characters (printable, no "
            "white space at either end), such as 'u_123'."
        )
    return value


def transaction_id(value: object) -> str:
    problem = text_problem(value, "transaction_id")
    if problem is not None:
        raise InvalidArgument(
            f"Transaction id {value!r} {problem}. A transaction id is the string reserve() "
            "returned."
        )
    return value


def idempotency_key(value: object) -> str | None:
    if value is None:
        return None
    problem = text_problem(value, "idempotency key")
    if problem is not None:
        raise InvalidArgument(
            f"Idempotency key {value!r} {problem}. Use 1-{MAX_ID} printable characters "
            "(such as a job id)."
        )
    return value


def text(value: object, name: str, *, required: bool = False) -> str | None:
    """A text field (reason, actor, email, plan, ...) under its field's rule (TEXT_RULES);
    an actor comes back normalised."""
    if value is None and not required:
        return None
    if name == "actor" and isinstance(value, str):
        value = actor_name(value)
    problem = text_problem(value, name)
    if problem is not None:
        need = "is required and" if required else ""
        raise InvalidArgument(f"{name} {need} {problem}, not {value!r}.".replace("  ", " "))
    return value


def actor_name(value: str) -> str:
    """Who did it, as the ledger stores it: trimmed of ASCII white space, lowercased
    when all ASCII."""
    trimmed = value.strip(ASCII_SPACE)
    return trimmed.lower() if trimmed.isascii() else trimmed


def text_problem(value: object, name: str) -> str | None:
    """What is wrong with `value` as the field `name` (None when it is valid)."""
    rule = TEXT_RULES.get(name, "text")
    longest = MAX_ID if rule == "id" else MAX_TEXT
    if (  # the usual case: printable ASCII, no space at either end, valid under every rule
        type(value) is str
        and 0 < len(value) <= longest
        and value.isascii()
        and value.isprintable()
        and value[0] != " "
        and value[-1] != " "
    ):
        return None
    if not isinstance(value, str):
        return f"must be a string of 1-{longest:,} characters"
    if not value.strip():
        return "must not be empty or blank"
    if len(value) > longest:
        return f"must be at most {longest:,} characters long (it has {len(value):,})"
    if rule == "id" and value != value.strip():
        return "must not start or end with spaces or other white space"
    if value.isascii() and value.isprintable():
        return None  # the usual case: valid under every rule, without a look at each char
    for position, char in enumerate(value):
        if _forbidden(char, rule):
            return f"contains {_describe(char)} at position {position}, which is not allowed"
    return None


def column_problems(values: pa.Array, name: str) -> list[tuple[int, str]]:
    """(position, problem) for each non-null value of a text column that breaks the
    field's rule, as text_problem says; each distinct value is checked once. `values`
    may come dictionary-encoded already."""
    encoded = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
    distinct = encoded.dictionary
    # Printable ASCII, not blank at either end, short enough: valid under every rule,
    # found without Python; only the other values are looked at character by character.
    plain = pc.and_(
        pc.match_substring_regex(distinct, r"^[!-~]([ -~]*[!-~])?$"),
        pc.less_equal(pc.utf8_length(distinct), MAX_ID),
    )
    others = np.flatnonzero(~pc.fill_null(plain, False).to_numpy(zero_copy_only=False))
    wrong = {
        int(code): f"{name} {problem}"
        for code in others
        if (problem := text_problem(distinct[int(code)].as_py(), name)) is not None
    }
    if not wrong:
        return []
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(np.isin(codes, list(wrong)))
    return [(int(row), wrong[int(codes[row])]) for row in rows]


def actor_column(values: pa.Array) -> pa.Array:
    """actor_name of every value of a column (nulls stay null)."""
    encoded = pc.dictionary_encode(values)
    names = pa.array([actor_name(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return names.take(encoded.indices)


def _forbidden(char: str, rule: TextRule) -> bool:
    category = unicodedata.category(char)
    if category == "Cs":
        return True  # a lone surrogate: not text, cannot be stored
    if rule == "text":
        return category == "Cc" and char not in "\n\t\r"
    return not char.isprintable()


def _describe(char: str) -> str:
    name = unicodedata.name(char, "") or f"category {unicodedata.category(char)}"
    return f"U+{ord(char):04X} ({name})"


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
    if _depth(value) > MAX_METADATA_DEPTH:
        raise InvalidMetadata(
            f"{name} is nested more than {MAX_METADATA_DEPTH} levels deep; keep it flat "
            "(a few levels of dicts and lists)."
        )
    try:
        encoded = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
        if "\\u" in encoded:  # text beyond ASCII, escaped: lone surrogates fail here
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidMetadata(
            f"{name} holds text that is not valid Unicode ({_describe(error.object[error.start])}"
            "); send UTF-8 text."
        ) from None
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


def _depth(value: object) -> int:
    """How deeply dicts and lists nest in `value` (without recursion)."""
    if isinstance(value, dict) and not any(isinstance(v, NESTING) for v in value.values()):
        return 1  # the usual metadata: one flat dict
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, NESTING):
            deepest = max(deepest, level)
            if level > MAX_METADATA_DEPTH:
                break
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def model_of(metadata: dict[str, Any] | None) -> str | None:
    """The generation's model named in checked metadata (see metadata()), if any."""
    model = None if metadata is None else metadata.get("model")
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


def ttl_seconds(value: object) -> timedelta:
    """A hold lifetime given in seconds (the CLI's --ttl, the API's ttl_seconds)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or not 0 < value <= MAX_TTL.total_seconds()
    ):
        raise InvalidTTL(
            f"ttl must be a number of seconds from 1 to {MAX_TTL.total_seconds():,.0f} "
            f"({MAX_TTL.days} days), such as 900, not {value!r}. Extend long jobs with extend()."
        )
    return ttl(timedelta(seconds=float(value)))


def event_window(now: datetime | None) -> tuple[datetime, datetime | None]:
    """When a finished generation may be stamped: from EARLIEST_EVENT to now plus
    MAX_CLOCK_SKEW (no upper bound without a clock)."""
    return EARLIEST_EVENT, None if now is None else now + MAX_CLOCK_SKEW


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
