"""`credits export`: usage out of the ledger into a file for analysts' own tools.

    credits export --from 2026-11-01 --to 2026-12-01 --group-by model,day \\
        --format parquet --out usage.parquet

Filters take comma-separated lists; `--to` is exclusive. `--partition-by-month` writes
a folder of Parquet files (month=YYYY-MM-01/...). The ledger is opened read-only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from credits_core.cli.ledger import moment
from credits_core.client import connect
from credits_core.export import EVENT_KINDS, FORMATS, GROUPINGS, UsageQuery, usage_export, write
from credits_core.ledger import Ledger
from credits_core.ledger.store import default_path

FILTERS = ("since", "until", "users", "models", "providers", "plans", "kinds", "group_by")


def register(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="export usage to CSV, Parquet, XLSX or JSON lines")
    export.add_argument("--db", help="ledger file (default $CREDITS_DB or data/credits.duckdb)")
    export.add_argument("--wait", type=float, default=0.0, metavar="SECONDS")
    export.add_argument("--from", dest="since", type=moment, help="ISO date/time, inclusive")
    export.add_argument("--to", dest="until", type=moment, help="ISO date/time, exclusive")
    for name in ("users", "models", "providers", "plans"):
        export.add_argument(f"--{name}", default="", help=f"comma-separated {name}")
    export.add_argument(
        "--kinds", default="", help=f"comma-separated event kinds: {', '.join(EVENT_KINDS)}"
    )
    export.add_argument(
        "--group-by", default="", help=f"none, or comma-separated: {', '.join(GROUPINGS)}"
    )
    export.add_argument("--format", default="csv", help=f"{', '.join(FORMATS)} (json = jsonl)")
    export.add_argument("--out", required=True, help="the file (a folder when partitioned)")
    export.add_argument(
        "--partition-by-month", action="store_true", help="a folder of Parquet files by month"
    )
    export.add_argument("--force", action="store_true", help="replace an existing output")
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    remote = connect(args.db or default_path())
    if remote is not None:  # the server that owns the file writes it
        started = time.perf_counter()
        with remote:
            done = remote.export(
                **{k: getattr(args, k) for k in FILTERS},
                format=args.format,
                out=str(Path(args.out).resolve()),
                partition_by_month=args.partition_by_month,
                overwrite=args.force,
            )
        seconds = time.perf_counter() - started
        print(f"{done['path']}: {done['rows']:,} rows ({done['format']}) in {seconds:.2f} s")
        return 0
    query = UsageQuery(
        since=args.since,
        until=args.until,
        users=args.users,
        models=args.models,
        providers=args.providers,
        plans=args.plans,
        kinds=args.kinds,
        group_by=args.group_by,
    )
    export = usage_export(query)
    started = time.perf_counter()
    with Ledger.open(args.db or default_path(), read_only=True, wait=args.wait) as ledger:
        written = write(
            ledger,
            export,
            args.format,
            args.out,
            partition_by_month=args.partition_by_month,
            overwrite=args.force,
        )
    seconds = time.perf_counter() - started
    print(f"{written.path}: {written.rows:,} rows ({written.format}) in {seconds:.2f} s")
    return 0
