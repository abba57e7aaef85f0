"""A usage mix as short text, for the page's URL (`?mix=...`) and its editable table.

Text form: rows separated by ";", each `model~options~per_day`, options as
`name=value` pairs separated by ",", e.g.
`Music 1.5~~1;MiniMax-Hailuo-02~resolution=768P,duration=6~0.5`. Whole numbers and
true/false in option values come back as ints and booleans. On the page each row is a
generation picked from the catalog (`picked_table`, `mix_from_picked`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from pydantic import ValidationError

from credits_core.pricing import PriceBook, PricingError
from credits_core.pricing.options import format_value
from credits_core.simulation.errors import InvalidMixText
from credits_core.simulation.scenario import MixItem

ROW, FIELD, PAIR = ";", "~", ","
TABLE_COLUMNS = ["model", "options", "per_day"]


def options_to_text(options: dict) -> str:
    return PAIR.join(f"{name}={format_value(value)}" for name, value in options.items())


def options_from_text(text: str) -> dict:
    """`resolution=768P, duration=6` -> {"resolution": "768P", "duration": 6}."""
    options: dict = {}
    for pair in filter(None, (p.strip() for p in str(text or "").split(PAIR))):
        name, equals, value = pair.partition("=")
        if not equals or not name.strip() or not value.strip():
            raise InvalidMixText(
                f"Options must be name=value pairs separated by commas; {pair!r} is not one."
            )
        options[name.strip()] = _value(value.strip())
    return options


def encode_mix(mix: tuple[MixItem, ...]) -> str:
    return ROW.join(
        f"{item.model}{FIELD}{options_to_text(item.options)}{FIELD}{item.per_day:g}" for item in mix
    )


def decode_mix(text: str) -> tuple[MixItem, ...]:
    rows = []
    for number, row in enumerate(filter(None, (text or "").split(ROW)), start=1):
        fields = row.split(FIELD)
        if len(fields) != 3:
            raise InvalidMixText(f"Usage mix row {number} ({row!r}) must be model~options~per_day.")
        rows.append(_item(number, fields[0], fields[1], fields[2]))
    return tuple(rows)


def mix_table(mix: tuple[MixItem, ...]) -> pd.DataFrame:
    """The mix as the page's editable table: model, options (text), per_day."""
    return pd.DataFrame(
        [(i.model, options_to_text(i.options), i.per_day) for i in mix], columns=TABLE_COLUMNS
    ).astype({"model": "object", "options": "object", "per_day": "float64"})


def mix_from_table(table: pd.DataFrame) -> tuple[MixItem, ...]:
    """The edited table back as a mix; rows without a model are ignored."""
    rows = []
    for number, (model, options, per_day) in enumerate(
        table[TABLE_COLUMNS].itertuples(index=False, name=None), start=1
    ):
        if pd.isna(model) or not str(model).strip():
            continue
        rows.append(_item(number, model, "" if pd.isna(options) else options, per_day))
    return tuple(rows)


def _item(number: int, model: object, options: object, per_day: object) -> MixItem:
    try:
        rate = float(per_day)
    except (TypeError, ValueError):
        raise InvalidMixText(
            f"Usage mix row {number}: per_day must be a number, not {per_day!r}."
        ) from None
    try:
        return MixItem(model=str(model).strip(), options=options_from_text(options), per_day=rate)
    except ValidationError as error:
        reasons = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in error.errors())
        raise InvalidMixText(f"Usage mix row {number}: {reasons}.") from None


def _value(text: str) -> object:
    if text.lower() in {"true", "false"}:
        return text.lower() == "true"
    if text.lstrip("-").isdigit():
        return int(text)
    return text


# ---------------------------------------------------------------- the mix as picked rows
# The page's usage mix table: one generation per row, picked from the catalog's SKUs
# ("model · options"), and how many a day. A row that cannot be priced is left out and
# named; the rest of the mix still runs.

SKU_SEPARATOR = " · "
PICKED_COLUMNS = ["generation", "per_day"]


def sku_label(model: str, options: dict | str) -> str:
    text = (
        options
        if isinstance(options, str)
        else ", ".join(f"{name}={format_value(value)}" for name, value in options.items())
    )
    return f"{model}{SKU_SEPARATOR}{text}" if text else model


def sku_choices(book: PriceBook, extra: tuple[MixItem, ...] = ()) -> list[str]:
    """Every SKU of the catalog as a label, plus the generations of `extra` (a real
    user's mix may use options the catalog does not list, such as count=2)."""
    catalog = book.catalog()
    labels = [sku_label(m, o) for m, o in zip(catalog["model"], catalog["options"], strict=True)]
    return list(dict.fromkeys([*labels, *(sku_label(i.model, i.options) for i in extra)]))


def picked_table(mix: tuple[MixItem, ...]) -> pd.DataFrame:
    """The mix as the page's table of picked generations."""
    return pd.DataFrame(
        [(sku_label(i.model, i.options), i.per_day) for i in mix], columns=PICKED_COLUMNS
    ).astype({"generation": "object", "per_day": "float64"})


@dataclass(frozen=True)
class CheckedMix:
    """The rows that can be simulated, and a sentence for each row left out."""

    mix: tuple[MixItem, ...]
    problems: tuple[str, ...]


def mix_from_picked(table: pd.DataFrame, book: PriceBook) -> CheckedMix:
    """The picked rows as a mix; rows without a generation are ignored, rows that do
    not price (or have no valid rate) are left out with the reason."""
    rows, problems = [], []
    for number, (label, per_day) in enumerate(
        table[PICKED_COLUMNS].itertuples(index=False, name=None), start=1
    ):
        if pd.isna(label) or not str(label).strip():
            continue
        model, _sep, options = str(label).partition(SKU_SEPARATOR)
        try:
            item = _item(number, model, options, 0 if pd.isna(per_day) else per_day)
            book.quote(item.model, **item.options)
        except InvalidMixText as error:
            problems.append(f"Row {number} left out: {error}")
        except PricingError as error:
            reason = str(error).split(" Run `credits catalog`")[0]
            problems.append(f"Row {number} ({label}) left out: {reason} Pick it from the list.")
        else:
            rows.append(item)
    return CheckedMix(tuple(rows), tuple(problems))
