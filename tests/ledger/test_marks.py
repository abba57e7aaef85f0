"""History marks (marks.py): a long history read from its mark is the same history.

The newest entries of an account with a long history are read from the journal rows
at or after its mark. These tests make long histories through every path that appends
to the journal (the writer's batches, bulk usage, an upgrade from a file without
marks), interleaved with other accounts' entries, and compare with the history read
entry by entry through the index.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from credits_core.ledger import Ledger, reads
from credits_core.ledger.marks import COLUMNS, MARKS_SQL, kept
from credits_core.ledger.schema import migrate
from tests.ledger.support import funded, sql

LONG = 30  # entries that make a history long, for these tests


@pytest.fixture(autouse=True)
def short_long_history(monkeypatch):
    monkeypatch.setattr(reads, "LONG_HISTORY", LONG)


def by_index(ledger: Ledger, user_id: str, limit: int) -> list[int]:
    """The newest `limit` seqs, read through the index (a window forces that path)."""
    frame = ledger.history(user_id, since=datetime(2000, 1, 1, tzinfo=UTC), limit=limit)
    return list(frame["seq"])


def marked(ledger: Ledger, account_no: int) -> list[int]:
    """The entries the account's kept history marks are at."""
    [row] = sql(ledger, f"SELECT {MARKS_SQL} FROM accounts WHERE account_no = ?", [account_no])
    return [mark["seq"] for mark in kept(row)]


def usage(user_ids: list[str], now: datetime) -> pd.DataFrame:
    """One successful 1-credit generation per user id listed, a minute apart, up to now."""
    rows = len(user_ids)
    return pd.DataFrame({
        "user_id": user_ids,
        "credits": np.ones(rows, dtype=np.int64),
        "ts": pd.to_datetime([now - timedelta(minutes=rows - n) for n in range(rows)], utc=True),
        "success": [True] * rows,
    })  # fmt: skip


def spend(ledger: Ledger, users: list[str], rounds: int) -> None:
    for _ in range(rounds):
        for user in users:
            hold = ledger.reserve(user, 1)
            ledger.confirm(hold.transaction_id, success=True)


def test_an_account_opened_in_the_same_apply_as_its_entries_gets_its_marks(ledger):
    applier, held, go_on = ledger.writer.applier, threading.Event(), threading.Event()

    def hold_the_first_apply(cur: duckdb.DuckDBPyConnection) -> None:
        held.set()
        go_on.wait(timeout=30)

    applier.before_apply = hold_the_first_apply
    funded(ledger, "u_0")
    assert held.wait(timeout=30)  # u_0's apply waits; what follows is applied together
    funded(ledger, "u_1", credits=10_000)
    spend(ledger, ["u_1"], rounds=20)
    applier.before_apply = None
    go_on.set()
    assert marked(ledger, 2) == [20, 40]
    assert max(applier.apply_sizes) > 20  # u_1's opening and its entries: one apply
    assert list(ledger.history("u_1", limit=3)["seq"]) == [41, 40, 39]


def test_a_long_history_from_its_mark_is_the_newest_entries(ledger):
    users = [funded(ledger, f"u_{n}", credits=10_000) for n in range(3)]
    spend(ledger, users, rounds=40)  # 81 entries each, interleaved
    assert marked(ledger, 1) == [20, 40, 60, 80]
    for limit in (1, 10, 50, 81):
        frame = ledger.history("u_1", limit=limit)
        assert list(frame["seq"]) == list(range(81, 81 - limit, -1)) == by_index(ledger, "u_1",
                                                                                limit)  # fmt: skip
    newest = ledger.history("u_2", limit=5)
    assert list(newest["kind"]) == ["capture", "reserve"] * 2 + ["capture"]
    assert ledger.check_invariants() == []


def test_a_history_read_from_marks_read_earlier_is_still_the_newest_entries(db_path, clock):
    """A ledger keeps each account's marks as it last read them (directory.py), and reads
    every long history's marks the first time it reads any history: as the account
    grows, a little and then a lot, each read is still the newest entries."""
    with Ledger.open(db_path, clock=clock) as writing:
        users = [funded(writing, f"u_{n}", credits=10_000) for n in range(2)]
        spend(writing, users, rounds=30)  # 61 entries each, interleaved: long histories
        with Ledger.open(db_path, clock=clock) as reading:
            assert list(reading.history("u_0", limit=5)["seq"]) == [61, 60, 59, 58, 57]
            for rounds in (5, 80, 5):  # 10 new entries, 160 (over STALE_ENTRIES), 10
                spend(writing, users, rounds=rounds)
                for limit in (3, 100):
                    newest = list(reading.history("u_1", limit=limit)["seq"])
                    assert newest == by_index(writing, "u_1", limit)
                    assert newest[0] == sql(reading, "SELECT entries FROM accounts "
                                            "WHERE user_id = 'u_1'")[0][0]  # fmt: skip


def test_bulk_usage_is_marked_too(ledger, clock):
    users = [funded(ledger, f"u_{n}", credits=10_000) for n in range(2)]
    clock.advance(hours=1)
    ledger.apply_usage(usage([users[n % 2] for n in range(2 * 60)], clock.now))
    spend(ledger, users, rounds=5)
    assert marked(ledger, 2) == [20, 40, 60]
    [row] = sql(ledger, f"SELECT {MARKS_SQL} FROM accounts WHERE account_no = 2")
    for mark in kept(row):  # exact: a history reads from the marked entry's own row on
        query = "SELECT rowid FROM journal WHERE account_no = 2 AND seq = ?"
        assert sql(ledger, query, [mark["seq"]]) == [(mark["row_floor"],)]
    assert list(ledger.history("u_1", limit=20)["seq"]) == by_index(ledger, "u_1", 20)
    assert ledger.check_invariants() == []


def test_a_bulk_batch_is_journaled_in_account_order(ledger, clock):
    """Events of many users arrive interleaved; the journal holds the batch by account,
    then entry, so each row group of it spans a narrow range of accounts, and a history
    read skips the others by their bounds."""
    users = [funded(ledger, f"u_{n}", credits=10_000) for n in range(50)]
    clock.advance(hours=1)
    ledger.apply_usage(usage([users[n % 50] for n in range(50 * 40)], clock.now))
    rows = sql(ledger, "SELECT account_no, seq FROM journal WHERE kind = 'capture' ORDER BY rowid")
    assert rows == sorted(rows)
    assert list(ledger.history("u_3", limit=50)["seq"]) == by_index(ledger, "u_3", 50)


def test_one_bulk_batch_of_many_marks_keeps_the_newest_six(ledger, clock):
    user = funded(ledger, "u_1", credits=10_000)  # entry 1: the grant
    clock.advance(hours=1)
    # entries 2-171: marks at 20, 40, ... 160 land in six slots, the newest kept
    ledger.apply_usage(usage([user] * 170, clock.now))
    assert marked(ledger, 1) == [60, 80, 100, 120, 140, 160]
    spend(ledger, [user], rounds=10)  # entries 172-191: the mark at 180 replaces 60's
    assert marked(ledger, 1) == [80, 100, 120, 140, 160, 180]
    for limit in (5, 100, 111):
        assert list(ledger.history(user, limit=limit)["seq"]) == by_index(ledger, user, limit)
    assert ledger.check_invariants() == []


def test_an_upgraded_file_gets_the_marks_of_its_journal(db_path, clock):
    con = duckdb.connect(db_path)  # a file from before the marks, with 330 entries
    migrate(con, clock.now, target=6)
    con.execute(
        "INSERT INTO accounts (user_id, account_no, created_at, total, held, entries) "
        "VALUES ('u_1', 1, ?, 330, 0, 330)",
        [clock.now],
    )
    con.execute(
        """
        INSERT INTO journal (account_no, seq, user_id, ts, kind, credits, held, balance_after,
                             held_after, transaction_id)
        SELECT 1, i, 'u_1', ?, 'adjust', 1, 0, i, 0, 'adj-1-' || i FROM range(1, 331) t(i)
        """,
        [clock.now],
    )
    con.close()
    with Ledger.open(db_path, clock=clock) as ledger:
        assert marked(ledger, 1) == [220, 240, 260, 280, 300, 320]  # the newest six
        assert list(ledger.history("u_1", limit=100)["seq"]) == list(range(330, 230, -1))
        assert list(ledger.history("u_1", limit=100)["seq"]) == by_index(ledger, "u_1", 100)


def test_a_mark_past_its_entry_is_reported(ledger):
    users = [funded(ledger, f"u_{n}", credits=10_000) for n in range(2)]
    spend(ledger, users, rounds=15)  # 31 entries each: one mark
    past = ", ".join(f"{row} = {row} + 1000" for _, row in COLUMNS)  # NULLs stay NULL
    sql(ledger, f"UPDATE accounts SET {past} WHERE account_no = 1")
    problems = ledger.check_invariants()
    assert problems and all("history mark" in line for line in problems)
