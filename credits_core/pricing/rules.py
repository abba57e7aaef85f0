"""Evaluating a model's price rule and provider cost for one set of canonical options.

Base price kinds: fixed, table (one price per option combination), per_unit (credits per
second or per image, rounded explicitly) and cost_plus (provider cost plus a fee, turned
into credits and rounded up to a step). Plan modifiers, promotions and the minimum
charge are applied on top by `book`.
"""

from __future__ import annotations

from fractions import Fraction

from credits_core.pricing.options import format_value
from credits_core.pricing.quote import Step
from credits_core.pricing.schema import (
    COST_FIELDS,
    PRICE_FIELDS,
    CostPlusPrice,
    FixedCost,
    FixedPrice,
    ModelSpec,
    Options,
    PerUnitCost,
    PerUnitPrice,
    TableCost,
    TablePrice,
    describe_rounding,
    round_credits,
    row_keys,
)


def find_row(
    model: ModelSpec, rows: tuple[dict, ...], value_fields: frozenset[str], options: Options
) -> dict:
    keys = row_keys(rows, value_fields)
    wanted = tuple(options[k] for k in keys)
    for row in rows:
        if tuple(model.options[k].canonical(row[k]) for k in keys) == wanted:
            return row
    raise LookupError(f"no row for {wanted}")  # unreachable once `checks` passed


def provider_cost(model: ModelSpec, options: Options) -> Fraction | None:
    """What the provider charges for this request, in USD, where the book knows it."""
    cost = model.cost
    if cost is None:
        return None
    if isinstance(cost, FixedCost):
        return Fraction(cost.usd)
    if isinstance(cost, TableCost):
        return Fraction(find_row(model, cost.rows, COST_FIELDS, options)["usd"])
    assert isinstance(cost, PerUnitCost)
    rate = (
        cost.usd
        if cost.usd is not None
        else find_row(model, cost.rows, COST_FIELDS, options)["usd"]
    )
    return Fraction(rate) * options[cost.per]


def cost_is_estimate(model: ModelSpec, options: Options) -> bool:
    cost = model.cost
    if cost is None or cost.estimate:
        return cost is not None
    if isinstance(cost, TableCost | PerUnitCost) and cost.rows:
        return bool(find_row(model, cost.rows, COST_FIELDS, options).get("estimate", False))
    return False


def base_price(name: str, model: ModelSpec, options: Options, credit_usd: Fraction) -> Step:
    rule = model.price
    if isinstance(rule, FixedPrice):
        return Step("fixed", f"{name} costs {rule.credits} credits", rule.credits)
    if isinstance(rule, TablePrice):
        row = find_row(model, rule.rows, PRICE_FIELDS, options)
        keys = row_keys(rule.rows, PRICE_FIELDS)
        at = ", ".join(f"{k}={format_value(options[k])}" for k in keys)
        return Step("table", f"{name} at {at}", row["credits"])
    if isinstance(rule, PerUnitPrice):
        return _per_unit(model, rule, options)
    assert isinstance(rule, CostPlusPrice)
    return _cost_plus(model, rule, options, credit_usd)


def _per_unit(model: ModelSpec, rule: PerUnitPrice, options: Options) -> Step:
    rate = (
        rule.credits
        if rule.credits is not None
        else find_row(model, rule.rows, PRICE_FIELDS, options)["credits"]
    )
    units = options[rule.per]
    credits = round_credits(Fraction(rate) * units, rule.rounding, rule.step)
    detail = (
        f"{format_value(rate)} credits per {rule.unit} x {units} ({rule.per}), "
        f"{describe_rounding(rule.rounding, rule.step)}"
    )
    return Step("per_unit", detail, credits)


def _cost_plus(
    model: ModelSpec, rule: CostPlusPrice, options: Options, credit_usd: Fraction
) -> Step:
    cost = provider_cost(model, options)
    assert cost is not None  # `checks` requires a cost for cost_plus models
    total = cost + Fraction(rule.fee_usd)
    credits = round_credits(total / credit_usd, rule.rounding, rule.step)
    detail = (
        f"provider cost ${float(cost):.4f} + fee ${float(rule.fee_usd):.4f} = "
        f"${float(total):.4f} at ${float(credit_usd)} per credit, "
        f"{describe_rounding(rule.rounding, rule.step)}"
    )
    return Step("cost_plus", detail, credits)
