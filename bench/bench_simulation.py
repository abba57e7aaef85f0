"""Balance simulator and price-change replay: how long they take at the demo's scale.

1. Simulation: one scenario (a standard-plan user with a five-row usage mix, top-ups
   below a threshold) run for N users x D days with seeded random usage, in one
   vectorized call; baseline: only drawing the same random usage.
2. Replay: the last 90 days of usage of the demo ledger (100k users: about 10M
   generations) priced again under a draft that raises two SKUs; baselines: a plain
   count of the same rows, and the replay under an unchanged book (nothing to re-run).

    python bench/bench_simulation.py --db data/bench-100k.duckdb
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from credits_core.ledger import Ledger, SchemaOutdated
from credits_core.pricing import PriceBook
from credits_core.simulation import MixItem, PlanTerms, Scenario, TopUpPolicy, simulate
from credits_core.simulation.variation import draw_counts, vary

MIX = (
    MixItem(model="FLUX.1 Kontext [pro]", per_day=3),
    MixItem(model="FLUX.1 [dev]", per_day=1.5),
    MixItem(model="MiniMax-Hailuo-02", options={"resolution": "768P", "duration": 6}, per_day=0.8),
    MixItem(model="Gen-4 Turbo", options={"duration": 5}, per_day=0.3),
    MixItem(model="Music 1.5", per_day=1),
)


def draft_book(book: PriceBook) -> PriceBook:
    text = Path(book.source).read_text(encoding="utf-8")
    text = text.replace("credits = 680", "credits = 820").replace(
        'price = { kind = "fixed", credits = 90 }', 'price = { kind = "fixed", credits = 100 }'
    )
    return PriceBook.loads(text, source="bench draft")


def timed(work):
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def bench_simulation(book: PriceBook, users: int, days: int) -> list[tuple[str, str]]:
    scenario = Scenario.build(
        plan=PlanTerms.from_plans("standard"),
        start=datetime(2026, 12, 1, tzinfo=UTC),
        horizon_days=days,
        topup=TopUpPolicy(kind="pack_below", threshold=1000),
        mix=MIX,
    )
    vary(scenario, book, runs=10, seed=0)  # warm up
    _, draw = timed(lambda: draw_counts(scenario, users, 1))
    result, seconds = timed(lambda: vary(scenario, book, runs=users, seed=1))
    _, single = timed(lambda: simulate(scenario, book))
    dry = result.summary.set_index("measure")["value"]["runs that run dry (%)"]
    return [
        (f"simulation {users:,} users x {days} days", f"{seconds:.2f} s"),
        ("  user-days per second", f"{users * days / seconds:,.0f}"),
        ("  baseline: drawing the random usage only", f"{draw:.2f} s"),
        ("  ratio simulation / baseline", f"{seconds / draw:.1f}x"),
        ("  runs that run dry", f"{dry} %"),
        (f"one deterministic run with alerts ({days} days)", f"{single * 1000:.0f} ms"),
    ]


def open_read_only(path: str) -> Ledger:
    try:
        return Ledger.open(path, read_only=True)
    except SchemaOutdated:
        print(f"{path}: older schema; upgrading it once (as the dashboard would)", flush=True)
        Ledger.open(path).close()
        return Ledger.open(path, read_only=True)


def bench_replay(book: PriceBook, path: str, days: int) -> list[tuple[str, str]]:
    from credits_core.simulation.replay import replay

    draft = draft_book(book)
    with open_read_only(path) as ledger:
        (end,) = ledger.snapshot(lambda cur: cur.execute("SELECT max(ts) FROM journal").fetchone())
        until = end + timedelta(seconds=1)
        result, seconds = timed(lambda: replay(ledger, draft, days=days, current=book, until=until))
        same, same_seconds = timed(
            lambda: replay(ledger, book, days=days, current=book, until=until)
        )
    users = result.users_running_out_earlier
    return [
        (f"replay of {days} days ({result.generations:,} generations)", f"{seconds:.2f} s"),
        ("  generations per second", f"{result.generations / seconds:,.0f}"),
        ("  baseline: a plain count of the same rows", f"{result.baseline_seconds:.3f} s"),
        ("  ratio replay / count", f"{seconds / result.baseline_seconds:,.0f}x"),
        ("  replay under an unchanged book", f"{same_seconds:.2f} s"),
        (
            "  credits burned before -> after",
            f"{result.credits_before:,} -> {result.credits_after:,}",
        ),
        ("  users paying more / running out earlier", f"{result.users_paying_more:,} / {users:,}"),
        ("  unchanged book: credits changed", f"{same.credits_after - same.credits_before:,}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", help="a demo ledger (e.g. 100k users x 90 days) for the replay")
    parser.add_argument("--users", type=int, default=10_000, help="simulated users (10k)")
    parser.add_argument("--days", type=int, default=90, help="simulated and replayed days")
    args = parser.parse_args()
    book = PriceBook.load()
    rows = bench_simulation(book, args.users, args.days)
    if args.db:
        rows += bench_replay(book, args.db, args.days)
    else:
        rows.append(("replay", "skipped: no --db"))
    width = max(len(name) for name, _ in rows)
    print(f"\n{'figure':<{width}}  measured")
    print("-" * (width + 24))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
