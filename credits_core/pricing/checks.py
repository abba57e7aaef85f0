"""Rules of a price book that span several fields, checked at load.

Each check returns problems as (key, reason) pairs naming where the file is wrong;
`book` refuses the whole file when there is any, so a book is never half-loaded.
"""

from __future__ import annotations

import itertools
from collections import Counter
from decimal import Decimal

from credits_core.pricing.options import format_value, kind_of
from credits_core.pricing.schema import (
    COST_FIELDS,
    MOST,
    PRICE_FIELDS,
    CostPlusPrice,
    ModelSpec,
    PerUnitCost,
    PerUnitPrice,
    TableCost,
    TablePrice,
    VersionSpec,
    fold,
    row_keys,
)

Problem = tuple[str, str]


def quoted(name: str) -> str:
    return f'"{name}"' if not name.replace("_", "").isalnum() else name


def check_versions(versions: list[tuple[str, VersionSpec]]) -> list[Problem]:
    problems: list[Problem] = []
    names = Counter(spec.version for _, spec in versions)
    for prefix, spec in versions:
        if names[spec.version] > 1:
            problems.append((f"{prefix}version", f"version {spec.version!r} appears twice"))
        problems += check_version(prefix, spec)
    for (_, before), (prefix, after) in itertools.pairwise(versions):
        if after.effective_from <= before.effective_from:
            reason = f"must be after {before.effective_from} ({before.version})"
            problems.append((f"{prefix}effective_from", reason))
    return problems + _check_spellings(versions)


def check_version(prefix: str, version: VersionSpec) -> list[Problem]:
    problems = _check_names(prefix, version)
    for name, model in version.models.items():
        where = f"{prefix}models.{quoted(name)}"
        if model.provider not in version.providers:
            declared = ", ".join(version.providers)
            reason = f"unknown provider {model.provider!r}; declared: {declared}"
            problems.append((f"{where}.provider", reason))
        problems += _check_model(where, model)
    for i, promo in enumerate(version.promotions):
        where = f"{prefix}promotions[{i}]"
        problems += [
            (f"{where}.models", f"unknown model {m!r}")
            for m in promo.models
            if m not in version.models
        ]
        problems += [
            (f"{where}.providers", f"unknown provider {p!r}")
            for p in promo.providers
            if p not in version.providers
        ]
    return problems


def _check_names(prefix: str, version: VersionSpec) -> list[Problem]:
    """Names are matched ignoring case, so they must stay distinct that way."""
    problems: list[Problem] = []
    folded = Counter(fold(name) for name in version.models)
    for name in version.models:
        if folded[fold(name)] > 1:
            problems.append(
                (
                    f"{prefix}models.{quoted(name)}",
                    "duplicate model (names are matched ignoring case)",
                )
            )
    aliases = Counter(
        a.casefold() for p, spec in version.providers.items() for a in (p, *spec.aliases)
    )
    problems += [
        (f"{prefix}providers", f"name or alias {a!r} is used twice")
        for a, n in aliases.items()
        if n > 1
    ]
    return problems


def _check_spellings(versions: list[tuple[str, VersionSpec]]) -> list[Problem]:
    """An option keeps one kind, and each value one spelling, across models and versions,
    so that a value means the same thing wherever it appears."""
    problems: list[Problem] = []
    spellings: dict[str, dict] = {}
    for prefix, version in versions:
        for name, model in version.models.items():
            for option, spec in model.options.items():
                where = f"{prefix}models.{quoted(name)}.options.{option}"
                seen = spellings.setdefault(option, {"kind": spec.kind, "values": {}})
                if seen["kind"] != spec.kind:
                    reason = f"{option} holds {spec.kind} values here but {seen['kind']} elsewhere"
                    problems.append((where, reason))
                    continue
                for value in spec.values:
                    first = seen["values"].setdefault(spec.key(value), value)
                    if first != value:
                        reason = f"{value!r} is spelled {first!r} elsewhere; use one spelling"
                        problems.append((where, reason))
    return problems


def _check_model(where: str, model: ModelSpec) -> list[Problem]:
    problems = _check_option_refs(where, model)
    if problems:
        return problems
    priced = set(model.priced_options)
    for option, spec in model.options.items():
        if option in priced and spec.default is not None and option != "count":
            problems.append(
                (f"{where}.options.{option}", "changes the price, so it may not have a default")
            )
    for i, rule in enumerate(model.exclude):
        problems += _check_values(f"{where}.exclude[{i}]", model, rule)
    price = model.price
    if isinstance(price, TablePrice):
        problems += _check_rows(
            f"{where}.price", model, price.rows, PRICE_FIELDS, "credits", integer=True
        )
    if isinstance(price, PerUnitPrice) and price.rows:
        problems += _check_rows(
            f"{where}.price", model, price.rows, PRICE_FIELDS, "credits", integer=False
        )
    cost = model.cost
    if isinstance(cost, TableCost | PerUnitCost) and cost.rows:
        problems += _check_rows(
            f"{where}.cost", model, cost.rows, COST_FIELDS, "usd", integer=False
        )
    if isinstance(price, CostPlusPrice) and cost is None:
        problems.append((f"{where}.cost", "a cost_plus price needs the provider's cost"))
    return problems


def _check_option_refs(where: str, model: ModelSpec) -> list[Problem]:
    problems = []
    for label, rule in (("price", model.price), ("cost", model.cost)):
        per = getattr(rule, "per", None)
        if per is None:
            continue
        if per not in model.options:
            problems.append((f"{where}.{label}.per", f"{per!r} is not an option of this model"))
        elif model.options[per].kind != "int":
            problems.append((f"{where}.{label}.per", f"{per!r} must be a whole-number option"))
    for label, rule in (("price", model.price), ("cost", model.cost)):
        for key in _keys_of(rule):
            if key not in model.options:
                problems.append(
                    (f"{where}.{label}.rows", f"{key!r} is not an option of this model")
                )
    for i, rule in enumerate(model.exclude):
        problems += [
            (f"{where}.exclude[{i}]", f"{k!r} is not an option of this model")
            for k in rule
            if k not in model.options
        ]
    return problems


def _keys_of(rule: object) -> tuple[str, ...]:
    if isinstance(rule, TablePrice | PerUnitPrice):
        return row_keys(rule.rows, PRICE_FIELDS)
    if isinstance(rule, TableCost | PerUnitCost):
        return row_keys(rule.rows, COST_FIELDS)
    return ()


def _check_values(where: str, model: ModelSpec, values: dict) -> list[Problem]:
    problems = []
    for key, value in values.items():
        spec = model.options[key]
        if spec.canonical(value) is None or kind_of(value) != spec.kind:
            valid = ", ".join(format_value(v) for v in spec.values)
            problems.append(
                (f"{where}.{key}", f"{value!r} is not a value of {key} (valid: {valid})")
            )
    return problems


def _check_rows(
    where: str,
    model: ModelSpec,
    rows: tuple[dict, ...],
    value_fields: frozenset[str],
    amount: str,
    *,
    integer: bool,
) -> list[Problem]:
    keys = row_keys(rows, value_fields)
    problems: list[Problem] = []
    seen = set()
    for i, row in enumerate(rows):
        at = f"{where}.rows[{i}]"
        if set(row) - value_fields != set(keys):
            found = sorted(set(row) - value_fields)
            problems.append((at, f"keys {found} differ from the first row's {list(keys)}"))
            continue
        problems += _check_values(at, model, {k: row[k] for k in keys})
        problems += _check_amount(f"{at}.{amount}", row.get(amount), integer=integer)
        combo = tuple(model.options[k].canonical(row[k]) for k in keys)
        if combo in seen:
            problems.append((at, "repeats an earlier row's combination"))
        seen.add(combo)
        if model.excluded_by(dict(zip(keys, combo, strict=True))) is not None:
            problems.append((at, "prices a combination that `exclude` says does not exist"))
    if problems:
        return problems
    for combo in model.combinations(keys):
        if tuple(combo.values()) not in seen:
            missing = ", ".join(f"{k}={format_value(v)}" for k, v in combo.items())
            problems.append((f"{where}.rows", f"misses the combination {missing}"))
    return problems


def _check_amount(where: str, amount: object, *, integer: bool) -> list[Problem]:
    if amount is None:
        return [(where, "is missing")]
    if isinstance(amount, bool) or not isinstance(amount, int | Decimal):
        return [(where, f"{amount!r} is not a number")]
    if integer and not isinstance(amount, int):
        return [(where, f"{amount} is not a whole number of credits")]
    if isinstance(amount, Decimal) and not amount.is_finite():
        return [(where, f"{amount} is not a finite number")]
    if amount < 0:
        return [(where, f"negative price {amount}; prices are 0 or more")]
    most = MOST[where.rsplit(".", 1)[-1]]
    if amount > most:
        return [(where, f"{amount} is more than the limit of {most:,}; check the number")]
    return []
