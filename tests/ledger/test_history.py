"""History and balances (reads.py): one user's journal as a DataFrame, newest first."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from credits_core.ledger import InvalidKind, UnknownAccount
from credits_core.ledger.reads import HISTORY_COLUMNS
from tests.ledger.support import START, funded


def test_history_has_the_documented_columns_newest_first(ledger, clock):
    funded(ledger, credits=500)
    clock.advance(minutes=1)
    ledger.reserve("u_1", 100, metadata={"model": "Music 1.5"})
    frame = ledger.history("u_1")
    assert tuple(frame.columns) == HISTORY_COLUMNS
    assert list(frame["kind"]) == ["reserve", "grant"]
    assert list(frame["seq"]) == [2, 1]
    assert frame["ts"].iloc[0] == pd.Timestamp(clock.now)
    assert str(frame["ts"].dtype).endswith("UTC]")
    reserve = frame.iloc[0]
    assert (reserve["credits"], reserve["held"], reserve["balance_after"]) == (0, 100, 500)
    assert (reserve["held_after"], reserve["available_after"]) == (100, 400)
    assert reserve["model"] == "Music 1.5"
    assert reserve["metadata"] == {"model": "Music 1.5"}


def test_each_holds_life_is_traceable_by_transaction_id(ledger, clock):
    funded(ledger, credits=500)
    captured = ledger.reserve("u_1", 100)
    released = ledger.reserve("u_1", 50)
    expired = ledger.reserve("u_1", 20, ttl=timedelta(minutes=5))
    ledger.confirm(captured.transaction_id, success=True, credits=80)
    ledger.confirm(released.transaction_id, success=False)
    clock.advance(minutes=10)
    ledger.expire_holds()
    frame = ledger.history("u_1")
    life = {
        tx: list(reversed(group["kind"].tolist()))
        for tx, group in frame.groupby("transaction_id", sort=False)
    }
    assert life[captured.transaction_id] == ["reserve", "capture", "release"]
    assert life[released.transaction_id] == ["reserve", "release"]
    assert life[expired.transaction_id] == ["reserve", "expire"]


def test_balance_after_runs_through_the_journal(ledger):
    funded(ledger, credits=500)
    hold = ledger.reserve("u_1", 100)
    ledger.confirm(hold.transaction_id, success=True)
    ledger.adjust("u_1", 25, reason="goodwill", actor="support@corp")
    frame = ledger.history("u_1").iloc[::-1]
    assert list(frame["balance_after"]) == list(frame["credits"].cumsum())
    assert list(frame["held_after"]) == list(frame["held"].cumsum())
    assert frame["balance_after"].iloc[-1] == ledger.balance("u_1").total


def test_history_filters_by_time_kind_and_limit(ledger, clock):
    funded(ledger, credits=500)  # at START
    for minute in range(1, 6):
        clock.now = START + timedelta(minutes=minute)
        ledger.reserve("u_1", 10)
    since, until = START + timedelta(minutes=2), START + timedelta(minutes=4)
    window = ledger.history("u_1", since=since, until=until)
    assert list(window["ts"]) == [pd.Timestamp(until - timedelta(minutes=1)), pd.Timestamp(since)]
    assert list(ledger.history("u_1", kinds=["grant"])["kind"]) == ["grant"]
    assert list(ledger.history("u_1", kinds="reserve", limit=2)["seq"]) == [6, 5]
    assert len(ledger.history("u_1", limit=None)) == 6


def test_a_user_without_entries_has_an_empty_history(ledger):
    ledger.create_account("u_1")
    frame = ledger.history("u_1")
    assert frame.empty and tuple(frame.columns) == HISTORY_COLUMNS


def test_history_of_an_unknown_user_or_kind_is_refused(ledger):
    funded(ledger)
    with pytest.raises(UnknownAccount, match="u_404"):
        ledger.history("u_404")
    with pytest.raises(InvalidKind, match="choose from"):
        ledger.history("u_1", kinds=["withdrawal"])


def test_balance_and_account_read_what_was_written(ledger):
    funded(ledger, credits=120)
    account = ledger.account("u_1")
    assert (account.user_id, account.email, account.plan) == ("u_1", "u_1@example.com", "pro")
    assert tuple(ledger.balance("u_1")) == (120, 0, 120)
    with pytest.raises(UnknownAccount):
        ledger.balance("u_2")


def test_history_pages_with_offset_and_counts_what_matches(ledger):
    funded(ledger, credits=500)
    for _ in range(5):
        ledger.reserve("u_1", 10)
    assert ledger.count_history("u_1") == 6
    assert ledger.count_history("u_1", kinds=["reserve"]) == 5
    assert list(ledger.history("u_1", limit=2, offset=2)["seq"]) == [4, 3]
    assert ledger.history("u_1", offset=6).empty


def test_holds_life_puts_each_generation_on_one_row(ledger, clock):
    funded(ledger, credits=500)
    captured = ledger.reserve("u_1", 100, metadata={"model": "Veo 3"})
    ledger.confirm(captured.transaction_id, success=True, credits=60)
    ledger.refund(captured.transaction_id, reason="bad", actor="ops")
    lapsed = ledger.reserve("u_1", 10, ttl=timedelta(minutes=1))
    ledger.apply_usage(
        pd.DataFrame(
            {
                "user_id": ["u_1", "u_1"],
                "credits": [7, 8],
                "ts": pd.to_datetime([START, START + timedelta(seconds=1)], utc=True),
                "success": [True, False],
            }
        )
    )
    clock.advance(minutes=5)
    life = ledger.holds_life("u_1").set_index("transaction_id")
    row = life.loc[captured.transaction_id]
    assert (row["status"], row["credits"], row["captured"], row["model"]) == (
        "captured",
        100,
        60,
        "Veo 3",
    )
    assert row["refunded_at"] == clock.now - timedelta(minutes=5)
    assert bool(life.loc[lapsed.transaction_id, "stuck"])
    assert not life.drop(index=lapsed.transaction_id)["stuck"].any()
    usage = life[life.index.str.startswith("use-")].sort_values("reserved_at")
    assert list(zip(usage["status"], usage["credits"], usage["captured"], strict=True)) == [
        ("captured", 7, 7),
        ("released", 8, 0),
    ]


def test_grants_frame_says_what_became_of_each_grant(ledger, clock):
    ledger.create_account("u_1")
    ledger.grant("u_1", 10, kind="promo")
    ledger.grant("u_1", 50, kind="plan", expires_at=clock.now + timedelta(days=1))
    ledger.grant("u_1", 20, kind="topup", expires_at=clock.now + timedelta(days=2))
    ledger.reserve("u_1", 10)
    clock.advance(days=1)
    frame = ledger.grants_frame("u_1")
    assert list(zip(frame["kind"], frame["status"], strict=True)) == [
        ("promo", "spent"),
        ("plan", "lapsed"),
        ("topup", "active"),
    ]
    ledger.expire_grants()
    assert ledger.grants_frame("u_1")["status"].tolist()[1] == "expired"


def test_find_accounts_matches_ids_and_emails_in_any_case(ledger):
    ledger.create_account("u_1", email="Alice@Example.com")
    ledger.create_account("u_10")
    ledger.create_account("x_u_1")
    assert ledger.find_accounts("u_1")["user_id"].tolist() == ["u_1", "u_10", "x_u_1"]
    assert ledger.find_accounts("EXAMPLE")["user_id"].tolist() == ["u_1"]
    assert ledger.find_accounts("nobody").empty
    assert ledger.find_accounts("u", limit=1)["user_id"].tolist() == ["u_1"]


def test_a_long_history_pages_the_same_as_reading_it_all(ledger, clock):
    funded(ledger, credits=100_000)
    usage = pd.DataFrame(
        {
            "user_id": "u_1",
            "credits": 1,
            "ts": pd.date_range(START, periods=1_500, freq="s", tz="UTC"),
            "success": [n % 7 != 0 for n in range(1_500)],
        }
    )
    ledger.apply_usage(usage)
    clock.advance(hours=1)
    ledger.reserve("u_1", 5)
    everything = ledger.history("u_1", limit=None)
    assert ledger.count_history("u_1") == len(everything) == 1_502
    for offset in (0, 1, 700, 1_450):
        page = ledger.history("u_1", limit=100, offset=offset)
        expected = everything.iloc[offset : offset + 100].reset_index(drop=True)
        pd.testing.assert_frame_equal(page, expected)
    assert list(ledger.history("u_1", limit=3)["kind"]) == ["reserve", "capture", "release"]
