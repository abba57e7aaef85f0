"""Fixtures of the ledger tests: a fake clock and ledgers in memory or on disk."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from credits_core.ledger import Ledger
from tests.ledger.support import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(clock: FakeClock) -> Iterator[Ledger]:
    with Ledger.open(":memory:", clock=clock) as opened:
        yield opened


@pytest.fixture
def db_path(tmp_path) -> str:
    return str(tmp_path / "credits.duckdb")
