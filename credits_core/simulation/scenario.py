"""A scenario's inputs (frozen pydantic models) and its deterministic day-by-day simulation.

A scenario is one user on a plan with a starting balance, a top-up habit and a usage mix
(generations per day of each model and options), over a horizon of days, priced by a
price book. Each day, in this order: grants that reach their expiry lose what is left;
the plan grants its monthly credits on renewal days; the day's generations are paid in
mix order, each one only if it fits the available credits (else it is refused); then the
top-up rule looks at what is left. Credits burn in the ledger's order: priority (promo,
plan, top-up), soonest expiry, oldest. With fractional rates the deterministic run makes
floor(rate x (day + 1)) - floor(rate x day) generations on a day, so that the average is
exact.

`ScenarioForm` is the simulator page's form as typed; `ScenarioForm.scenario` applies its
rules: empty monthly credits mean the plan's, 0 days of expiry mean never, and a real
user's state (sources.current_state_of) replaces the form's plan fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, TypeVar

import numpy as np
import pandas as pd
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    model_validator,
)

from credits_core.alerts.rules import AlertRules
from credits_core.ledger.values import DEFAULT_PRIORITY
from credits_core.plans import Plans
from credits_core.pricing import PriceBook, PricingError
from credits_core.simulation import engine
from credits_core.simulation.alerts import first_firings
from credits_core.simulation.errors import InvalidScenario, InvalidUsageMix

CYCLE_DAYS = 30
MAX_HORIZON_DAYS = 730
OptionValue = str | int | bool


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


FrozenModel = TypeVar("FrozenModel", bound=Frozen)


class PlanTerms(Frozen):
    """What the plan gives and costs. `credits_expire_after_days` None: plan credits never
    expire (full rollover); 30 with a 30-day cycle: no rollover."""

    name: str = "custom"
    monthly_credits: NonNegativeInt
    price_usd: NonNegativeFloat = 0.0
    cycle_days: PositiveInt = CYCLE_DAYS
    credits_expire_after_days: PositiveInt | None = CYCLE_DAYS
    pricing_plan: str | None = None  # the price book plan whose multiplier applies

    @classmethod
    def from_plans(cls, name: str, plans: Plans | None = None) -> PlanTerms:
        """The terms of a plan in data/plans.toml (no rollover: credits last one cycle)."""
        plans = plans or Plans.load()
        if name not in plans.plans:
            known = ", ".join(plans.plans)
            raise InvalidScenario(f"There is no plan {name!r}. Plans: {known}.")
        plan = plans.plans[name]
        return cls(
            name=name,
            monthly_credits=plan.monthly_credits,
            price_usd=plan.price_usd,
            credits_expire_after_days=None if plan.rollover else CYCLE_DAYS,
            pricing_plan=name,
        )


class TopUpPolicy(Frozen):
    """What the user does when credits run low, looked at once a day after usage.

    none: nothing. pack_below: buy `packs` packs when available <= `threshold`.
    refill_to: when available <= `threshold`, buy credits up to `target` (at the pack's
    price per credit). Top-up credits never expire.
    """

    kind: Literal["none", "pack_below", "refill_to"] = "none"
    threshold: NonNegativeInt = 0
    packs: PositiveInt = 1
    target: NonNegativeInt = 0
    pack_credits: PositiveInt = 10_000
    pack_price_usd: NonNegativeFloat = 5.0

    @model_validator(mode="after")
    def _target_above_threshold(self) -> TopUpPolicy:
        if self.kind == "refill_to" and self.target <= self.threshold:
            raise ValueError(
                f"refill_to needs a target above the threshold ({self.target} <= "
                f"{self.threshold}): it refills up to the target"
            )
        return self


class MixItem(Frozen):
    """Generations per day of one model with fixed options."""

    model: str = Field(min_length=1)
    options: dict[str, OptionValue] = {}
    per_day: NonNegativeFloat = Field(le=10_000)

    @property
    def label(self) -> str:
        options = ", ".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.model} ({options})" if options else self.model


class Lot(Frozen):
    """Credits the user already has: a grant's remaining credits, its kind and the day
    (from the start) at whose beginning it expires (None: never)."""

    credits: PositiveInt
    kind: Literal["plan", "topup", "promo", "adjustment"] = "topup"
    expires_day: NonNegativeInt | None = None


class Scenario(Frozen):
    plan: PlanTerms
    start: AwareDatetime
    horizon_days: int = Field(ge=1, le=MAX_HORIZON_DAYS)
    starting_balance: NonNegativeInt = 0  # never expires
    starting_lots: tuple[Lot, ...] = ()
    first_grant_day: NonNegativeInt = 0  # the first plan renewal, counted from the start
    topup: TopUpPolicy = TopUpPolicy()
    mix: tuple[MixItem, ...] = ()

    @classmethod
    def build(cls, **fields: object) -> Scenario:
        """Check the inputs; InvalidScenario lists every problem as `field: reason`."""
        return checked(cls, fields)

    def day_start(self, day: int) -> datetime:
        return self.start + timedelta(days=day)


@dataclass(frozen=True)
class ScenarioForm:
    """The balance simulator's form as typed, before its rules apply (see `scenario`).

    `monthly_credits` None (left empty): the plan's own; `expire_after_days` 0: plan
    credits never expire; `start_day` is a UTC day, the scenario starts at its midnight.
    Top-up packs are the size and price of plans.toml's `topup`."""

    plan: str
    start_day: date
    horizon_days: int
    mix: tuple[MixItem, ...] = ()
    monthly_credits: int | None = None
    expire_after_days: int = CYCLE_DAYS
    first_grant_day: int = 0
    starting_balance: int = 0  # never expires, also on top of a real user's credits
    topup_kind: str = "none"
    threshold: int = 0
    packs: int = 1
    target: int = 0
    user_id: str = ""  # a real user, for their usage, their credits and the sandbox
    from_user: bool = False  # start from that user's plan and credits instead of the form's

    @property
    def start(self) -> datetime:
        return datetime.combine(self.start_day, time.min, UTC)

    @property
    def starting_user(self) -> str | None:
        """The user whose plan and credits replace the form's, when there is one."""
        user_id = self.user_id.strip()
        return user_id if self.from_user and user_id else None

    def plan_terms(self, plans: Plans) -> PlanTerms:
        """The plan as the form sets it: empty monthly credits are the plan's; 0 days of
        expiry mean plan credits never expire."""
        terms = PlanTerms.from_plans(self.plan, plans)
        monthly = terms.monthly_credits if self.monthly_credits is None else self.monthly_credits
        expire = None if self.expire_after_days == 0 else self.expire_after_days
        changed = {"monthly_credits": monthly, "credits_expire_after_days": expire}
        return checked(PlanTerms, {**terms.model_dump(), **changed})

    def scenario(self, plans: Plans, user_state: Mapping[str, object] | None = None) -> Scenario:
        """The scenario the form describes. `user_state` (the Scenario fields of
        sources.current_state_of for `starting_user`) replaces the form's plan, monthly
        credits, expiry and first renewal with the user's plan, credits and renewal."""
        if user_state is None:
            fields = {"plan": self.plan_terms(plans), "first_grant_day": self.first_grant_day}
        else:
            fields = dict(user_state)
        topup = {
            "kind": self.topup_kind,
            "threshold": self.threshold,
            "packs": self.packs,
            "target": self.target,
            "pack_credits": plans.topup.pack_credits,
            "pack_price_usd": plans.topup.pack_price_usd,
        }
        return Scenario.build(
            **fields,
            start=self.start,
            horizon_days=self.horizon_days,
            starting_balance=self.starting_balance,
            topup=topup,
            mix=self.mix,
        )


def checked(model: type[FrozenModel], fields: Mapping[str, object]) -> FrozenModel:
    """`model` made from `fields`; InvalidScenario lists every problem as `field: reason`."""
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        raise InvalidScenario(scenario_problems(error)) from None


def scenario_problems(error: ValidationError) -> str:
    parts = []
    for problem in error.errors():
        where = ".".join(str(p) for p in problem["loc"])
        parts.append(f"{where}: {problem['msg'].removeprefix('Value error, ')}")
    return "Invalid scenario: " + "; ".join(parts)


@dataclass(frozen=True)
class PricedItem:
    """A mix row with its price under the book, for the scenario's plan."""

    item: MixItem
    credits: int
    provider_cost_usd: float
    usd_value: float


def price_mix(scenario: Scenario, book: PriceBook) -> tuple[PricedItem, ...]:
    """Price every mix row once, at the start of the horizon, with the plan's multiplier."""
    priced = []
    for row, item in enumerate(scenario.mix, start=1):
        try:
            quote = book.quote(
                item.model, plan=scenario.plan.pricing_plan, at=scenario.start, **item.options
            )
        except PricingError as error:
            raise InvalidUsageMix(f"Usage mix row {row} ({item.label}): {error}") from None
        priced.append(
            PricedItem(item, quote.credits, quote.provider_cost_usd or 0.0, quote.usd_value)
        )
    return tuple(priced)


def deterministic_counts(scenario: Scenario) -> np.ndarray:
    """Generations per (day, mix row): floor(rate x (d+1)) - floor(rate x d)."""
    days = np.arange(scenario.horizon_days + 1, dtype=float)[:, None]
    rates = np.array([item.per_day for item in scenario.mix], dtype=float)[None, :]
    cumulative = np.floor(days * rates + 1e-9).astype(np.int64)
    return np.diff(cumulative, axis=0)


@dataclass(frozen=True)
class Simulation:
    """The deterministic run: every table the page shows, each a DataFrame."""

    scenario: Scenario
    daily: pd.DataFrame  # one row per day
    events: pd.DataFrame  # grants, expiries, top-ups, depletion: the chart's markers
    burn_by_model: pd.DataFrame  # credits and provider cost per mix row
    money: pd.DataFrame  # what the user paid against what the providers cost us
    alerts: pd.DataFrame  # the first day each alert rule fires
    depletion_day: int | None  # the first day a generation is refused

    @property
    def depletion_date(self) -> datetime | None:
        return None if self.depletion_day is None else self.scenario.day_start(self.depletion_day)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "daily": self.daily,
            "events": self.events,
            "burn_by_model": self.burn_by_model,
            "money": self.money,
            "alerts": self.alerts,
        }


def simulate(scenario: Scenario, book: PriceBook, rules: AlertRules | None = None) -> Simulation:
    """Run the scenario once, deterministically."""
    priced = price_mix(scenario, book)
    plan = schedule(scenario, priced)
    runs = engine.run(plan, deterministic_counts(scenario)[None])
    daily = daily_frame(scenario, runs, 0)
    refused = np.flatnonzero(daily["refused"].to_numpy() > 0)
    depletion = int(refused[0]) if len(refused) else None
    return Simulation(
        scenario=scenario,
        daily=daily,
        events=events_frame(scenario, daily, depletion),
        burn_by_model=burn_frame(priced, runs, 0),
        money=money_frame(priced, runs, 0),
        alerts=first_firings(scenario, plan, priced, daily, runs, rules),
        depletion_day=depletion,
    )


def schedule(scenario: Scenario, priced: tuple[PricedItem, ...]) -> engine.Schedule:
    """The scenario as the engine's arrays: lots in burn order, prices, the top-up rule."""
    plan = scenario.plan
    lots = [(lot.credits, lot.kind, lot.expires_day, -1) for lot in scenario.starting_lots]
    if scenario.starting_balance:
        lots.append((scenario.starting_balance, "topup", None, -1))
    grant_days = []
    if plan.monthly_credits:
        grant_days = list(range(scenario.first_grant_day, scenario.horizon_days, plan.cycle_days))
    life = plan.credits_expire_after_days
    for day in grant_days:
        lots.append((plan.monthly_credits, "plan", None if life is None else day + life, day))
    lots.append((0, "topup", None, scenario.horizon_days))  # the top-up pool, burnt last
    never = scenario.horizon_days + 10**6
    order = sorted(
        range(len(lots)),
        key=lambda i: (
            DEFAULT_PRIORITY[lots[i][1]],
            never if lots[i][2] is None else lots[i][2],
            lots[i][3],
            i,
        ),
    )
    ordered = [lots[i] for i in order]
    return engine.Schedule(
        days=scenario.horizon_days,
        initial=np.array([c if made < 0 else 0 for c, _k, _e, made in ordered], dtype=np.int64),
        grant_credits=np.array([c if made >= 0 else 0 for c, _k, _e, made in ordered]),
        grant_day=np.array([made for _c, _k, _e, made in ordered], dtype=np.int64),
        expires_day=np.array(
            [-1 if exp is None else exp for _c, _k, exp, _m in ordered], dtype=np.int64
        ),
        is_plan=np.array([kind == "plan" and made >= 0 for _c, kind, _e, made in ordered]),
        pool=order.index(len(lots) - 1),
        prices=np.array([p.credits for p in priced], dtype=np.int64),
        topup=scenario.topup,
        plan_price_usd=plan.price_usd,
    )


def daily_frame(scenario: Scenario, runs: engine.Runs, run: int) -> pd.DataFrame:
    days = np.arange(scenario.horizon_days)
    return pd.DataFrame(
        {
            "day": days,
            "date": pd.to_datetime([scenario.day_start(int(d)) for d in days]),
            "available": runs.available[run],
            "spent": runs.spent[run].sum(axis=1),
            "generations": runs.made[run].sum(axis=1),
            "refused": runs.refused[run].sum(axis=1),
            "plan_granted": runs.granted,
            "expired": runs.expired[run],
            "topped_up": runs.topped_up[run],
            "topup_usd": runs.topup_usd[run],
            "plan_usd": runs.plan_usd,
        }
    )


def events_frame(scenario: Scenario, daily: pd.DataFrame, depletion: int | None) -> pd.DataFrame:
    """The markers of the balance curve: plan grants, expiries, top-ups, depletion."""
    parts = []
    for column, event in (("plan_granted", "plan grant"), ("expired", "expiry"),
                          ("topped_up", "top-up")):  # fmt: skip
        rows = daily[daily[column] > 0]
        parts.append(
            pd.DataFrame(
                {
                    "day": rows["day"],
                    "date": rows["date"],
                    "event": event,
                    "credits": rows[column],
                    "available": rows["available"],
                }
            )
        )
    if depletion is not None:
        row = daily.iloc[[depletion]]
        parts.append(
            pd.DataFrame(
                {
                    "day": row["day"],
                    "date": row["date"],
                    "event": "depleted",
                    "credits": row["refused"],
                    "available": row["available"],
                }
            )
        )
    events = pd.concat(parts, ignore_index=True)
    return events.sort_values(["day", "event"], ignore_index=True)


def burn_frame(priced: tuple[PricedItem, ...], runs: engine.Runs, run: int) -> pd.DataFrame:
    """Credits burned, generations made and refused, provider cost, per mix row."""
    made = runs.made[run].sum(axis=0)
    cost_each = np.array([p.provider_cost_usd for p in priced])
    return pd.DataFrame(
        {
            "model": [p.item.model for p in priced],
            "options": [", ".join(f"{k}={v}" for k, v in p.item.options.items()) for p in priced],
            "credits_each": [p.credits for p in priced],
            "generations": made,
            "refused": runs.refused[run].sum(axis=0),
            "credits": runs.spent[run].sum(axis=0),
            "provider_cost_usd": np.round(made * cost_each, 4),
        }
    )


def money_frame(priced: tuple[PricedItem, ...], runs: engine.Runs, run: int) -> pd.DataFrame:
    """What the user paid (plan, top-ups) against what their generations cost us."""
    made = runs.made[run].sum(axis=0)
    cost = float(np.dot(made, [p.provider_cost_usd for p in priced]))
    plan_usd = float(runs.plan_usd.sum())
    topup_usd = float(runs.topup_usd[run].sum())
    paid = plan_usd + topup_usd
    rows = [
        ("plan payments", plan_usd),
        ("top-ups", topup_usd),
        ("paid by the user", paid),
        ("provider cost", cost),
        ("margin", paid - cost),
    ]
    return pd.DataFrame({"item": [r[0] for r in rows], "usd": [round(r[1], 4) for r in rows]})
