"""The low-credit alert rules: a TOML file (data/alert_rules.toml) checked by pydantic.

`AlertRules.load(path=None)` reads `path`, else $CREDITS_ALERT_RULES, else
data/alert_rules.toml; `AlertRules.loads(text)` reads TOML text; `save(path)` replaces
the file atomically. `rules` is a tuple of frozen rule models, one per `[[rules]]` table.

Every rule has
- `name`: unique, lower-case letters, digits, `-` and `_` (it keys the alerts it opens);
- `kind`: one of the five kinds below; `severity`: "info", "warning" or "critical";
- `description` (free text) and `enabled` (default true).

An alert opens when the rule *matches* and stays open until the user has *recovered*
(the resolve level, set apart from the firing level: that gap is the hysteresis).

- `available_below`: matches when available < `below`; recovered when available >=
  `resolve_at`.
- `percent_of_plan_below`: matches when available < `below_percent` % of the plan's
  monthly credits; recovered at `resolve_at_percent` % of them.
- `cannot_afford_usual`: matches when available < the price now of the user's most used
  generation (model + options) over the last `window_days` days; recovered when available
  >= `resolve_at_multiple` x that price.
- `days_left_below`: days left = available / (credits captured over the last
  `burn_window_days` days / `burn_window_days`); matches when < `below_days`, recovered
  when >= `resolve_at_days`. No burn: never matches.
- `expiring_within`: matches when the credits left in grants expiring within
  `within_days` days are >= `min_credits`; recovered when fewer than
  `resolve_below_credits` (default `min_credits`) are.

Only funded accounts (with at least one journal entry) are evaluated. Users without a
(known) plan never match `percent_of_plan_below`; users without a
generation in the window never match `cannot_afford_usual`.

`AlertRule.matches(snapshot)` and `.recovered(snapshot)` apply a rule to one user's
`Snapshot` in Python (the balance simulator uses them); `credits_core.alerts.judge`
applies the same rules to every user at once in SQL.
"""

from __future__ import annotations

import math
import os
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from credits_core.alerts.errors import AlertRulesError

DEFAULT_RULES_FILE = Path(__file__).resolve().parents[2] / "data" / "alert_rules.toml"
ENV_VARIABLE = "CREDITS_ALERT_RULES"

KINDS = (
    "available_below",
    "percent_of_plan_below",
    "cannot_afford_usual",
    "days_left_below",
    "expiring_within",
)
SEVERITIES = ("info", "warning", "critical")
Severity = Literal["info", "warning", "critical"]
RuleName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


@dataclass(frozen=True)
class Snapshot:
    """One user's figures at one moment, as the rules read them.

    `plan_monthly_credits` is None without a known plan; `usual_credits` is the price of
    the most used generation (None without one); `burn_per_day` the credits captured per
    day over the rule's burn window; `expiring` the (expires_at, credits left) of the
    user's grants that have an expiry.
    """

    now: datetime
    available: int
    plan_monthly_credits: int | None = None
    usual_credits: int | None = None
    burn_per_day: float = 0.0
    expiring: tuple[tuple[datetime, int], ...] = field(default_factory=tuple)

    def expiring_within(self, days: int) -> int:
        """Credits of grants that expire after now and within `days` days."""
        until = self.now + timedelta(days=days)
        return sum(credits for at, credits in self.expiring if self.now < at <= until)

    @property
    def days_left(self) -> float:
        """Days until the available credits run out at the burn rate (inf without burn)."""
        if self.burn_per_day <= 0:
            return math.inf
        return max(self.available, 0) / self.burn_per_day


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: RuleName
    severity: Severity
    description: str = ""
    enabled: bool = True

    def matches(self, snapshot: Snapshot) -> bool:
        raise NotImplementedError

    def recovered(self, snapshot: Snapshot) -> bool:
        raise NotImplementedError

    def resolve_credits(self, snapshot: Snapshot) -> int | None:
        """The available credits at which this user counts as recovered, where the rule
        is about the balance (None for expiring credits): the suggested top-up's aim."""
        return None


class AvailableBelow(_Rule):
    kind: Literal["available_below"] = "available_below"
    below: PositiveInt
    resolve_at: PositiveInt

    @model_validator(mode="after")
    def _gap(self) -> AvailableBelow:
        _check_order(self.name, "resolve_at", self.resolve_at, "below", self.below)
        return self

    def matches(self, snapshot: Snapshot) -> bool:
        return snapshot.available < self.below

    def recovered(self, snapshot: Snapshot) -> bool:
        return snapshot.available >= self.resolve_at

    def resolve_credits(self, snapshot: Snapshot) -> int | None:
        return self.resolve_at


class PercentOfPlanBelow(_Rule):
    kind: Literal["percent_of_plan_below"] = "percent_of_plan_below"
    below_percent: Annotated[float, Field(gt=0, le=100)]
    resolve_at_percent: Annotated[float, Field(gt=0, le=1000)]

    @model_validator(mode="after")
    def _gap(self) -> PercentOfPlanBelow:
        _check_order(
            self.name,
            "resolve_at_percent",
            self.resolve_at_percent,
            "below_percent",
            self.below_percent,
        )
        return self

    def matches(self, snapshot: Snapshot) -> bool:
        plan = snapshot.plan_monthly_credits
        return plan is not None and snapshot.available * 100 < self.below_percent * plan

    def recovered(self, snapshot: Snapshot) -> bool:
        plan = snapshot.plan_monthly_credits
        return plan is None or snapshot.available * 100 >= self.resolve_at_percent * plan

    def resolve_credits(self, snapshot: Snapshot) -> int | None:
        plan = snapshot.plan_monthly_credits
        return None if plan is None else math.ceil(self.resolve_at_percent * plan / 100)


class CannotAffordUsual(_Rule):
    kind: Literal["cannot_afford_usual"] = "cannot_afford_usual"
    window_days: PositiveInt = 30
    resolve_at_multiple: Annotated[float, Field(ge=1, le=100)] = 2.0

    def matches(self, snapshot: Snapshot) -> bool:
        usual = snapshot.usual_credits
        return usual is not None and snapshot.available < usual

    def recovered(self, snapshot: Snapshot) -> bool:
        usual = snapshot.usual_credits
        return usual is None or snapshot.available >= self.resolve_at_multiple * usual

    def resolve_credits(self, snapshot: Snapshot) -> int | None:
        usual = snapshot.usual_credits
        return None if usual is None else math.ceil(self.resolve_at_multiple * usual)


class DaysLeftBelow(_Rule):
    kind: Literal["days_left_below"] = "days_left_below"
    below_days: PositiveFloat
    resolve_at_days: PositiveFloat
    burn_window_days: PositiveInt = 7

    @model_validator(mode="after")
    def _gap(self) -> DaysLeftBelow:
        _check_order(
            self.name, "resolve_at_days", self.resolve_at_days, "below_days", self.below_days
        )
        return self

    def matches(self, snapshot: Snapshot) -> bool:
        return snapshot.days_left < self.below_days

    def recovered(self, snapshot: Snapshot) -> bool:
        return snapshot.days_left >= self.resolve_at_days

    def resolve_credits(self, snapshot: Snapshot) -> int | None:
        if snapshot.burn_per_day <= 0:
            return None
        return math.ceil(self.resolve_at_days * snapshot.burn_per_day)


class ExpiringWithin(_Rule):
    kind: Literal["expiring_within"] = "expiring_within"
    within_days: PositiveInt
    min_credits: PositiveInt = 1
    resolve_below_credits: PositiveInt | None = None  # default: min_credits

    @model_validator(mode="after")
    def _gap(self) -> ExpiringWithin:
        if self.resolve_below_credits is not None:
            _check_order(
                self.name,
                "min_credits",
                self.min_credits,
                "resolve_below_credits",
                self.resolve_below_credits,
            )
        return self

    @property
    def resolve_below(self) -> int:
        return self.resolve_below_credits or self.min_credits

    def matches(self, snapshot: Snapshot) -> bool:
        return snapshot.expiring_within(self.within_days) >= self.min_credits

    def recovered(self, snapshot: Snapshot) -> bool:
        return snapshot.expiring_within(self.within_days) < self.resolve_below


AlertRule = Annotated[
    AvailableBelow | PercentOfPlanBelow | CannotAffordUsual | DaysLeftBelow | ExpiringWithin,
    Field(discriminator="kind"),
]


class AlertRules(BaseModel):
    """The whole rule set, in file order; names are unique."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: tuple[AlertRule, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> AlertRules:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"two rules are named {rule.name!r}; names must be unique")
            seen.add(rule.name)
        return self

    def __iter__(self) -> Iterator[AlertRule]:  # type: ignore[override]
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    @property
    def enabled(self) -> tuple[AlertRule, ...]:
        return tuple(rule for rule in self.rules if rule.enabled)

    def get(self, name: str) -> AlertRule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        names = ", ".join(rule.name for rule in self.rules) or "none"
        raise AlertRulesError(f"There is no alert rule {name!r}. Rules: {names}.")

    @classmethod
    def default_path(cls) -> Path:
        return Path(os.environ.get(ENV_VARIABLE) or DEFAULT_RULES_FILE)

    @classmethod
    def load(cls, path: str | Path | None = None) -> AlertRules:
        """Read and check a rule file (default $CREDITS_ALERT_RULES or data/alert_rules.toml)."""
        path = Path(path) if path is not None else cls.default_path()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise AlertRulesError(f"{path}: cannot be read: {error}") from None
        return cls.loads(text, source=str(path))

    @classmethod
    def loads(cls, text: str, source: str = "<alert rules>") -> AlertRules:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise AlertRulesError(f"{source}: not valid TOML: {error}") from None
        return cls.from_data(data, source)

    @classmethod
    def from_data(cls, data: Any, source: str = "<alert rules>") -> AlertRules:
        """Check plain data ({"rules": [{...}, ...]}); AlertRulesError lists each problem."""
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise AlertRulesError(f"{source}: {_problems(error)}") from None

    def to_toml(self) -> str:
        """The rules as TOML text that `loads` reads back to the same rules."""
        blocks = []
        for rule in self.rules:
            lines = ["[[rules]]"]
            fields = rule.model_dump(exclude_none=True)
            ordered = {"name": fields.pop("name"), "kind": fields.pop("kind"), **fields}
            lines += [f"{key} = {_toml_value(value)}" for key, value in ordered.items()]
            blocks.append("\n".join(lines))
        header = "# Low-credit alert rules (see credits_core/alerts/rules.py for the fields).\n"
        return header + "\n\n".join(blocks) + "\n"

    def save(self, path: str | Path | None = None) -> Path:
        """Write the rules to `path` (default as load) atomically: write, then rename."""
        path = Path(path) if path is not None else self.default_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(self.to_toml())
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path


def _check_order(name: str, high: str, high_value: float, low: str, low_value: float) -> None:
    if high_value < low_value:
        raise ValueError(
            f"rule {name!r}: {high} ({high_value:g}) must be at least {low} ({low_value:g}), "
            "so that a user hovering at the threshold is not alerted over and over"
        )


def _problems(error: ValidationError) -> str:
    parts = []
    for problem in error.errors():
        where = ".".join(str(p) for p in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'
