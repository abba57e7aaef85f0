"""Benchmark of the reservation ledger on a temporary DuckDB file.

Prints figures; asserts nothing about time. Measures, on one ledger file of
--journal-rows entries:

  (a) reserve + confirm pairs through the writer:
      - one caller at a time: reserve p50 and pairs/s, beside a same-run baseline on a
        fresh file of the same schema: one bare single-row INSERT + COMMIT;
      - 32 threads on distinct users, and 32 threads on one user (no lost update):
        pairs/s, p99 of one call, and the batch sizes the writer reached; beside the
        floor of the design (bench/floor.py: the same threads through a queue, a synced
        log and a DuckDB applier, with no ledger logic at all);
      - 32 threads each keeping 32 pairs in flight (Ledger.submit), as the HTTP API's
        many connections and /v1/batch do: pairs/s and batch sizes;
  (b) bulk `apply_usage` events per second: one batch on the full journal, until it is
      acknowledged (durable in the redo log) and until the file holds it, beside a
      same-run baseline: DuckDB alone appending the journal rows of that batch, to a
      fresh file and to a copy of the full ledger (the journal's index then costs more);
  (c) history latency p50/p95: one user's last 100 entries, for ordinary users and for
      heavy users (--heavy-entries entries each, scattered over the whole journal), each
      heavy read beside the bare statement it runs, timed right after it.

The journal is built through the ledger's own bulk paths (create_accounts,
grant_many, then apply_usage in batches) before anything is timed.

    python bench/bench_ledger.py                        # the issue's sizes (10M journal)
    python bench/bench_ledger.py --journal-rows 500000  # a quick run
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.floor import floor_pairs_per_s  # after the sys.path line: from a bare checkout
from credits_core import Ledger
from credits_core.ledger import reads

TARGET_THREADED_PAIRS_PER_S = 10_000
TARGET_P99_MS = 50.0
TARGET_RESERVE_P50_MS = 5.0
TARGET_EVENTS_PER_S = 1_500_000
TARGET_HISTORY_P50_MS = 3.0
THREADS = 32
IN_FLIGHT = 32

START = datetime(2025, 1, 1, tzinfo=UTC)
MODELS = np.array(
    ["FLUX.1 Kontext [pro]", "Imagen 4", "MiniMax-Hailuo-02", "Gen-4 Turbo", "Veo 3", "Music 1.5"],
    dtype=object,
)


class Clock:
    """The ledger's clock: fixed while a batch is booked, moved on by the benchmark."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def usage_frame(
    rng: np.random.Generator,
    users: np.ndarray,
    n: int,
    day: datetime,
    heavy: np.ndarray | None = None,
    heavy_share: float = 0.0,
) -> pd.DataFrame:
    """n finished generations spread over one day, in time order; `heavy_share` of them
    belong to the `heavy` users."""
    offsets = np.sort(rng.integers(0, 86_400_000, n))
    who = users[rng.integers(0, len(users), n)]
    if heavy is not None and heavy_share:
        mine = rng.random(n) < heavy_share
        who[mine] = heavy[rng.integers(0, len(heavy), int(mine.sum()))]
    return pd.DataFrame(
        {
            "user_id": who,
            "credits": rng.integers(1, 120, n),
            "ts": pd.Timestamp(day) + pd.to_timedelta(offsets, unit="ms"),
            "success": rng.random(n) < 0.9,
            "model": MODELS[rng.integers(0, len(MODELS), n)],
        }
    )


@dataclass(frozen=True)
class Baselines:
    """DuckDB's own costs on a fresh file with the ledger's schema, in this run."""

    insert_s: float  # one bare 1-row INSERT transaction
    write_s: float  # BEGIN, guarded balance-row UPDATE, one journal INSERT, COMMIT
    append_s: float  # appending the bulk batch's journal rows, committed


def baselines(path: Path, users: np.ndarray, n: int, events: pd.DataFrame) -> Baselines:
    with Ledger.open(str(path)) as ledger:
        ledger.create_accounts(pd.DataFrame({"user_id": users}))
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE t (id BIGINT, user_id VARCHAR, credits BIGINT, ts TIMESTAMPTZ)")
    ts = datetime.now(UTC)

    def bare_insert(i: int) -> None:
        con.execute("BEGIN")
        con.execute("INSERT INTO t VALUES (?, ?, ?, ?)", [i, "u_1", 1, ts])
        con.execute("COMMIT")

    def least_write(i: int) -> None:
        account, seq = i % len(users) + 1, i // len(users) + 1
        con.execute("BEGIN")
        con.execute(
            "UPDATE accounts SET total = ?, held = ?, entries = ? "
            "WHERE account_no = ? AND (entries = ? AND total - held >= ?) IS TRUE",
            [0, 0, seq, account, seq - 1, 0],
        )
        con.execute(
            "INSERT INTO journal VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [account, seq, users[account - 1], ts, "reserve", 0, 0, 0, 0,
             f"hold-{account}-{seq}", None, "bench", "system", "Veo 3", '{"model": "Veo 3"}'],
        )  # fmt: skip
        con.execute("COMMIT")

    per_call = [_per_call(bare_insert, n), _per_call(least_write, n)]
    append_s = _append(con, _journal_rows(users, events))
    con.close()
    return Baselines(*per_call, append_s)


def append_to_copy(ledger_path: Path, copy: Path, users: np.ndarray, events: pd.DataFrame):
    """Seconds DuckDB takes to append the bulk batch's journal rows to a copy of the full
    ledger file (its 10M-entry journal and the journal's index on the account), committed."""
    shutil.copy(ledger_path, copy)
    con = duckdb.connect(str(copy))
    rows = _journal_rows(users, events)
    seconds = _append(con, rows.set_column(1, "seq", pa.array(np.arange(len(events)) + 10**9)))
    con.close()
    return seconds


def _append(con: duckdb.DuckDBPyConnection, rows: pa.Table) -> float:
    """Seconds to append `rows` to the journal in one committed transaction."""
    con.register("appended", rows)
    t0 = time.perf_counter()
    con.execute("BEGIN")
    con.execute("INSERT INTO journal SELECT * FROM appended")
    con.execute("COMMIT")
    return time.perf_counter() - t0


def _per_call(call, n: int) -> float:
    for i in range(50):  # warm-up
        call(n + i)
    t0 = time.perf_counter()
    for i in range(n):
        call(i)
    return (time.perf_counter() - t0) / n


def _journal_rows(users: np.ndarray, events: pd.DataFrame) -> pa.Table:
    """The usage events as the journal rows apply_usage writes for them: one per event,
    by account then time (the order it inserts them in), in the journal's columns."""
    account = pd.Index(users).get_indexer(events["user_id"]).astype(np.int32) + 1
    order = np.lexsort((events["ts"].to_numpy(), account))
    account = account[order]
    seq = np.arange(len(events)) + 1_000_000
    success = events["success"].to_numpy()[order]
    return pa.table(
        {
            "account_no": account,
            "seq": seq,
            "user_id": pa.DictionaryArray.from_arrays(account - 1, pa.array(users.astype(str))),
            "ts": pa.array(events["ts"].to_numpy()[order], pa.timestamp("us", "UTC")),
            "kind": pa.array(np.where(success, "capture", "release")),
            "credits": -events["credits"].to_numpy()[order] * success,
            "held": np.zeros(len(events), np.int64),
            "balance_after": 50_000_000 - np.arange(len(events)),
            "held_after": np.zeros(len(events), np.int64),
            "transaction_id": pc.binary_join_element_wise(
                "use", pc.cast(pa.array(account), pa.string()), pc.cast(seq, pa.string()), "-"
            ),
            "grant_id": pa.nulls(len(events), pa.string()),
            "reason": pa.array(np.full(len(events), "usage")),
            "actor": pa.array(np.full(len(events), "system")),
            "model": pa.array(events["model"].to_numpy()[order].astype(str)),
            "metadata": pa.nulls(len(events), pa.string()),
        }
    )


def build(
    ledger: Ledger,
    clock: Clock,
    rng: np.random.Generator,
    users: np.ndarray,
    rows: int,
    batch: int,
    heavy: np.ndarray,
    heavy_entries: int,
) -> tuple[int, float]:
    """Accounts, one grant each, then usage batches until the journal has `rows` entries.

    Returns (journal entries written, seconds)."""
    t0 = time.perf_counter()
    ledger.create_accounts(pd.DataFrame({"user_id": users}))
    ledger.grant_many(
        pd.DataFrame({"user_id": users, "credits": np.full(len(users), 50_000_000), "kind": "plan"})
    )
    written = len(users)
    day = 0
    while written < rows:
        n = min(batch, rows - written)
        clock.now = START + timedelta(days=day + 1)
        share = len(heavy) * heavy_entries / rows
        frame = usage_frame(rng, users, n, START + timedelta(days=day), heavy, share)
        out = ledger.apply_usage(frame)
        booked = int(out["status"].isin(["captured", "released"]).sum())
        written += booked
        day += 1
        print(
            f"  built {written:>12,} journal entries  ({time.perf_counter() - t0:6.1f} s)",
            flush=True,
        )
        if booked == 0:
            raise SystemExit("apply_usage booked nothing: cannot build the journal")
    return written, time.perf_counter() - t0


def one_caller(ledger: Ledger, rng: np.random.Generator, users: np.ndarray, n: int):
    """One reserve + confirm at a time: (pairs/s, reserve p50 ms)."""
    chosen = users[rng.integers(0, len(users), n)]
    for user in chosen[:20]:  # warm-up: the accounts are loaded
        ledger.confirm(ledger.reserve(user, 1).transaction_id, success=True)
    reserve_s = []
    t0 = time.perf_counter()
    for i, user in enumerate(chosen):
        started = time.perf_counter()
        hold = ledger.reserve(user, 1 + i % 100, reason="bench", metadata={"model": "Veo 3"})
        reserve_s.append(time.perf_counter() - started)
        ledger.confirm(hold.transaction_id, success=i % 10 != 0)
    seconds = time.perf_counter() - t0
    return n / seconds, float(np.percentile(reserve_s, 50)) * 1000


@dataclass(frozen=True)
class Load:
    pairs_per_s: float
    p99_ms: float
    batch_mean: float  # commands per logged batch (one redo-log sync)
    batch_max: int
    apply_mean: float  # logged batches per DuckDB commit of the applier
    apply_max: int
    catch_up_ms: float  # after the last acknowledgement, until the file holds it all
    file_pairs_per_s: float  # pairs over the time until the file holds them


def threaded(ledger: Ledger, users: list[str], pairs_each: int, in_flight: int = 1) -> Load:
    """THREADS threads, each reserving then confirming for its users[i] (all of them for
    one user when users has one), `in_flight` pairs at a time through Ledger.submit."""
    calls_s: list[float] = []
    start = threading.Barrier(THREADS + 1)

    def work(n: int) -> None:
        user = users[n % len(users)]
        start.wait()
        for _ in range(pairs_each // in_flight):
            t0 = time.perf_counter()
            holds = [f.result() for f in [ledger.submit("reserve", user, 1)
                                           for _ in range(in_flight)]]  # fmt: skip
            t1 = time.perf_counter()
            for f in [ledger.submit("confirm", h.transaction_id, True) for h in holds]:
                f.result()
            calls_s.extend([t1 - t0, time.perf_counter() - t1])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    applier = ledger.writer.applier
    applier.catch_up()
    sizes_before, applies_before = len(ledger.writer.batch_sizes), len(applier.apply_sizes)
    start.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - t0
    applier.catch_up()
    caught_up_s = time.perf_counter() - t0
    sizes = list(ledger.writer.batch_sizes)[sizes_before:]
    applies = list(applier.apply_sizes)[applies_before:]
    pairs = THREADS * (pairs_each // in_flight) * in_flight
    return Load(pairs / seconds, float(np.percentile(calls_s, 99)) * 1000,
                float(np.mean(sizes)), max(sizes), float(np.mean(applies)), max(applies),
                (caught_up_s - seconds) * 1000, pairs / caught_up_s)  # fmt: skip


def load_rows(load: Load) -> list[tuple[str, str, str]]:
    """The writer's and the applier's figures of one load."""
    return [
        ("      writer: commands per logged batch, mean / max",
         f"{load.batch_mean:.0f} / {load.batch_max}", ""),
        ("      applier: logged batches per DuckDB commit, mean / max",
         f"{load.apply_mean:.0f} / {load.apply_max}", ""),
        ("      file caught up, ms after the last answer", f"{load.catch_up_ms:.0f}", ""),
        ("      pairs/s until the file held them all", f"{load.file_pairs_per_s:,.0f}", ""),
    ]  # fmt: skip


def history_latency(ledger: Ledger, rng: np.random.Generator, users: np.ndarray, n: int):
    """p50 and p95 ms of one user's last 100 entries, each user read once (the ledger
    has not seen them: their account is looked up too), the p50 of a second read of
    the same users, and the mean rows returned."""
    chosen = users[rng.choice(len(users), size=min(n, len(users)), replace=False)]
    ledger.history(chosen[0], limit=100)  # warm-up
    first, again, rows = [], [], 0
    for times in (first, again):
        for user in chosen:
            t0 = time.perf_counter()
            frame = ledger.history(user, limit=100)
            times.append(time.perf_counter() - t0)
            rows += len(frame)
    first_ms, again_ms = np.array(first) * 1000, np.array(again) * 1000
    return (
        float(np.percentile(first_ms, 50)),
        float(np.percentile(first_ms, 95)),
        float(np.percentile(again_ms, 50)),
        rows / (2 * len(chosen)),
    )


def heavy_history(ledger: Ledger, users: np.ndarray) -> tuple[float, float, float]:
    """p50 and p95 ms of each heavy user's last 100 entries, each user read once, and the
    p50 of DuckDB alone running the one statement history() runs for that user, timed
    right after each read on the ledger's own connection: the same moment, the same
    file (the speed of these machines moves from one minute to the next)."""
    cur = ledger.cursor()
    try:
        statements = [_newest_statement(cur, str(user)) for user in users]
        ledger.history(str(users[0]), limit=100)  # warm-up
        read_s, alone_s = [], []
        for user, (statement, params) in zip(users, statements, strict=True):
            t0 = time.perf_counter()
            ledger.history(str(user), limit=100)
            read_s.append(time.perf_counter() - t0)
            alone_s.append(_timed(cur, statement, params))
    finally:
        cur.close()
    read_ms = np.array(read_s) * 1000
    return (float(np.percentile(read_ms, 50)), float(np.percentile(read_ms, 95)),
            float(np.median(alone_s)) * 1000)  # fmt: skip


def _newest_statement(cur: duckdb.DuckDBPyConnection, user: str) -> tuple[str, list]:
    """The statement history() runs for the user's newest 100 entries, and its values."""
    found = reads.account_size(cur, user)
    return reads.newest_statement(found.number, 100, found.entries, found.marks)


def history_statements(path: Path, users: np.ndarray) -> tuple[float, float]:
    """Same-run baselines of the heavy users' history, on the closed ledger's file: p50 ms
    of DuckDB alone running the one statement history() runs for each of them (their
    newest 100 entries, from the account's history mark), and of the same read from an
    account-ordered copy of the journal (in memory), the layout that keeps each
    account's entries together. Each read is timed on a second pass."""
    columns = ", ".join(name for name in reads.HISTORY_COLUMNS if name != "available_after")
    by_account = (f"SELECT {columns} FROM scratch.ordered WHERE account_no = ? "
                  "ORDER BY seq DESC LIMIT ?")  # fmt: skip
    with duckdb.connect(":memory:") as con:
        con.execute(f"ATTACH '{path}' AS ledger (READ_ONLY)")
        con.execute("USE ledger")
        statements = [_newest_statement(con, str(user)) for user in users]
        con.execute("ATTACH ':memory:' AS scratch")
        con.execute("CREATE TABLE scratch.ordered AS "
                    "SELECT * FROM journal ORDER BY account_no, seq")  # fmt: skip
        for _ in range(2):
            alone = [_timed(con, statement, params) for statement, params in statements]
            ordered = [_timed(con, by_account, params[-2:]) for _, params in statements]
    return float(np.median(alone)) * 1000, float(np.median(ordered)) * 1000


def _timed(con: duckdb.DuckDBPyConnection, statement: str, params: list) -> float:
    t0 = time.perf_counter()
    con.execute(statement, params).fetchall()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--journal-rows",
        type=int,
        default=10_000_000,
        help="journal entries to build before timing (default 10M)",
    )
    parser.add_argument("--users", type=int, default=100_000, help="accounts (default 100k)")
    parser.add_argument("--pairs", type=int, default=1_000, help="pairs of the one caller")
    parser.add_argument("--thread-pairs", type=int, default=400, help="pairs per thread")
    parser.add_argument(
        "--bulk-events",
        type=int,
        default=1_000_000,
        help="events in the timed apply_usage batch (default 1M)",
    )
    parser.add_argument(
        "--build-batch",
        type=int,
        default=1_000_000,
        help="events per apply_usage batch while building",
    )
    parser.add_argument("--history-users", type=int, default=200)
    parser.add_argument("--heavy-users", type=int, default=50)
    parser.add_argument("--heavy-entries", type=int, default=2_500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", default=None, help="where the temporary files go")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    users = np.array([f"u_{i:06d}" for i in range(args.users)], dtype=object)
    heavy = users[: args.heavy_users]
    print(
        f"ledger benchmark: {args.journal_rows:,} journal entries, {args.users:,} users, "
        f"duckdb {duckdb.__version__}",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="bench_ledger_", dir=args.dir) as tmp:
        tmpdir = Path(tmp)
        path = tmpdir / "ledger.duckdb"
        clock = Clock(START)
        with Ledger.open(str(path), clock=clock) as ledger:
            print("building the journal ...", flush=True)
            built, build_s = build(
                ledger, clock, rng, users, args.journal_rows, args.build_batch,
                heavy, args.heavy_entries,
            )  # fmt: skip

            # (b) one bulk batch on the full journal
            clock.now = START + timedelta(days=400)
            events = usage_frame(rng, users, args.bulk_events, START + timedelta(days=399))
            ledger.balance(str(users[0]))  # once the file holds the whole journal built
            t0 = time.perf_counter()
            out = ledger.apply_usage(events)
            bulk_s = time.perf_counter() - t0
            ledger.balance(str(users[0]))  # a read waits until the file holds the batch
            bulk_file_s = time.perf_counter() - t0
            booked = int(out["status"].isin(["captured", "released"]).sum())
            events_per_s = len(events) / bulk_s

            # (c) history of one user, last 100 entries: ordinary users, heavy users
            plain = users[args.heavy_users :]
            p50, p95, p50_again, mean_rows = history_latency(ledger, rng, plain, args.history_users)
            heavy_p50, heavy_p95, heavy_alone_ms = heavy_history(ledger, heavy)
            heavy_total = ledger.count_history(str(heavy[0]))

            # (a) reserve + confirm
            clock.now = START + timedelta(days=401)
            print("pairs ...", flush=True)
            pairs_s, reserve_p50_ms = one_caller(ledger, rng, plain, args.pairs)
            distinct = [str(u) for u in plain[1_000 : 1_000 + THREADS * IN_FLIGHT]]
            for user in distinct:
                ledger.confirm(ledger.reserve(user, 1).transaction_id, success=True)  # loaded
            spread = threaded(ledger, distinct[:THREADS], args.thread_pairs)
            floor_s = floor_pairs_per_s(THREADS, args.thread_pairs, tmpdir)
            one_user = str(plain[500])
            before = ledger.balance(one_user).total
            shared = threaded(ledger, [one_user], args.thread_pairs)
            lost = before - THREADS * args.thread_pairs - ledger.balance(one_user).total
            piped = threaded(ledger, distinct[:THREADS], args.thread_pairs * 8, IN_FLIGHT)

            problems = ledger.check_invariants()
        size_mb = path.stat().st_size / 1e6
        base = baselines(tmpdir / "baseline.duckdb", users, args.pairs, events)
        full_append_s = append_to_copy(path, tmpdir / "copy.duckdb", users, events)
        statement_ms, ordered_ms = history_statements(path, heavy)

    width = 62
    print()
    print(f"{'figure':<{width}} {'measured':>14} {'target':>12}")
    print("-" * (width + 28))
    rows = [
        ("(a) one caller: reserve p50, ms", f"{reserve_p50_ms:.2f}",
         f"<= {TARGET_RESERVE_P50_MS:g}"),
        ("    one caller: reserve+confirm pairs/s", f"{pairs_s:,.0f}", ""),
        ("    baseline: bare DuckDB 1-row INSERT + COMMIT, ms", f"{base.insert_s * 1e3:.3f}",
         ""),
        ("    reserve p50 / one INSERT + COMMIT (ratio)",
         f"{reserve_p50_ms / (base.insert_s * 1e3):.1f}x", ""),
        ("    baseline: least ledger write (UPDATE+INSERT), ms", f"{base.write_s * 1e3:.3f}", ""),
        (f"    {THREADS} threads, distinct users: pairs/s", f"{spread.pairs_per_s:,.0f}",
         f">= {TARGET_THREADED_PAIRS_PER_S:,}"),
        ("      p99 of one call, ms", f"{spread.p99_ms:.1f}", f"<= {TARGET_P99_MS:g}"),
        *load_rows(spread),
        ("      baseline: the design's floor (bench/floor.py), pairs/s", f"{floor_s:,.0f}", ""),
        ("      pairs/s / the floor's (ratio)", f"{spread.pairs_per_s / floor_s:.2f}x", ""),
        (f"    {THREADS} threads, one user: pairs/s", f"{shared.pairs_per_s:,.0f}", ""),
        ("      p99 of one call, ms", f"{shared.p99_ms:.1f}", ""),
        *load_rows(shared),
        ("      lost updates (credits)", f"{lost}", "0"),
        (f"    {THREADS} threads x {IN_FLIGHT} pairs in flight: pairs/s",
         f"{piped.pairs_per_s:,.0f}", ""),
        *load_rows(piped),
        (f"(b) apply_usage events/s ({len(events):,} events, 1 batch)", f"{events_per_s:,.0f}",
         f">= {TARGET_EVENTS_PER_S:,}"),
        ("    seconds for the batch (acknowledged: in the redo log)", f"{bulk_s:.2f}", ""),
        ("    seconds until the file held it (a read after it)", f"{bulk_file_s:.2f}", ""),
        ("    baseline: DuckDB appending its journal rows, s", f"{base.append_s:.2f}", ""),
        ("    batch / append (ratio)", f"{bulk_s / base.append_s:.2f}x", ""),
        ("    baseline: the same, to a copy of the full ledger, s", f"{full_append_s:.2f}", ""),
        ("    batch / append to the full ledger (ratio)", f"{bulk_s / full_append_s:.2f}x", ""),
        ("    events booked (not rejected)", f"{booked:,}", ""),
        ("(c) history, last 100 entries, ordinary user: p50 ms", f"{p50:.2f}", ""),
        ("    p95 ms", f"{p95:.2f}", ""),
        ("    p50 ms, the same users read again", f"{p50_again:.2f}", ""),
        ("    rows returned per call (mean)", f"{mean_rows:.0f}", ""),
        (f"    heavy user ({heavy_total:,} entries): p50 ms", f"{heavy_p50:.2f}",
         f"<= {TARGET_HISTORY_P50_MS:g}"),
        ("    heavy user: p95 ms", f"{heavy_p95:.2f}", ""),
        ("    baseline: that one statement, right after each read, p50 ms",
         f"{heavy_alone_ms:.2f}", ""),
        ("    heavy p50 / the statement's (ratio)", f"{heavy_p50 / heavy_alone_ms:.2f}x", ""),
        ("    baseline: the statement on the closed file, p50 ms", f"{statement_ms:.2f}", ""),
        ("    baseline: the same from an account-ordered copy, p50 ms", f"{ordered_ms:.2f}",
         ""),
        ("journal entries before (b)", f"{built:,}", ""),
        ("build time, s", f"{build_s:.1f}", ""),
        ("database file, MB", f"{size_mb:,.0f}", ""),
        ("check_invariants() problems at the end", f"{len(problems)}", "0"),
    ]  # fmt: skip
    for name, value, target in rows:
        print(f"{name:<{width}} {value:>14} {target:>12}")
    for problem in problems[:10]:
        print("  invariant:", problem)


if __name__ == "__main__":
    main()
