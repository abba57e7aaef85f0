"""How every table shows its columns: human labels, number and date formats, widths.

`configure(frame)` gives each column of a frame its st.column_config: the one named in
LABELS when the column is known, else one made from its name (`_usd` is money, `_pct` a
percentage, `_at` a moment) and its type (integers with thousands separators, floats
rounded to two places, moments to the minute in UTC). Pages pass overrides for the few
columns that need more (links, a check box, a wider cell).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

WHEN = "YYYY-MM-DD HH:mm"
DAY = "YYYY-MM-DD"
INTEGER = "%,d"
SIGNED = "%+,d"
DECIMAL = "%,.2f"
MONEY = "dollar"  # $1,234.57
UNIT_MONEY = "$%.4f"  # what one generation costs: four places ($0.0035)
PERCENT = "%.1f%%"

# Column name -> (label, kind, width: small/medium/large or pixels); kinds: text, int,
# signed, decimal, money, unit_money, percent, when, day, flag, duration, json.
LABELS: dict[str, tuple[str, str, str | int | None]] = {
    "user_id": ("User", "text", "small"),
    "email": ("Email", "text", "medium"),
    "plan": ("Plan", "text", "small"),
    "agent": ("Agent", "text", "medium"),
    "actor": ("By", "text", 120),
    "kind": ("Kind", "text", 80),
    "ts": ("When (UTC)", "when", 135),
    "credits": ("Credits", "int", 75),
    "held": ("Held", "int", "small"),
    "total": ("Total", "int", "small"),
    "available": ("Available", "int", "small"),
    "balance_after": ("Balance after", "int", 105),
    "held_after": ("Held after", "int", "small"),
    "available_after": ("Available after", "int", 115),
    "transaction_id": ("Transaction", "text", "medium"),
    "grant_id": ("Grant", "text", "medium"),
    "reason": ("Reason", "text", "large"),
    "model": ("Model", "text", 150),
    "options": ("Options", "text", 180),
    "metadata": ("Details", "json", "large"),
    "seq": ("Entry #", "int", "small"),
    "remaining": ("Remaining", "int", "small"),
    "priority": ("Priority", "int", "small"),
    "status": ("Status", "text", "small"),
    "captured": ("Captured", "int", "small"),
    "held_for": ("Held for", "duration", "small"),
    "stuck": ("Stuck", "flag", "small"),
    "provider": ("Provider", "text", "small"),
    "modality": ("Modality", "text", "small"),
    "usd_value": ("USD value", "unit_money", "small"),
    "provider_cost_usd": ("Provider cost", "unit_money", 95),
    "cost_is_estimate": ("Cost estimated", "flag", "small"),
    "margin_usd": ("Margin", "unit_money", "small"),
    "margin_pct": ("Margin %", "percent", 80),
    "below_cost": ("Below cost", "flag", "small"),
    "below_cost_on": ("Below cost on", "text", 190),
    "derived": ("Derived", "flag", "small"),
    "promotion": ("Promotion", "text", "small"),
    "price_book_version": ("Price book", "text", "small"),
    "severity": ("Severity", "text", "small"),
    "rule": ("Rule", "text", "medium"),
    "rules": ("Rules", "text", 300),
    "alerts": ("Alerts", "int", "small"),
    "burn_per_day": ("Burn per day", "decimal", 100),
    "days_left": ("Days left", "decimal", "small"),
    "note": ("Note", "text", "large"),
    "message": ("Message", "text", "large"),
    "last_error": ("Last error", "text", "large"),
    "attempts": ("Attempts", "int", "small"),
    "destination": ("Destination", "text", "medium"),
    "measure": ("Measure", "text", "large"),
    "value": ("Value", "text", "medium"),
    "day": ("Day", "day", "small"),
    "date": ("Day", "day", "small"),
    "delta": ("Change", "signed", "small"),
    "delta_pct": ("Change %", "percent", "small"),
    "change": ("Change", "text", "small"),
    "credits_before": ("Credits before", "int", "small"),
    "credits_after": ("Credits after", "int", "small"),
    "per_day": ("Per day", "decimal", "small"),
    "run": ("Run", "int", "small"),
    "step": ("Step", "text", "medium"),
    "detail": ("Detail", "text", "large"),
    "sku": ("SKU (options)", "text", "large"),
    "days_earlier": ("Days earlier", "decimal", "small"),
    "credits_change": ("Credits change", "signed", "small"),
    "credits_charged": ("Credits charged", "int", "small"),
    "credits_each": ("Credits each", "int", "small"),
    "generations": ("Generations", "int", "small"),
    "refused": ("Refused", "int", "small"),
    "spent": ("Spent", "int", "small"),
    "item": ("Item", "text", "medium"),
    "usd": ("USD", "money", "small"),
}


# Sums of dollars in the simulator's tables: revenue_before, cost_after, margin_after...
MONEY_PREFIXES = ("revenue_", "cost_", "margin_before", "margin_after", "paid_")


def label_of(name: str) -> str:
    """A column's human label: from LABELS, else its name in words."""
    if name in LABELS:
        return LABELS[name][0]
    words = name.replace("_", " ")
    for suffix, unit in ((" usd", " (USD)"), (" pct", " %")):
        if words.endswith(suffix):
            words = words[: -len(suffix)] + unit
    return words[:1].upper() + words[1:]


def _kind_of(name: str, dtype) -> str:
    if name in LABELS:
        return LABELS[name][1]
    if name.endswith("_usd") or name.startswith(MONEY_PREFIXES):
        return "money"
    if name.endswith("_pct") or name.startswith("margin_pct"):
        return "percent"
    if pd.api.types.is_bool_dtype(dtype):
        return "flag"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "when"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "decimal"
    return "text"


def column(name: str, dtype=None, width: str | int | None = None):
    """The st.column_config for one column."""
    label = label_of(name)
    kind = _kind_of(name, dtype)
    width = width or (LABELS[name][2] if name in LABELS else None)
    numbers = {"int": INTEGER, "signed": SIGNED, "decimal": DECIMAL, "money": MONEY,
               "unit_money": UNIT_MONEY, "percent": PERCENT}  # fmt: skip
    if kind in numbers:
        return st.column_config.NumberColumn(label, format=numbers[kind], width=width)
    if kind == "when":
        return st.column_config.DatetimeColumn(label, format=WHEN, width=width)
    if kind == "day":
        return st.column_config.DateColumn(label, format=DAY, width=width)
    if kind == "flag":
        return st.column_config.CheckboxColumn(label, width=width)
    if kind == "duration":  # a timedelta, humanized ("15 minutes")
        return st.column_config.NumberColumn(label, width=width)
    if kind == "json":
        return st.column_config.JsonColumn(label, width=width)
    return st.column_config.TextColumn(label, width=width)


def configure(frame: pd.DataFrame, overrides: dict | None = None) -> dict:
    """column_config for every column of `frame`; `overrides` win."""
    config = {name: column(name, frame[name].dtype) for name in frame.columns}
    return config | (overrides or {})
