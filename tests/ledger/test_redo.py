"""The redo log (redo.py) and the applier (applier.py): a write is acknowledged once its
batch is logged, and the database file catches up behind.

Real files and real threads: the file is made to lag by holding or failing the
applier through its test hook, and a child process is killed by SIGKILL while the
file lags, so that only the log holds what was acknowledged.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from credits_core.ledger import (
    InsufficientCredits,
    Ledger,
    LedgerDamaged,
    NotRefundable,
    TransactionClosed,
    redo,
)
from credits_core.ledger import applier as applier_module
from credits_core.ledger import state as state_module
from credits_core.ledger import writer as writer_module
from credits_core.ledger.changes import ENTRIES, Changes
from credits_core.ledger.errors import LedgerBehind
from credits_core.ledger.redo import RedoLog, log_path
from tests.ledger.support import funded, sql

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def lagging(ledger: Ledger) -> threading.Event:
    """Hold the applier inside its next transaction until the returned event is set."""
    release = threading.Event()
    ledger.writer.applier.before_apply = lambda cur: release.wait(30)
    return release


def ledger_rows(path: str, query: str) -> list[tuple]:
    """Read the database file directly, without replaying its log."""
    con = duckdb.connect(path, read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------------- killed while lagging

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from credits_core import Ledger
    from tests.ledger.support import funded

    ledger = Ledger.open(sys.argv[1])
    funded(ledger, credits=1_000)
    ledger.balance("u_1")  # the file holds the account and its grant
    def fail(cur):
        raise RuntimeError("the disk is stalled")
    ledger.writer.applier.before_apply = fail
    for i in range(20):
        hold = ledger.reserve("u_1", 10 + i)
        done = ledger.confirm(hold.transaction_id, success=i % 2 == 0)
        print(done.transaction_id, done.status, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.fixture
def killed_while_lagging(db_path) -> list[tuple[str, str]]:
    """Run CHILD until it kills itself; return its acknowledged (hold, status) pairs."""
    child = subprocess.run(
        [sys.executable, "-c", CHILD, db_path], cwd=REPO, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stderr
    acknowledged = [tuple(line.split()) for line in child.stdout.splitlines()]
    assert len(acknowledged) == 20
    return acknowledged


def test_writes_only_the_log_holds_survive_a_sigkill(db_path, killed_while_lagging):
    assert os.path.getsize(log_path(db_path)) > 0
    assert ledger_rows(db_path, "SELECT count(*) FROM holds") == [(0,)]  # the file lags
    with Ledger.open(db_path) as ledger:
        for transaction_id, status in killed_while_lagging:
            assert ledger.reservation(transaction_id).status == status
        spent = sum(10 + i for i in range(0, 20, 2))
        assert tuple(ledger.balance("u_1")) == (1_000 - spent, 0, 1_000 - spent)
        assert ledger.check_invariants() == []
    assert not os.path.exists(log_path(db_path))  # applied, then removed on closing


def test_a_read_only_open_sees_what_only_the_log_held(db_path, killed_while_lagging):
    with Ledger.open(db_path, read_only=True) as ledger:
        assert len(ledger.history("u_1", limit=None)) == 1 + 2 * 20
        assert ledger.check_invariants() == []


# ---------------------------------------------------------------------- reading while lagging


def test_a_read_waits_until_the_file_holds_what_was_acknowledged(ledger):
    funded(ledger, credits=100)
    release = lagging(ledger)
    hold = ledger.reserve("u_1", 30)  # acknowledged: logged, not yet in the file
    seen = []
    reader = threading.Thread(target=lambda: seen.append(ledger.reservation(hold.transaction_id)))
    reader.start()
    reader.join(timeout=0.5)
    assert reader.is_alive() and not seen  # it waits rather than miss the hold
    release.set()
    reader.join(timeout=30)
    assert seen[0].status == "pending"
    assert tuple(ledger.balance("u_1")) == (100, 30, 70)


def test_the_applier_waits_for_more_unless_a_read_needs_the_file(db_path, clock, monkeypatch):
    monkeypatch.setattr(applier_module, "APPLY_DELAY_S", 3_600.0)
    with Ledger.open(db_path, clock=clock) as ledger:
        applier = ledger.writer.applier
        funded(ledger, credits=100)
        holds = [ledger.reserve("u_1", 10) for _ in range(3)]
        time.sleep(0.2)
        assert applier.applied == 0 < applier.logged  # acknowledged, not yet in the file
        assert tuple(ledger.balance("u_1")) == (100, 30, 70)  # the read had them applied
        assert applier.applied == applier.logged
        assert list(applier.apply_sizes) == [applier.logged]  # all of them, in one apply
        assert ledger.reservation(holds[2].transaction_id).status == "pending"


def test_enough_waiting_rows_are_applied_without_a_read(db_path, clock, monkeypatch):
    monkeypatch.setattr(applier_module, "APPLY_DELAY_S", 3_600.0)
    monkeypatch.setattr(applier_module, "APPLY_ROWS", 10)
    with Ledger.open(db_path, clock=clock) as ledger:
        funded(ledger, credits=100)
        for _ in range(5):
            ledger.reserve("u_1", 1)  # 3 rows each: an entry, a hold, the balance
        applier = ledger.writer.applier
        deadline = time.monotonic() + 30
        while applier.applied < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert applier.applied >= 3  # applied once 10 rows waited, with no read


def test_a_read_refused_after_waiting_too_long_says_why(ledger, monkeypatch):
    funded(ledger, credits=100)
    monkeypatch.setattr(applier_module, "CATCH_UP_S", 0.2)
    monkeypatch.setattr(applier_module, "RETRY_PAUSE_S", 0.05)

    def fail(cur):
        raise RuntimeError("the disk is stalled")

    ledger.writer.applier.before_apply = fail
    ledger.reserve("u_1", 30)
    with pytest.raises(LedgerBehind, match="the disk is stalled") as behind:
        ledger.balance("u_1")
    assert "safe in its redo log" in str(behind.value)
    ledger.writer.applier.before_apply = None  # the next attempt succeeds
    assert tuple(ledger.balance("u_1")) == (100, 30, 70)
    assert ledger.check_invariants() == []


def test_a_failed_apply_is_retried_and_loses_nothing(ledger, monkeypatch):
    funded(ledger, credits=100)
    monkeypatch.setattr(applier_module, "RETRY_PAUSE_S", 0.01)
    failures = iter(["first", "second"])

    def fail_twice(cur):
        reason = next(failures, None)
        if reason is not None:
            cur.execute("SELECT * FROM no_such_table")  # a real DuckDB error

    ledger.writer.applier.before_apply = fail_twice
    holds = [ledger.reserve("u_1", 10) for _ in range(3)]
    assert tuple(ledger.balance("u_1")) == (100, 30, 70)
    assert next(failures, None) is None  # both failures happened
    assert [ledger.reservation(h.transaction_id).credits for h in holds] == [10, 10, 10]
    assert ledger.check_invariants() == []


# ---------------------------------------------------------------------- deciding while lagging


def test_decisions_use_what_was_logged_while_the_file_lags(ledger):
    funded(ledger, credits=100)
    release = lagging(ledger)
    hold = ledger.reserve("u_1", 30)
    captured = ledger.confirm(hold.transaction_id, success=True)
    assert ledger.confirm(hold.transaction_id, success=True) == captured  # not captured twice
    with pytest.raises(TransactionClosed):  # closed in the log, still pending in the file
        ledger.confirm(hold.transaction_id, success=False)
    first = ledger.grant("u_1", 5, kind="topup", idempotency_key="topup-1")
    again = ledger.grant("u_1", 5, kind="topup", idempotency_key="topup-1")
    assert again == first  # the first result, kept aside until the file holds it
    ledger.refund(hold.transaction_id, reason="bad output", actor="support")
    with pytest.raises(NotRefundable):
        ledger.refund(hold.transaction_id, reason="twice", actor="support")
    release.set()
    assert tuple(ledger.balance("u_1")) == (105, 0, 105)
    assert sql(ledger, "SELECT count(*) FROM grants WHERE kind = 'topup'") == [(1,)]
    assert ledger.check_invariants() == []


def test_accounts_the_file_lags_behind_are_never_dropped_from_memory(db_path, clock, monkeypatch):
    monkeypatch.setattr(state_module, "CAPACITY_ACCOUNTS", 2)
    with Ledger.open(db_path, clock=clock) as ledger:
        users = [funded(ledger, f"u_{n}", credits=100) for n in range(6)]
        release = lagging(ledger)
        for user in users:
            ledger.reserve(user, 60)
        for user in users:  # a stale account reloaded from the file would allow it
            with pytest.raises(InsufficientCredits):
                ledger.reserve(user, 60)
        release.set()
        assert [tuple(ledger.balance(u)) for u in users] == [(100, 60, 40)] * 6
        assert ledger.check_invariants() == []


def test_the_log_is_emptied_once_the_file_holds_it_all(db_path, clock, monkeypatch):
    monkeypatch.setattr(writer_module, "LOG_LIMIT_BYTES", 4_096)
    with Ledger.open(db_path, clock=clock) as ledger:
        funded(ledger, credits=10_000)
        for _ in range(100):
            hold = ledger.reserve("u_1", 1)
            ledger.confirm(hold.transaction_id, success=True)
        assert os.path.getsize(log_path(db_path)) < 2 * 4_096
        assert tuple(ledger.balance("u_1")) == (9_900, 0, 9_900)
    assert not os.path.exists(log_path(db_path))


# ---------------------------------------------------------------------- the log's records


def entry(n: int) -> Changes:
    changes = Changes()
    row = (1, n, "u_1", NOW, "grant", n, 0, n, 0, f"t-{n}", None, None, None, None, None)
    changes.add(ENTRIES, [row])
    return changes


def test_a_torn_last_record_is_dropped_and_cut_off(tmp_path):
    path = str(tmp_path / "x.redo")
    log = RedoLog(path)
    for n in (1, 2):
        log.append(n, entry(n))
    whole = os.path.getsize(path)
    log.close()
    with open(path, "ab") as file:
        file.write(b"\x40\x00\x00\x00partial")  # a record a killed process began
    log = RedoLog(path)
    assert [(n, c.rows) for n, c in log.records()] == [(1, entry(1).rows), (2, entry(2).rows)]
    assert os.path.getsize(path) == whole
    log.close()


def test_a_record_failing_its_checksum_ends_the_log(tmp_path):
    path = str(tmp_path / "x.redo")
    log = RedoLog(path)
    for n in (1, 2, 3):
        log.append(n, entry(n))
    log.close()
    data = bytearray(Path(path).read_bytes())
    data[-5] ^= 0xFF  # flip a byte of the last record's payload
    Path(path).write_bytes(bytes(data))
    assert [n for n, _ in RedoLog(path).records()] == [1, 2]


def test_a_record_from_before_bulk_usage_was_logged_still_reads(tmp_path):
    """A log left by the version before (a record's payload was its rows alone, pickled)
    is replayed by this one."""
    path = tmp_path / "x.redo"
    rows = entry(1).rows
    payload = pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)
    crc = zlib.crc32(redo.NUMBER.pack(1) + payload)
    path.write_bytes(redo.HEADER.pack(len(payload), crc, 1) + payload)
    [(number, changes)] = list(RedoLog(str(path)).records())
    assert (number, changes.rows, changes.usage) == (1, rows, [])


def test_a_log_missing_a_batch_is_refused_as_damaged(db_path, clock):
    with Ledger.open(db_path, clock=clock) as ledger:
        funded(ledger)
    log = RedoLog(log_path(db_path))
    log.append(5, entry(5))  # the file holds batch 2; 3 and 4 are missing
    log.close()
    with pytest.raises(LedgerDamaged, match="redo log"):
        Ledger.open(db_path, clock=clock)
