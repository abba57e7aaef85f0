"""The journal (journal.py): entries numbered per account, each with the balance after it,
moved together with the account's balance row."""

from __future__ import annotations

import pandas as pd
import pytest

from credits_core.ledger.journal import number_entries, open_book, post_frame
from credits_core.ledger.store import StaleRead
from tests.ledger.support import START, funded, journal


def test_a_book_posts_entries_with_running_balances(ledger):
    funded(ledger, credits=100)
    cur = ledger._store.cursor()
    cur.execute("BEGIN")
    book = open_book(cur, "u_1")
    assert book.next_id("adj") == "adj-1-2"
    assert book.post(START, "adjust", "adj-1-2", credits=-30) == 70
    assert book.post(START, "reserve", "hold-1-3", held=20) == 70
    assert (book.balance_total, book.balance_held, book.seq) == (70, 20, 3)
    cur.execute("ROLLBACK")
    cur.close()


def test_saving_a_book_read_before_another_write_is_refused(ledger):
    funded(ledger, credits=100)
    cur = ledger._store.cursor()
    stale = open_book(cur, "u_1")
    ledger.adjust("u_1", 5, reason="meanwhile", actor="ops")
    stale.post(START, "adjust", "adj-1-2", credits=1)
    with pytest.raises(StaleRead):
        stale.save(cur)
    cur.close()
    assert ledger.check_invariants() == []


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
