"""The analysts' SQL console: their own SQL over a read-only snapshot of the ledger.

Read-only by DuckDB itself, not by a keyword filter:

- `SqlConsole.snapshot(ledger)` copies the ledger's tables (and `usage`, the export's
  one-row-per-event relation, and `price_catalog`) into a new DuckDB file in a private
  temporary folder, through the ledger's own connection in one read snapshot; the live
  ledger file is only read.
- Each `run` opens a fresh in-memory DuckDB, attaches that snapshot READ_ONLY, sets a
  memory limit, no spilling to disk, `enable_external_access = false` (no files, no
  ATTACH of files, no COPY TO, no extensions) and `lock_configuration = true` (no SET
  can undo it) before the analyst's statement runs. Writes to the snapshot fail;
  anything created in memory dies with the connection.
- One statement per run, at most MAX_SQL_CHARS characters, a row limit (the statement
  is wrapped in a LIMIT) and a time limit (a timer interrupts the connection).
  Failures come back as `SqlFailed` / `SqlTimeout` / `SqlRefused` with DuckDB's message.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from credits_core.export.errors import SqlFailed, SqlRefused, SqlTimeout
from credits_core.export.query import Export, UsageQuery
from credits_core.ledger import Ledger
from credits_core.pricing import PriceBook

LEDGER_TABLES = ("accounts", "grants", "holds", "journal")
TABLES = (*LEDGER_TABLES, "usage", "price_catalog")
MAX_SQL_CHARS = 100_000
DEFAULT_ROW_LIMIT = 1_000
DEFAULT_TIME_LIMIT = 10.0  # seconds
MEMORY_LIMIT = "1GB"
CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
SANDBOX = (  # run in this order; the last two make the rest permanent
    "SET TimeZone = 'UTC'",
    f"SET memory_limit = '{MEMORY_LIMIT}'",
    "SET max_temp_directory_size = '0B'",
    "SET enable_external_access = false",
    "SET lock_configuration = true",
)

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
SELECT u.user_id, a.plan, sum(u.credits_spent) AS credits_spent, a.total - a.held AS available
FROM usage AS u JOIN accounts AS a USING (user_id)
GROUP BY ALL
ORDER BY credits_spent DESC
LIMIT 20""",
    "Balances by plan": """
SELECT plan, count(*) AS accounts, sum(total) AS credits, sum(held) AS held,
       round(avg(total - held)) AS average_available
FROM accounts
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

    def __init__(self, folder: Path, taken_at: datetime) -> None:
        self.folder = folder
        self.path = folder / "ledger-snapshot.duckdb"
        self.taken_at = taken_at
        # removed when closed, when garbage-collected, or at the latest when Python exits
        self._remove = weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)

    @classmethod
    def snapshot(cls, ledger: Ledger, book: PriceBook | None = None) -> SqlConsole:
        """Copy the ledger into a private snapshot file (the ledger is only read)."""
        book = book or PriceBook.load()
        console = cls(Path(tempfile.mkdtemp(prefix="credits-sql-")), ledger.now())
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
        time_limit: float = DEFAULT_TIME_LIMIT,
    ) -> SqlResult:
        """Run one statement in a fresh sandbox; raise SqlRefused/SqlFailed/SqlTimeout."""
        _check_text(sql)
        con = self._sandbox()
        timer = threading.Timer(time_limit, con.interrupt)
        started = time.perf_counter()
        timer.start()
        try:
            if len(con.extract_statements(sql)) != 1:
                raise SqlRefused("Run one statement at a time (this text has several).")
            relation = con.sql(sql)
            if relation is None:
                frame, more = pd.DataFrame(), False
            else:
                frame = relation.limit(row_limit + 1).to_arrow_table().to_pandas()
                more = len(frame) > row_limit
        except duckdb.InterruptException:
            raise SqlTimeout(time_limit) from None
        except duckdb.Error as error:
            raise SqlFailed(_message(error)) from None
        finally:
            timer.cancel()
            con.close()
        return SqlResult(
            frame.head(row_limit), more, time.perf_counter() - started, relation is not None
        )

    def _sandbox(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(":memory:", config=CONFIG)
        try:
            con.execute("ATTACH $path AS ledger (READ_ONLY)", {"path": str(self.path)})
            con.execute("USE ledger")
            for setting in SANDBOX:
                con.execute(setting)
        except duckdb.Error as error:
            con.close()
            raise SqlFailed(
                f"The snapshot cannot be opened ({_message(error)}). Refresh the data."
            ) from None
        return con


class Snapshots:
    """The current snapshot of one ledger, shared by every session of a server: taken on
    first use, replaced on refresh (the old one is removed)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._console: SqlConsole | None = None

    @property
    def current(self) -> SqlConsole | None:
        return self._console

    def get(self, ledger: Ledger, book: PriceBook | None = None) -> SqlConsole:
        with self._lock:
            if self._console is None:
                self._console = SqlConsole.snapshot(ledger, book)
            return self._console

    def refresh(self, ledger: Ledger, book: PriceBook | None = None) -> SqlConsole:
        with self._lock:
            old, self._console = self._console, SqlConsole.snapshot(ledger, book)
        if old is not None:
            old.close()
        return self._console

    def close(self) -> None:
        with self._lock:
            if self._console is not None:
                self._console.close()
                self._console = None


def _copy_tables(ledger: Ledger, path: Path, export: Export) -> None:
    """Copy the tables into a new file in one transaction (one consistent snapshot)."""
    alias = f"sql_snapshot_{uuid.uuid4().hex}"  # ours, not user text
    cur = ledger.cursor()  # the ledger's own connection (see query.read_snapshot)
    try:
        cur.execute(f"ATTACH $path AS {alias} (READ_WRITE)", {"path": str(path)})
        try:
            cur.execute("BEGIN")
            for table in LEDGER_TABLES:
                cur.execute(f"CREATE TABLE {alias}.{table} AS SELECT * FROM {table}")
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


def _message(error: duckdb.Error) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return "DuckDB: " + "\n".join(lines[:6])
