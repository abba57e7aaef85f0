"""Pricing one request under one price book version: resolve the model and provider,
normalise the options, then base price -> plan modifier -> promotion -> minimum charge.

Every step is recorded in the quote's breakdown. `frame` reuses the resolving functions
here for the distinct values of a DataFrame, so both paths read names the same way.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from datetime import datetime
from fractions import Fraction
from types import MappingProxyType

from credits_core.pricing.errors import (
    InvalidOption,
    MissingOption,
    UnknownModel,
    UnknownPlan,
    UnknownProvider,
)
from credits_core.pricing.options import format_value, is_missing
from credits_core.pricing.quote import Quote, Step
from credits_core.pricing.rules import base_price, cost_is_estimate, provider_cost
from credits_core.pricing.schema import (
    ModelSpec,
    Options,
    VersionSpec,
    describe_rounding,
    fold,
    round_credits,
)


def resolve_model(version: VersionSpec, model: object) -> str:
    """The book's name for `model` (case and spacing do not matter)."""
    if isinstance(model, str) and (name := version.model_index.get(fold(model))):
        return name
    if is_missing(model):
        raise UnknownModel(None, [])
    text = str(model)
    by_fold = {fold(name): name for name in version.models}
    close = difflib.get_close_matches(fold(text), list(by_fold), n=3, cutoff=0.4)
    raise UnknownModel(text, [by_fold[c] for c in close])


def resolve_provider(version: VersionSpec, provider: object) -> str:
    if isinstance(provider, str) and (name := version.provider_index.get(fold(provider))):
        return name
    raise UnknownProvider(provider, list(version.providers))


def check_provider(version: VersionSpec, name: str, provider: object) -> None:
    if is_missing(provider):
        return
    expected = version.models[name].provider
    if resolve_provider(version, provider) != expected:
        raise InvalidOption(
            name,
            "provider",
            provider,
            f"{name} is a {expected} model, not {provider}. Pick provider {expected} "
            f"or a model of {provider}.",
        )


def resolve_plan(version: VersionSpec, plan: object) -> str | None:
    if is_missing(plan):
        return None
    if isinstance(plan, str):
        for name in version.plans:
            if name.casefold() == plan.strip().casefold():
                return name
    raise UnknownPlan(plan, list(version.plans))


def normalise_options(name: str, model: ModelSpec, options: Mapping[str, object]) -> Options:
    """Canonical values for every option of the model, defaults filled in."""
    given = {k: v for k, v in options.items() if not is_missing(v)}
    unknown = sorted(option for option in given if option not in model.options)
    if unknown:
        takes = ", ".join(model.options) or "no options"
        names = ", ".join(repr(option) for option in unknown)
        message = f"{name} takes no option {names}. It takes: {takes}."
        raise InvalidOption(name, unknown[0], given[unknown[0]], message)
    chosen: Options = {}
    for option, spec in model.options.items():
        if option in given:
            value = spec.canonical(given[option])
            if value is None:
                valid = ", ".join(format_value(v) for v in spec.values)
                raise InvalidOption(
                    name,
                    option,
                    given[option],
                    f"{name} has no {option}={given[option]!r}. Valid {option} values: {valid}.",
                )
        else:
            value = model.default_of(option)
            if value is None:
                raise MissingOption(name, option, spec.values)
        chosen[option] = value
    _check_combination(name, model, chosen)
    return chosen


def valid_values(model: ModelSpec, option: str, chosen: Options) -> list:
    """The values of `option` that exist together with the other chosen options."""
    others = {k: v for k, v in chosen.items() if k != option}
    return [
        value
        for value in model.options[option].values
        if model.excluded_by({**others, option: value}) is None
    ]


def _check_combination(name: str, model: ModelSpec, chosen: Options) -> None:
    rule = model.excluded_by(chosen)
    if rule is None:
        return
    subject = list(rule)[-1]
    context = ", ".join(f"{k}={format_value(chosen[k])}" for k in rule if k != subject)
    valid = ", ".join(format_value(v) for v in valid_values(model, subject, chosen))
    raise InvalidOption(
        name,
        subject,
        chosen[subject],
        f"{name} has no {subject}={format_value(chosen[subject])} with {context}. "
        f"With {context}, valid {subject} values: {valid}.",
    )


def price(
    version: VersionSpec, name: str, chosen: Options, plan: str | None, at: datetime
) -> Quote:
    """Price canonical options: base rule, plan, best promotion in force, minimum."""
    model = version.models[name]
    steps = [base_price(name, model, chosen, Fraction(version.credit_usd))]
    if plan is not None and version.plans[plan].multiplier != 1:
        spec = version.plans[plan]
        credits = round_credits(steps[-1].credits * Fraction(spec.multiplier), spec.rounding)
        detail = f"plan {plan} x{spec.multiplier}, {describe_rounding(spec.rounding, 1)}"
        steps.append(Step("plan", detail, credits))
    promotion = _best_promotion(version, name, model, steps[-1].credits, at)
    if promotion is not None:
        credits = round_credits(
            steps[-1].credits * Fraction(promotion.multiplier), promotion.rounding
        )
        off = (1 - promotion.multiplier) * 100
        detail = (
            f"{promotion.name}: {off.normalize():f}% off until "
            f"{promotion.ends:%Y-%m-%d %H:%M} UTC, {describe_rounding(promotion.rounding, 1)}"
        )
        steps.append(Step("promotion", detail, credits))
    if model.minimum_credits is not None and steps[-1].credits < model.minimum_credits:
        minimum = model.minimum_credits
        steps.append(Step("minimum", f"minimum charge of {minimum} credits", minimum))
    cost = provider_cost(model, chosen)
    return Quote(
        model=name,
        provider=model.provider,
        modality=model.modality,
        options=MappingProxyType(dict(chosen)),
        credits=steps[-1].credits,
        breakdown=tuple(steps),
        price_book_version=version.version,
        at=at,
        plan=plan,
        promotion=promotion.name if promotion else None,
        derived=model.derived,
        credit_usd=version.credit_usd,
        provider_cost_usd=None if cost is None else round(float(cost), 6),
        cost_is_estimate=cost_is_estimate(model, chosen),
    )


def _best_promotion(version: VersionSpec, name: str, model: ModelSpec, credits: int, at: datetime):
    offers = [p for p in version.promotions if p.in_force(at) and p.applies_to(name, model)]
    if not offers:
        return None
    return min(
        offers, key=lambda p: (round_credits(credits * Fraction(p.multiplier), p.rounding), p.name)
    )
