"""A small ledger whose every number is known, for the replay, the sources and the sandbox.

Prices (data/pricing.toml, version 2026.11): MiniMax-Hailuo-02 768P/6 s 680 credits (pro
x0.9: 612), Music 1.5 90 (pro: 81), Veo 3 8 s without audio 3320 (the same price as 4 s
with audio). The draft raises Hailuo 768P/6 s to 820 (pro: 738) and Music to 100 (pro: 90).

- u_1 (standard): plan grant 2000; day 1 two Hailuo 768P/6 (680 each), day 2 one Music
  (90), day 2 a failed Hailuo 512P (320, released: costs nothing). Ends with 550.
- u_2 (pro): plan grant 1500; day 1 two Hailuo (612 each), day 3 one Music (81). Under the
  draft 738 + 738 + 90 = 1566 > 1500: runs out at the Music generation.
- u_3 (standard): promo 300 expiring at the start of day 2 (burns first) and a top-up of
  825; day 1 one Music (90, from the promo); the promo expires with 210 left; day 3 one
  Hailuo (680, from the top-up): 145 left. Under the draft the Music costs 10 more, taken
  from the promo that expired anyway, and the Hailuo 140 more: 5 left, never below zero.
- u_4 (free): top-up 5000; day 4 one Veo 3, reserved with a quote (8 s, no audio: 3320)
  and captured: its options come from the hold, not from its price.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from credits_core.ledger import Ledger
from credits_core.pricing import PriceBook

T0 = datetime(2026, 11, 10, tzinfo=UTC)
END = T0 + timedelta(days=5)
PRICING = open(PriceBook.load().source, encoding="utf-8").read()  # noqa: SIM115
DRAFT_TEXT = PRICING.replace("credits = 680", "credits = 820").replace(
    'price = { kind = "fixed", credits = 90 }', 'price = { kind = "fixed", credits = 100 }'
)
HAILUO = {"resolution": "768P", "duration": 6}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def at(day: int, hour: int = 12) -> datetime:
    return T0 + timedelta(days=day, hours=hour)


def build_known(path) -> None:
    book = PriceBook.load()
    clock = Clock(T0)
    with Ledger.open(path, clock=clock) as ledger:
        for user, plan in (("u_1", "standard"), ("u_2", "pro"), ("u_3", "standard"),
                           ("u_4", "free")):  # fmt: skip
            ledger.create_account(user, email=f"{user}@example.com", plan=plan)
        month = T0 + timedelta(days=30)
        ledger.grant("u_1", 2000, kind="plan", expires_at=month)
        ledger.grant("u_2", 1500, kind="plan", expires_at=month)
        ledger.grant("u_3", 300, kind="promo", expires_at=at(2, 0))
        ledger.grant("u_3", 825, kind="topup")
        ledger.grant("u_4", 5000, kind="topup")
        usage = [
            ("u_1", 680, at(1, 9), True, "MiniMax-Hailuo-02"),
            ("u_1", 680, at(1, 10), True, "MiniMax-Hailuo-02"),
            ("u_2", 612, at(1, 11), True, "MiniMax-Hailuo-02"),
            ("u_2", 612, at(1, 12), True, "MiniMax-Hailuo-02"),
            ("u_3", 90, at(1, 13), True, "Music 1.5"),
        ]
        clock.now = at(1, 23)
        ledger.apply_usage(pd.DataFrame(usage, columns=["user_id", "credits", "ts", "success",
                                                        "model"]))  # fmt: skip
        clock.now = at(2, 0)
        ledger.expire_grants()
        clock.now = at(3, 23)
        later = [
            ("u_1", 90, at(2, 9), True, "Music 1.5"),
            ("u_1", 320, at(2, 10), False, "MiniMax-Hailuo-02"),
            ("u_2", 81, at(3, 9), True, "Music 1.5"),
            ("u_3", 680, at(3, 10), True, "MiniMax-Hailuo-02"),
        ]
        ledger.apply_usage(pd.DataFrame(later, columns=["user_id", "credits", "ts", "success",
                                                        "model"]))  # fmt: skip
        clock.now = at(4, 9)
        hold = ledger.reserve("u_4", quote=book.quote("Veo 3", duration=8, audio=False))
        clock.now = at(4, 9) + timedelta(minutes=2)
        ledger.confirm(hold.transaction_id, success=True)


@pytest.fixture(scope="session")
def known_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("simulation") / "known.duckdb"
    build_known(path)
    return path


@pytest.fixture
def known(known_db):
    """The known ledger, opened read only, its clock standing at END."""
    with Ledger.open(known_db, read_only=True, clock=lambda: END) as ledger:
        yield ledger


@pytest.fixture(scope="session")
def book() -> PriceBook:
    return PriceBook.load()


@pytest.fixture(scope="session")
def draft() -> PriceBook:
    return PriceBook.loads(DRAFT_TEXT, source="draft.toml")
