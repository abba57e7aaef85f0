"""The subscription plans (data/plans.toml): monthly grant, price, rollover, top-up packs."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, NonNegativeInt, PositiveInt, ValidationError

from credits_core.errors import CreditsError

DEFAULT_PLANS_FILE = Path(__file__).resolve().parents[1] / "data" / "plans.toml"


class PlansFileError(CreditsError, ValueError):
    """The plans file is broken."""


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    monthly_credits: PositiveInt
    price_usd: NonNegativeInt
    rollover: bool = False


class TopUp(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pack_credits: PositiveInt
    pack_price_usd: NonNegativeInt


class Plans(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    plans: dict[str, Plan]
    topup: TopUp

    @classmethod
    def load(cls, path: str | Path | None = None) -> Plans:
        path = Path(path or DEFAULT_PLANS_FILE)
        try:
            return cls.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError, ValidationError) as error:
            raise PlansFileError(f"{path}: {error}") from None
