from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from credits_core.pricing import PriceBook

# A small book for rule tests: one model per rule kind, two plans, a promotion.
MINI_BOOK = """
version = "v1"
effective_from = 2026-01-01T00:00:00Z
credit_usd = 0.0005

[providers]
Acme = { aliases = ["Acme Labs"] }

[plans]
basic = { multiplier = 1.0 }
half = { multiplier = 0.5, rounding = "up" }

[models.Clip]
provider = "Acme"
modality = "video"
options = { resolution = ["720P", "1080P"], duration = [5, 10] }
exclude = [{ resolution = "1080P", duration = 10 }]

[models.Clip.price]
kind = "table"
rows = [
  { resolution = "720P", duration = 5, credits = 101 },
  { resolution = "720P", duration = 10, credits = 201 },
  { resolution = "1080P", duration = 5, credits = 301 },
]
"""


@pytest.fixture(scope="session")
def book() -> PriceBook:
    return PriceBook.load()


@pytest.fixture
def write_book(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "pricing.toml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def load_book(write_book) -> Callable[[str], PriceBook]:
    return lambda text: PriceBook.load(write_book(text))
