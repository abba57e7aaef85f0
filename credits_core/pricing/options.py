"""Option values: how a raw value from a caller, a form or a DataFrame cell becomes the
canonical value a price book declares ("1080p" is "1080P", "6" and 6.0 are 6).

Each option has a kind (int, str or bool) fixed by the values the book declares. A raw
value is first reduced to a *key* for its kind (None when it cannot be one), and the key
is then looked up among the option's declared values.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Literal

import numpy as np

OptionKind = Literal["int", "str", "bool"]
OptionValue = int | str | bool

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def is_missing(value: object) -> bool:
    """None, NaN, pandas NA/NaT: a cell with no value (the option was not given)."""
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    return type(value).__name__ in {"NAType", "NaTType"}


def kind_of(value: OptionValue) -> OptionKind:
    if isinstance(value, bool):
        return "bool"
    return "int" if isinstance(value, int) else "str"


def value_key(kind: OptionKind, raw: object) -> OptionValue | None:
    """The comparable key of `raw` for an option of `kind`, or None if it cannot be one."""
    if kind == "int":
        return _int_key(raw)
    if kind == "bool":
        return _bool_key(raw)
    return "".join(raw.split()).casefold() if isinstance(raw, str) else None


def _int_key(raw: object) -> int | None:
    if isinstance(raw, bool | np.bool_):
        return None
    if isinstance(raw, Integral):
        return int(raw)
    if isinstance(raw, str):
        try:
            raw = float(raw.strip())
        except ValueError:
            return None
    if isinstance(raw, Real) and math.isfinite(raw) and float(raw).is_integer():
        return int(raw)
    return None


def _bool_key(raw: object) -> bool | None:
    if isinstance(raw, bool | np.bool_):
        return bool(raw)
    if isinstance(raw, str):
        text = raw.strip().casefold()
        return True if text in _TRUE else False if text in _FALSE else None
    if isinstance(raw, Real) and raw in (0, 1):
        return bool(raw)
    return None


def format_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
