"""Fixtures of the export tests: a small ledger built by hand (every number below is
worked out on paper in test_query.py) and a small demo ledger."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from credits_core.demo import DemoSpec
from credits_core.ledger import Ledger
from credits_core.pricing import PriceBook


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def at(day: int, hour: int = 0, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# Usage booked in bulk: (id, user, ts, model, options, credits, success)
HAILUO = '{"resolution":"768P","duration":6}'
BULK = [
    ("gen-1", "u_pro", at(2, 10), "FLUX.1 [dev]", None, 81, True),
    ("gen-2", "u_pro", at(2, 11), "MiniMax-Hailuo-02", HAILUO, 612, True),
    ("gen-3", "u_pro", at(3, 9), "MiniMax-Hailuo-02", HAILUO, 612, False),
    ("gen-4", "u_free", at(2, 12), "Music 1.5", None, 90, True),
    ("gen-5", "u_free", at(10, 12), "Music 1.5", None, 90, False),
    ("gen-6", "u_none", at(8, 23, 30), "Gen-4 Turbo", '{"duration":5}', 620, True),
    ("gen-7", "u_none", at(1, 0, month=12), "FLUX.1 Kontext [pro]", None, 110, True),
]  # fmt: skip


def build_small(path: Path) -> None:
    """Three users, seven generations booked in bulk, four through holds (a capture, a
    partial capture, a failure, an expiry), a refund and an adjustment."""
    clock = Clock()
    book = PriceBook.load()
    steps = [(ts, "bulk", row) for row in BULK for ts in [row[2]]]
    steps += [
        (at(4, 8), "hold", ("u_pro", book.quote("Gen-4 Turbo", duration=10, plan="pro"), None)),
        (at(5, 8), "hold", ("u_pro", book.quote("FLUX.1 Kontext [pro]", plan="pro"), 50)),
        (at(6, 8), "hold", ("u_free", {"model": "FLUX.1 [pro]"}, False)),
        (at(7, 8), "hold", ("u_free", {"model": "Music 1.5"}, "expire")),
        (at(11, 10), "refund", "gen-4"),
        (at(12, 10), "adjust", ("u_none", 250)),
    ]
    with Ledger.open(path, clock=clock) as ledger:
        for user, plan, credits, kind in [
            ("u_pro", "pro", 10_000, "plan"),
            ("u_free", "free", 2_000, "plan"),
            ("u_none", None, 5_000, "topup"),
        ]:
            ledger.create_account(user, email=f"{user}@example.com", plan=plan)
            ledger.grant(user, credits, kind=kind)
        for ts, kind, detail in sorted(steps, key=lambda step: step[0]):
            clock.now = ts + timedelta(seconds=1)
            _step(ledger, clock, ts, kind, detail)


def _step(ledger: Ledger, clock: Clock, ts: datetime, kind: str, detail) -> None:
    if kind == "bulk":
        tid, user, _, model, options, credits, success = detail
        row = {"transaction_id": tid, "user_id": user, "ts": ts, "model": model,
               "options": options, "credits": credits, "success": success}  # fmt: skip
        ledger.apply_usage(pd.DataFrame([row]))
    elif kind == "hold":
        user, quote_or_metadata, outcome = detail
        if isinstance(quote_or_metadata, dict):
            hold = ledger.reserve(user, 130 if outcome is False else 90, metadata=quote_or_metadata)
        else:
            hold = ledger.reserve(user, quote=quote_or_metadata)
        if outcome == "expire":
            clock.now = ts + timedelta(hours=1)
            ledger.expire_holds()
        elif outcome is False:
            ledger.confirm(hold.transaction_id, success=False)
        else:
            ledger.confirm(hold.transaction_id, success=True, credits=outcome)
    elif kind == "refund":
        ledger.refund(detail, reason="broken output", actor="sam@corp.example")
    else:
        user, credits = detail
        ledger.adjust(user, credits, reason="goodwill", actor="sam@corp.example")


@pytest.fixture(scope="session")
def small_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("export-small") / "small.duckdb"
    build_small(path)
    return path


@pytest.fixture
def small(small_db):
    with Ledger.open(small_db, read_only=True) as ledger:
        yield ledger


DEMO = DemoSpec(users=300, days=30, seed=11, end=datetime(2026, 11, 24, tzinfo=UTC))


@pytest.fixture(scope="session")
def demo_db(demo_databases) -> Path:
    """Built once per run (tests/conftest.py): open it read only."""
    return demo_databases.pristine(DEMO)


@pytest.fixture
def demo(demo_db):
    with Ledger.open(demo_db, read_only=True) as ledger:
        yield ledger


@pytest.fixture(scope="session")
def book() -> PriceBook:
    return PriceBook.load()


def digest(path: Path) -> str:
    """The bytes of a database file and its WAL, hashed (to prove nothing wrote to it)."""
    sha = hashlib.sha256()
    for part in (path, path.with_name(path.name + ".wal")):
        if part.exists():
            sha.update(part.read_bytes())
    return sha.hexdigest()
