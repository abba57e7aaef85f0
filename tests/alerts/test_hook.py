"""Evaluation after each ledger write that changes a balance, for the users it touched;
a failing listener never undoes or fails the write."""

from __future__ import annotations

import logging

import pandas as pd

from credits_core.alerts import watch
from tests.alerts.conftest import account, open_pairs, rule_set

LOW = {"name": "low", "kind": "available_below", "severity": "critical",
       "below": 200, "resolve_at": 500}  # fmt: skip


def test_listeners_hear_the_users_each_balance_change_touched(ledger, clock):
    heard = []
    stop = ledger.on_balance_change(heard.append)
    ledger.create_account("u_1", plan="pro")  # no balance change: not told
    ledger.create_account("u_2", plan="pro")
    ledger.grant("u_1", 500, kind="topup")
    hold = ledger.reserve("u_1", 100)
    ledger.confirm(hold.transaction_id, success=True)
    ledger.grant_many(
        pd.DataFrame({"user_id": ["u_1", "u_2"], "credits": [5, 100], "kind": "promo"})
    )
    ledger.adjust("u_2", -5, reason="test", actor="test")
    ledger.wait_for_listeners()  # they run on a thread of their own
    assert heard == [
        frozenset({"u_1"}),
        frozenset({"u_1"}),
        frozenset({"u_1"}),
        frozenset({"u_1", "u_2"}),
        frozenset({"u_2"}),
    ]
    ledger.reserve("u_2", 50, ttl=pd.Timedelta(minutes=1).to_pytimedelta())
    clock.advance(minutes=2)
    ledger.grant("u_1", 7, kind="promo", expires_at=clock.now + pd.Timedelta(minutes=1))
    clock.advance(minutes=2)
    ledger.expire_holds()  # a sweep names the users whose holds it expired
    ledger.wait_for_listeners()
    assert heard[-2:] == [frozenset({"u_1"}), frozenset({"u_2"})]
    ledger.expire_grants()
    ledger.wait_for_listeners()
    assert heard[-1] == frozenset({"u_1"})
    ledger.expire_holds()  # nothing lapsed: no one is told
    stop()
    ledger.grant("u_1", 1, kind="topup")
    ledger.wait_for_listeners()
    assert len(heard) == 9


def test_a_failing_listener_does_not_fail_the_write(ledger, caplog):
    def broken(user_ids):
        raise RuntimeError("listener broke")

    ledger.on_balance_change(broken)
    account(ledger, "u_1", 500)
    with caplog.at_level(logging.ERROR):
        ledger.adjust("u_1", -100, reason="test", actor="test")
        ledger.wait_for_listeners()
    assert ledger.balance("u_1").available == 400
    assert "listener" in caplog.text


def test_watch_opens_and_resolves_alerts_after_each_write(ledger, tmp_path):
    path = tmp_path / "rules.toml"
    rule_set(LOW).save(path)
    watch(ledger, path)
    account(ledger, "u_1", 300)
    account(ledger, "u_2", 100)
    assert open_pairs(ledger) == {("u_2", "low")}
    hold = ledger.reserve("u_1", 150)
    assert open_pairs(ledger) == {("u_1", "low"), ("u_2", "low")}
    ledger.confirm(hold.transaction_id, success=False)  # 300 again: not yet recovered
    assert open_pairs(ledger) == {("u_1", "low"), ("u_2", "low")}
    ledger.grant("u_1", 200, kind="topup")
    assert open_pairs(ledger) == {("u_2", "low")}
    # an edited rule file is read again at the next write
    rule_set({**LOW, "below": 1_000, "resolve_at": 2_000}).save(path)
    ledger.grant("u_1", 1, kind="topup")
    assert open_pairs(ledger) == {("u_1", "low"), ("u_2", "low")}


def test_a_broken_rule_file_does_not_stop_writes(ledger, tmp_path):
    path = tmp_path / "rules.toml"
    rule_set(LOW).save(path)
    watch(ledger, path)
    path.write_text("not = [toml", encoding="utf-8")
    account(ledger, "u_1", 100)
    assert ledger.balance("u_1").available == 100
    assert open_pairs(ledger) == set()
