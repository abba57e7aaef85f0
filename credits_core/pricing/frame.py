"""Pricing a whole DataFrame of requests with no Python loop per row.

Every distinct raw value of each column is read once by the same resolvers the scalar
`quote` uses and given a small integer id. The valid combinations of the ids present are
compiled, by the scalar engine, into a dense grid of SKU numbers per version epoch; each
row is then priced by one array lookup. Rows that find no SKU get the message the scalar
`quote` raises for them, computed once per distinct invalid request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from itertools import product
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from credits_core.pricing import engine
from credits_core.pricing.errors import InvalidOption, PricingError
from credits_core.pricing.options import OptionKind, is_missing, value_key
from credits_core.pricing.schema import VersionSpec, fold

if TYPE_CHECKING:
    from credits_core.pricing.book import PriceBook


class CompiledBook:
    """What pricing frames under one book needs once: the id vocabulary, and the price
    grid of each (epoch, option columns present, plan column present)."""

    def __init__(self, book: PriceBook) -> None:
        self.book = book
        self.vocabulary = _build_vocabulary(book.versions)
        self._grids: dict[tuple, _Grid] = {}

    def grid(self, epoch: int, columns: tuple[str, ...], has_plan: bool) -> _Grid:
        key = (epoch, columns, has_plan)
        if key not in self._grids:
            builder = _GridBuilder(self.book, self.vocabulary, epoch, columns, has_plan)
            self._grids[key] = builder.build()
        return self._grids[key]


def quote_frame(compiled: CompiledBook, frame: pd.DataFrame, at: object = None) -> pd.DataFrame:
    """The rows of `frame` plus credits, provider_cost_usd, price_book_version and error.

    Columns: `model` (required), optional `provider`, `plan`, `at` (per-row time; NaT
    and a missing column mean the `at` argument, default now) and one column per option.
    NaN/None in an option column means "not given"; floats such as 6.0 are normal input.
    A row that cannot be priced gets credits <NA> and the reason in `error`.
    """
    if "model" not in frame.columns:
        raise InvalidOption("", "model", None, "quote_frame needs a 'model' column")
    book, vocabulary = compiled.book, compiled.vocabulary
    columns = [c for c in vocabulary.options if c in frame.columns]
    has_plan = "plan" in frame.columns
    encoded = _Encoded(frame, vocabulary, columns, has_plan)
    epochs = _epochs(book, frame, at)
    grids, sku = [], np.full(len(frame), -1, dtype=np.int64)
    for epoch in epochs.present:
        if epoch < 0:
            continue
        grid = compiled.grid(int(epoch), tuple(columns), has_plan)
        offset = sum(len(g.credits) for g in grids)
        grids.append(grid)
        if epochs.single:
            sku = grid.lookup(encoded, slice(None))
        else:
            rows = np.flatnonzero(epochs.index == epoch)
            found = grid.lookup(encoded, rows)
            sku[rows] = np.where(found < 0, -1, found + offset)
    versions = [v.version for v in book.versions]
    table_credits = np.concatenate([g.credits for g in grids] + [[0]]).astype(np.int64)
    table_cost = np.concatenate([g.cost for g in grids] + [[np.nan]])
    table_version = np.concatenate(
        [np.full(len(g.credits), versions.index(g.version)) for g in grids] + [[-1]]
    ).astype(np.int64)
    invalid = sku < 0
    errors = np.full(len(frame), None, dtype=object)
    if invalid.any():
        errors[invalid] = _error_messages(book, frame, encoded, epochs, np.flatnonzero(invalid), at)
    result = frame.copy(deep=False)
    new_columns = {
        "credits": pd.arrays.IntegerArray(table_credits[sku], invalid),
        "provider_cost_usd": pd.arrays.FloatingArray(
            np.nan_to_num(table_cost)[sku], np.isnan(table_cost)[sku]
        ),
        "price_book_version": pd.Categorical.from_codes(table_version[sku], versions),
    }
    for name, values in new_columns.items():
        result[name] = pd.Series(values, index=frame.index, copy=False)
    result["error"] = pd.Series(errors, index=frame.index, dtype=object, copy=False)
    return result


@dataclass(frozen=True)
class _Vocabulary:
    """Integer ids for the names and option values of every version: 0 is missing,
    1..n the known values, n+1 anything else."""

    models: dict[str, int]
    providers: dict[str, int]
    plans: dict[str, int]
    options: dict[str, tuple[OptionKind, dict[object, int]]]

    def model_id(self, raw: object) -> int:
        return (
            self.models.get(fold(raw), len(self.models) + 1)
            if isinstance(raw, str)
            else len(self.models) + 1
        )

    def provider_id(self, raw: object) -> int:
        return self.providers.get(fold(raw), -1) if isinstance(raw, str) else -1

    def plan_id(self, raw: object) -> int:
        return (
            self.plans.get(raw.strip().casefold(), len(self.plans) + 1)
            if isinstance(raw, str)
            else len(self.plans) + 1
        )

    def option_id(self, option: str, raw: object) -> int:
        kind, ids = self.options[option]
        return ids.get(value_key(kind, raw), len(ids) + 1)


def _build_vocabulary(versions: tuple[VersionSpec, ...]) -> _Vocabulary:
    models: dict[str, int] = {}
    providers: dict[str, int] = {}
    plans: dict[str, int] = {}
    options: dict[str, tuple[OptionKind, dict[object, int]]] = {}
    for version in versions:
        for name in version.models:
            models.setdefault(fold(name), len(models) + 1)
        for name in version.providers:
            providers.setdefault(name, len(providers) + 1)
        for alias, name in version.provider_index.items():
            providers.setdefault(alias, providers[name])
        for name in version.plans:
            plans.setdefault(name.casefold(), len(plans) + 1)
        for model in version.models.values():
            for option, spec in model.options.items():
                _kind, ids = options.setdefault(option, (spec.kind, {}))
                for value in spec.values:
                    ids.setdefault(spec.key(value), len(ids) + 1)
    return _Vocabulary(models, providers, plans, options)


class _Encoded:
    """Per-row ids of the columns that decide the price, from each distinct value once."""

    def __init__(
        self, frame: pd.DataFrame, vocabulary: _Vocabulary, columns: list[str], has_plan: bool
    ) -> None:
        self.codes: dict[str, np.ndarray] = {}
        self.uniques: dict[str, object] = {}
        self.model = self._encode(frame, "model", vocabulary.model_id)
        self.provider = (
            self._encode(frame, "provider", vocabulary.provider_id)
            if "provider" in frame.columns
            else None
        )
        self.plan = self._encode(frame, "plan", vocabulary.plan_id) if has_plan else None
        self.options = {
            column: self._encode(frame, column, lambda raw, c=column: vocabulary.option_id(c, raw))
            for column in columns
        }

    def _encode(self, frame: pd.DataFrame, column: str, to_id) -> np.ndarray:
        series = frame[column]
        if isinstance(series.dtype, pd.CategoricalDtype):
            codes, uniques = series.cat.codes.to_numpy(), series.cat.categories
        else:
            codes, uniques = pd.factorize(series, use_na_sentinel=True)
        self.codes[column] = codes
        self.uniques[column] = uniques
        ids = np.fromiter((to_id(value) for value in uniques), dtype=np.int64, count=len(uniques))
        return np.append(ids, 0)[codes]


def epoch_starts(book: PriceBook) -> list[datetime]:
    """Moments where some price may change: version starts, promotion starts and ends."""
    return sorted(
        {v.effective_from for v in book.versions}
        | {m for v in book.versions for p in v.promotions for m in (p.starts, p.ends)}
    )


@dataclass(frozen=True)
class _Epoch:
    index: np.ndarray
    single: bool

    @property
    def present(self) -> list[int]:
        return [int(e) for e in np.unique(self.index)]


def _epochs(book: PriceBook, frame: pd.DataFrame, at: object) -> _Epoch:
    """Which stretch of time between price changes (versions, promotion windows) each
    row falls in: within one, every request of a model has the same price."""
    from credits_core.pricing.book import to_utc

    starts = epoch_starts(book)
    bounds = np.array([pd.Timestamp(s).as_unit("ns").to_datetime64() for s in starts])
    default = np.datetime64(pd.Timestamp(to_utc(at)).tz_localize(None).as_unit("ns"))
    if "at" not in frame.columns:
        index = np.searchsorted(bounds, np.array([default]), side="right") - 1
        return _Epoch(np.full(len(frame), index[0]), True)
    times = pd.to_datetime(frame["at"], utc=True).dt.tz_localize(None).dt.as_unit("ns")
    values = times.to_numpy(dtype="datetime64[ns]")
    values = np.where(np.isnat(values), default, values)
    return _Epoch(np.searchsorted(bounds, values, side="right") - 1, False)


@dataclass(frozen=True)
class _Grid:
    """SKU numbers of one epoch, by mixed-radix key of (model, plan, option ids)."""

    cells: np.ndarray
    radices: tuple[int, ...]
    credits: np.ndarray
    cost: np.ndarray
    model_provider: np.ndarray
    version: str

    def lookup(self, encoded: _Encoded, rows) -> np.ndarray:
        parts = [encoded.model[rows]]
        if encoded.plan is not None:
            parts.append(encoded.plan[rows])
        parts += [ids[rows] for ids in encoded.options.values()]
        key = parts[0].copy()
        for radix, part in zip(self.radices[1:], parts[1:], strict=True):
            key *= radix
            key += part
        found = self.cells[key]
        if encoded.provider is not None:
            provider = encoded.provider[rows]
            mismatch = (provider != 0) & (provider != self.model_provider[parts[0]])
            found = np.where(mismatch, -1, found)
        return found


class _GridBuilder:
    def __init__(
        self,
        book: PriceBook,
        vocabulary: _Vocabulary,
        epoch: int,
        columns: tuple[str, ...],
        has_plan: bool,
    ) -> None:
        self.vocabulary = vocabulary
        self.columns = columns
        self.has_plan = has_plan
        self.moment = epoch_starts(book)[epoch]
        self.version = book.version_at(self.moment)
        self.radices = (
            len(vocabulary.models) + 2,
            *((len(vocabulary.plans) + 2,) if has_plan else ()),
            *(len(vocabulary.options[c][1]) + 2 for c in columns),
        )
        self.quotes: dict[tuple, int] = {}
        self.credits: list[int] = []
        self.cost: list[float] = []

    @cached_property
    def plan_choices(self) -> list[tuple[int, str | None]]:
        choices = [(0, None)]
        if self.has_plan:
            choices += [(self.vocabulary.plan_id(name), name) for name in self.version.plans]
        return choices

    def build(self) -> _Grid:
        cells = np.full(int(np.prod(self.radices)), -1, dtype=np.int64)
        model_provider = np.full(self.radices[0], -1, dtype=np.int64)
        for name, model in self.version.models.items():
            model_id = self.vocabulary.model_id(name)
            model_provider[model_id] = self.vocabulary.provider_id(model.provider)
            for ids, chosen in self._combinations(name):
                for plan_id, plan in self.plan_choices:
                    key = self._key(model_id, plan_id, ids)
                    cells[key] = self._sku(name, chosen, plan)
        return _Grid(
            cells,
            self.radices,
            np.array(self.credits, dtype=np.int64),
            np.array(self.cost, dtype=float),
            model_provider,
            self.version.version,
        )

    def _combinations(self, name: str):
        """(option ids, canonical options) for every valid way a row can ask for `name`."""
        model = self.version.models[name]
        per_option: list[list[tuple[str, int, object]]] = []
        for option in model.options:
            default = model.default_of(option)
            choices = [(option, 0, default)] if default is not None else []
            if option in self.columns:
                choices += [
                    (option, self.vocabulary.option_id(option, v), v)
                    for v in model.options[option].values
                ]
            if not choices:
                return
            per_option.append(choices)
        for picked in product(*per_option):
            chosen = {option: value for option, _, value in picked}
            if model.excluded_by(chosen) is None:
                ids = {option: option_id for option, option_id, _ in picked}
                yield tuple(ids.get(c, 0) for c in self.columns), chosen

    def _key(self, model_id: int, plan_id: int, ids: tuple[int, ...]) -> int:
        parts = (model_id, *((plan_id,) if self.has_plan else ()), *ids)
        key = 0
        for radix, part in zip(self.radices, parts, strict=True):
            key = key * radix + part
        return key

    def _sku(self, name: str, chosen: dict, plan: str | None) -> int:
        signature = (name, tuple(chosen.items()), plan)
        if signature not in self.quotes:
            quote = engine.price(self.version, name, chosen, plan, self.moment)
            self.quotes[signature] = len(self.credits)
            self.credits.append(quote.credits)
            self.cost.append(np.nan if quote.provider_cost_usd is None else quote.provider_cost_usd)
        return self.quotes[signature]


def _error_messages(
    book, frame, encoded: _Encoded, epochs: _Epoch, rows: np.ndarray, at
) -> np.ndarray:
    """The scalar quote's error for each distinct invalid request, spread to its rows."""
    columns = list(encoded.codes)
    parts = [epochs.index[rows] + 1] + [encoded.codes[c][rows] + 1 for c in columns]
    stacked = np.stack(parts, axis=1)
    _distinct, first, inverse = np.unique(stacked, axis=0, return_index=True, return_inverse=True)
    messages = np.array([_error_of(book, frame, columns, rows[i], at) for i in first], dtype=object)
    return messages[inverse.ravel()]


def _error_of(book, frame: pd.DataFrame, columns: list[str], row: int, at) -> str:
    values = {c: frame[c].iloc[row] for c in columns}
    when = frame["at"].iloc[row] if "at" in frame.columns else None
    when = at if is_missing(when) else when
    options = {c: v for c, v in values.items() if c not in ("model", "provider", "plan")}
    try:
        book.quote(values["model"], values.get("provider"), values.get("plan"), at=when, **options)
    except PricingError as error:
        return str(error)
    raise RuntimeError(f"quote_frame found no price for row {row} but quote did: a bug")
