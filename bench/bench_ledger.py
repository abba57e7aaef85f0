"""Benchmark of the reservation ledger on a temporary DuckDB file.

Prints figures; asserts nothing about time. Measures, on one ledger file:

  (a) reserve + confirm pairs per second, one transaction each, one pair at a time,
      beside two same-run baselines on a fresh ledger file of the same schema: a bare
      single-row INSERT transaction, and the least a ledger write can be under the
      ledger's rules (BEGIN, the guarded UPDATE of the balance row, one journal INSERT,
      COMMIT); a pair is two such writes, so 1 / (2 x that) is the ceiling of pairs/s
      here for any design that commits each call;
  (b) bulk `apply_usage` events per second: one batch on a journal of --journal-rows,
      beside a same-run baseline: DuckDB alone appending the journal rows of that
      batch (one INSERT ... SELECT from Arrow, committed) on that fresh file;
  (c) history latency p50/p95: one user's last 100 entries at that journal size, for
      users the ledger has not read before, and p50 again for the same users.

The journal is built through the ledger's own bulk paths (create_accounts,
grant_many, then apply_usage in batches) before anything is timed.

    python bench/bench_ledger.py                        # the issue's sizes (10M journal)
    python bench/bench_ledger.py --journal-rows 500000  # a quick run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
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

from credits_core import Ledger  # after the sys.path line: runs from a bare checkout

TARGET_PAIRS_PER_S = 300
TARGET_EVENTS_PER_S = 1_000_000
TARGET_HISTORY_P50_MS = 2.0

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


def usage_frame(rng: np.random.Generator, users: np.ndarray, n: int, day: datetime) -> pd.DataFrame:
    """n finished generations spread over one day, in time order."""
    offsets = np.sort(rng.integers(0, 86_400_000, n))
    return pd.DataFrame(
        {
            "user_id": users[rng.integers(0, len(users), n)],
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
    con.register("appended", _journal_rows(users, events))
    t0 = time.perf_counter()
    con.execute("BEGIN")
    con.execute("INSERT INTO journal SELECT * FROM appended")
    con.execute("COMMIT")
    append_s = time.perf_counter() - t0
    con.close()
    return Baselines(*per_call, append_s)


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
    ledger: Ledger, clock: Clock, rng: np.random.Generator, users: np.ndarray, rows: int, batch: int
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
        out = ledger.apply_usage(usage_frame(rng, users, n, START + timedelta(days=day)))
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


def pairs_per_second(ledger: Ledger, rng: np.random.Generator, users: np.ndarray, n: int):
    """One reserve + confirm at a time; a tenth of them fail and are released."""
    chosen = users[rng.integers(0, len(users), n)]
    credits = rng.integers(1, 120, n)
    success = rng.random(n) < 0.9
    for i in range(20):  # warm-up
        r = ledger.reserve(chosen[i], int(credits[i]), reason="bench")
        ledger.confirm(r.transaction_id, success=True)
    t0 = time.perf_counter()
    for user, amount, ok in zip(chosen, credits, success, strict=True):
        r = ledger.reserve(user, int(amount), reason="bench", metadata={"model": "Veo 3"})
        ledger.confirm(r.transaction_id, success=bool(ok))
    seconds = time.perf_counter() - t0
    return n / seconds, seconds / n


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
    parser.add_argument("--pairs", type=int, default=2_000, help="reserve+confirm pairs")
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
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", default=None, help="where the temporary files go")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    users = np.array([f"u_{i:06d}" for i in range(args.users)], dtype=object)
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
            built, build_s = build(ledger, clock, rng, users, args.journal_rows, args.build_batch)

            # (b) one bulk batch on the full journal
            clock.now = START + timedelta(days=400)
            events = usage_frame(rng, users, args.bulk_events, START + timedelta(days=399))
            t0 = time.perf_counter()
            out = ledger.apply_usage(events)
            bulk_s = time.perf_counter() - t0
            booked = int(out["status"].isin(["captured", "released"]).sum())
            events_per_s = len(events) / bulk_s

            # (c) history of one user, last 100 entries
            p50, p95, p50_again, mean_rows = history_latency(ledger, rng, users, args.history_users)

            # (a) one reserve + confirm at a time
            clock.now = START + timedelta(days=401)
            pairs_s, pair_seconds = pairs_per_second(ledger, rng, users, args.pairs)

            problems = ledger.check_invariants()
        size_mb = path.stat().st_size / 1e6
        base = baselines(tmpdir / "baseline.duckdb", users, args.pairs, events)

    ceiling = 1 / (2 * base.write_s)
    width = 58
    print()
    print(f"{'figure':<{width}} {'measured':>14} {'target':>12}")
    print("-" * (width + 28))
    rows = [
        (
            "(a) reserve+confirm pairs/s, one at a time",
            f"{pairs_s:,.0f}",
            f">= {TARGET_PAIRS_PER_S}",
        ),
        ("    ms per pair", f"{pair_seconds * 1000:.2f}", ""),
        ("    baseline: bare DuckDB 1-row INSERT txn, ms", f"{base.insert_s * 1000:.3f}", ""),
        ("    baseline: least ledger write (UPDATE+INSERT), ms", f"{base.write_s * 1e3:.3f}", ""),
        ("    ceiling: pairs/s at two least writes a pair", f"{ceiling:,.0f}", ""),
        ("    pair / two least writes (ratio)", f"{pair_seconds * ceiling:.1f}x", ""),
        (
            f"(b) apply_usage events/s ({len(events):,} events, 1 batch)",
            f"{events_per_s:,.0f}",
            f">= {TARGET_EVENTS_PER_S:,}",
        ),
        ("    seconds for the batch", f"{bulk_s:.2f}", ""),
        ("    baseline: DuckDB appending its journal rows, s", f"{base.append_s:.2f}", ""),
        ("    batch / append (ratio)", f"{bulk_s / base.append_s:.2f}x", ""),
        ("    events booked (not rejected)", f"{booked:,}", ""),
        (
            "(c) history, last 100 entries of one user: p50 ms",
            f"{p50:.2f}",
            f"<= {TARGET_HISTORY_P50_MS}",
        ),
        ("    p95 ms", f"{p95:.2f}", ""),
        ("    p50 ms, the same users read again", f"{p50_again:.2f}", ""),
        ("    rows returned per call (mean)", f"{mean_rows:.0f}", ""),
        ("journal entries before (b)", f"{built:,}", ""),
        ("build time, s", f"{build_s:.1f}", ""),
        ("database file, MB", f"{size_mb:,.0f}", ""),
        ("check_invariants() problems at the end", f"{len(problems)}", "0"),
    ]
    for name, value, target in rows:
        print(f"{name:<{width}} {value:>14} {target:>12}")
    for problem in problems[:10]:
        print("  invariant:", problem)


if __name__ == "__main__":
    main()
