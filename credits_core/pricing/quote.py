"""A priced request: `Quote`, and the `Step`s of its breakdown."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from credits_core.pricing.options import OptionValue, format_value


@dataclass(frozen=True)
class Step:
    """One step that made the price: which rule, what it did, the credits after it."""

    rule: str
    detail: str
    credits: int

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail} -> {self.credits} credits"


@dataclass(frozen=True)
class Quote:
    """The price of one generation request under one version of the price book."""

    model: str
    provider: str
    modality: str
    options: Mapping[str, OptionValue]
    credits: int
    breakdown: tuple[Step, ...]
    price_book_version: str
    at: datetime
    plan: str | None
    promotion: str | None
    derived: bool
    credit_usd: Decimal
    provider_cost_usd: float | None
    cost_is_estimate: bool

    @property
    def usd_value(self) -> float:
        """What the credits are worth at the book's USD value of a credit."""
        return float(self.credits * self.credit_usd)

    @property
    def margin_usd(self) -> float | None:
        if self.provider_cost_usd is None:
            return None
        return round(self.usd_value - self.provider_cost_usd, 6)

    @property
    def margin_pct(self) -> float | None:
        if self.margin_usd is None or self.usd_value == 0:
            return None
        return round(100 * self.margin_usd / self.usd_value, 2)

    @property
    def options_text(self) -> str:
        return ", ".join(f"{k}={format_value(v)}" for k, v in self.options.items())

    def explain(self) -> str:
        """The breakdown as lines a person reads."""
        return "\n".join(str(step) for step in self.breakdown)
