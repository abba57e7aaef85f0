"""The export's data dictionary: every column of every export shape, its type and meaning.

An export has one of two shapes. Grouped by none it is one row per ledger event
(EVENT_COLUMNS). Grouped by keys it is one row per distinct combination of the chosen
keys (KEY_COLUMNS, in this fixed order) followed by MEASURE_COLUMNS. Names and DuckDB
types are a contract: tests compare them with what the export really writes, and the
README's data dictionary with this module.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # the DuckDB type of the column in the export
    meaning: str


EVENT_COLUMNS = (
    Column("ts", "TIMESTAMP WITH TIME ZONE", "when the ledger booked the event (UTC)"),
    Column(
        "kind",
        "VARCHAR",
        "capture, release, expiry, grant, refund or adjustment",
    ),
    Column("user_id", "VARCHAR", "the user"),
    Column("plan", "VARCHAR", "the user's plan (as the account has it now)"),
    Column("transaction_id", "VARCHAR", "the generation, grant or adjustment it belongs to"),
    Column("model", "VARCHAR", "the generation's model; NULL for grants and adjustments"),
    Column("provider", "VARCHAR", "the model's provider in the price book"),
    Column("modality", "VARCHAR", "image, video or music, from the price book"),
    Column(
        "generation",
        "BOOLEAN",
        "true when the row is the outcome of one generation (a capture, a failed release, "
        "an expiry); false for the returned rest of a partial capture and for non-usage",
    ),
    Column("failed", "BOOLEAN", "true for a generation that was released or expired"),
    Column(
        "credits_reserved",
        "BIGINT",
        "credits the generation held before it resolved; NULL for non-generations",
    ),
    Column("credits_spent", "BIGINT", "credits captured (0 unless a capture)"),
    Column(
        "balance_change",
        "BIGINT",
        "signed change of the user's total balance (negative for a capture)",
    ),
    Column("usd_value", "DOUBLE", "credits_spent x the price book's credit_usd"),
    Column(
        "provider_cost_usd",
        "DOUBLE",
        "what the provider charges for a captured generation, where known (see below); "
        "NULL otherwise",
    ),
)

KEY_COLUMNS = (
    Column("month", "DATE", "first day of the month (UTC)"),
    Column("week", "DATE", "Monday of the ISO week (UTC)"),
    Column("day", "DATE", "the day (UTC)"),
    Column("user_id", "VARCHAR", "the user"),
    Column("plan", "VARCHAR", "the user's plan"),
    Column("provider", "VARCHAR", "the model's provider"),
    Column("model", "VARCHAR", "the model"),
)

MEASURE_COLUMNS = (
    Column("events", "BIGINT", "ledger events in the group"),
    Column("generations", "BIGINT", "generations (each counted once, by its outcome)"),
    Column("captures", "BIGINT", "generations that succeeded and were captured"),
    Column("failures", "BIGINT", "generations released or expired"),
    Column("failure_rate", "DOUBLE", "failures / generations; NULL without generations"),
    Column("credits_spent", "BIGINT", "credits captured"),
    Column("credits_granted", "BIGINT", "credits granted (plan, top-up, promo grants)"),
    Column("credits_refunded", "BIGINT", "credits given back by refunds"),
    Column("credits_adjusted", "BIGINT", "net credits of goodwill adjustments (signed)"),
    Column("balance_change", "BIGINT", "net signed change of the users' balances"),
    Column("usd_value", "DOUBLE", "credits_spent x credit_usd"),
    Column("provider_cost_usd", "DOUBLE", "provider cost of the captures whose cost is known"),
    Column("costed_captures", "BIGINT", "captures whose provider cost is known"),
)

KEYS = tuple(column.name for column in KEY_COLUMNS)


def columns_of(group_by: tuple[str, ...]) -> tuple[Column, ...]:
    """The columns of an export grouped by `group_by` (empty: one row per event)."""
    if not group_by:
        return EVENT_COLUMNS
    return tuple(c for c in KEY_COLUMNS if c.name in group_by) + MEASURE_COLUMNS
