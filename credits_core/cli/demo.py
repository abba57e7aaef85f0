"""`credits demo`: build the deterministic demo database."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path

from credits_core.demo import DemoSpec, build


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="build a deterministic demo database")
    demo.add_argument("--db", default=os.environ.get("CREDITS_DB", "data/credits.duckdb"))
    demo.add_argument("--users", type=int, default=DemoSpec.users)
    demo.add_argument("--days", type=int, default=DemoSpec.days)
    demo.add_argument("--seed", type=int, default=DemoSpec.seed)
    demo.add_argument(
        "--end",
        type=lambda text: datetime.fromisoformat(text).replace(tzinfo=UTC),
        default=datetime.now(UTC).replace(minute=0, second=0, microsecond=0),
        help="the last moment of the demo window (default: this hour)",
    )
    demo.add_argument("--force", action="store_true", help="replace an existing file")
    demo.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    path = Path(args.db)
    if path.exists() and not args.force:
        print(f"{path} exists; pass --force to replace it")
        return 1
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = DemoSpec(users=args.users, days=args.days, seed=args.seed, end=args.end)
    report = build(path, spec)
    print(
        f"{path}: {report.accounts:,} accounts, {report.grants:,} grants, "
        f"{report.events:,} generations ({report.captured:,} captured, {report.released:,} "
        f"failed and released, {report.rejected:,} rejected for lack of credits), "
        f"{report.open_alerts:,} low-credit alerts open, in {report.seconds} s"
    )
    return 0
