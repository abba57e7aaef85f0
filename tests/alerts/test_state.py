"""Alert state across many evaluations: an alert fires once, stays open while the user
is below the resolve level, resolves only once they recover past it (hysteresis), opens
anew after that; support acknowledges with a note; every event is kept."""

from __future__ import annotations

import threading

import pytest

from credits_core.access import LOCAL, AccessDenied, Identity, Role
from credits_core.alerts import (
    AlertNotOpen,
    InvalidNote,
    UnknownAlert,
    acknowledge,
    alert_history,
    open_alert_counts,
    users_in_alert,
)
from tests.alerts.conftest import account, evaluator, open_pairs, query

LOW = {"name": "low", "kind": "available_below", "severity": "critical",
       "below": 200, "resolve_at": 500}  # fmt: skip
SUPPORT = Identity("sam@corp.example", frozenset({Role.SUPPORT}), "login")
PRODUCT = Identity("pia@corp.example", frozenset({Role.PRODUCT}), "login")


def set_available(ledger, user_id: str, target: int) -> None:
    now = ledger.balance(user_id).available
    if target != now:
        ledger.adjust(user_id, target - now, reason="test", actor="test")


def test_a_user_hovering_at_the_threshold_is_alerted_once(ledger, clock):
    account(ledger, "u_1", 1_000)
    tested = evaluator(ledger, LOW)
    # down below 200, then hovering between 150 and 450: below the resolve level
    path = [1_000, 190, 210, 150, 450, 199, 201, 300, 180, 499]
    for available in path:
        set_available(ledger, "u_1", available)
        clock.advance(minutes=5)
        tested.evaluate()
        tested.evaluate()  # evaluating twice changes nothing
    alerts = query(ledger, "SELECT alert_id, status FROM alerts")
    assert alerts.to_dict("records") == [{"alert_id": "u_1/low/1", "status": "open"}]
    assert len(query(ledger, "SELECT * FROM alert_outbox")) == 1
    # recovering past the resolve level resolves it; falling again opens a second one
    set_available(ledger, "u_1", 500)
    assert tested.evaluate().resolved == 1
    set_available(ledger, "u_1", 100)
    assert tested.evaluate().opened == 1
    alerts = query(ledger, "SELECT alert_id, status FROM alerts ORDER BY alert_id")
    assert alerts.to_dict("records") == [
        {"alert_id": "u_1/low/1", "status": "resolved"},
        {"alert_id": "u_1/low/2", "status": "open"},
    ]
    outbox = query(ledger, "SELECT message_id FROM alert_outbox ORDER BY message_id")
    assert outbox["message_id"].tolist() == ["u_1/low/1", "u_1/low/2"]
    events = alert_history(ledger, "u_1")
    assert sorted(zip(events["alert_id"], events["event"], strict=True)) == [
        ("u_1/low/1", "opened"),
        ("u_1/low/1", "resolved"),
        ("u_1/low/2", "opened"),
    ]


def test_the_open_alert_carries_the_latest_balance(ledger):
    account(ledger, "u_1", 150)
    tested = evaluator(ledger, LOW)
    tested.evaluate()
    set_available(ledger, "u_1", 40)
    tested.evaluate()
    row = query(ledger, "SELECT available_at_open, available FROM alerts").iloc[0]
    assert (row["available_at_open"], row["available"]) == (150, 40)


def test_the_outbox_message_names_user_rule_severity_balance_and_top_up(ledger, plans):
    account(ledger, "u_1", 150)
    evaluator(ledger, LOW, plans=plans).evaluate()
    message = query(ledger, "SELECT * FROM alert_outbox").iloc[0]
    pack = plans.topup
    assert (message["user_id"], message["rule"], message["severity"]) == ("u_1", "low", "critical")
    assert message["email"] == "u_1@example.com"
    assert message["available"] == 150
    # one pack brings 150 back above the resolve level of 500
    assert (message["topup_packs"], message["topup_credits"], message["topup_usd"]) == (
        1, pack.pack_credits, pack.pack_price_usd,
    )  # fmt: skip
    assert "150 credits available" in message["message"]
    assert message["status"] == "pending"


def test_the_top_up_brings_the_user_above_the_resolve_level(ledger, plans):
    big = {"name": "big", "kind": "available_below", "severity": "warning",
           "below": 15_000, "resolve_at": 25_000}  # fmt: skip
    account(ledger, "u_1", 1_000)
    evaluator(ledger, big, plans=plans).evaluate()
    packs = int(query(ledger, "SELECT topup_packs FROM alert_outbox").iloc[0, 0])
    pack = plans.topup.pack_credits
    assert 1_000 + packs * pack >= 25_000 > 1_000 + (packs - 1) * pack


def test_removing_a_rule_resolves_its_open_alerts(ledger):
    account(ledger, "u_1", 100)
    evaluator(ledger, LOW).evaluate()
    other = {**LOW, "name": "other"}
    result = evaluator(ledger, other).evaluate()
    assert result.resolved == 1 and open_pairs(ledger) == {("u_1", "other")}
    note = query(ledger, "SELECT note FROM alert_events WHERE event = 'resolved'").iloc[0, 0]
    assert note == "rule removed or disabled"


def test_evaluating_one_user_leaves_the_others_alone(ledger):
    account(ledger, "u_1", 100)
    account(ledger, "u_2", 100)
    result = evaluator(ledger, LOW).evaluate(["u_1"])
    assert result.users == 1 and open_pairs(ledger) == {("u_1", "low")}
    evaluator(ledger, LOW).evaluate()
    assert open_pairs(ledger) == {("u_1", "low"), ("u_2", "low")}


def test_support_acknowledges_an_open_alert_with_a_note(ledger, clock):
    account(ledger, "u_1", 100)
    evaluator(ledger, LOW).evaluate()
    acknowledge(ledger, SUPPORT, "u_1/low/1", "  Emailed the user about top-ups.  ")
    row = query(ledger, "SELECT * FROM alerts").iloc[0]
    assert row["status"] == "open"  # acknowledged, still in alert until they recover
    assert (row["acknowledged_by"], row["note"]) == (
        "sam@corp.example",
        "Emailed the user about top-ups.",
    )
    assert users_in_alert(ledger, unacknowledged_only=True).empty
    assert len(users_in_alert(ledger)) == 1
    event = alert_history(ledger, "u_1").iloc[0]
    assert (event["event"], event["actor"]) == ("acknowledged", "sam@corp.example")


def test_acknowledging_needs_support_a_note_and_an_open_alert(ledger):
    account(ledger, "u_1", 100)
    evaluator(ledger, LOW).evaluate()
    with pytest.raises(AccessDenied, match="acknowledge alert"):
        acknowledge(ledger, PRODUCT, "u_1/low/1", "looked at it")
    with pytest.raises(InvalidNote, match="note"):
        acknowledge(ledger, SUPPORT, "u_1/low/1", "   ")
    with pytest.raises(UnknownAlert, match="u_9/low/1"):
        acknowledge(ledger, SUPPORT, "u_9/low/1", "looked at it")
    set_available(ledger, "u_1", 600)
    evaluator(ledger, LOW).evaluate()
    with pytest.raises(AlertNotOpen, match="resolved"):
        acknowledge(ledger, LOCAL, "u_1/low/1", "looked at it")
    events = query(ledger, "SELECT event FROM alert_events ORDER BY ts, event")["event"]
    assert "acknowledged" not in events.tolist()


def test_open_alert_counts_by_severity(ledger):
    warn = {"name": "warn", "kind": "available_below", "severity": "warning",
            "below": 1_000, "resolve_at": 1_500}  # fmt: skip
    account(ledger, "u_1", 100)
    account(ledger, "u_2", 900)
    evaluator(ledger, LOW, warn).evaluate()
    counts = open_alert_counts(ledger)
    assert counts.total == 3
    assert counts.by_severity == {"info": 0, "warning": 2, "critical": 1}
    assert counts.describe() == "1 critical, 2 warning, 0 info"


def test_users_in_alert_shows_burn_and_days_left(ledger, clock):
    account(ledger, "u_1", 850)
    for _ in range(7):
        hold = ledger.reserve("u_1", 100, metadata={"model": "Music 1.5"})
        ledger.confirm(hold.transaction_id, success=True)
        clock.advance(hours=20)
    evaluator(ledger, LOW).evaluate()
    row = users_in_alert(ledger).iloc[0]
    assert (row["user_id"], row["available"]) == ("u_1", 150)
    assert row["burn_per_day"] == 100.0
    assert row["days_left"] == 1.5
    assert row["history"] == "/transaction_history?user=u_1"
    assert users_in_alert(ledger, severities=["info"]).empty
    assert users_in_alert(ledger, search="NOBODY").empty
    assert len(users_in_alert(ledger, search="U_1@EXAMPLE")) == 1


def test_concurrent_evaluations_open_each_alert_once(ledger):
    for number in range(50):
        account(ledger, f"u_{number}", 100)
    tested = evaluator(ledger, LOW)
    results, errors = [], []

    def run():
        try:
            results.append(tested.evaluate())
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r.opened for r in results) == [0, 0, 0, 50]
    assert len(query(ledger, "SELECT * FROM alert_outbox")) == 50


def test_evaluating_no_users_changes_nothing(ledger):
    account(ledger, "u_1", 100)
    assert evaluator(ledger, LOW).evaluate([]).opened == 0
    assert open_pairs(ledger) == set()
