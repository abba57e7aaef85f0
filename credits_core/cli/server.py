"""`credits serve` (the ledger server) and `credits keys create|list|revoke` (API keys).

Keys live, hashed, in data/api_keys.toml or the file $CREDITS_API_KEYS names (or
`--keys FILE`); a running server sees new and revoked keys within a second.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from credits_core.ledger.store import default_path
from credits_core.server.keys import SCOPES, KeyStore


def register(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve", help="serve the dashboard and the HTTP API from one process that owns the db"
    )
    serve.add_argument("--db", help="ledger file (default $CREDITS_DB or data/credits.duckdb)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8501, help="dashboard port")
    serve.add_argument("--api-port", type=int, default=8502, help="API port")
    serve.add_argument(
        "--outbox",
        default=os.environ.get("CREDITS_OUTBOX"),
        help="where the outbox job delivers alert messages: webhook URL or FILE.jsonl "
        "(default $CREDITS_OUTBOX; none: the job stays idle)",
    )
    serve.add_argument("--keys", help="API keys file (default $CREDITS_API_KEYS)")
    serve.add_argument("--root-path", default="", help="API path prefix behind a proxy")
    serve.add_argument("--demo-key", help="file holding the local demo key to print")
    serve.add_argument("--body-timeout", type=float, default=10.0, metavar="SECONDS",
                       help="a request body must arrive within this time (else 408)")  # fmt: skip
    serve.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                       help="wait this long while another process holds the file")  # fmt: skip
    serve.set_defaults(handler=run_serve)

    keys = commands.add_parser("keys", help="API keys: create, list, revoke")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--keys", help="API keys file (default $CREDITS_API_KEYS)")
    create = actions.add_parser("create", parents=[common], help="make a key (printed once)")
    create.add_argument("name")
    create.add_argument("--scopes", required=True, help=f"comma-separated: {', '.join(SCOPES)}")
    create.add_argument("--save", metavar="FILE", help="also write the key to FILE (mode 0600)")
    create.add_argument("--replace", action="store_true", help="replace a key of that name")
    create.set_defaults(handler=run_create)
    listing = actions.add_parser("list", parents=[common], help="list keys (never the keys)")
    listing.set_defaults(handler=run_list)
    revoke = actions.add_parser("revoke", parents=[common], help="revoke a key now")
    revoke.add_argument("name")
    revoke.set_defaults(handler=run_revoke)


def run_serve(args: argparse.Namespace) -> int:
    from credits_core.server.serve import ServeOptions, serve

    options = ServeOptions(
        database=args.db or default_path(),
        host=args.host,
        port=args.port,
        api_port=args.api_port,
        outbox=args.outbox,
        keys_file=args.keys,
        demo_key_file=args.demo_key,
        root_path=args.root_path,
        wait_s=args.wait,
        body_timeout_s=args.body_timeout,
    )
    return serve(options)


def run_create(args: argparse.Namespace) -> int:
    store = KeyStore(args.keys)
    secret = store.create(args.name, args.scopes, replace=args.replace)
    scopes = next(k for k in store.listing() if k.name == args.name).scopes
    if args.save:
        path = Path(args.save)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(secret + "\n")
    print(f"Key {args.name!r} with scopes {', '.join(sorted(scopes))}, stored hashed in")
    print(f"{store.path}. It is shown this once; keep it secret:")
    print(secret)
    return 0


def run_list(args: argparse.Namespace) -> int:
    store = KeyStore(args.keys)
    keys = store.listing()
    if not keys:
        print(f"No keys in {store.path}; make one with `credits keys create NAME --scopes ...`.")
    for key in keys:
        state = "active" if key.active else f"revoked {key.revoked_at:%Y-%m-%d %H:%M:%S}"
        print(
            f"{key.name}\t{','.join(sorted(key.scopes))}\t"
            f"created {key.created_at:%Y-%m-%d %H:%M:%S}\t{state}"
        )
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    key = KeyStore(args.keys).revoke(args.name)
    print(f"Key {key.name!r} revoked; a running server refuses it within a second.")
    return 0
