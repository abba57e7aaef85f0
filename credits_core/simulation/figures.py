"""Figures of the simulator's summary tables as people read them: thousands separators,
dollars with the sign in front, days and percentages to one decimal, no float noise."""

from __future__ import annotations


def count(value: int) -> str:
    return f"{int(value):,}"


def usd(value: float) -> str:
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def days(value: float | None) -> str:
    return "none" if value is None else f"{value:,.1f}"


def percent(value: float) -> str:
    return f"{value:.1f}%"


def seconds(value: float, places: int = 2) -> str:
    return f"{value:.{places}f} s"
