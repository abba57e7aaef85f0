"""The analyst's usage export request: which events (time range, users, models, providers,
plans, kinds) and how grouped, checked when it is made (`UsageQuery`), with the file name
and the columns it gives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from credits_core.export.columns import KEYS, Column, columns_of
from credits_core.export.errors import InvalidTimeRange, UnknownEventKind, UnknownGrouping

# export name -> journal entry kind
EVENT_KINDS = {
    "capture": "capture",
    "release": "release",
    "expiry": "expire",
    "grant": "grant",
    "refund": "refund",
    "adjustment": "adjust",
}
KIND_ALIASES = {
    "captures": "capture",
    "releases": "release",
    "expiries": "expiry",
    "expire": "expiry",
    "grants": "grant",
    "refunds": "refund",
    "adjustments": "adjustment",
    "adjust": "adjustment",
}
# group-by name -> key column
GROUPINGS = {
    "user": "user_id",
    "model": "model",
    "provider": "provider",
    "plan": "plan",
    "day": "day",
    "week": "week",
    "month": "month",
}


@dataclass(frozen=True)
class UsageQuery:
    """What to export: events in [since, until) matching every filter given (an empty
    filter matches everything), one row per event or grouped by `group_by`. Lists may
    be any iterable or a comma-separated string; they are kept as tuples."""

    since: datetime | date | None = None
    until: datetime | date | None = None
    users: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    plans: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        since, until = _moment(self.since, "from"), _moment(self.until, "to")
        if since is not None and until is not None and since >= until:
            raise InvalidTimeRange(f"'from' ({since:%Y-%m-%d %H:%M}) is not before 'to' "
                                   f"({until:%Y-%m-%d %H:%M}).")  # fmt: skip
        object.__setattr__(self, "since", since)
        object.__setattr__(self, "until", until)
        for name in ("users", "models", "providers", "plans"):
            object.__setattr__(self, name, _texts(getattr(self, name)))
        object.__setattr__(self, "kinds", tuple(_kind(k) for k in _texts(self.kinds)))
        object.__setattr__(self, "group_by", _grouping(_texts(self.group_by)))

    def file_stem(self) -> str:
        """A file name (without extension) that says what the export holds: its days
        (both included), filters and grouping, e.g.
        `usage-2026-11-01-to-2026-11-30-providers-google-kinds-capture-by-model-day`."""
        parts = ["usage"]
        if self.since is not None:
            parts.append(f"{self.since:%Y-%m-%d}")
        if self.until is not None:
            last = self.until - timedelta(days=1) if self.until.time() == time(0) else self.until
            parts += ["to", f"{last:%Y-%m-%d}"]
        for name in ("users", "models", "providers", "plans", "kinds"):
            values = getattr(self, name)
            if values:
                more = [f"and-{len(values) - 3}-more"] if len(values) > 3 else []
                parts += [name, *values[:3], *more]
        parts += ["by", *self.group_by] if self.group_by else ["events"]
        slug = "-".join(parts).lower()
        return re.sub(r"[^a-z0-9.]+", "-", slug).strip("-")[:180]

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The key columns of the grouped shape, in the data dictionary's order."""
        wanted = {GROUPINGS[g] for g in self.group_by}
        return tuple(key for key in KEYS if key in wanted)

    @property
    def columns(self) -> tuple[Column, ...]:
        return columns_of(self.key_columns)

    @property
    def has_month(self) -> bool:
        """Whether each row falls in one month (a week may straddle two)."""
        return not self.group_by or bool({"day", "month"} & set(self.key_columns))


def _moment(value: object, name: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time.min, UTC)
    raise InvalidTimeRange(f"'{name}' must be a date or a datetime, not {value!r}.")


def _texts(values: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = values.split(",")
    return tuple(dict.fromkeys(v.strip() for v in values if v and v.strip()))


def _kind(name: str) -> str:
    kind = KIND_ALIASES.get(name.lower(), name.lower())
    if kind not in EVENT_KINDS:
        raise UnknownEventKind(name, EVENT_KINDS)
    return kind


def _grouping(names: tuple[str, ...]) -> tuple[str, ...]:
    chosen = []
    for name in names:
        if name.lower() == "none":
            continue
        if name.lower() not in GROUPINGS:
            raise UnknownGrouping(name, ("none", *GROUPINGS))
        chosen.append(name.lower())
    return tuple(chosen)
