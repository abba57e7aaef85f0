"""Dashboard reads (reports.py): one meaning of "available" everywhere, account search
with its true count, and the log of support actions across every user."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from credits_core.alerts import AlertRules, Evaluator, users_in_alert
from credits_core.ledger import InvalidKind
from credits_core.ledger.reports import SupportLogFilter
from tests.ledger.support import funded

LOW = AlertRules.from_data(
    {"rules": [{"name": "low", "kind": "available_below", "severity": "critical",
                "below": 200, "resolve_at": 500}]}
)  # fmt: skip


@pytest.fixture
def lapsed(ledger, clock):
    """u_1 has 90 credits that never expire and 500 whose grant lapsed a day ago, not
    yet booked out by expire_grants."""
    funded(ledger, "u_1", 90)
    ledger.grant("u_1", 500, kind="promo", expires_at=clock.now + timedelta(days=1))
    clock.advance(days=2)
    return ledger


def test_search_home_and_alerts_read_the_balance_that_can_be_spent(lapsed):
    ledger = lapsed
    assert ledger.balance("u_1").available == 90
    found = ledger.find_accounts("u_1")
    assert found.loc[0, ["total", "held", "available"]].tolist() == [90, 0, 90]
    overview = ledger.overview()
    assert (overview.outstanding, overview.held, overview.low_balance_accounts) == (90, 0, 1)
    Evaluator(ledger, LOW).evaluate()
    shown = users_in_alert(ledger)
    assert shown["user_id"].tolist() == ["u_1"] and shown["available"].tolist() == [90]


def test_a_pending_hold_is_held_not_available(ledger):
    funded(ledger, "u_1", 1_000)
    ledger.reserve("u_1", 300, reason="video")
    row = ledger.find_accounts("u_1").iloc[0]
    assert (row["total"], row["held"], row["available"]) == (1_000, 300, 700)
    assert ledger.balance("u_1").available == 700


def test_count_accounts_counts_every_match_beyond_the_limit(ledger):
    for n in range(25):
        funded(ledger, f"u_{n}", 10)
    assert len(ledger.find_accounts("@example", limit=20)) == 20
    assert ledger.count_accounts("@example") == 25
    assert ledger.count_accounts("u_2") == 6  # u_2, u_20 ... u_24
    assert ledger.count_accounts("nobody") == 0


@pytest.fixture
def acted(ledger, clock):
    """Two users; support and a second agent adjust, refund and grant."""
    funded(ledger, "u_1", 1_000)
    funded(ledger, "u_2", 1_000)
    hold = ledger.reserve("u_1", 200, reason="video")
    ledger.confirm(hold.transaction_id, success=True)
    clock.advance(hours=1)
    ledger.adjust("u_1", 50, reason="slow queue", actor="sam@corp.example")
    clock.advance(hours=1)
    ledger.refund(hold.transaction_id, reason="black frames", actor="sam@corp.example")
    clock.advance(hours=1)
    ledger.adjust("u_2", -30, reason="duplicate grant", actor="kim@corp.example")
    ledger.grant("u_2", 70, kind="promo", reason="apology", actor="kim@corp.example")
    return ledger


def test_support_log_lists_what_people_did_newest_first(acted):
    log = acted.support_log()
    assert log[["agent", "user_id", "kind", "credits", "reason"]].values.tolist() == [
        ["kim@corp.example", "u_2", "grant", 70, "apology"],
        ["kim@corp.example", "u_2", "adjustment", -30, "duplicate grant"],
        ["sam@corp.example", "u_1", "refund", 200, "black frames"],
        ["sam@corp.example", "u_1", "adjustment", 50, "slow queue"],
    ]
    assert acted.count_support_log() == 4
    assert log["ts"].is_monotonic_decreasing


def test_support_log_filters_by_agent_user_kind_and_time(acted, clock):
    def reasons(**where) -> list[str]:
        return acted.support_log(SupportLogFilter(**where))["reason"].tolist()

    assert reasons(agent="SAM") == ["black frames", "slow queue"]
    assert reasons(user="u_2@example") == ["apology", "duplicate grant"]
    assert reasons(kinds=("refund", "grant")) == ["apology", "black frames"]
    since = clock.now - timedelta(hours=1, minutes=30)
    assert reasons(since=since, until=clock.now) == ["black frames"]
    assert acted.count_support_log(SupportLogFilter(agent="kim", kinds=("adjustment",))) == 1


def test_support_log_pages_and_refuses_an_unknown_kind(acted):
    first = acted.support_log(limit=3)
    rest = acted.support_log(limit=3, offset=3)
    everything = acted.support_log(limit=None)
    assert pd.concat([first, rest])["reason"].tolist() == everything["reason"].tolist()
    with pytest.raises(InvalidKind, match="valid kinds: adjustment, refund, grant"):
        SupportLogFilter(kinds=("goodwill",))


def test_consumption_is_counted_per_utc_day(ledger, clock):
    """Captures a minute either side of midnight UTC land on their own days; a failed
    generation (released) consumed nothing."""
    funded(ledger, "u_1", 1_000)
    midnight = (clock.now + timedelta(days=1)).replace(hour=0, minute=0)
    clock.advance(days=2)
    events = pd.DataFrame({
        "user_id": ["u_1"] * 3,
        "credits": [10, 20, 40],
        "ts": [midnight - timedelta(minutes=1), midnight + timedelta(minutes=1),
               midnight + timedelta(minutes=2)],
        "success": [True, True, False],
    })  # fmt: skip
    ledger.apply_usage(events)
    daily = ledger.consumption_by_day(days=30)
    assert daily["day"].tolist() == [midnight - timedelta(days=1), midnight]
    assert str(daily["day"].dt.tz) in ("UTC", "Etc/UTC")
    assert daily["credits"].tolist() == [10, 20]
    assert daily["generations"].tolist() == [1, 1]
