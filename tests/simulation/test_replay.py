"""The replay against the small ledger of conftest.py, where every number is known."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from credits_core.demo import DemoSpec
from credits_core.ledger import Ledger
from credits_core.simulation import InvalidReplayWindow
from credits_core.simulation.replay import replay
from tests.simulation.conftest import END

DEMO_END = datetime(2026, 11, 24, tzinfo=UTC)


@pytest.fixture
def result(known, draft, book):
    return replay(known, draft, days=10, current=book, until=END)


def test_credits_and_revenue_per_model_before_and_after(result):
    by_model = result.by_model.set_index("model")
    hailuo, music, veo = (by_model.loc[m] for m in ("MiniMax-Hailuo-02", "Music 1.5", "Veo 3"))
    # u_1, u_3 at 680, u_2 at 612 (pro); the draft: 820 and 738; the failed one is free
    assert hailuo["generations"] == 5
    assert hailuo["credits_before"] == 3 * 680 + 2 * 612 == hailuo["credits_charged"]
    assert hailuo["credits_after"] == 3 * 820 + 2 * 738
    assert music["credits_before"] == 90 + 81 + 90
    assert music["credits_after"] == 100 + 90 + 100
    assert veo["credits_before"] == veo["credits_after"] == 3320
    assert hailuo["revenue_after"] == pytest.approx((3 * 820 + 2 * 738) * 0.0005)
    assert hailuo["cost_before"] == pytest.approx(5 * 0.28)
    assert hailuo["margin_after"] == pytest.approx((3 * 820 + 2 * 738) * 0.0005 - 5 * 0.28)
    assert result.credits_after - result.credits_before == (3936 - 3264) + (290 - 261)
    assert result.generations == 9


def test_per_plan_totals(result):
    by_plan = result.by_plan.set_index("plan")
    assert by_plan.loc["pro", "credits_before"] == 2 * 612 + 81
    assert by_plan.loc["pro", "credits_after"] == 2 * 738 + 90
    assert by_plan.loc["free", "credits_after"] == 3320
    assert by_plan["generations"].to_dict() == {"free": 1, "pro": 3, "standard": 5}


def test_margin_per_sku_uses_the_options_the_hold_recorded(result):
    skus = result.by_sku.set_index(["model", "sku"])
    # 3320 is also the price of 4 s with audio: the hold's options decide, not the price
    assert skus.loc[("Veo 3", "duration=8, audio=false"), "generations"] == 1
    assert skus.loc[("MiniMax-Hailuo-02", "resolution=768P, duration=6"), "generations"] == 5
    row = skus.loc[("MiniMax-Hailuo-02", "resolution=768P, duration=6")]
    assert row["margin_pct_after"] == round(100 * (3936 * 0.0005 - 1.4) / (3936 * 0.0005), 1)


def test_who_runs_out_earlier_and_by_how_many_days(result):
    users = result.users
    # u_2: 1500 - 738 - 738 - 90 < 0 at the Music generation (day 3, 09:00); the window
    # ends 5 days after T0, so 1 day 15 hours earlier. u_3's extra 10 credits came out of
    # a promo that expired unspent: 5 credits left, not below zero.
    assert users["user_id"].tolist() == ["u_2"]
    u_2 = users.iloc[0]
    assert u_2["days_earlier"] == round(39 / 24, 1)
    assert u_2["out_after"] == pd.Timestamp("2026-11-13 09:00", tz="UTC")
    assert pd.isna(u_2["out_before"])
    assert u_2["extra_credits"] == 2 * (738 - 612) + (90 - 81)
    assert u_2["history"] == "/transaction_history?user=u_2"
    assert result.users_paying_more == 3  # u_1, u_2, u_3; u_4's Veo 3 did not change


def test_an_unchanged_book_changes_nothing(known, book):
    same = replay(known, book, days=10, current=book, until=END)
    assert same.credits_after == same.credits_before == 3264 + 261 + 3320
    assert same.users.empty and same.users_paying_more == 0


def test_prices_edited_in_a_table_scale_each_plans_price(known, book):
    edited = book.catalog()[["model", "options", "credits"]].copy()
    hailuo = (edited["model"] == "MiniMax-Hailuo-02") & (
        edited["options"] == "resolution=768P, duration=6"
    )
    edited.loc[hailuo, "credits"] = 1020  # x1.5: 680 -> 1020, pro 612 -> 918
    result = replay(known, book, days=10, current=book, until=END, edited=edited)
    row = result.by_model.set_index("model").loc["MiniMax-Hailuo-02"]
    assert row["credits_after"] == 3 * 1020 + 2 * 918


def test_the_window_only_counts_its_days(known, draft, book):
    last_two = replay(known, draft, days=2, current=book, until=END)
    assert last_two.generations == 3  # day 3: u_2's Music, u_3's Hailuo; day 4: u_4's Veo 3
    last_day = replay(known, draft, days=1, current=book, until=END)
    assert last_day.by_model["model"].tolist() == ["Veo 3"]


@pytest.mark.parametrize("days", [0, -3, 367, 2.5, True])
def test_bad_windows_are_refused(known, draft, days):
    with pytest.raises(InvalidReplayWindow, match="whole number of days from 1 to 366"):
        replay(known, draft, days=days)


@pytest.fixture(scope="module")
def demo_ledger(demo_databases):
    path = demo_databases.pristine(DemoSpec(users=300, days=30, seed=11, end=DEMO_END))
    with Ledger.open(path, read_only=True, clock=lambda: DEMO_END) as ledger:
        yield ledger


def test_vectorized_paths_agree_with_a_plain_loop_per_user(demo_ledger, draft, book):
    """Each user's run-out moment and extra credits, against the rule written as a loop
    over their journal: D += extra charge; at an expiry R = min(R + expired, D);
    balance = available - D + R."""
    result = replay(demo_ledger, draft, days=30, current=book, until=DEMO_END,
                    most_affected=1000)  # fmt: skip
    keys = set(zip(*result_keys(demo_ledger, draft, book), strict=True))
    prices = {(model, charged): after - charged for model, charged, after in keys}
    assert len(prices) == len(keys)  # one extra charge per (model, charge) in this demo
    expected = {}
    for user_id in [f"u_{n}" for n in range(1, 301)]:
        entries = demo_ledger.history(user_id, limit=None).iloc[::-1]
        spent = rescued = 0
        out = None
        for entry in entries.itertuples():
            if entry.kind == "capture":
                spent += prices[(entry.model, -entry.credits)]
            elif entry.kind == "grant_expired":
                rescued = min(rescued - entry.credits, spent)
            if out is None and entry.available_after - spent + rescued < 0:
                out = entry.ts
        if out is not None:
            expected[user_id] = (pd.Timestamp(out), spent)
    found = {row.user_id: (row.out_after, row.extra_credits) for row in result.users.itertuples()}
    assert len(expected) > 5  # the draft makes some users run out
    assert found == expected


def result_keys(ledger, draft, book):
    """(model, charged, credits under the draft) of every usage key of the window; the
    demo's prices do not depend on the plan's day, only on the model and the charge."""
    from credits_core.simulation.reprice import USAGE, default_moment, reprice

    since = DEMO_END - pd.Timedelta(days=30)
    keys = ledger.snapshot(lambda cur: cur.execute(USAGE, [since, DEMO_END]).df())
    priced = reprice(keys, book, draft, default_moment(book, draft, DEMO_END))
    return priced["model"], priced["charged"], priced["credits_after"]
