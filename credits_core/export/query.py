"""Filters and group-by of a usage export, turned into one parameterised SQL relation.

`UsageQuery` is the analyst's request (checked on creation). `relation_sql` gives the
SELECT over the ledger's tables: filters are bound parameters (lists as
`IN (SELECT unnest($list))`), identifiers come only from the fixed tables below.
`Export.prepare` registers the price book lookups on a cursor, so that the relation can
be previewed, counted or copied to a file by DuckDB in one read snapshot.

Usage events are journal entries. A generation counts once, by its outcome: a capture,
a release that captured nothing, or an expiry (a reserve entry is not counted; the
release of the rest of a partial capture is not a generation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from typing import TypeVar

import duckdb
import pandas as pd

from credits_core.export import lookups
from credits_core.export.columns import KEYS, Column, columns_of
from credits_core.export.errors import (
    InvalidTimeRange,
    UnknownEventKind,
    UnknownGrouping,
    UnknownProvider,
)
from credits_core.ledger import Ledger
from credits_core.pricing import PriceBook

T = TypeVar("T")

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
KEY_SQL = {
    "month": "date_trunc('month', ts AT TIME ZONE 'UTC')::DATE AS month",
    "week": "date_trunc('week', ts AT TIME ZONE 'UTC')::DATE AS week",
    "day": "(ts AT TIME ZONE 'UTC')::DATE AS day",
    "user_id": "user_id",
    "plan": "plan",
    "provider": "provider",
    "model": "model",
}
MONTH_SQL = KEY_SQL["month"]


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


# --------------------------------------------------------------------------- SQL

EVENTS_SQL = """
WITH bulk AS (  -- usage booked in bulk (apply_usage): one entry per generation, no hold
    SELECT account_no, ts, kind, user_id, transaction_id, credits, model,
           true AS generation,
           CASE WHEN kind = 'capture' THEN -credits
                ELSE (metadata ->> 'reserved')::BIGINT END AS credits_reserved,
           NULL::DOUBLE AS quoted_cost,
           (metadata -> 'options')::VARCHAR AS options
    FROM journal
    WHERE kind IN ('capture', 'release') AND held = 0 AND {entry_conditions}
),
{refunded},
other AS (  -- the entries of holds, grants, refunds, adjustments: few, so join them
    SELECT j.account_no, j.ts, j.kind, j.user_id, j.transaction_id, j.credits,
           coalesce(j.model, h.model, h.metadata ->> 'model', r.model) AS model,
           j.kind IN ('capture', 'expire')
               OR (j.kind = 'release' AND coalesce(h.captured, 0) = 0) AS generation,
           CASE WHEN j.kind IN ('capture', 'expire')
                  OR (j.kind = 'release' AND coalesce(h.captured, 0) = 0) THEN h.credits
           END AS credits_reserved,
           h.provider_cost_usd AS quoted_cost,
           h.options::VARCHAR AS options
    FROM (SELECT * FROM journal
          WHERE NOT (kind IN ('capture', 'release') AND held = 0)
            AND {entry_conditions}) AS j
    LEFT JOIN holds AS h USING (transaction_id)
    LEFT JOIN refunded AS r USING (transaction_id)
),
events AS (
    SELECT * FROM bulk UNION ALL SELECT * FROM other
)
SELECT ev.ts,
       CASE ev.kind WHEN 'expire' THEN 'expiry' WHEN 'adjust' THEN 'adjustment'
                    ELSE ev.kind::VARCHAR END AS kind,
       ev.user_id, a.plan, ev.transaction_id, ev.model, m.provider, m.modality,
       ev.generation,
       ev.generation AND ev.kind <> 'capture' AS failed,
       ev.credits_reserved,
       CASE WHEN ev.kind = 'capture' THEN -ev.credits ELSE 0 END AS credits_spent,
       ev.credits AS balance_change,
       CASE WHEN ev.kind = 'capture' THEN -ev.credits ELSE 0 END * $credit_usd AS usd_value,
       CASE WHEN ev.kind = 'capture'
            THEN coalesce(ev.quoted_cost, oc.provider_cost_usd, sc.provider_cost_usd)
       END AS provider_cost_usd
FROM events AS ev
LEFT JOIN accounts AS a ON a.account_no = ev.account_no
LEFT JOIN export_models AS m ON m.model = ev.model
LEFT JOIN export_option_costs AS oc ON oc.model = ev.model AND oc.options = ev.options
LEFT JOIN export_sku_costs AS sc
    ON sc.model = ev.model AND sc.plan = coalesce(a.plan, '')
   AND sc.credits = ev.credits_reserved
WHERE {event_conditions}
"""
REFUNDED_SQL = """refunded AS (  -- refund entries carry no model: the refunded capture has it
    SELECT transaction_id, any_value(model) AS model
    FROM journal
    WHERE kind = 'capture' AND transaction_id IN (
        SELECT transaction_id FROM journal WHERE kind = 'refund' AND {entry_conditions})
    GROUP BY transaction_id
)"""
NO_REFUNDS_SQL = """refunded AS (  -- refunds are not exported
    SELECT NULL::VARCHAR AS transaction_id, NULL::VARCHAR AS model WHERE false
)"""

MEASURES_SQL = """
    count(*) AS events,
    count(*) FILTER (WHERE generation) AS generations,
    count(*) FILTER (WHERE kind = 'capture') AS captures,
    count(*) FILTER (WHERE failed) AS failures,
    count(*) FILTER (WHERE failed) / nullif(count(*) FILTER (WHERE generation), 0)
        AS failure_rate,
    sum(credits_spent)::BIGINT AS credits_spent,
    coalesce(sum(balance_change) FILTER (WHERE kind = 'grant'), 0)::BIGINT AS credits_granted,
    coalesce(sum(balance_change) FILTER (WHERE kind = 'refund'), 0)::BIGINT AS credits_refunded,
    coalesce(sum(balance_change) FILTER (WHERE kind = 'adjustment'), 0)::BIGINT
        AS credits_adjusted,
    sum(balance_change)::BIGINT AS balance_change,
    sum(usd_value) AS usd_value,
    sum(provider_cost_usd) AS provider_cost_usd,
    count(provider_cost_usd) AS costed_captures
"""

ENTRY_FILTERS = {  # UsageQuery field -> condition on journal entries
    "since": "ts >= $since",
    "until": "ts < $until",
    "users": "user_id IN (SELECT unnest($users::VARCHAR[]))",
}
EVENT_FILTERS = {  # UsageQuery field -> condition on the joined events
    "models": "ev.model IN (SELECT unnest($models::VARCHAR[]))",
    "providers": "m.provider IN (SELECT unnest($providers::VARCHAR[]))",
    "plans": "a.plan IN (SELECT unnest($plans::VARCHAR[]))",
}


def relation_sql(query: UsageQuery, credit_usd: float) -> tuple[str, dict[str, object]]:
    """The export's SELECT and its parameters (the lookups must be registered)."""
    kinds = [EVENT_KINDS[k] for k in query.kinds or EVENT_KINDS]
    params: dict[str, object] = {"credit_usd": credit_usd, "kinds": kinds}
    entry_conditions = ["list_contains($kinds, kind::VARCHAR)"]
    event_conditions = ["true"]
    for filters, conditions in (
        (ENTRY_FILTERS, entry_conditions),
        (EVENT_FILTERS, event_conditions),
    ):
        for name, condition in filters.items():
            value = getattr(query, name)
            if value:
                conditions.append(condition)
                params[name] = list(value) if isinstance(value, tuple) else value
    entries = " AND ".join(entry_conditions)
    refunded = REFUNDED_SQL if "refund" in (query.kinds or EVENT_KINDS) else NO_REFUNDS_SQL
    events = EVENTS_SQL.format(
        entry_conditions=entries,
        refunded=refunded.format(entry_conditions=entries),
        event_conditions=" AND ".join(event_conditions),
    )
    if not query.group_by:
        return events, params
    keys = query.key_columns
    grouped = (
        f"SELECT {', '.join(KEY_SQL[k] for k in keys)},{MEASURES_SQL}"
        f"FROM ({events}) AS usage\nGROUP BY ALL\nORDER BY {', '.join(keys)}"
    )
    return grouped, params


# --------------------------------------------------------------------------- running it


def read_snapshot(ledger: Ledger, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """Run `work` on a cursor of the ledger's own connection, in one read snapshot (the
    dashboard holds the file read-write, so no other connection could open it)."""
    return ledger.snapshot(work)


OPTIONS_RECORDED_SQL = """
SELECT DISTINCT model, (metadata -> 'options')::VARCHAR AS options
FROM journal
WHERE kind = 'capture' AND metadata IS NOT NULL AND (metadata -> 'options') IS NOT NULL
UNION
SELECT DISTINCT coalesce(model, metadata ->> 'model'), options::VARCHAR
FROM holds
WHERE options IS NOT NULL AND provider_cost_usd IS NULL
"""


@dataclass(frozen=True)
class Export:
    """A UsageQuery bound to a price book: its SQL, ready to run on a ledger cursor."""

    query: UsageQuery
    book: PriceBook = field(repr=False)

    def __post_init__(self) -> None:
        """Providers are checked against the price book, ignoring case."""
        known = {p.casefold(): p for v in self.book.versions for p in v.providers}
        providers = []
        for name in self.query.providers:
            if name.casefold() not in known:
                raise UnknownProvider(name, sorted(set(known.values())))
            providers.append(known[name.casefold()])
        object.__setattr__(self, "query", replace(self.query, providers=tuple(providers)))

    @property
    def credit_usd(self) -> float:
        return float(self.book.versions[-1].credit_usd)

    def sql(self) -> tuple[str, dict[str, object]]:
        return relation_sql(self.query, self.credit_usd)

    def prepare(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Register the price book lookups the relation joins (on this cursor only)."""
        recorded = [tuple(row) for row in cur.execute(OPTIONS_RECORDED_SQL).fetchall()]
        cur.register("export_models", lookups.models_table(self.book))
        cur.register("export_sku_costs", lookups.sku_costs_table(self.book))
        cur.register("export_option_costs", lookups.option_costs_table(self.book, recorded))

    def count(self, cur: duckdb.DuckDBPyConnection) -> int:
        sql, params = self.sql()
        (rows,) = cur.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()
        return int(rows)

    def head(self, cur: duckdb.DuckDBPyConnection, limit: int) -> pd.DataFrame:
        """The first rows: events newest first, groups in key order."""
        sql, params = self.sql()
        order = "" if self.query.group_by else "ORDER BY ts DESC, transaction_id"
        return cur.execute(
            f"SELECT * FROM ({sql}) {order} LIMIT $limit", {**params, "limit": limit}
        ).df()
