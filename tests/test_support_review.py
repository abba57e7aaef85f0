"""Support actions checked before confirmation: every problem named for an agent, no
rounding, nothing written; the journal CSV keeps metadata as JSON."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from credits_core.access import LOCAL, AccessDenied, Identity, Role
from credits_core.ledger import Ledger
from credits_core.support import journal_csv
from credits_core.support_review import (
    SupportInputError,
    credits_problem,
    review_adjustment,
    review_refund,
)
from tests.ledger.support import FakeClock

PRODUCT = Identity("pia@corp.example", frozenset({Role.PRODUCT}), "login")


@pytest.fixture
def ledger():
    with Ledger.open(":memory:", clock=FakeClock()) as opened:
        opened.create_account("u_1", email="u_1@example.com", plan="pro")
        opened.grant("u_1", 1_000, kind="plan")
        yield opened


@pytest.mark.parametrize(
    ("text", "credits"), [("500", 500), ("-200", -200), ("1,000", 1_000), (" +7 ", 7)]
)
def test_whole_numbers_are_read_exactly(text, credits):
    assert credits_problem(text) == (credits, None)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("12.7", "12.7 has a fraction"),
        ("12.0", "12.0 has a fraction"),
        ("ten", "'ten' is not a number"),
        ("0", "0 credits changes nothing"),
        ("  ", "Type the credits"),
    ],
)
def test_other_input_says_what_is_wrong(text, says):
    credits, problem = credits_problem(text)
    assert credits is None and says in problem


def test_every_problem_is_named_at_once_and_nothing_is_written(ledger):
    with pytest.raises(SupportInputError) as caught:
        review_adjustment(ledger, LOCAL, "u_1", "-5000", "")
    assert caught.value.problems == [
        "u_1 has 1,000 credits available, so at most 1,000 can be removed, not 5,000.",
        "Write a reason: what happened and why the credits change. The user's journal keeps it.",
    ]
    assert len(ledger.history("u_1")) == 1


def test_a_good_adjustment_describes_its_effect(ledger):
    proposal = review_adjustment(ledger, LOCAL, "u_1", "-1000", "  duplicate grant ")
    assert (proposal.credits, proposal.reason) == (-1_000, "duplicate grant")
    assert proposal.describe() == "Remove 1,000 credits from u_1: available 1,000 -> 0."


def test_refunds_need_this_users_captured_generation_and_a_reason(ledger):
    hold = ledger.reserve("u_1", 300, reason="video", metadata={"model": "Music 1.5"})
    with pytest.raises(SupportInputError, match="was pending, not captured"):
        review_refund(ledger, LOCAL, "u_1", hold.transaction_id, "bad")
    ledger.confirm(hold.transaction_id, success=True)
    proposal = review_refund(ledger, LOCAL, "u_1", hold.transaction_id, "black frames")
    assert proposal.describe().startswith("Refund 300 credits to u_1 for the")
    with pytest.raises(SupportInputError, match="Pick the captured generation"):
        review_refund(ledger, LOCAL, "u_1", None, "x")
    with pytest.raises(SupportInputError, match="is not a generation of u_1"):
        review_refund(ledger, LOCAL, "u_1", "t_nope", "x")


def test_other_roles_may_not_review_support_actions(ledger):
    with pytest.raises(AccessDenied):
        review_adjustment(ledger, PRODUCT, "u_1", "5", "x")


def test_journal_csv_writes_metadata_as_json(ledger):
    ledger.reserve("u_1", 300, reason="video", metadata={"model": "Music 1.5", "n": 2})
    rows = pd.read_csv(io.StringIO(journal_csv(ledger, "u_1")))
    written = rows["metadata"].dropna().tolist()
    assert [json.loads(text) for text in written] == [{"model": "Music 1.5", "n": 2}]
