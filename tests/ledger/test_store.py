"""The file (store.py): opening, refusing foreign files, another process holding it,
read-only use, and whole-transaction retries on write conflicts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from credits_core.ledger import (
    InvalidTimestamp,
    Ledger,
    LedgerBusy,
    LedgerClosed,
    LedgerNotFound,
    NotALedger,
    ReadOnlyLedger,
)
from tests.ledger.support import funded

REPO = Path(__file__).resolve().parents[2]

HOLDER = textwrap.dedent(
    """
    import sys
    from credits_core.ledger import Ledger
    ledger = Ledger.open(sys.argv[1])
    print("holding", flush=True)
    sys.stdin.readline()  # hold the file until the parent says so
    ledger.close()
    print("released", flush=True)
    sys.stdin.readline()
    """
)


@pytest.fixture
def holder(db_path):
    """Another process with the ledger open."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, db_path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout.readline().strip() == "holding"
    yield child
    child.stdin.close()
    child.wait(timeout=60)


def test_another_process_gets_ledger_busy_naming_the_holder(db_path, holder):
    with pytest.raises(LedgerBusy) as info:
        Ledger.open(db_path, wait=0.2)
    assert info.value.pid == holder.pid
    assert f"PID {holder.pid}" in str(info.value)
    assert "after waiting 0.2 s" in str(info.value)
    with pytest.raises(LedgerBusy):
        Ledger.open(db_path, read_only=True)


def test_a_waiting_open_gets_the_file_once_it_is_free(db_path, holder):
    holder.stdin.write("\n")
    holder.stdin.flush()
    with Ledger.open(db_path, wait=60) as ledger:
        ledger.create_account("u_1")
        assert ledger.account("u_1").user_id == "u_1"


def test_a_file_that_is_not_duckdb_is_refused_untouched(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("not a database")
    with pytest.raises(NotALedger, match="not a valid DuckDB database"):
        Ledger.open(str(path))
    assert path.read_text() == "not a database"


def test_a_duckdb_file_of_something_else_is_refused(db_path):
    con = duckdb.connect(db_path)
    con.execute("CREATE TABLE sales (amount INT)")
    con.close()
    with pytest.raises(NotALedger, match="tables sales"):
        Ledger.open(db_path)
    con = duckdb.connect(db_path, read_only=True)
    tables = con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    con.close()
    assert tables == [("sales",)]


def test_a_read_only_open_of_a_missing_file_says_so(tmp_path):
    with pytest.raises(LedgerNotFound, match="No ledger at"):
        Ledger.open(str(tmp_path / "missing.duckdb"), read_only=True)
    assert not (tmp_path / "missing.duckdb").exists()


def test_a_read_only_ledger_reads_but_refuses_writes(db_path, clock):
    with Ledger.open(db_path, clock=clock) as ledger:
        funded(ledger, credits=50)
    with Ledger.open(db_path, clock=clock, read_only=True) as ledger:
        assert ledger.balance("u_1").total == 50
        with pytest.raises(ReadOnlyLedger, match="read-only"):
            ledger.reserve("u_1", 10)


def test_the_default_path_comes_from_credits_db(monkeypatch, tmp_path):
    path = tmp_path / "from-env.duckdb"
    monkeypatch.setenv("CREDITS_DB", str(path))
    with Ledger.open() as ledger:
        assert ledger.path == str(path)
    assert path.exists()


def test_a_closed_ledger_says_so(ledger):
    ledger.close()
    with pytest.raises(LedgerClosed, match="Open it again"):
        ledger.create_account("u_1")


def test_the_clock_must_be_aware():
    with pytest.raises(InvalidTimestamp, match="no time zone"):
        Ledger.open(":memory:", clock=lambda: datetime(2025, 1, 1))
