"""The price book: every version of the pricing rules, loaded whole or not at all.

A file holds its first version at the top level and later versions as `[[revisions]]`
(changes to the version before). `PriceBook.quote(..., at=...)` prices under the version
in force at that time; `catalog`, `diff` and `quote_frame` work on whole tables.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from credits_core.pricing import engine
from credits_core.pricing import frame as frame_pricing
from credits_core.pricing.checks import check_versions, quoted
from credits_core.pricing.errors import InvalidOption, NoPriceBookInForce, PriceBookError
from credits_core.pricing.options import format_value, is_missing
from credits_core.pricing.quote import Quote
from credits_core.pricing.schema import BookFile, ModelSpec, VersionSpec

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "data" / "pricing.toml"


def to_utc(at: object = None) -> datetime:
    """A moment as an aware UTC datetime; None (or NaT) is now, naive is taken as UTC."""
    if is_missing(at):
        return datetime.now(UTC)
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            raise InvalidOption("", "at", at, f"at={at!r} is not an ISO date or time") from None
    if isinstance(at, date) and not isinstance(at, datetime):
        at = datetime(at.year, at.month, at.day)
    if not isinstance(at, datetime):
        raise InvalidOption("", "at", at, f"at must be a datetime, date or ISO string, not {at!r}")
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


class PriceBook:
    """All versions of the pricing rules, oldest first."""

    def __init__(self, versions: tuple[VersionSpec, ...], source: str) -> None:
        self.versions = versions
        self.source = source

    def __repr__(self) -> str:
        names = ", ".join(v.version for v in self.versions)
        return f"PriceBook({self.source!r}, versions: {names})"

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriceBook:
        """Load and check a price book file (default: data/pricing.toml)."""
        path = Path(path) if path is not None else DEFAULT_PATH
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise PriceBookError(str(path), [("file", f"cannot be read: {error}")]) from None
        return cls.loads(text, source=str(path))

    @classmethod
    def loads(cls, text: str | bytes, source: str = "<price book>") -> PriceBook:
        """Load and check a price book from TOML text, or the bytes of an uploaded file
        (UTF-8)."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as error:
                raise PriceBookError(
                    source,
                    [("file", f"is not UTF-8 text (byte {error.start}); save it as UTF-8 TOML")],
                ) from None
        try:
            data = tomllib.loads(text, parse_float=Decimal)
        except tomllib.TOMLDecodeError as error:
            raise PriceBookError(source, [("syntax", str(error))]) from None
        return cls(_resolve_versions(data, source), source)

    def version_at(self, at: object = None) -> VersionSpec:
        moment = to_utc(at)
        in_force = [v for v in self.versions if v.effective_from <= moment]
        if not in_force:
            raise NoPriceBookInForce(moment, self.versions[0].effective_from)
        return in_force[-1]

    def model(self, model: str, at: object = None) -> tuple[str, ModelSpec]:
        """The book's name and definition of a model (raises UnknownModel)."""
        version = self.version_at(at)
        name = engine.resolve_model(version, model)
        return name, version.models[name]

    def models(self, provider: str | None = None, at: object = None) -> list[str]:
        version = self.version_at(at)
        wanted = None if provider is None else engine.resolve_provider(version, provider)
        return [n for n, m in version.models.items() if wanted in (None, m.provider)]

    def valid_values(
        self, model: str, option: str, chosen: Mapping[str, object] | None = None, at: object = None
    ) -> list:
        """Values of `option` that exist with the other options chosen so far, so that a
        form never offers a combination that does not exist."""
        _name, spec = self.model(model, at)
        canonical = {
            k: spec.options[k].canonical(v)
            for k, v in (chosen or {}).items()
            if k in spec.options and k != option
        }
        return engine.valid_values(
            spec, option, {k: v for k, v in canonical.items() if v is not None}
        )

    def quote(
        self,
        model: str,
        provider: str | None = None,
        plan: str | None = None,
        at: object = None,
        **options: object,
    ) -> Quote:
        """Price one generation request. Raises a PricingError saying what to fix."""
        moment = to_utc(at)
        version = self.version_at(moment)
        name = engine.resolve_model(version, model)
        engine.check_provider(version, name, provider)
        chosen = engine.normalise_options(name, version.models[name], options)
        return engine.price(version, name, chosen, engine.resolve_plan(version, plan), moment)

    def quote_frame(self, frame: pd.DataFrame, at: object = None) -> pd.DataFrame:
        """Price a DataFrame of requests at once; see `credits_core.pricing.frame`."""
        return frame_pricing.quote_frame(self._compiled, frame, at)

    @cached_property
    def _compiled(self) -> frame_pricing.CompiledBook:
        return frame_pricing.CompiledBook(self)

    def catalog(
        self, at: object = None, plan: str | None = None, credit_usd: float | None = None
    ) -> pd.DataFrame:
        """One row per SKU (each combination of the options that change the price, one
        unit of `count`): credits, their USD value, provider cost and margin."""
        moment = to_utc(at)
        version = self.version_at(moment)
        rows = [
            _catalog_row(
                self.quote(name, plan=plan, at=moment, **combo), model.priced_options, credit_usd
            )
            for name, model in version.models.items()
            for combo in _sku_combinations(model)
        ]
        return pd.DataFrame(rows, columns=CATALOG_COLUMNS)

    def margins_by_plan(self, at: object = None, credit_usd: float | None = None) -> pd.DataFrame:
        """The catalog at list price (no plan) with, for each plan, the credits it pays
        (`credits_<plan>`) and the margin left (`margin_pct_<plan>`); `below_cost_on`
        names where a SKU sells below the provider's cost ("list price" and/or plans),
        and `below_cost` is true when it does anywhere."""
        table = self.catalog(at, None, credit_usd)
        below = [["list price"] if flag else [] for flag in table["below_cost"]]
        for plan in self.plans(at):
            priced = self.catalog(at, plan, credit_usd)
            table[f"credits_{plan}"] = priced["credits"]
            table[f"margin_pct_{plan}"] = priced["margin_pct"]
            for names, flag in zip(below, priced["below_cost"], strict=True):
                if flag:
                    names.append(plan)
        table["below_cost_on"] = [", ".join(names) for names in below]
        table["below_cost"] = [bool(names) for names in below]
        return table

    def option_change(
        self, model: str, option: str, previous: object, chosen: Mapping[str, object], at=None
    ) -> str | None:
        """Why a form can no longer keep `previous` for `option` once the options in
        `chosen` are picked (None when it can): "MiniMax-Hailuo-02 has no duration=10 with
        resolution=1080P; valid duration values: 6." """
        if is_missing(previous):
            return None
        valid = self.valid_values(model, option, chosen, at)
        if previous in valid:
            return None
        name, _spec = self.model(model, at)
        context = ", ".join(
            f"{key}={format_value(value)}" for key, value in chosen.items() if key != option
        )
        values = ", ".join(format_value(value) for value in valid)
        return (
            f"{name} has no {option}={format_value(previous)} with {context}; "
            f"valid {option} values: {values}."
        )

    def diff(self, other: PriceBook, at: object = None, plan: str | None = None) -> pd.DataFrame:
        """What changes from this book to `other`, SKU by SKU, at one moment."""
        return catalog_diff(self.catalog(at, plan), other.catalog(at, plan))

    def providers(self, at: object = None) -> list[str]:
        return list(self.version_at(at).providers)

    def plans(self, at: object = None) -> list[str]:
        return list(self.version_at(at).plans)


def catalog_diff(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """SKUs whose credits differ between two catalogs (added, removed or changed)."""
    keys = ["model", "options"]
    both = before[[*keys, "credits"]].merge(
        after[[*keys, "credits"]], on=keys, how="outer", suffixes=("_before", "_after")
    )
    both["change"] = "changed"
    both.loc[both["credits_before"].isna(), "change"] = "added"
    both.loc[both["credits_after"].isna(), "change"] = "removed"
    both = both[both["credits_before"] != both["credits_after"]].copy()
    for column in ("credits_before", "credits_after"):
        both[column] = both[column].astype("Int64")
    both["delta"] = both["credits_after"] - both["credits_before"]
    both["delta_pct"] = (100 * both["delta"] / both["credits_before"]).round(1)
    columns = [*keys, "change", "credits_before", "credits_after", "delta", "delta_pct"]
    return both[columns].sort_values(keys).reset_index(drop=True)


CATALOG_COLUMNS = [
    "model",
    "provider",
    "modality",
    "options",
    "credits",
    "usd_value",
    "provider_cost_usd",
    "cost_is_estimate",
    "margin_usd",
    "margin_pct",
    "below_cost",
    "derived",
    "promotion",
    "price_book_version",
]


def _sku_combinations(model: ModelSpec) -> list[dict]:
    """Each combination of the priced options (one unit of `count`), with the other
    options at their default or, lacking one, their first value that exists."""
    combos = model.combinations(tuple(o for o in model.priced_options if o != "count"))
    skus = []
    for combo in combos:
        if "count" in model.options:
            combo["count"] = 1 if "count" in model.priced_options else model.default_of("count")
        for option in model.options:
            if option not in combo:
                default = model.default_of(option)
                combo[option] = (
                    default if default is not None else engine.valid_values(model, option, combo)[0]
                )
        skus.append(combo)
    return skus


def _catalog_row(quote: Quote, priced: tuple[str, ...], credit_usd: float | None) -> dict:
    usd_value = quote.usd_value if credit_usd is None else quote.credits * credit_usd
    cost = quote.provider_cost_usd
    margin = None if cost is None else round(usd_value - cost, 6)
    return {
        "model": quote.model,
        "provider": quote.provider,
        "modality": quote.modality,
        "options": ", ".join(
            f"{k}={format_value(quote.options[k])}" for k in priced if k != "count"
        ),
        "credits": quote.credits,
        "usd_value": round(usd_value, 6),
        "provider_cost_usd": cost,
        "cost_is_estimate": quote.cost_is_estimate,
        "margin_usd": margin,
        "margin_pct": None
        if margin is None or not usd_value
        else round(100 * margin / usd_value, 1),
        "below_cost": margin is not None and margin < 0,
        "derived": quote.derived,
        "promotion": quote.promotion,
        "price_book_version": quote.price_book_version,
    }


def _resolve_versions(data: dict, source: str) -> tuple[VersionSpec, ...]:
    """Every version of the file, each complete and checked; PriceBookError otherwise."""
    revisions = data.pop("revisions", [])
    problems: list[tuple[str, str]] = []
    try:
        BookFile.model_validate({"revisions": revisions})
    except ValidationError as error:
        raise PriceBookError(source, _pydantic_problems(error, "")) from None
    versions: list[tuple[str, VersionSpec]] = []
    current = data
    for index, revision in enumerate([None, *revisions]):
        prefix = "" if revision is None else f"revisions[{index - 1}]."
        if revision is not None:
            current = _apply_revision(current, revision, prefix, source)
        try:
            versions.append((prefix, VersionSpec.model_validate(current)))
        except ValidationError as error:
            problems += _pydantic_problems(error, prefix)
            break
    problems += check_versions(versions) if not problems else []
    if problems:
        raise PriceBookError(source, problems)
    return tuple(spec for _, spec in versions)


def _apply_revision(previous: dict, revision: dict, prefix: str, source: str) -> dict:
    version = {**previous, "note": revision.get("note", "")}
    for key in ("version", "effective_from", "credit_usd", "promotions"):
        if key in revision:
            version[key] = revision[key]
    for table in ("providers", "plans", "models"):
        version[table] = {**previous.get(table, {}), **revision.get(table, {})}
    for name in revision.get("remove_models", []):
        if version["models"].pop(name, None) is None:
            reason = f"{name!r} is not a model of the version before"
            raise PriceBookError(source, [(f"{prefix}remove_models", reason)])
    return version


def _pydantic_problems(error: ValidationError, prefix: str) -> list[tuple[str, str]]:
    problems = []
    for item in error.errors():
        parts = [f"[{p}]" if isinstance(p, int) else f".{quoted(str(p))}" for p in item["loc"]]
        key = prefix + "".join(parts).lstrip(".")
        problems.append((key or "(top level)", item["msg"]))
    return problems
