"""The ledger's domain values: small immutable records returned by the public API.

Each can round-trip through a JSON dict (`to_dict` / `from_dict`), which is how the
first result of an idempotent write is kept and returned again.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from datetime import UTC, datetime
from typing import Any, NamedTuple, Self

GRANT_KINDS = ("plan", "topup", "promo", "adjustment")
# Lower burns first. Goodwill and promotional credits go before the plan allowance,
# purchased top-ups last.
DEFAULT_PRIORITY = {"adjustment": 0, "promo": 10, "plan": 20, "topup": 30}
HOLD_STATUSES = ("pending", "captured", "released", "expired")
ENTRY_KINDS = (
    "grant",
    "reserve",
    "capture",
    "release",
    "expire",
    "extend",
    "grant_expired",
    "adjust",
    "refund",
)


class Balance(NamedTuple):
    """A user's credits now: total = held + available."""

    total: int
    held: int
    available: int


class _Record:
    """JSON round trip for the frozen dataclasses below; times always in datetime.UTC."""

    def __post_init__(self) -> None:
        for name in _times(type(self)):
            value = getattr(self, name)
            if isinstance(value, datetime) and value.tzinfo is not UTC:
                object.__setattr__(self, name, value.astimezone(UTC))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _encode(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        hints = typing.get_type_hints(cls)
        return cls(**{name: _decode(hints[name], value) for name, value in data.items()})


@functools.cache
def _times(cls: type) -> tuple[str, ...]:
    """The fields of a record that hold a time."""
    hints = typing.get_type_hints(cls)
    return tuple(
        f.name for f in dataclasses.fields(cls) if datetime in _alternatives(hints[f.name])
    )


def _encode(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_encode(item) for item in value]
    return value


def _decode(hint: object, value: object) -> object:
    if value is None:
        return None
    if datetime in _alternatives(hint):
        return datetime.fromisoformat(value)
    if typing.get_origin(hint) is tuple:
        return tuple(tuple(item) if isinstance(item, list) else item for item in value)
    return value


def _alternatives(hint: object) -> tuple[object, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return (hint,)


@dataclasses.dataclass(frozen=True)
class Account(_Record):
    """Who the credits belong to."""

    user_id: str
    email: str | None
    plan: str | None
    created_at: datetime


@dataclasses.dataclass(frozen=True)
class Grant(_Record):
    """Credits given to a user: they burn by priority, soonest expiry, age, then number."""

    grant_id: str
    user_id: str
    kind: str
    credits: int
    remaining: int
    priority: int
    expires_at: datetime | None
    created_at: datetime
    transaction_id: str
    reason: str | None = None
    actor: str | None = None
    expired_at: datetime | None = None

    def is_live(self, now: datetime) -> bool:
        """Spendable at `now`: a grant stops being spendable at the instant it expires."""
        return self.expires_at is None or now < self.expires_at


@dataclasses.dataclass(frozen=True)
class Reservation(_Record):
    """A hold: credits set aside for one generation until captured, released or expired."""

    transaction_id: str
    user_id: str
    credits: int
    status: str
    reason: str | None
    created_at: datetime
    expires_at: datetime
    captured: int = 0
    released: int = 0
    resolved_at: datetime | None = None
    model: str | None = None
    metadata_json: str | None = None
    price_book_version: str | None = None
    options_json: str | None = None
    provider_cost_usd: float | None = None
    drawn: tuple[tuple[str, int], ...] = ()

    @property
    def metadata(self) -> dict[str, Any] | None:
        return None if self.metadata_json is None else json.loads(self.metadata_json)

    def resolved(self, status: str, captured: int, released: int, at: datetime) -> Self:
        """This hold once resolved at `at`: captured, released or expired. (Its fields
        copied: `dataclasses.replace` runs the checks of every field again, and cost a
        confirm five times as much.)"""
        assert self.status == "pending" and status in HOLD_STATUSES[1:], (self.status, status)
        assert min(captured, released) >= 0 and captured + released == self.credits, (
            f"hold {self.transaction_id} of {self.credits} resolved as {captured} + {released}"
        )
        copy = object.__new__(type(self))
        copy.__dict__.update(
            self.__dict__,
            status=status,
            captured=captured,
            released=released,
            resolved_at=at if at.tzinfo is UTC else at.astimezone(UTC),
        )
        return copy

    @property
    def options(self) -> dict[str, Any] | None:
        return None if self.options_json is None else json.loads(self.options_json)


@dataclasses.dataclass(frozen=True)
class Entry(_Record):
    """One journal entry, as returned by adjust() and refund()."""

    transaction_id: str
    user_id: str
    kind: str
    credits: int
    balance_after: int
    ts: datetime
    reason: str | None = None
    actor: str | None = None
    grant_id: str | None = None


@dataclasses.dataclass(frozen=True)
class Sweep(_Record):
    """What one expire_holds / expire_grants run did."""

    count: int
    credits: int
    ids: tuple[str, ...] = ()
    users: tuple[str, ...] = ()  # whose balances it changed
