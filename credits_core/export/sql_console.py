"""The analysts' SQL console: their own SQL over a read-only snapshot of the ledger.

Read-only by DuckDB itself, not by a keyword filter, and bounded by the operating
system, not by trust in DuckDB's own limits:

- `SqlConsole.snapshot(ledger)` copies the ledger's tables, as its read surface gives
  them (schema migration 8), `balances`, `usage` (the export's one-row-per-event
  relation) and `price_catalog` into a new DuckDB file in a private temporary folder
  (`credits-sql-<pid>-*`, mode 0700), through the ledger's own connection in one read
  snapshot; the live ledger file is only read. Folders left by processes that died
  (SIGKILL) are removed when the first snapshot is taken.
- Each `run` has a statement process forked (by `sql_sandbox.py`) that attaches the
  snapshot READ_ONLY in a fresh in-memory DuckDB with no temp directory, external access off and
  the configuration locked, limits its own address space, CPU time and file writes
  (RLIMIT_AS, RLIMIT_CPU, RLIMIT_FSIZE = 0) and its life (an alarm at the time limit),
  and runs the statement. This process stops waiting at the time limit, reads at most
  the result-size cap, and returns once the statement process has ended. A statement
  can exhaust only its own process's memory, never the dashboard's or the server's.
- One statement per run, at most MAX_SQL_CHARS characters, a row limit and a result
  size limit. Failures come back as `SqlRefused`, `SqlFailed` (DuckDB's message),
  `SqlTimeout`, `SqlOutOfMemory` or `SqlResultTooLarge`.
- A refresh replaces the shared snapshot; the old one stays until no session holds it.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa

from credits_core.export.errors import (
    SqlFailed,
    SqlOutOfMemory,
    SqlRefused,
    SqlResultTooLarge,
    SqlTimeout,
)
from credits_core.export.request import UsageQuery
from credits_core.export.run import Export
from credits_core.export.sql_sandbox import ALARM_GRACE_S, FRAME
from credits_core.ledger import Ledger
from credits_core.pricing import PriceBook

# The console's copies of the ledger's tables, each from its view in the read surface.
LEDGER_TABLES = {
    "accounts": "ledger_accounts",
    "grants": "ledger_grants",
    "holds": "ledger_holds",
    "journal": "ledger_journal",
}
TABLES = (*LEDGER_TABLES, "balances", "usage", "price_catalog")
MAX_SQL_CHARS = 100_000
DEFAULT_ROW_LIMIT = 1_000
DEFAULT_TIME_LIMIT_S = 10.0
FOLDER_PREFIX = "credits-sql-"
STARTUP_TIMEOUT_S = 30.0  # the child's own set-up, before the time limit starts
MAX_REPLY_BYTES = 64 * 1024  # the child's JSON message
SANDBOX_SCRIPT = Path(__file__).with_name("sql_sandbox.py")


@dataclass(frozen=True)
class SandboxLimits:
    """What one statement may use. The defaults serve the dashboard; tests pass less."""

    memory_bytes: int = 2 * 2**30  # address space beyond the child's own start-up
    result_bytes: int = 64 * 2**20  # the result as Arrow, at most
    threads: int = 2


EXAMPLES = {
    "Credits spent and provider cost per model": """
SELECT model, provider, count(*) AS generations, sum(credits_spent) AS credits_spent,
       round(sum(usd_value), 2) AS usd_value, round(sum(provider_cost_usd), 2) AS cost_usd
FROM usage
WHERE generation
GROUP BY ALL
ORDER BY credits_spent DESC""",
    "Failure rate per provider and day": """
SELECT (ts AT TIME ZONE 'UTC')::DATE AS day, provider,
       count(*) AS generations, round(avg(failed::INTEGER), 4) AS failure_rate
FROM usage
WHERE generation
GROUP BY ALL
ORDER BY day, provider""",
    "Daily active users": """
SELECT (ts AT TIME ZONE 'UTC')::DATE AS day, count(DISTINCT user_id) AS active_users
FROM usage
WHERE generation
GROUP BY ALL
ORDER BY day""",
    "Top 20 users by credits spent": """
SELECT u.user_id, b.plan, sum(u.credits_spent) AS credits_spent, b.available
FROM usage AS u JOIN balances AS b USING (user_id)
GROUP BY ALL
ORDER BY credits_spent DESC
LIMIT 20""",
    "Balances by plan": """
SELECT plan, count(*) AS accounts, sum(total) AS credits, sum(held) AS held,
       round(avg(available)) AS average_available
FROM balances
GROUP BY ALL
ORDER BY credits DESC""",
    "Holds still pending": """
SELECT transaction_id, user_id, credits, created_at, expires_at
FROM holds
WHERE status = 'pending'
ORDER BY expires_at""",
}


@dataclass(frozen=True)
class SqlResult:
    """What a statement returned: at most `row_limit` rows, and whether it had more."""

    rows: pd.DataFrame
    truncated: bool
    seconds: float
    returned_rows: bool  # False for a statement that returns no result set


class SqlConsole:
    """A read-only snapshot of one ledger, and the sandbox that runs SQL over it."""

    def __init__(
        self, folder: Path, taken_at: datetime, limits: SandboxLimits | None = None
    ) -> None:
        self.folder = folder
        self.path = folder / "ledger-snapshot.duckdb"
        self.taken_at = taken_at
        self.limits = limits or SandboxLimits()
        # removed when closed, when garbage-collected, or at the latest when Python exits
        self._remove = weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)

    @classmethod
    def snapshot(
        cls, ledger: Ledger, book: PriceBook | None = None, *, limits: SandboxLimits | None = None
    ) -> SqlConsole:
        """Copy the ledger into a private snapshot file (the ledger is only read)."""
        book = book or PriceBook.load()
        remove_stale_snapshots()
        folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
        console = cls(folder, ledger.now(), limits)
        try:
            _copy_tables(ledger, console.path, Export(UsageQuery(), book))
        except BaseException:
            console.close()
            raise
        return console

    def close(self) -> None:
        self._remove()

    def run(
        self,
        sql: str,
        *,
        row_limit: int = DEFAULT_ROW_LIMIT,
        time_limit: float = DEFAULT_TIME_LIMIT_S,
    ) -> SqlResult:
        """Run one statement in a fresh sandbox process; raise SqlRefused, SqlFailed,
        SqlTimeout, SqlOutOfMemory or SqlResultTooLarge."""
        _check_text(sql)
        if not self.path.exists():
            raise SqlFailed("The snapshot cannot be opened (it was removed). Refresh the data.")
        request = {
            "sql": sql,
            "snapshot": str(self.path),
            "folder": str(self.folder),
            "row_limit": int(row_limit),
            "memory_bytes": self.limits.memory_bytes,
            "cpu_s": math.ceil(time_limit) * self.limits.threads + 1,
            "time_limit_s": float(time_limit),
            "threads": self.limits.threads,
            "result_bytes": self.limits.result_bytes,
        }
        started = time.perf_counter()
        reply = _Child(self.limits.result_bytes).run(request, time_limit)
        return self._result(reply, time_limit, row_limit, time.perf_counter() - started)

    def _result(
        self, reply: _Reply, time_limit: float, row_limit: int, seconds: float
    ) -> SqlResult:
        outcome, message = reply.outcome, reply.message
        if reply.timed_out:
            raise SqlTimeout(time_limit)
        if outcome == "out_of_memory":
            raise SqlOutOfMemory(self.limits.memory_bytes)
        if outcome == "too_large":
            raise SqlResultTooLarge(self.limits.result_bytes)
        if outcome == "refused":
            raise SqlRefused(message)
        if outcome == "unavailable":
            raise SqlFailed(f"The snapshot cannot be opened ({message}). Refresh the data.")
        if outcome == "failed":
            raise SqlFailed(message)
        if outcome == "no_rows":
            return SqlResult(pd.DataFrame(), False, seconds, False)
        frame = reply.table.to_pandas()
        return SqlResult(frame.head(row_limit), len(frame) > row_limit, seconds, True)


@dataclass(frozen=True)
class _Reply:
    outcome: str
    message: str = ""
    table: pa.Table | None = None
    timed_out: bool = False


class _Zygote:
    """This process's sandbox zygote (sql_sandbox.py): started on first use, restarted
    if it died. Sending it a request forks a statement process that writes to `pipe`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._socket: socket.socket | None = None

    def start(self, request: dict, pipe: int) -> None:
        payload = json.dumps(request).encode()
        with self._lock:
            for attempt in range(2):
                if self._process is None or self._process.poll() is not None:
                    self._launch()
                try:
                    socket.send_fds(self._socket, [FRAME.pack(len(payload))], [pipe])
                    self._socket.sendall(payload)
                    return
                except OSError:
                    self._process = None
                    if attempt:
                        raise

    def _launch(self) -> None:
        if self._socket is not None:
            self._socket.close()
        mine, theirs = socket.socketpair()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", str(SANDBOX_SCRIPT), str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                env={"MALLOC_ARENA_MAX": "2", "LC_ALL": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"},
                cwd=tempfile.gettempdir(),
                start_new_session=True,
            )
        finally:
            theirs.close()
        self._socket = mine


_ZYGOTE = _Zygote()


class _Child:
    """One statement process: the request out, at most the result cap back; the parent
    stops waiting at the time limit (counted from the child's "ready") and the child's
    alarm ends it right after."""

    def __init__(self, result_bytes: int) -> None:
        self.max_bytes = result_bytes + 2**20  # Arrow's framing around the cap

    def run(self, request: dict, time_limit: float) -> _Reply:
        read, write = os.pipe()
        try:
            try:
                _ZYGOTE.start(request, write)
            finally:
                os.close(write)
            with os.fdopen(read, "rb", buffering=0) as pipe:
                frames = _Frames(pipe)
                reply = self._talk(frames, time_limit)
                # the pipe closes when the process has ended: by itself, or by its alarm
                frames.drain(time.monotonic() + time_limit + ALARM_GRACE_S + 5)
                return reply
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(read)
            raise

    def _talk(self, frames: _Frames, time_limit: float) -> _Reply:
        try:
            head = frames.next(time.monotonic() + STARTUP_TIMEOUT_S, MAX_REPLY_BYTES)
            deadline = time.monotonic() + time_limit
            if head == b"ready":
                head = frames.next(deadline, MAX_REPLY_BYTES)
            reply = json.loads(head)
            if reply["outcome"] != "rows":
                return _Reply(reply["outcome"], reply["message"])
            data = frames.next(deadline, self.max_bytes)
            return _Reply("rows", table=pa.ipc.open_stream(data).read_all())
        except TimeoutError:
            return _Reply("timeout", timed_out=True)
        except _TooLong:
            return _Reply("too_large")
        except (EOFError, ValueError):  # gone without a (whole) reply
            return _Reply(
                "failed",
                "The query's process ended abnormally, probably at its memory or CPU limit; "
                "nothing else was affected. Simplify the query.",
            )


class _TooLong(Exception):
    pass


class _Frames:
    """Length-prefixed messages from a pipe, each read by a deadline and up to a size."""

    def __init__(self, pipe: io.RawIOBase) -> None:
        self.pipe = pipe

    def next(self, deadline: float, max_bytes: int) -> bytes:
        (size,) = FRAME.unpack(self._exactly(FRAME.size, deadline))
        if size > max_bytes:
            raise _TooLong()
        return self._exactly(size, deadline)

    def drain(self, deadline: float) -> None:
        with contextlib.suppress(EOFError, TimeoutError):
            while True:
                self._chunk(1 << 16, deadline)

    def _exactly(self, size: int, deadline: float) -> bytes:
        data = bytearray()
        while len(data) < size:
            data += self._chunk(size - len(data), deadline)
        return bytes(data)

    def _chunk(self, size: int, deadline: float) -> bytes:
        ready, _, _ = select.select([self.pipe], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError()
        chunk = self.pipe.read(min(size, 1 << 20))
        if not chunk:
            raise EOFError()
        return chunk


class Snapshots:
    """The current snapshot of one ledger, shared by every session of a server: taken on
    first use, replaced on refresh. A replaced snapshot stays while a session still
    holds it (a query running on it) and is removed when the last one lets go."""

    def __init__(self, limits: SandboxLimits | None = None) -> None:
        self._lock = threading.Lock()
        self._console: SqlConsole | None = None
        self._limits = limits

    @property
    def current(self) -> SqlConsole | None:
        return self._console

    def get(self, ledger: Ledger, book: PriceBook | None = None) -> SqlConsole:
        with self._lock:
            if self._console is None:
                self._console = SqlConsole.snapshot(ledger, book, limits=self._limits)
            return self._console

    def refresh(self, ledger: Ledger, book: PriceBook | None = None) -> SqlConsole:
        fresh = SqlConsole.snapshot(ledger, book, limits=self._limits)
        with self._lock:
            self._console = fresh  # the old one goes when its last holder drops it
        return fresh

    def close(self) -> None:
        with self._lock:
            if self._console is not None:
                self._console.close()
                self._console = None


def remove_stale_snapshots() -> None:
    """Remove snapshot folders whose process is gone (killed before it could clean up)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*"):
        pid = folder.name.removeprefix(FOLDER_PREFIX).split("-", 1)[0]
        if folder.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _copy_tables(ledger: Ledger, path: Path, export: Export) -> None:
    """Copy the tables into a new file in one transaction (one consistent snapshot)."""
    alias = f"sql_snapshot_{uuid.uuid4().hex}"  # ours, not user text
    cur = ledger.cursor()  # the ledger's own connection (see run.read_snapshot)
    try:
        cur.execute(f"ATTACH $path AS {alias} (READ_WRITE)", {"path": str(path)})
        try:
            cur.execute("BEGIN")
            for table, view in LEDGER_TABLES.items():
                cur.execute(f"CREATE TABLE {alias}.{table} AS SELECT * FROM {view}")
            # what "available" means, as the ledger defines it, when the snapshot was taken
            cur.execute(
                f"CREATE TABLE {alias}.balances AS SELECT * FROM account_balances($now)",
                {"now": ledger.now()},
            )
            export.prepare(cur)
            sql, params = export.sql()
            cur.execute(f"CREATE TABLE {alias}.usage AS {sql}", params)
            cur.register("catalog_frame", export.book.catalog())
            cur.execute(f"CREATE TABLE {alias}.price_catalog AS SELECT * FROM catalog_frame")
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        finally:
            cur.execute(f"DETACH {alias}")
    finally:
        cur.close()


def _check_text(sql: str) -> None:
    if not isinstance(sql, str) or not sql.strip():
        raise SqlRefused("Type a SQL statement, e.g. SELECT * FROM usage LIMIT 10.")
    if len(sql) > MAX_SQL_CHARS:
        raise SqlRefused(
            f"The statement is {len(sql):,} characters long; the console runs statements of "
            f"at most {MAX_SQL_CHARS:,}."
        )
