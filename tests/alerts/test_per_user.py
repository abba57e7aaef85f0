"""Alerts as support works them: one row per user (most severe alert, every rule that
matches), true counts and pages, acknowledging a user, one outbox message per user per
evaluation, delivery state and retrying failed messages."""

from __future__ import annotations

import json

import pytest

from credits_core.access import AccessDenied, Identity, Role
from credits_core.alerts import (
    NoOpenAlert,
    acknowledge_user,
    count_users_in_alert,
    deliver,
    outbox_state,
    retry_failed,
    users_in_alert,
)
from tests.alerts.conftest import account, evaluator, query

LOW = {"name": "low", "kind": "available_below", "severity": "critical",
       "below": 200, "resolve_at": 500}  # fmt: skip
LOWISH = {"name": "lowish", "kind": "available_below", "severity": "warning",
          "below": 400, "resolve_at": 600}  # fmt: skip
PLAN = {"name": "plan-low", "kind": "percent_of_plan_below", "severity": "info",
        "below_percent": 50, "resolve_at_percent": 60}  # fmt: skip
SUPPORT = Identity("sam@corp.example", frozenset({Role.SUPPORT}), "login")
PRODUCT = Identity("pia@corp.example", frozenset({Role.PRODUCT}), "login")
DEAD = "http://127.0.0.1:9/nothing-listens-here"


@pytest.fixture
def alerted(ledger):
    """u_1 (100 credits) matches all three rules, u_2 (300) two, u_3 (1,000) only the
    plan rule (pro: 5,000 a month)."""
    for user_id, credits in (("u_1", 100), ("u_2", 300), ("u_3", 1_000)):
        account(ledger, user_id, credits)
    evaluator(ledger, LOW, LOWISH, PLAN).evaluate()
    return ledger


def test_each_user_once_with_their_most_severe_alert_and_every_rule(alerted):
    shown = users_in_alert(alerted)
    assert shown[["user_id", "severity", "rules", "alerts", "available"]].values.tolist() == [
        ["u_1", "critical", "low, lowish, plan-low", 3, 100],
        ["u_2", "warning", "lowish, plan-low", 2, 300],
        ["u_3", "info", "plan-low", 1, 1_000],
    ]
    assert count_users_in_alert(alerted) == 3


def test_filters_and_counts_are_per_user(alerted):
    assert users_in_alert(alerted, severities=["warning"])["user_id"].tolist() == ["u_2"]
    assert users_in_alert(alerted, rules=["lowish"])["user_id"].tolist() == ["u_1", "u_2"]
    assert count_users_in_alert(alerted, rules=["plan-low"]) == 3
    assert count_users_in_alert(alerted, search="U_3@") == 1


def test_paging_walks_through_every_user_once(alerted):
    pages = [users_in_alert(alerted, limit=2, offset=n)["user_id"].tolist() for n in (0, 2)]
    assert pages == [["u_1", "u_2"], ["u_3"]]


def test_acknowledging_a_user_acknowledges_all_their_open_alerts(alerted):
    assert acknowledge_user(alerted, SUPPORT, "u_1", "Emailed them about top-ups") == 3
    open_ = query(alerted, "SELECT acknowledged_by FROM alerts WHERE user_id = 'u_1'")
    assert set(open_["acknowledged_by"]) == {"sam@corp.example"}
    waiting = users_in_alert(alerted, unacknowledged_only=True)["user_id"].tolist()
    assert waiting == ["u_2", "u_3"]
    assert count_users_in_alert(alerted, unacknowledged_only=True) == 2
    row = users_in_alert(alerted).iloc[0]
    assert (row["user_id"], row["note"]) == ("u_1", "Emailed them about top-ups")
    with pytest.raises(NoOpenAlert, match="u_1 has no open alert waiting"):
        acknowledge_user(alerted, SUPPORT, "u_1", "again")
    with pytest.raises(AccessDenied):
        acknowledge_user(alerted, PRODUCT, "u_2", "looked")


def test_one_message_per_user_per_evaluation_naming_every_rule(alerted):
    outbox = query(alerted, "SELECT * FROM alert_outbox ORDER BY user_id")
    assert outbox["user_id"].tolist() == ["u_1", "u_2", "u_3"]
    assert outbox["message_id"].tolist() == ["u_1/low/1", "u_2/lowish/1", "u_3/plan-low/1"]
    assert outbox["rule"].tolist() == ["low, lowish, plan-low", "lowish, plan-low", "plan-low"]
    assert outbox["severity"].tolist() == ["critical", "warning", "info"]
    assert "You have 100 credits available." in outbox["message"][0]


def test_delivery_state_and_retrying_failed_messages(alerted, clock, tmp_path):
    for _ in range(2):
        deliver(alerted, DEAD, max_attempts=2, timeout=1)
        clock.advance(hours=1)
    state = outbox_state(alerted)
    assert (state.pending, state.sent, state.failed) == (0, 0, 3)
    assert state.last_error.startswith("URLError") or "Connection refused" in state.last_error
    with pytest.raises(AccessDenied):
        retry_failed(alerted, PRODUCT)
    assert retry_failed(alerted, SUPPORT, ["u_2/lowish/1"]) == 1
    assert (outbox_state(alerted).pending, outbox_state(alerted).failed) == (1, 2)
    assert retry_failed(alerted, SUPPORT) == 2
    target = tmp_path / "messages.jsonl"
    assert deliver(alerted, str(target)).delivered == 3
    state = outbox_state(alerted)
    assert (state.pending, state.sent, state.failed, state.last_error) == (0, 3, 0, None)
    sent = [json.loads(line)["message_id"] for line in target.read_text().splitlines()]
    assert sorted(sent) == ["u_1/low/1", "u_2/lowish/1", "u_3/plan-low/1"]
