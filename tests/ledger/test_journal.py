"""The journal (journal.py): entries numbered per account, each with the balance after it,
moved together with the account's balance row."""

from __future__ import annotations

import pandas as pd
import pytest

from credits_core.ledger.batch import Batch
from credits_core.ledger.journal import number_entries, post_frame
from credits_core.ledger.state import AccountState
from tests.ledger.support import START, funded, journal


def test_a_batch_posts_entries_with_running_balances():
    state = AccountState("u_1", 1, None, None, START, total=100, held=0, entries=1)
    batch = Batch()
    assert state.next_id("adj") == "adj-1-2"
    assert batch.post(state, START, "adjust", "adj-1-2", credits=-30) == 70
    assert batch.post(state, START, "reserve", "hold-1-3", held=20) == 70
    assert (state.total, state.held, state.entries) == (70, 20, 3)
    assert [(row[1], row[7], row[8]) for row in batch.journal] == [(2, 70, 0), (3, 70, 20)]


def test_a_posting_that_would_hold_more_than_the_total_is_refused():
    state = AccountState("u_1", 1, None, None, START, total=10, held=0, entries=1)
    with pytest.raises(AssertionError):
        Batch().post(state, START, "reserve", "hold-1-2", held=11)


def test_post_frame_numbers_entries_per_account_in_order(ledger):
    funded(ledger, "u_1", 100)
    funded(ledger, "u_2", 10)
    entries = pd.DataFrame(
        {
            "user_id": ["u_2", "u_1", "u_2"],
            "ord": [2, 0, 1],
            "ts": START,
            "kind": "adjust",
            "credits": [-1, -5, -2],
            "held": 0,
            "transaction_id": ["b", "a", "c"],
            "grant_id": None,
            "reason": None,
            "actor": "test",
            "model": None,
            "metadata": None,
        }
    )
    cur = ledger._store.cursor()
    numbered = number_entries(cur, entries)
    assert list(
        zip(numbered["user_id"], numbered["seq"], numbered["transaction_id"], strict=True)
    ) == [
        ("u_1", 2, "a"),
        ("u_2", 2, "c"),
        ("u_2", 3, "b"),
    ]
    post_frame(cur, numbered)
    cur.close()
    rows = [(r[2], r[1], r[5], r[7]) for r in journal(ledger)]  # user, seq, credits, balance
    assert rows == [
        ("u_1", 1, 100, 100),
        ("u_1", 2, -5, 95),
        ("u_2", 1, 10, 10),
        ("u_2", 2, -2, 8),
        ("u_2", 3, -1, 7),
    ]
    assert ledger.balance("u_2").total == 7
