"""check_invariants (invariants.py): a sound ledger reports nothing; each kind of damage
is reported by the rule it breaks."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pandas as pd
import pytest

from tests.ledger.support import START, funded, sql


@pytest.fixture
def busy(ledger, clock):
    """A ledger that went through every kind of write."""
    funded(ledger, "u_1", 500)
    funded(ledger, "u_2", 300, kind="promo", expires_at=clock.now + timedelta(minutes=30))
    captured = ledger.reserve("u_1", 100)
    ledger.confirm(captured.transaction_id, success=True, credits=70)
    ledger.confirm(ledger.reserve("u_1", 50).transaction_id, success=False)
    ledger.reserve("u_2", 40, ttl=timedelta(minutes=5))
    ledger.reserve("u_1", 30, ttl=timedelta(hours=2))  # still pending at the end
    ledger.adjust("u_1", -20, reason="fix", actor="ops")
    ledger.refund(captured.transaction_id, reason="bad", actor="ops")
    ledger.apply_usage(
        pd.DataFrame(
            {
                "user_id": ["u_1", "u_2"],
                "credits": [5, 6],
                "ts": pd.to_datetime([START, START], utc=True),
                "success": [True, False],
            }
        )
    )
    clock.advance(hours=1)
    ledger.expire_holds()
    ledger.expire_grants()
    return ledger


def test_a_ledger_after_every_kind_of_write_is_sound(busy):
    assert busy.check_invariants() == []


DAMAGE = {
    "balance differs from journal": (
        "UPDATE accounts SET total = total + 1, held = held + 1 WHERE user_id = 'u_1'",
        "balances equal the sum of their journal entries",
    ),
    "an entry deleted": (
        "DELETE FROM journal WHERE user_id = 'u_1' AND seq = 2",
        "numbered 1..n without gaps",
    ),
    "an entry edited": (
        "UPDATE journal SET credits = credits + 5 WHERE user_id = 'u_1' AND kind = 'capture'",
        "balance_after and held_after follow",
    ),
    "a grant overdrawn": (
        "UPDATE grants SET remaining = remaining + 1 WHERE user_id = 'u_1'",
        "equal the credits left in grants",
    ),
    "a hold dropped": (
        "UPDATE holds SET status = 'released', released = credits, resolved_at = now() "
        "WHERE status = 'pending'",
        "held credits equal the credits of pending holds",
    ),
    "a hold's draw changed": (
        "UPDATE holds SET drawn = [{'grant_id': 'x', 'credits': 1}]",
        "drawn credits sum to its credits",
    ),
    "a hold resolved twice": (
        "INSERT INTO journal SELECT account_no, 999, user_id, ts, 'expire', 0, 0, balance_after,"
        " held_after, transaction_id, NULL, NULL, NULL, NULL, NULL FROM journal"
        " WHERE kind = 'capture' AND held <> 0",
        "resolved at most once",
    ),
    "a grant without its entry": (
        "DELETE FROM journal WHERE kind = 'grant' AND user_id = 'u_2'",
        "each grant was booked by one entry",
    ),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damage_is_reported_by_the_rule_it_breaks(busy, damage):
    statement, rule = DAMAGE[damage]
    sql(busy, statement)
    violations = busy.check_invariants()
    assert any(rule in violation for violation in violations), violations


def test_a_rule_reports_a_few_examples_and_says_there_are_more(ledger):
    for i in range(8):
        funded(ledger, f"u_{i}", 10)
    sql(ledger, "UPDATE accounts SET total = total + 1, held = held + 1")
    violations = [v for v in ledger.check_invariants() if "sum of their journal" in v]
    assert len(violations) == 6 and violations[-1].endswith("... and more")


# Each impossible row, and the one rule (CHECK constraint) the database names refusing it.
REFUSED = {
    "UPDATE grants SET credits = remaining - 1 WHERE remaining > 1": "(remaining <= credits)",
    "UPDATE grants SET remaining = -1": "(remaining >= 0)",
    "UPDATE grants SET credits = 0 WHERE remaining = 0": "(credits > 0)",
    "UPDATE accounts SET held = total + 1": "(total >= held)",
    "UPDATE accounts SET held = -1, total = -1": "(held >= 0)",
    "UPDATE holds SET captured = credits + 1": "((captured + released) <= credits)",
    "UPDATE holds SET captured = -1": "(captured >= 0)",
    "UPDATE holds SET released = -1": "(released >= 0)",
    "UPDATE holds SET credits = 0 WHERE status = 'pending'": "(credits > 0)",
    "INSERT INTO grants (grant_id, user_id, kind, credits, remaining, priority, created_at,"
    " grant_seq, transaction_id) VALUES ('g-x', 'u_1', 'promo', 10, 11, 10, now(), 99, 'g-x')": (
        "(remaining <= credits)"
    ),
}


@pytest.mark.parametrize("statement", REFUSED)
def test_the_database_itself_refuses_impossible_rows_naming_the_rule(busy, statement):
    with pytest.raises(duckdb.ConstraintException) as refused:
        sql(busy, statement)
    assert str(refused.value).endswith(f"with expression CHECK({REFUSED[statement]})")
    assert busy.check_invariants() == []
