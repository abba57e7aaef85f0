"""`credits account|grant|balance|history|reserve|confirm|expire|check`: the ledger.

The database is `--db PATH`, else $CREDITS_DB, else data/credits.duckdb. While a
`credits serve` owns it (or $CREDITS_URL and $CREDITS_API_KEY are set), every command
goes through that server. Otherwise reads open the file read-only; `--wait SECONDS`
waits that long for another process to let go of it. Times are ISO 8601; one without a
zone is taken as UTC.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta

from credits_core import alerts
from credits_core.client import LedgerClient, connect
from credits_core.ledger import ENTRY_KINDS, GRANT_KINDS, Ledger, checks
from credits_core.ledger.store import default_path


def register(commands: argparse._SubParsersAction) -> None:
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--db", help="ledger file (default $CREDITS_DB or data/credits.duckdb)")
    database.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long while another process holds the file",
    )
    keyed = argparse.ArgumentParser(add_help=False)
    keyed.add_argument("--key", help="idempotency key: the same request again writes nothing")

    account = commands.add_parser("account", parents=[database, keyed], help="open an account")
    account.add_argument("user")
    account.add_argument("--email")
    account.add_argument("--plan")
    account.set_defaults(handler=run_account)

    grant = commands.add_parser("grant", parents=[database, keyed], help="give a user credits")
    grant.add_argument("user")
    grant.add_argument("credits", type=int)
    grant.add_argument("--kind", choices=GRANT_KINDS, required=True)
    grant.add_argument("--expires", type=moment, help="ISO time the credits expire")
    grant.add_argument("--priority", type=int, help="lower burns first (default by kind)")
    grant.add_argument("--reason")
    grant.add_argument("--actor")
    grant.set_defaults(handler=run_grant)

    balance = commands.add_parser("balance", parents=[database], help="a user's balance")
    balance.add_argument("user")
    balance.set_defaults(handler=run_balance)

    history = commands.add_parser("history", parents=[database], help="a user's journal")
    history.add_argument("user")
    history.add_argument("--since", type=moment)
    history.add_argument("--until", type=moment)
    history.add_argument("--kind", action="append", choices=ENTRY_KINDS, dest="kinds")
    history.add_argument("--limit", type=int, default=100)
    history.add_argument("--all", action="store_true", help="every entry (no limit)")
    history.add_argument("--format", choices=("table", "csv", "json"), default="table")
    history.set_defaults(handler=run_history)

    reserve = commands.add_parser("reserve", parents=[database, keyed], help="hold credits")
    reserve.add_argument("user")
    reserve.add_argument("credits", type=int)
    reserve.add_argument("--reason", default="generation")
    reserve.add_argument("--ttl", type=float, default=900, metavar="SECONDS")
    reserve.add_argument("--metadata", type=json_object, help='JSON object: {"model": "..."}')
    reserve.add_argument("--actor")
    reserve.set_defaults(handler=run_reserve)

    confirm = commands.add_parser("confirm", parents=[database, keyed], help="resolve a hold")
    confirm.add_argument("transaction_id")
    outcome = confirm.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--success", dest="success", action="store_true", help="capture it")
    outcome.add_argument("--failure", dest="success", action="store_false", help="release it")
    confirm.add_argument("--credits", type=int, help="capture only this much")
    confirm.add_argument("--actor")
    confirm.set_defaults(handler=run_confirm)

    expire = commands.add_parser(
        "expire", parents=[database], help="book lapsed holds and grants (both by default)"
    )
    expire.add_argument("--holds", action="store_true")
    expire.add_argument("--grants", action="store_true")
    expire.set_defaults(handler=run_expire)

    check = commands.add_parser(
        "check", parents=[database], help="verify the ledger's invariants (exit 1 if broken)"
    )
    check.set_defaults(handler=run_check)


def moment(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO time such as 2025-01-31T12:00:00+00:00"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f'{text!r} is not a JSON object such as {{"a": 1}}')
    return value


def open_ledger(args: argparse.Namespace, *, read_only: bool = False) -> Ledger | LedgerClient:
    """The server that owns the database (or $CREDITS_URL's), as its client; else the
    ledger file, where each write that changes a balance also evaluates the low-credit
    alert rules for the users it touched."""
    remote = connect(args.db or default_path())
    if remote is not None:
        return remote
    ledger = Ledger.open(args.db or default_path(), read_only=read_only, wait=args.wait)
    if not read_only:
        alerts.watch(ledger)
    return ledger


def run_account(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        account = ledger.create_account(
            args.user, email=args.email, plan=args.plan, idempotency_key=args.key
        )
    print(f"{account.user_id}: account opened {account.created_at.isoformat()}")
    return 0


def run_grant(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        grant = ledger.grant(
            args.user,
            args.credits,
            kind=args.kind,
            expires_at=args.expires,
            priority=args.priority,
            reason=args.reason,
            actor=args.actor,
            idempotency_key=args.key,
        )
        balance = ledger.balance(args.user)
    expiry = grant.expires_at.isoformat() if grant.expires_at else "never"
    print(
        f"{grant.grant_id}: {grant.credits} {grant.kind} credits to {grant.user_id}, "
        f"priority {grant.priority}, expires {expiry}"
    )
    print(describe(args.user, balance))
    return 0


def run_balance(args: argparse.Namespace) -> int:
    with open_ledger(args, read_only=True) as ledger:
        print(describe(args.user, ledger.balance(args.user)))
    return 0


def run_history(args: argparse.Namespace) -> int:
    with open_ledger(args, read_only=True) as ledger:
        frame = ledger.history(
            args.user,
            since=args.since,
            until=args.until,
            kinds=args.kinds,
            limit=None if args.all else args.limit,
        )
    if args.format == "csv":
        frame["metadata"] = [None if m is None else json.dumps(m) for m in frame["metadata"]]
        frame.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        frame.to_json(sys.stdout, orient="records", date_format="iso", indent=2)
        print()
    elif frame.empty:
        print(f"{args.user}: no entries")
    else:
        shown = frame.drop(columns=["metadata", "seq"])
        print(shown.to_string(index=False, na_rep=""))
    return 0


def run_reserve(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        hold = ledger.reserve(
            args.user,
            args.credits,
            reason=args.reason,
            metadata=args.metadata,
            ttl=seconds(args.ttl),
            actor=args.actor,
            idempotency_key=args.key,
        )
    print(
        f"{hold.transaction_id}: {hold.credits} credits held for {hold.user_id} until "
        f"{hold.expires_at.isoformat()}"
    )
    return 0


def run_confirm(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        hold = ledger.confirm(
            args.transaction_id,
            success=args.success,
            credits=args.credits,
            actor=args.actor,
            idempotency_key=args.key,
        )
    print(
        f"{hold.transaction_id}: {hold.status} ({hold.captured} captured, {hold.released} returned)"
    )
    return 0


def run_expire(args: argparse.Namespace) -> int:
    both = not (args.holds or args.grants)
    with open_ledger(args) as ledger:
        if args.holds or both:
            holds = ledger.expire_holds()
            print(f"holds: {holds.count} expired, {holds.credits} credits returned")
        if args.grants or both:
            grants = ledger.expire_grants()
            print(f"grants: {grants.count} expired, {grants.credits} credits removed")
    return 0


def run_check(args: argparse.Namespace) -> int:
    with open_ledger(args, read_only=True) as ledger:
        violations = ledger.check_invariants()
    for violation in violations:
        print(violation)
    if violations:
        print(f"{len(violations)} violations in {ledger.path}", file=sys.stderr)
        return 1
    print(f"{ledger.path}: ledger is sound")
    return 0


def describe(user_id: str, balance: tuple[int, int, int]) -> str:
    total, held, available = balance
    return f"{user_id}: total {total}, held {held}, available {available}"


def seconds(value: float) -> timedelta:
    return checks.ttl_seconds(value)
