"""How fast the low-credit alert rules are evaluated, over every user and for one user.

Works on a copy of the given ledger (the original is never written), with the shipped
rules (data/alert_rules.toml). Same-run baselines: a plain COUNT over accounts, and one
aggregate pass over the last 30 days of the journal (the least any evaluation of burn
and usual generations must read); for one user, a `balance()` read and a ledger write.

    python bench/bench_alerts.py --db data/bench-100k.duckdb   # 100k users x 90 days
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from credits_core.alerts import AlertRules, Evaluator, deliver, watch
from credits_core.ledger import Ledger

TARGET_SECONDS = 1.0  # every user, in one evaluation


def median_seconds(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def scalar(ledger: Ledger, sql: str, params: list | None = None) -> object:
    return ledger.snapshot(lambda cur: cur.execute(sql, params or []).fetchone()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a demo ledger (copied, never written)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    source = Path(args.db)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "bench.duckdb"
        shutil.copy(source, copy)
        if source.with_name(source.name + ".wal").exists():
            shutil.copy(source.with_name(source.name + ".wal"), Path(tmp) / "bench.duckdb.wal")
        with Ledger.open(copy) as ledger:
            rows = run(ledger, Path(tmp), args.repeats)
    width = max(len(name) for name, *_ in rows)
    print()
    print(f"low-credit alerts on {source}")
    print(f"{'figure':<{width}} {'measured':>14} {'baseline / note':>30}")
    print("-" * (width + 46))
    for name, value, note in rows:
        print(f"{name:<{width}} {value:>14} {note:>30}")
    return 0


def run(ledger: Ledger, tmp: Path, repeats: int) -> list[tuple[str, str, str]]:
    rules = AlertRules.load()
    evaluator = Evaluator(ledger, rules)
    users = scalar(ledger, "SELECT count(*) FROM accounts")
    entries = scalar(ledger, "SELECT count(*) FROM journal")
    now = ledger.now()
    count = median_seconds(lambda: scalar(ledger, "SELECT count(*) FROM accounts"), repeats)
    scan = median_seconds(
        lambda: scalar(
            ledger,
            "SELECT count(*) FROM (SELECT account_no, model, count(*), sum(credits) "
            "FROM journal WHERE kind = 'capture' AND ts >= ? GROUP BY ALL)",
            [now - timedelta(days=30)],
        ),
        repeats,
    )
    first = evaluator.evaluate()
    steady = median_seconds(evaluator.evaluate, repeats)
    user = scalar(ledger, "SELECT user_id FROM alerts WHERE status = 'open' LIMIT 1")
    one = median_seconds(lambda: evaluator.evaluate([user]), repeats * 4)
    balance = median_seconds(lambda: ledger.balance(user), repeats * 4)
    write = median_seconds(
        lambda: ledger.adjust(user, 1, reason="bench", actor="bench"), repeats * 4
    )
    stop = watch(ledger)
    watched = median_seconds(
        lambda: ledger.adjust(user, 1, reason="bench", actor="bench"), repeats * 4
    )
    stop()
    started = time.perf_counter()
    delivered = deliver(ledger, str(tmp / "outbox.jsonl"), limit=first.opened + 1)
    delivery = time.perf_counter() - started
    ms = 1_000
    return [
        ("accounts / journal entries", f"{users:,}", f"{entries:,} entries"),
        ("baseline: COUNT(*) over accounts", f"{count * ms:.2f} ms", ""),
        ("baseline: 30-day journal aggregate", f"{scan * ms:.0f} ms", ""),
        (
            "evaluate all users, first run",
            f"{first.seconds * ms:.0f} ms",
            f"{first.opened:,} alerts opened",
        ),
        (
            "evaluate all users, steady (median)",
            f"{steady * ms:.0f} ms",
            f"target < {TARGET_SECONDS * ms:.0f} ms; x{steady / count:,.0f} COUNT, "
            f"x{steady / scan:.1f} aggregate",
        ),
        ("evaluate one user (median)", f"{one * ms:.1f} ms", f"balance(): {balance * ms:.1f} ms"),
        (
            "ledger write with the alert hook",
            f"{watched * ms:.1f} ms",
            f"without: {write * ms:.1f} ms",
        ),
        (
            "deliver the outbox to JSONL",
            f"{delivery * ms:.0f} ms",
            f"{delivered.delivered:,} messages",
        ),
    ]


if __name__ == "__main__":
    sys.exit(main())
