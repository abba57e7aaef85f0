"""How long each dashboard page takes to render in a real browser.

Starts `streamlit run` on a demo ledger and opens each page in Debian's Chromium,
timing from navigation until the script run has finished and the page is drawn. The
same pages on a small ledger (300 users, 30 days) are the same-run baseline.

    python bench/bench_pages.py --db data/credits.duckdb   # e.g. 100k users x 90 days
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from credits_core.demo import DemoSpec, build
from credits_core.ledger import Ledger
from tests.e2e.conftest import CHROMIUM, IDLE, Server

PAGES = {
    "home": "",
    "cost calculator": "cost_calculator",
    "transaction history": "transaction_history?user={user}",
}
TARGET_SECONDS = 1.5


def render_times(database: Path, user: str, repeats: int) -> dict[str, list[float]]:
    server = Server(database)
    times: dict[str, list[float]] = {name: [] for name in PAGES}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                ],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            for _ in range(repeats + 1):  # the first round warms the server's caches
                for name, path in PAGES.items():
                    start = time.perf_counter()
                    page.goto(f"{server.url}/{path.format(user=user)}")
                    page.wait_for_timeout(100)
                    page.wait_for_selector(IDLE, timeout=60_000)
                    page.wait_for_load_state("networkidle")
                    times[name].append(time.perf_counter() - start)
            browser.close()
    finally:
        server.stop()
    return {name: values[1:] for name, values in times.items()}


def busiest_user(database: Path) -> str:
    with Ledger.open(database, read_only=True) as ledger:
        return ledger.find_accounts("u_1", limit=1)["user_id"].iloc[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        small = Path(folder) / "small.duckdb"
        build(small, DemoSpec(users=300, days=30, end=datetime.now(UTC)))
        baseline = render_times(small, "u_1", args.repeats)
    with Ledger.open(args.db, read_only=True) as ledger:
        accounts = ledger.overview().accounts
    measured = render_times(args.db, busiest_user(args.db), args.repeats)
    print(f"page render in Chromium, median of {args.repeats} (s); {accounts:,} accounts")
    print(f"{'page':<22}{'this ledger':>12}{'300 users':>12}{'ratio':>8}{'target':>9}")
    for name in PAGES:
        big, base = statistics.median(measured[name]), statistics.median(baseline[name])
        print(f"{name:<22}{big:>12.2f}{base:>12.2f}{big / base:>8.1f}{TARGET_SECONDS:>9.1f}")


if __name__ == "__main__":
    main()
