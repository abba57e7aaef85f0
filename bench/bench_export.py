"""How fast usage exports stream from DuckDB to a file, against plain DuckDB baselines.

On a big demo ledger (100k users x 90 days, ~11M generations) it exports every
generation, one row per event, to Parquet, CSV and JSON lines, a month-partitioned
Parquet folder, a grouped export (model x day), and takes the SQL console's snapshot.
Baselines in the same run: counting the export relation (the query without the file)
and a plain `COPY journal TO` Parquet of the same rows with no joins, with the export's
own Parquet codec (snappy) and with zstd level 1, the codec of earlier versions; and the
export itself at zstd level 1. "x copy" is a time over the first copy.

    python bench/bench_export.py --db data/bench-100k.duckdb
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from credits_core.export import SqlConsole, UsageQuery, formats, usage_export, write
from credits_core.export.formats import COPY_OPTIONS
from credits_core.ledger import Ledger, SchemaOutdated
from credits_core.pricing import PriceBook

TARGET_SECONDS = 2.0  # 10M rows to Parquet
ZSTD_1 = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"  # earlier versions' codec
GENERATIONS = ("capture", "release", "expiry")


def timed(work: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def open_ledger(path: Path, scratch: Path) -> Ledger:
    """The ledger read-only; a copy upgraded to the current schema if it is older."""
    try:
        return Ledger.open(path, read_only=True)
    except SchemaOutdated:
        copy = scratch / "ledger-copy.duckdb"
        shutil.copy(path, copy)
        print(f"note: {path} has an older schema; benchmarking an upgraded copy")
        return Ledger.open(copy)


def size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="data/bench-100k.duckdb")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    book = PriceBook.load()
    scratch = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        with open_ledger(Path(args.db), scratch) as ledger:
            run(ledger, book, scratch, args.repeats)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(ledger: Ledger, book: PriceBook, scratch: Path, repeats: int) -> None:
    events = usage_export(UsageQuery(kinds=GENERATIONS), book)
    store = ledger._store

    def count() -> int:
        def work(cur):
            events.prepare(cur)
            return events.count(cur)

        return store.read(work)

    def plain_copy(options: str) -> Callable[[], int]:
        def work() -> int:
            target = scratch / "journal.parquet"
            return store.query(
                lambda cur: cur.execute(
                    "COPY (SELECT * FROM journal WHERE kind IN ('capture', 'release', 'expire')) "
                    f"TO $path {options}",
                    {"path": str(target)},
                ).fetchone()[0]
            )

        return work

    def export(format_: str, export=events, **options) -> Callable[[], int]:
        def work() -> int:
            target = scratch / f"usage.{format_}"
            if target.is_dir():
                shutil.rmtree(target)
            target.unlink(missing_ok=True)
            return write(ledger, export, format_, target, **options).rows

        return work

    base_count, rows = timed(count, repeats)
    print(f"usage export of every generation: {rows:,} rows (one per event, 15 columns)")
    print(f"{'what':<44}{'seconds':>9}{'rows/s':>14}{'MB':>8}{'x copy':>8}")
    line("baseline: count(*) of the export relation", base_count, rows)
    journal = scratch / "journal.parquet"
    base_copy, copied = timed(plain_copy(COPY_OPTIONS["parquet"]), repeats)
    line("baseline: plain COPY journal TO parquet", base_copy, copied, journal)
    zstd_copy, copied = timed(plain_copy(f"({ZSTD_1})"), repeats)
    line("  the same at zstd level 1", zstd_copy, copied, journal, zstd_copy / base_copy)
    cases = [
        ("export to Parquet", "parquet", export("parquet")),
        ("export to CSV", "csv", export("csv")),
        ("export to JSON lines", "jsonl", export("jsonl")),
        ("Parquet partitioned by month", "parquet", export("parquet", partition_by_month=True)),
    ]
    seconds_of = {}
    for label, format_, work in cases:
        seconds, written = timed(work, repeats)
        line(label, seconds, written, scratch / f"usage.{format_}", seconds / base_copy)
        seconds_of[label] = seconds
    snappy = formats.PARQUET
    formats.PARQUET = ZSTD_1  # the export as earlier versions wrote it
    try:
        zstd, written = timed(export("parquet"), repeats)
    finally:
        formats.PARQUET = snappy
    line(
        "export to Parquet at zstd level 1",
        zstd,
        written,
        scratch / "usage.parquet",
        zstd / base_copy,
    )
    parquet = seconds_of["export to Parquet"]
    per_10m = parquet * 10_000_000 / rows
    verdict = "meets" if per_10m < TARGET_SECONDS else "MISSES"
    print(f"10M rows to Parquet: {per_10m:.2f} s ({verdict} the {TARGET_SECONDS:.0f} s target)")
    print(
        f"export to Parquet / plain COPY: x{parquet / base_copy:.2f} at the same codec, "
        f"x{parquet / zstd_copy:.2f} against the zstd level 1 copy; "
        f"at zstd level 1 the export takes x{zstd / parquet:.2f} as long"
    )

    grouped = usage_export(UsageQuery(group_by=("model", "day")), book)
    seconds, written = timed(export("parquet", grouped), repeats)
    line(f"grouped by model x day to Parquet ({written:,} rows)", seconds)
    started = time.perf_counter()
    console = SqlConsole.snapshot(ledger, book)
    line("SQL console: snapshot of the ledger", time.perf_counter() - started, None, console.path)
    try:
        spend = "SELECT model, sum(credits_spent) FROM usage GROUP BY ALL"
        seconds, _ = timed(lambda: console.run(spend), repeats)
        line("SQL console: spend per model over usage", seconds)
    finally:
        console.close()


def line(
    label: str,
    seconds: float,
    rows: int | None = None,
    path: Path | None = None,
    ratio: float | None = None,
) -> None:
    rate = f"{rows / seconds:>14,.0f}" if rows else " " * 14
    mb = f"{size(path) / 1e6:>8,.0f}" if path else " " * 8
    times = f"{ratio:>8.2f}" if ratio else ""
    print(f"{label:<44}{seconds:>9.2f}{rate}{mb}{times}")


if __name__ == "__main__":
    main()
