"""`credits quote` and `credits catalog`: the price book from the command line."""

from __future__ import annotations

import argparse
import sys

from credits_core.pricing import PriceBook

NAMED_OPTIONS = ("resolution", "duration", "count", "aspect_ratio", "audio")


def register(commands: argparse._SubParsersAction) -> None:
    quote = commands.add_parser("quote", help="price one generation request")
    quote.add_argument("model", help='model name, e.g. "MiniMax-Hailuo-02"')
    for option in NAMED_OPTIONS:
        quote.add_argument(f"--{option.replace('_', '-')}", dest=option)
    quote.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other option of the model (repeatable)",
    )
    quote.add_argument("--provider")
    quote.add_argument("--plan", help="the user's plan (free, standard, pro, business)")
    quote.add_argument("--at", help="ISO time: price under the version in force then")
    quote.add_argument("--book", help="price book file (default data/pricing.toml)")
    quote.set_defaults(handler=run_quote)

    catalog = commands.add_parser("catalog", help="every SKU with credits, cost and margin")
    catalog.add_argument("--format", choices=("table", "csv", "json"), default="table")
    catalog.add_argument("--plan")
    catalog.add_argument("--at")
    catalog.add_argument("--book")
    catalog.set_defaults(handler=run_catalog)


def run_quote(args: argparse.Namespace) -> int:
    options = {name: getattr(args, name) for name in NAMED_OPTIONS}
    for pair in args.option:
        name, separator, value = pair.partition("=")
        if not separator:
            print(f"error: --option takes NAME=VALUE, not {pair!r}", file=sys.stderr)
            return 2
        options[name.strip()] = value
    book = PriceBook.load(args.book)
    quote = book.quote(args.model, provider=args.provider, plan=args.plan, at=args.at, **options)
    print(f"{quote.credits} credits  {quote.model} ({quote.options_text or 'no options'})")
    print(quote.explain())
    cost = "unknown" if quote.provider_cost_usd is None else f"${quote.provider_cost_usd:.4f}"
    estimate = " (estimate)" if quote.cost_is_estimate else ""
    print(f"value ${quote.usd_value:.4f}  provider cost {cost}{estimate}  ", end="")
    print("margin unknown" if quote.margin_usd is None else f"margin ${quote.margin_usd:.4f}")
    print(f"price book {quote.price_book_version}")
    return 0


def run_catalog(args: argparse.Namespace) -> int:
    catalog = PriceBook.load(args.book).catalog(at=args.at, plan=args.plan)
    if args.format == "csv":
        catalog.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        catalog.to_json(sys.stdout, orient="records", indent=2)
        print()
    else:
        print(catalog.to_string(index=False))
    return 0
