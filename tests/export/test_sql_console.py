"""The analysts' SQL console is read-only for real: hostile statements are refused by
DuckDB's own settings or contained in a throwaway in-memory database, the live ledger
file does not change, and runaway queries stop at the time limit."""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from credits_core.export import EXAMPLES, SqlConsole, SqlFailed, SqlRefused, SqlTimeout
from credits_core.export.errors import SqlOutOfMemory, SqlResultTooLarge
from credits_core.export.sql_console import SandboxLimits, Snapshots
from credits_core.ledger import Ledger
from tests.export.conftest import build_small, digest


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The dashboard's situation: the ledger file held read-write by this process."""
    path = tmp_path_factory.mktemp("sql") / "live.duckdb"
    build_small(path)
    with Ledger.open(path) as ledger:
        yield ledger


@pytest.fixture(scope="module")
def console(live):
    opened = SqlConsole.snapshot(live)
    yield opened
    opened.close()


def test_select_over_the_snapshot_tables(console):
    result = console.run(
        "SELECT kind, count(*) AS n FROM usage GROUP BY kind ORDER BY kind", row_limit=100
    )
    assert dict(zip(result.rows["kind"], result.rows["n"], strict=True)) == {
        "adjustment": 1, "capture": 7, "expiry": 1, "grant": 3, "refund": 1, "release": 4,
    }  # fmt: skip
    assert result.returned_rows and not result.truncated
    tables = console.run("SELECT table_name FROM duckdb_tables() ORDER BY 1").rows
    assert sorted(tables["table_name"]) == sorted(
        ["accounts", "balances", "grants", "holds", "journal", "price_catalog", "usage"]
    )


def test_the_consoles_available_is_the_ledgers(tmp_path):
    """A lapsed grant that no sweep has booked out: not available, in the console too."""
    now = datetime(2025, 1, 1, 12, tzinfo=UTC)
    clock = [now]
    with Ledger.open(tmp_path / "lapsed.duckdb", clock=lambda: clock[0]) as ledger:
        ledger.create_account("u_1")
        ledger.grant("u_1", 100, kind="plan")
        ledger.grant("u_1", 500, kind="promo", expires_at=now + timedelta(minutes=5))
        clock[0] = now + timedelta(minutes=10)
        opened = SqlConsole.snapshot(ledger)
        try:
            row = opened.run("SELECT total, held, available FROM balances").rows.iloc[0]
        finally:
            opened.close()
        assert tuple(int(v) for v in row) == tuple(ledger.balance("u_1")) == (100, 0, 100)


def test_the_row_limit_truncates_and_says_so(console):
    result = console.run("SELECT * FROM range(5000)", row_limit=10)
    assert len(result.rows) == 10 and result.truncated
    assert not console.run("SELECT * FROM range(10)", row_limit=10).truncated


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_every_saved_example_runs(console, name):
    result = console.run(EXAMPLES[name])
    assert result.returned_rows and len(result.rows.columns) >= 2


HOSTILE = {
    "insert": "INSERT INTO accounts (user_id, account_no, created_at) VALUES ('x', 99, now())",
    "update": "UPDATE accounts SET total = 1000000",
    "delete": "DELETE FROM journal",
    "drop": "DROP TABLE journal",
    "create table": "CREATE TABLE stolen AS SELECT * FROM accounts",
    "alter": "ALTER TABLE accounts ADD COLUMN x INTEGER",
    "attach a file": "ATTACH '{tmp}/evil.duckdb' AS evil",
    "attach the live ledger": "ATTACH '{live}' AS live_rw",
    "copy to": "COPY accounts TO '{tmp}/accounts.csv'",
    "copy query to": "COPY (SELECT * FROM journal) TO '{tmp}/journal.parquet' (FORMAT parquet)",
    "export database": "EXPORT DATABASE '{tmp}/dump'",
    "import database": "IMPORT DATABASE '{tmp}/dump'",
    "read_csv passwd": "SELECT * FROM read_csv('/etc/passwd')",
    "read_text passwd": "SELECT * FROM read_text('/etc/passwd')",
    "passwd as table": "SELECT * FROM '/etc/passwd'",
    "read the live ledger": "SELECT * FROM read_blob('{live}')",
    "glob": "SELECT * FROM glob('/etc/*')",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "re-enable access": "SET enable_external_access = true",
    "reset access": "RESET enable_external_access",
    "unlock": "SET lock_configuration = false",
    "pragma": "PRAGMA enable_profiling",
    "memory limit": "SET memory_limit = '100GB'",
    "secret": "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "two statements": "SELECT 1; DROP TABLE journal",
    "syntax": "SELEC * FROM journal",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_statements_are_refused_with_a_message(console, live, tmp_path, name):
    sql = HOSTILE[name].format(tmp=tmp_path, live=live.path)
    with pytest.raises((SqlFailed, SqlRefused)) as refused:
        console.run(sql)
    assert "Traceback" not in str(refused.value) and str(refused.value)
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_and_in_memory_objects_are_contained(console, live):
    before = digest(Path(live.path)), digest(console.path)
    for sql in (
        "CHECKPOINT",
        "VACUUM",
        "CREATE TEMP TABLE mine AS SELECT 1 AS x",
        "ATTACH ':memory:' AS scratch",
        "USE memory",
    ):
        console.run(sql)
    with pytest.raises(SqlFailed, match="mine"):  # each run starts from a fresh sandbox
        console.run("SELECT * FROM mine")
    assert (digest(Path(live.path)), digest(console.path)) == before


def test_the_live_ledger_is_unchanged_after_the_hostile_set(live, tmp_path):
    path = Path(live.path)
    (before,) = live._store.query(
        lambda cur: cur.execute("SELECT count(*) FROM journal").fetchone()
    )
    checksum = digest(path)
    console = SqlConsole.snapshot(live)
    try:
        for sql in HOSTILE.values():
            with contextlib.suppress(SqlFailed, SqlRefused):
                console.run(sql.format(tmp=tmp_path, live=path))
    finally:
        console.close()
    (after,) = live._store.query(lambda cur: cur.execute("SELECT count(*) FROM journal").fetchone())
    assert after == before and digest(path) == checksum
    assert not console.folder.exists()  # the snapshot goes when the console closes
    assert live.check_invariants() == []


def test_a_very_long_statement_is_refused_and_deep_ones_fail_cleanly(console):
    with pytest.raises(SqlRefused, match="at most 100,000"):
        console.run("SELECT 1 " + " " * 1_000_000)
    with pytest.raises(SqlFailed, match="expression depth"):
        console.run("SELECT " + "+".join(["1"] * 20_000))
    with pytest.raises(SqlRefused, match="Type a SQL statement"):
        console.run("   ")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM range(1000000000000)",
        "SELECT count(*) FROM range(100000000) a, range(100000000) b",
    ],
)
def test_a_query_that_runs_forever_stops_at_the_time_limit(console, sql):
    started = time.perf_counter()
    with pytest.raises(SqlTimeout, match=r"stopped after 0\.5 s"):
        console.run(sql, time_limit=0.5)
    assert time.perf_counter() - started < 30  # it stopped; the bound is only a hang guard
    assert console.run("SELECT 42 AS x").rows["x"].tolist() == [42]


def test_the_snapshot_is_as_of_when_it_was_taken(live, console):
    live.adjust("u_pro", 1, reason="after the snapshot", actor="test")
    try:
        count = console.run("SELECT count(*) AS n FROM journal WHERE reason = 'after the snapshot'")
        assert count.rows["n"].tolist() == [0]
        fresh = SqlConsole.snapshot(live)
        try:
            again = fresh.run(
                "SELECT count(*) AS n FROM journal WHERE reason = 'after the snapshot'"
            )
            assert again.rows["n"].tolist() == [1]
            assert fresh.taken_at >= console.taken_at
        finally:
            fresh.close()
    finally:
        live.adjust("u_pro", -1, reason="undo", actor="test")


def test_the_snapshot_file_is_private(console):
    assert oct(os.stat(console.folder).st_mode & 0o777) == "0o700"


def test_snapshots_are_shared_until_refreshed(live):
    snapshots = Snapshots()
    assert snapshots.current is None
    first = snapshots.get(live)
    assert snapshots.get(live) is first and first.path.exists()
    fresh = snapshots.refresh(live)
    assert fresh is not first and snapshots.current is fresh
    assert first.folder.exists() and fresh.path.exists()  # `first` is still held here
    snapshots.close()
    assert not fresh.folder.exists() and snapshots.current is None
    with pytest.raises(SqlFailed, match="Refresh the data"):
        fresh.run("SELECT 1")


# ---------------------------------------------------------------- the operating system's limits

MIB = 2**20
TIGHT = SandboxLimits(memory_bytes=512 * MIB, result_bytes=8 * MIB)


@pytest.fixture(scope="module")
def tight(live):
    """The console with a small memory budget and result cap, so that hostile statements
    meet the limits quickly."""
    opened = SqlConsole.snapshot(live, limits=TIGHT)
    yield opened
    opened.close()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parents() -> dict[int, int]:
    """Every live process's parent."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                found[int(entry.name)] = int(fields[1])
    return found


def statement_processes(wait_s: float = 10) -> list[str]:
    """Statement processes still alive `wait_s` after their run returned (the kernel's
    exit bookkeeping after the pipe closed): the children of the sandbox's zygote (a
    child of this process running sql_sandbox.py)."""
    deadline = time.monotonic() + wait_s
    while True:
        parent_of = parents()
        zygotes = {
            pid
            for pid, parent in parent_of.items()
            if parent == os.getpid() and "sql_sandbox.py" in describe(pid)
        }
        alive = [pid for pid, parent in parent_of.items() if parent in zygotes]
        if not alive or time.monotonic() > deadline:
            return [describe(pid) for pid in alive]
        time.sleep(0.05)


def describe(pid: int) -> str:
    """A process's id, state and command line, for a failure message."""
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        return f"{pid} {state} {command}"
    return f"{pid} (gone)"


@pytest.mark.parametrize(
    "sql",
    [
        "EXPORT DATABASE '.tmp'",
        "COPY (SELECT repeat('x',1000) FROM range(1000)) TO '.tmp/f1.csv'",
        "SELECT * FROM read_text('.tmp/accounts.csv')",
        "EXPORT DATABASE 'dump'",
    ],
)
def test_the_console_writes_and_reads_no_file_in_the_working_directory(
    console, tmp_path, monkeypatch, sql
):
    monkeypatch.chdir(tmp_path)  # the server's working directory (the repo under make run)
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "accounts.csv").write_text("user_id,email\nu_1,secret@example.com\n")
    with pytest.raises(SqlFailed, match="disabled by configuration"):
        console.run(sql)
    assert sorted(p.name for p in tmp_path.rglob("*")) == [".tmp", "accounts.csv"]


def test_a_statement_over_the_memory_budget_dies_in_its_own_process(tight):
    before = peak_rss_mib()
    with pytest.raises(SqlOutOfMemory, match="512 MiB"):
        tight.run("SELECT length(repeat('x', 400000000)) || length(repeat('y', 400000000)) AS n")
    assert peak_rss_mib() - before < 100  # the server's process never held the strings
    assert tight.run("SELECT 42 AS x").rows["x"].tolist() == [42]


@pytest.mark.parametrize(
    "sql",
    [  # the probe's statements, as it ran them
        "SELECT repeat(repeat('x',100000),40000) s, repeat(repeat('y',100000),40000) t",
        "SELECT " + ", ".join(f"repeat('x',400000000) c{i}" for i in range(12)),
    ],
)
def test_the_probes_memory_bombs_end_quickly_and_the_server_lives_on(tight, sql):
    before, started = peak_rss_mib(), time.perf_counter()
    with pytest.raises((SqlOutOfMemory, SqlTimeout)):
        tight.run(sql, time_limit=2)
    assert time.perf_counter() - started < 10
    assert peak_rss_mib() - before < 100
    assert tight.run("SELECT 42 AS x").rows["x"].tolist() == [42]
    assert statement_processes() == []


def test_the_result_is_capped_in_bytes_not_only_in_rows(tight):
    before = peak_rss_mib()
    # 1,000 rows (under the row limit) of 200 kB each: 200 MB
    with pytest.raises(SqlResultTooLarge, match="8 MiB"):
        tight.run("SELECT repeat('x', 200000) AS s FROM range(1000)")
    assert peak_rss_mib() - before < 100
    small = tight.run("SELECT repeat('x', 1000) AS s FROM range(1000)")
    assert len(small.rows) == 1000 and small.rows["s"].str.len().eq(1000).all()


def test_a_statement_that_ignores_the_interrupt_is_killed_at_the_time_limit(console):
    # each row hashes a 100 MB string: DuckDB only looks at the interrupt between chunks
    sql = "SELECT sum(length(md5(repeat('x', 100000000) || i))) FROM range(40) t(i)"
    started = time.perf_counter()
    with pytest.raises(SqlTimeout, match=r"stopped after 0\.5 s"):
        console.run(sql, time_limit=0.5)
    assert time.perf_counter() - started < 3
    assert statement_processes() == []
    assert console.run("SELECT 42 AS x").rows["x"].tolist() == [42]


def test_the_statement_runs_in_a_process_of_its_own_under_the_kernels_limits(tight):
    rows = tight.run("SELECT current_setting('temp_directory') AS t").rows
    assert rows["t"].tolist() == [""]  # nothing can spill to (or be written in) a folder
    statement_processes()  # wait until that statement's process is gone: not found below

    def run_until_stopped() -> None:
        with contextlib.suppress(SqlTimeout):
            tight.run("SELECT count(*) FROM range(1000000000000)", time_limit=2)

    running = threading.Thread(target=run_until_stopped)
    running.start()
    try:
        deadline = time.monotonic() + 3
        while not (found := statement_processes(wait_s=0)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(found) == 1, found
        pid = int(found[0].split()[0])
        limits = {}
        while time.monotonic() < deadline and "Max file size" not in limits:
            limits = {  # "Max address space  <soft> <hard> bytes", once the limits are set
                line[:26].strip(): line[26:].split()[0]
                for line in Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]
                if line[26:].split()[0] != "unlimited"
            }
    finally:
        running.join()
    assert int(limits["Max address space"]) < 4 * 2**30  # its start-up plus 512 MiB
    assert limits["Max file size"] == "0"
    assert 1 <= int(limits["Max cpu time"]) < 60
    assert pid != os.getpid() and statement_processes() == []


def test_stale_snapshot_folders_of_dead_processes_are_removed_at_start(live, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid now names no process
    stale = tmp_path / f"credits-sql-{gone.pid}-abcd"
    mine = tmp_path / f"credits-sql-{os.getpid()}-efgh"
    other = tmp_path / "someone-elses"
    for folder in (stale, mine, other):
        folder.mkdir()
        (folder / "ledger-snapshot.duckdb").write_bytes(b"x")
    console = SqlConsole.snapshot(live)
    try:
        assert not stale.exists()
        assert mine.exists() and other.exists() and console.folder.exists()
        assert console.folder.parent == tmp_path
    finally:
        console.close()


def test_a_refresh_keeps_the_old_snapshot_while_a_session_uses_it(live):
    snapshots = Snapshots()
    in_use = snapshots.get(live)  # a session holds it (a query is running)
    folder = in_use.folder
    fresh = snapshots.refresh(live)  # another session refreshes
    assert snapshots.current is fresh
    assert in_use.run("SELECT 42 AS x").rows["x"].tolist() == [42]
    del in_use
    gc.collect()
    assert not folder.exists()  # removed once no session uses it
    snapshots.close()
