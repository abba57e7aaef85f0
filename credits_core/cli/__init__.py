"""The `credits` command line (also `python -m credits_core`).

Each job registers its sub-commands from its own module; a `CreditsError` ends the
command with its message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from credits_core.cli import alerts, demo, export, ledger, pricing, server
from credits_core.errors import CreditsError

COMMAND_MODULES = (pricing, demo, ledger, export, alerts, server)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="credits", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except CreditsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (stdout stays open until exit)
        return 0
