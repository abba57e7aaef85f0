"""Fixtures of the alert tests: ledgers on disk with a hand-moved clock, rule sets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from credits_core.alerts import AlertRules, Evaluator
from credits_core.ledger import Ledger
from credits_core.plans import Plans
from credits_core.pricing import PriceBook
from tests.ledger.support import FakeClock

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "data" / "alert_rules.toml"


@pytest.fixture(scope="session")
def book() -> PriceBook:
    return PriceBook.load()


@pytest.fixture(scope="session")
def plans() -> Plans:
    return Plans.load()


NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)  # the price book of November is in force


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def ledger(tmp_path, clock) -> Iterator[Ledger]:
    with Ledger.open(tmp_path / "credits.duckdb", clock=clock) as opened:
        yield opened


@pytest.fixture
def rules_file(tmp_path, monkeypatch) -> Path:
    """A copy of the shipped rules, named by $CREDITS_ALERT_RULES."""
    path = tmp_path / "alert_rules.toml"
    path.write_text(DEFAULT_RULES.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("CREDITS_ALERT_RULES", str(path))
    return path


def rule_set(*rules: dict) -> AlertRules:
    return AlertRules.from_data({"rules": list(rules)})


def evaluator(ledger: Ledger, *rules: dict, book=None, plans=None) -> Evaluator:
    return Evaluator(ledger, rule_set(*rules), book=book, plans=plans)


def query(ledger: Ledger, sql: str, params: list | None = None) -> pd.DataFrame:
    return ledger.snapshot(lambda cur: cur.execute(sql, params or []).df())


def open_pairs(ledger: Ledger) -> set[tuple[str, str]]:
    ledger.wait_for_listeners()  # alerts are evaluated on the listeners' thread
    frame = query(ledger, "SELECT user_id, rule FROM alerts WHERE status = 'open'")
    return set(zip(frame["user_id"], frame["rule"], strict=True))


def account(ledger: Ledger, user_id: str, credits: int = 0, *, plan: str | None = "pro", **grant):
    ledger.create_account(user_id, email=f"{user_id}@example.com", plan=plan)
    if credits:
        ledger.grant(user_id, credits, kind=grant.pop("kind", "topup"), **grant)
    return user_id
