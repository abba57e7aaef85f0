"""Errors over HTTP: each credits error's status, type and extra fields, both ways.

The server turns an exception into `{"error": {"type", "message", "class", ...}}` with
the status of DESIGN.md's error table; `message` is the exception's own text. The
client (`credits_core.client`) turns that JSON back into the same exception class with
the same message and attributes, so code that catches `InsufficientCredits` works the
same against the embedded ledger and the server. This module imports no web framework.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from credits_core.alerts import errors as alert_errors
from credits_core.errors import CreditsError
from credits_core.export import errors as export_errors
from credits_core.ledger import errors as ledger_errors
from credits_core.pricing import errors as pricing_errors


@dataclass
class ApiError(Exception):
    """An error answer: HTTP status, error type, message and extra fields."""

    status: int
    type: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"error": {"type": self.type, "message": self.message, **self.extra}}


# (class, status, type): the first class an exception is an instance of decides.
RULES: tuple[tuple[type[BaseException], int, str], ...] = (
    (ledger_errors.InsufficientCredits, 402, "insufficient_credits"),
    (ledger_errors.UnknownAccount, 404, "unknown_account"),
    (ledger_errors.UnknownTransaction, 404, "unknown_transaction"),
    (ledger_errors.IdempotencyConflict, 409, "idempotency_conflict"),
    (ledger_errors.AccountExists, 409, "account_exists"),
    (ledger_errors.HoldExpired, 410, "hold_expired"),
    (ledger_errors.TransactionClosed, 409, "transaction_closed"),
    (ledger_errors.InvalidAmount, 400, "invalid_request"),
    (ledger_errors.InvalidArgument, 400, "invalid_request"),
    (pricing_errors.UnknownModel, 422, "unknown_model"),
    (pricing_errors.UnknownProvider, 422, "unknown_provider"),
    (pricing_errors.UnknownPlan, 422, "unknown_plan"),
    (pricing_errors.InvalidOption, 422, "invalid_option"),
    (pricing_errors.MissingOption, 422, "missing_option"),
    (pricing_errors.NoPriceBookInForce, 422, "no_price_book_in_force"),
    (ledger_errors.LedgerBusy, 503, "ledger_unavailable"),
    (ledger_errors.LedgerClosed, 503, "ledger_unavailable"),
    (ledger_errors.WriteFailed, 503, "ledger_unavailable"),  # retry with the same key
    (ledger_errors.LedgerError, 500, "ledger_error"),
    (pricing_errors.PricingError, 422, "pricing_error"),
    (LookupError, 404, "not_found"),
    (ValueError, 400, "invalid_request"),  # other modules' bad input (export, alerts)
)
# Which request field a bad-input error is about.
FIELDS: tuple[tuple[type[BaseException], str], ...] = (
    (ledger_errors.InvalidAmount, "credits"),
    (ledger_errors.InvalidUserId, "user_id"),
    (ledger_errors.InvalidTTL, "ttl_seconds"),
    (ledger_errors.InvalidMetadata, "metadata"),
    (ledger_errors.InvalidKind, "kind"),
    (ledger_errors.InvalidTimestamp, "expires_at"),
    (ledger_errors.QuoteMismatch, "credits"),
)
# Attributes worth carrying, per class, so the client can restore them.
ATTRIBUTES = (
    "required",
    "available",
    "shortfall",
    "user_id",
    "transaction_id",
    "status",
    "key",
    "model",
    "option",
    "path",
    "attempts",
)
RETRY_AFTER_S = 1


def from_exception(error: BaseException, *, field_name: str | None = None) -> ApiError:
    """The HTTP answer for a credits error (anything else: 500 with no detail)."""
    rule = next((r for r in RULES if isinstance(error, r[0])), None)
    if rule is None or not isinstance(error, CreditsError):
        return ApiError(500, "internal_error", "The server failed; nothing was written.")
    _cls, status, kind = rule
    extra: dict[str, Any] = {"class": type(error).__name__}
    for name in ATTRIBUTES:
        value = getattr(error, name, None)
        if value is not None and isinstance(value, str | int | float):
            extra[name] = value
    if isinstance(error, pricing_errors.UnknownModel):
        extra["suggestions"] = list(error.closest)
    if isinstance(error, pricing_errors.MissingOption | pricing_errors.UnknownProvider):
        extra["valid_values"] = [_plain(v) for v in error.valid]
    if status == 400:
        extra["field"] = field_name or next(
            (name for cls, name in FIELDS if isinstance(error, cls)), None
        )
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else {}
    return ApiError(status, kind, str(error), extra, headers)


def invalid(message: str, field_name: str | None = None) -> ApiError:
    return ApiError(400, "invalid_request", message, {"field": field_name})


def _plain(value: object) -> object:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


# --------------------------------------------------------------------------- client side

CLASSES: dict[str, type[CreditsError]] = {
    cls.__name__: cls
    for module in (ledger_errors, pricing_errors, export_errors, alert_errors)
    for cls in vars(module).values()
    if isinstance(cls, type) and issubclass(cls, CreditsError)
}


class ServerError(CreditsError):
    """The server answered with an error that is not a ledger or pricing rule."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        self.status = status
        self.type = kind
        super().__init__(message)


class Unauthenticated(ServerError):
    """No key, a wrong key or a revoked key."""


class Forbidden(ServerError, PermissionError):
    """The key lacks the scope the endpoint needs."""


class InvalidRequest(ledger_errors.InvalidArgument):
    """The server refused the request's shape (bad JSON, wrong type, unknown field)."""


def to_exception(status: int, body: dict[str, Any]) -> CreditsError:
    """The exception an error answer stands for, with the server's message."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ServerError(status, "unexpected", f"The server answered {status}: {body!r}")
    message = str(error.get("message", ""))
    kind = str(error.get("type", ""))
    cls = CLASSES.get(str(error.get("class")))
    if cls is None:
        special = {401: Unauthenticated, 403: Forbidden}.get(status)
        if special is not None:
            return special(status, kind, message)
        if status == 400:
            cls = InvalidRequest
        else:
            return ServerError(status, kind, message)
    made = cls.__new__(cls)
    Exception.__init__(made, message)
    for name, value in error.items():
        if name in ATTRIBUTES or name == "field":
            setattr(made, name, value)
    if cls is pricing_errors.UnknownModel:
        made.closest = tuple(error.get("suggestions", ()))
    if "valid_values" in error:
        made.valid = tuple(error["valid_values"])
    return made
