"""`credits alerts evaluate|deliver|list`: low-credit alerts, for a cron.

`evaluate` applies the alert rules to every funded account (or `--user` ones) and opens
and resolves alerts, writing one outbox message per alert opened; `deliver` sends the
due outbox messages to a webhook URL or a .jsonl file and marks them; `list` prints the
open alerts. The database is `--db PATH`, else $CREDITS_DB, else data/credits.duckdb.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from credits_core.alerts import AlertRules, Evaluator, deliver, open_alert_counts, users_in_alert
from credits_core.alerts.outbox import MAX_ATTEMPTS
from credits_core.client import connect
from credits_core.ledger import Ledger
from credits_core.ledger.store import default_path


def register(commands: argparse._SubParsersAction) -> None:
    alerts = commands.add_parser("alerts", help="low-credit alerts: evaluate, deliver, list")
    actions = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--db", help="ledger file (default $CREDITS_DB or data/credits.duckdb)")
    database.add_argument("--wait", type=float, default=5.0, metavar="SECONDS",
                          help="wait this long while another process holds the file")  # fmt: skip

    evaluate = actions.add_parser("evaluate", parents=[database], help="open and resolve alerts")
    evaluate.add_argument("--rules", help="rule file (default $CREDITS_ALERT_RULES or "
                          "data/alert_rules.toml)")  # fmt: skip
    evaluate.add_argument("--user", action="append", dest="users", help="only this user")
    evaluate.set_defaults(handler=run_evaluate)

    send = actions.add_parser("deliver", parents=[database], help="send the outbox")
    send.add_argument("--to", required=True, help="webhook URL (http/https) or a .jsonl file")
    send.add_argument("--limit", type=int, default=1_000, help="at most this many messages")
    send.add_argument("--max-attempts", type=int, default=MAX_ATTEMPTS)
    send.set_defaults(handler=run_deliver)

    listing = actions.add_parser("list", parents=[database], help="print the open alerts")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=run_list)


def open_ledger(args: argparse.Namespace, *, read_only: bool = False) -> Ledger:
    return Ledger.open(args.db or default_path(), read_only=read_only, wait=args.wait)


def run_evaluate(args: argparse.Namespace) -> int:
    remote = connect(args.db or default_path())
    if remote is not None:
        with remote:
            done = remote.evaluate_alerts(args.users)
        print(_evaluated(done["users"], done["rules"], SimpleNamespace(**done)))
        return 0
    rules = AlertRules.load(args.rules)
    with open_ledger(args) as ledger:
        result = Evaluator(ledger, rules).evaluate(args.users)
    print(_evaluated(result.users, len(rules.enabled), result))
    return 0


def _evaluated(users: int, rules: int, result: SimpleNamespace) -> str:
    return (
        f"{users:,} users evaluated against {rules} rules in "
        f"{result.seconds:.3f} s: {result.opened:,} alerts opened, {result.resolved:,} "
        f"resolved, {result.open:,} open"
    )


def run_deliver(args: argparse.Namespace) -> int:
    remote = connect(args.db or default_path())
    if remote is not None:
        to = args.to if "://" in args.to else str(Path(args.to).resolve())
        with remote:
            done = remote.deliver_alerts(to, limit=args.limit, max_attempts=args.max_attempts)
        result = SimpleNamespace(**done)
    else:
        with open_ledger(args) as ledger:
            result = deliver(ledger, args.to, limit=args.limit, max_attempts=args.max_attempts)
    print(
        f"{result.delivered:,} delivered to {result.destination}, {result.failed:,} failed "
        f"({result.gave_up:,} given up), {result.pending:,} pending"
    )
    return 1 if result.failed else 0


def run_list(args: argparse.Namespace) -> int:
    remote = connect(args.db or default_path())
    if remote is not None:
        with remote:
            done = remote.alerts(limit=args.limit)
        print(f"{done['total']:,} open alerts ({done['summary']})")
        _print_alerts(pd.DataFrame(done["alerts"]))
        return 0
    with open_ledger(args) as ledger:
        counts = open_alert_counts(ledger)
        frame = users_in_alert(ledger, limit=args.limit)
    print(f"{counts.total:,} open alerts ({counts.describe()})")
    _print_alerts(frame)
    return 0


def _print_alerts(frame: pd.DataFrame) -> None:
    if not frame.empty:
        columns = ["alert_id", "severity", "available", "burn_per_day", "days_left", "email"]
        print(frame[columns].to_string(index=False, na_rep=""))
