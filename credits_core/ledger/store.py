"""The database file: opening it safely, and a cursor per operation.

One DuckDB connection per `Store`, shared by every `Ledger` of the file in this
process; every operation takes its own cursor (cursors have separate transactions, a
connection is not thread-safe). Reads run on their own snapshots; every write goes
through the file's one writer (writer.py).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import duckdb

from credits_core.ledger import schema
from credits_core.ledger.errors import (
    LedgerBusy,
    LedgerClosed,
    LedgerContention,
    LedgerDamaged,
    LedgerFileUnavailable,
    LedgerNotFound,
    NotALedger,
    SchemaOutdated,
    SchemaTooNew,
)

T = TypeVar("T")

DEFAULT_PATH = "data/credits.duckdb"
MAX_ATTEMPTS = 200
MAX_PAUSE_S = 0.02
# No downloads at run time: a foreign file must fail, not fetch an extension.
CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
DUCKDB_HEADER_BYTES = 3 * 4096  # the file header and two database headers
OS_REFUSAL = re.compile(
    r"Permission denied|No such file or directory|Not a directory|Read-only file system"
)
LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


def default_path() -> str:
    return os.environ.get("CREDITS_DB") or DEFAULT_PATH


class Store:
    """A ledger database file opened by this process."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str, read_only: bool) -> None:
        self._con: duckdb.DuckDBPyConnection | None = con
        self._lock = threading.Lock()
        self.path = path
        self.read_only = read_only
        # Run before every read: the writer's applier waits there until the file holds
        # every acknowledged write (see applier.py).
        self.barrier: Callable[[], None] | None = None

    @classmethod
    def open(cls, path: str, now: datetime, *, read_only: bool, wait: float) -> Store:
        if path != ":memory:":
            if read_only and not Path(path).exists():
                raise LedgerNotFound(path)
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise LedgerFileUnavailable(path, error.strerror or str(error)) from None
        unreplayed = path != ":memory:" and Path(f"{path}.wal").exists()
        con = _connect(path, read_only, wait)
        try:
            if not unreplayed:
                _check_length(con, path)
            con.execute("SET GLOBAL TimeZone = 'UTC'")
            _prepare(con, path, now, read_only)
        except (duckdb.IOException, duckdb.SerializationException, duckdb.InternalException) as e:
            con.close()
            raise LedgerDamaged(path, _first_line(str(e))) from None
        except BaseException:
            con.close()
            raise
        return cls(con, path, read_only)

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    @property
    def closed(self) -> bool:
        return self._con is None

    def cursor(self, *, barrier: bool = True) -> duckdb.DuckDBPyConnection:
        """A new cursor; first, unless `barrier` is False (the writer's own threads),
        wait until the file holds every acknowledged write."""
        if barrier and self.barrier is not None:
            self.barrier()
        with self._lock:
            if self._con is None:
                raise LedgerClosed()
            return self._con.cursor()

    def read(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `work` in one read transaction (one consistent snapshot)."""
        cur = self.cursor()
        try:
            cur.execute("BEGIN")
            try:
                return work(cur)
            finally:
                cur.execute("ROLLBACK")
        finally:
            cur.close()

    def transaction(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `work` in one write transaction on a cursor of its own: committed when it
        returns, rolled back when it raises."""
        cur = self.cursor()
        try:
            cur.execute("BEGIN")
            result = work(cur)
            cur.execute("COMMIT")
            return result
        except BaseException:
            rollback(cur)
            raise
        finally:
            cur.close()

    def query(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `work` of a single statement (a statement is its own snapshot)."""
        cur = self.cursor()
        try:
            return work(cur)
        finally:
            cur.close()


def _connect(path: str, read_only: bool, wait: float) -> duckdb.DuckDBPyConnection:
    """Connect, waiting up to `wait` seconds while another process holds the file."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return duckdb.connect(path, read_only=read_only, config=CONFIG)
        except duckdb.IOException as error:
            message = str(error)
            holder = LOCK_HOLDER.search(message)
            if holder is None and OS_REFUSAL.search(message):
                raise LedgerFileUnavailable(path, _first_line(message)) from None
            if holder is None and "Could not read enough bytes" in message:
                raise LedgerDamaged(path, _first_line(message)) from None
            if holder is None:
                raise NotALedger(path, _first_line(message)) from None
            if time.monotonic() >= deadline:
                pid = int(holder["pid"])
                program = holder["program"]
                raise LedgerBusy(
                    path, f"another process ({program}, PID {pid})", pid, wait
                ) from None
            time.sleep(random.uniform(0.05, 0.2))
        except duckdb.ConnectionException:
            # this process already has the file open with the other read_only setting
            holder = f"this process (PID {os.getpid()}) with the other read_only setting"
            raise LedgerBusy(path, holder, os.getpid(), 0) from None


def _check_length(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """A file too short to hold the blocks in use was truncated: refuse it now, rather
    than fail on the first read of a missing block. (Free blocks do not count: DuckDB
    trims free blocks off the end of a healthy file, but still counts them.)"""
    if path == ":memory:":
        return
    block_size, blocks = con.execute(
        "SELECT block_size, used_blocks FROM pragma_database_size()"
    ).fetchone()
    expected = DUCKDB_HEADER_BYTES + block_size * blocks
    actual = os.path.getsize(path)
    if blocks and actual < expected:
        raise LedgerDamaged(path, f"the file has {actual:,} bytes of the {expected:,} it needs")


def _prepare(con: duckdb.DuckDBPyConnection, path: str, now: datetime, read_only: bool) -> None:
    """Check that the file is a ledger (or empty) and bring its schema up to date."""
    version = schema.applied_version(con)
    if version is None:
        tables = schema.other_tables(con)
        if tables:
            raise NotALedger(path, f"it has tables {', '.join(tables[:5])} but no ledger schema")
        version = 0
    if version > schema.LATEST:
        raise SchemaTooNew(path, version, schema.LATEST)
    if version == schema.LATEST:
        return
    if read_only:
        raise SchemaOutdated(path, version, schema.LATEST)
    for attempt in range(MAX_ATTEMPTS):
        try:
            schema.migrate(con, now)
            return
        except duckdb.TransactionException:
            # another thread of this process is migrating the same file
            time.sleep(random.uniform(0, min(MAX_PAUSE_S, 0.0005 * 2**attempt)))
    raise LedgerContention(MAX_ATTEMPTS)


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0].removeprefix("IO Error: ")


def rollback(cur: duckdb.DuckDBPyConnection) -> None:
    """Roll back the cursor's transaction, if a failure has not ended it already."""
    with contextlib.suppress(duckdb.Error):
        cur.execute("ROLLBACK")


def describe(error: BaseException) -> str:
    """An error's class and the first line of its message, for a typed error's text."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
