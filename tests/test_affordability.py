""" "Can this user afford it?" prices the generation for the user's own plan."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from credits_core.affordability import can_afford
from credits_core.ledger import Ledger, UnknownAccount
from credits_core.pricing import PriceBook
from tests.ledger.support import FakeClock

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
HAILUO = {"resolution": "1080P", "duration": 6}


@pytest.fixture
def ledger():
    with Ledger.open(":memory:", clock=FakeClock(NOW)) as opened:
        opened.create_account("free", plan=None)
        opened.grant("free", 2_000, kind="topup")
        opened.create_account("biz", plan="business")
        opened.grant("biz", 800, kind="topup")
        yield opened


def test_a_user_without_a_plan_pays_the_list_price(ledger):
    book = PriceBook.load()
    answer = can_afford(ledger, book, "free", "MiniMax-Hailuo-02", **HAILUO)
    assert (answer.plan, answer.credits, answer.available, answer.ok) == (None, 1_100, 2_000, True)
    assert answer.message == (
        "Yes: on no plan this costs free 1,100 credits, and 2,000 are available."
    )


def test_a_business_user_pays_the_business_price_and_hears_the_platforms_message(ledger):
    book = PriceBook.load()
    price = book.quote("MiniMax-Hailuo-02", plan="business", at=NOW, **HAILUO).credits
    answer = can_afford(ledger, book, "biz", "MiniMax-Hailuo-02", **HAILUO)
    assert (answer.plan, answer.credits, answer.ok) == ("business", price, False)
    assert price == 880  # 1,100 x 0.8
    assert answer.message == (
        "Insufficient credits. You need 880 credits but only have 800. You're 80 credits short."
    )


def test_an_unknown_user_raises_the_ledgers_error(ledger):
    with pytest.raises(UnknownAccount):
        can_afford(ledger, PriceBook.load(), "nobody", "Music 1.5")
