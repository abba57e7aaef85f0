"""The price book file's shape, validated by pydantic: versions, providers, plans,
promotions, models with their options, price rules and provider costs.

Money is exact: TOML floats are read as Decimal, and every computation on them uses
Fraction, so a price never depends on binary floating point. Shape errors (unknown keys,
unknown rule kinds, negative prices) are caught here; cross-field rules (a table that
misses a combination, a default on a priced option) in `checks`.

Every number is bounded, so that no price, multiplier or cost can overflow what prices
it (a replay multiplies prices by millions of generations in int64): credits per
generation at most MAX_PRICE_CREDITS, multipliers at most MAX_MULTIPLIER, USD amounts at
most MAX_USD, a credit worth at least MIN_CREDIT_USD.
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from functools import cached_property
from itertools import product
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from credits_core.pricing.options import OptionKind, OptionValue, kind_of, value_key

MAX_PRICE_CREDITS = 10_000_000  # credits for one generation (5,000 USD at 0.0005)
MAX_MULTIPLIER = 100
MAX_USD = Decimal(100_000)
MIN_CREDIT_USD = Decimal("0.000001")
MAX_STEP = 1_000_000
MOST = {"credits": MAX_PRICE_CREDITS, "usd": MAX_USD}  # a table row's amount, by field

StrictOptionValue = StrictBool | StrictInt | StrictStr
PriceCredits = Annotated[int, Field(strict=True, ge=0, le=MAX_PRICE_CREDITS)]
NonNegativeDecimal = Annotated[Decimal, Field(ge=0, le=MAX_USD, allow_inf_nan=False)]
PositiveDecimal = Annotated[Decimal, Field(gt=0, le=MAX_USD, allow_inf_nan=False)]
CreditRate = Annotated[Decimal, Field(ge=0, le=MAX_PRICE_CREDITS, allow_inf_nan=False)]
Multiplier = Annotated[Decimal, Field(gt=0, le=MAX_MULTIPLIER, allow_inf_nan=False)]
CreditValue = Annotated[Decimal, Field(ge=MIN_CREDIT_USD, le=MAX_USD, allow_inf_nan=False)]
Step = Annotated[int, Field(strict=True, ge=1, le=MAX_STEP)]


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("needs a UTC offset, e.g. 2026-11-01T00:00:00Z")
    return moment


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rounding(StrEnum):
    UP = "up"
    DOWN = "down"
    HALF_UP = "half_up"


def round_credits(value: Fraction, rounding: Rounding, step: int = 1) -> int:
    """`value` rounded to a whole multiple of `step` credits."""
    units = value / step
    if rounding is Rounding.UP:
        whole = math.ceil(units)
    elif rounding is Rounding.DOWN:
        whole = math.floor(units)
    else:
        whole = math.floor(units + Fraction(1, 2))
    return whole * step


def describe_rounding(rounding: Rounding, step: int) -> str:
    target = "a whole credit" if step == 1 else f"a multiple of {step}"
    return f"rounded {rounding.value.replace('_', ' ')} to {target}"


Options = dict[str, OptionValue]


class OptionSpec(Frozen):
    """The values an option may take and, for options that do not change the price,
    an optional default."""

    values: tuple[StrictOptionValue, ...] = Field(min_length=1)
    default: StrictOptionValue | None = None

    @model_validator(mode="before")
    @classmethod
    def _list_shorthand(cls, data: object) -> object:
        return {"values": data} if isinstance(data, list) else data

    @model_validator(mode="after")
    def _one_kind_no_duplicates(self) -> OptionSpec:
        kinds = {kind_of(v) for v in self.values}
        if len(kinds) > 1:
            raise ValueError(f"values mix kinds {sorted(kinds)}; use one kind")
        keys = [self.key(v) for v in self.values]
        if len(set(keys)) < len(keys):
            raise ValueError("values repeat (ignoring case and spaces)")
        if self.default is not None and self.key(self.default) not in keys:
            raise ValueError(f"default {self.default!r} is not one of the values")
        return self

    @property
    def kind(self) -> OptionKind:
        return kind_of(self.values[0])

    def key(self, raw: object) -> OptionValue | None:
        return value_key(self.kind, raw)

    @cached_property
    def by_key(self) -> dict[OptionValue, OptionValue]:
        return {self.key(v): v for v in self.values}

    def canonical(self, raw: object) -> OptionValue | None:
        """The declared value `raw` stands for, or None."""
        return self.by_key.get(self.key(raw))


class FixedPrice(Frozen):
    kind: Literal["fixed"]
    credits: PriceCredits


class TablePrice(Frozen):
    kind: Literal["table"]
    rows: tuple[dict[str, StrictOptionValue], ...] = Field(min_length=1)


class PerUnitPrice(Frozen):
    """Credits per unit of an integer option (per second of `duration`, per image of
    `count`), optionally varying with other options, then rounded explicitly."""

    kind: Literal["per_unit"]
    per: str
    unit: str = "unit"
    credits: CreditRate | None = None
    rows: tuple[dict[str, StrictOptionValue | Decimal], ...] = ()
    rounding: Rounding
    step: Step = 1

    @model_validator(mode="after")
    def _credits_or_rows(self) -> PerUnitPrice:
        if (self.credits is None) == (not self.rows):
            raise ValueError("give either credits (one rate) or rows (a rate per option value)")
        return self


class CostPlusPrice(Frozen):
    """Provider cost plus a fee, divided by the USD value of a credit, rounded to a step."""

    kind: Literal["cost_plus"]
    fee_usd: NonNegativeDecimal
    step: Step = 10
    rounding: Rounding = Rounding.UP


PriceRule = Annotated[
    FixedPrice | TablePrice | PerUnitPrice | CostPlusPrice, Field(discriminator="kind")
]


class FixedCost(Frozen):
    kind: Literal["fixed"]
    usd: NonNegativeDecimal
    estimate: bool = False
    source: str = ""


class TableCost(Frozen):
    kind: Literal["table"]
    rows: tuple[dict[str, StrictOptionValue | Decimal], ...] = Field(min_length=1)
    estimate: bool = False
    source: str = ""


class PerUnitCost(Frozen):
    kind: Literal["per_unit"]
    per: str
    usd: NonNegativeDecimal | None = None
    rows: tuple[dict[str, StrictOptionValue | Decimal], ...] = ()
    estimate: bool = False
    source: str = ""

    @model_validator(mode="after")
    def _usd_or_rows(self) -> PerUnitCost:
        if (self.usd is None) == (not self.rows):
            raise ValueError("give either usd (one rate) or rows (a rate per option value)")
        return self


CostRule = Annotated[FixedCost | TableCost | PerUnitCost, Field(discriminator="kind")]

# Fields of a row that are values, not option keys.
PRICE_FIELDS = frozenset({"credits"})
COST_FIELDS = frozenset({"usd", "estimate"})


def row_keys(rows: tuple[dict, ...], value_fields: frozenset[str]) -> tuple[str, ...]:
    return tuple(k for k in rows[0] if k not in value_fields) if rows else ()


class ProviderSpec(Frozen):
    aliases: tuple[str, ...] = ()


class PlanSpec(Frozen):
    multiplier: Multiplier = Decimal(1)
    rounding: Rounding = Rounding.UP
    description: str = ""


class Promotion(Frozen):
    """A time-boxed multiplier on some models, providers or modalities: [starts, ends)."""

    name: str = Field(min_length=1)
    multiplier: Annotated[Decimal, Field(gt=0, le=1, allow_inf_nan=False)]
    starts: AwareDatetime
    ends: AwareDatetime
    models: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    modalities: tuple[Literal["image", "video", "music"], ...] = ()
    rounding: Rounding = Rounding.UP

    @model_validator(mode="after")
    def _window_and_target(self) -> Promotion:
        if self.ends <= self.starts:
            raise ValueError("ends must be after starts")
        if not (self.models or self.providers or self.modalities):
            raise ValueError("name the models, providers or modalities it applies to")
        return self

    def in_force(self, at: datetime) -> bool:
        return self.starts <= at < self.ends

    def applies_to(self, model: str, spec: ModelSpec) -> bool:
        return (
            model in self.models
            or spec.provider in self.providers
            or spec.modality in self.modalities
        )


class ModelSpec(Frozen):
    provider: str
    modality: Literal["image", "video", "music"]
    description: str = ""
    options: dict[str, OptionSpec] = {}
    exclude: tuple[dict[str, StrictOptionValue], ...] = ()
    price: PriceRule
    cost: CostRule | None = None
    minimum_credits: PriceCredits | None = None

    @property
    def derived(self) -> bool:
        """Priced by a rule from the provider's cost rather than set by hand."""
        return isinstance(self.price, CostPlusPrice)

    @cached_property
    def priced_options(self) -> tuple[str, ...]:
        """Options whose value changes the price, in declaration order."""
        names = set(_rule_keys(self.price))
        if self.derived and self.cost is not None:
            names |= set(_rule_keys(self.cost))
        return tuple(name for name in self.options if name in names)

    def default_of(self, name: str) -> OptionValue | None:
        spec = self.options[name]
        if spec.default is not None:
            return spec.default
        if len(spec.values) == 1:
            return spec.values[0]
        if name == "count" and 1 in spec.values:
            return 1
        return None

    def excluded_by(self, options: Options) -> dict[str, OptionValue] | None:
        """The first exclusion that `options` match (all of its keys), if any."""
        for rule in self.exclude:
            if all(name in options and options[name] == rule[name] for name in rule):
                return rule
        return None

    def combinations(self, names: tuple[str, ...]) -> list[Options]:
        """Every allowed combination of the given options' values."""
        value_lists = [self.options[name].values for name in names]
        combos = [dict(zip(names, values, strict=True)) for values in product(*value_lists)]
        return [combo for combo in combos if self.excluded_by(combo) is None]


def _rule_keys(rule: object) -> tuple[str, ...]:
    keys: tuple[str, ...] = ()
    if isinstance(rule, TablePrice):
        keys = row_keys(rule.rows, PRICE_FIELDS)
    elif isinstance(rule, PerUnitPrice):
        keys = (rule.per, *row_keys(rule.rows, PRICE_FIELDS))
    elif isinstance(rule, TableCost):
        keys = row_keys(rule.rows, COST_FIELDS)
    elif isinstance(rule, PerUnitCost):
        keys = (rule.per, *row_keys(rule.rows, COST_FIELDS))
    return keys


class VersionSpec(Frozen):
    """One complete version of the price book."""

    version: str = Field(min_length=1)
    effective_from: AwareDatetime
    note: str = ""
    credit_usd: CreditValue
    providers: dict[str, ProviderSpec]
    plans: dict[str, PlanSpec] = {}
    promotions: tuple[Promotion, ...] = ()
    models: dict[str, ModelSpec] = Field(min_length=1)

    @cached_property
    def model_index(self) -> dict[str, str]:
        """Model names by their folded form: names match ignoring case and spacing."""
        return {fold(name): name for name in self.models}

    @cached_property
    def provider_index(self) -> dict[str, str]:
        return {
            fold(alias): name
            for name, spec in self.providers.items()
            for alias in (name, *spec.aliases)
        }


def fold(name: str) -> str:
    return " ".join(name.split()).casefold()


class RevisionSpec(Frozen):
    """A later version written as changes to the one before it: models listed here are
    replaced whole or added, plans and providers merged by name, promotions replaced."""

    version: str = Field(min_length=1)
    effective_from: AwareDatetime
    note: str = ""
    credit_usd: CreditValue | None = None
    providers: dict[str, dict] = {}
    plans: dict[str, dict] = {}
    promotions: tuple[dict, ...] | None = None
    models: dict[str, dict] = {}
    remove_models: tuple[str, ...] = ()


class BookFile(Frozen):
    """The whole file: the first version at the top level, then its revisions."""

    model_config = ConfigDict(frozen=True, extra="allow")

    revisions: tuple[RevisionSpec, ...] = ()
