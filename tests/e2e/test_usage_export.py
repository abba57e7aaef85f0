"""Usage export in a real browser: a real download read back, and the SQL box. Neither
writes to the ledger: they share one server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from playwright.sync_api import expect

from credits_core.demo import DemoSpec
from credits_core.export import EVENT_COLUMNS, UsageQuery, preview, usage_export
from credits_core.ledger import Ledger
from tests.e2e.conftest import Server, screenshot, wait_idle

# 25 days of data ending now lie inside the page's default window, the last 30 days and
# today, whichever day it is when the page is drawn: a run across midnight UTC (the test's
# "today" and the server's a day apart) counts the same rows.
SPEC = DemoSpec(users=300, days=25, seed=4, end=datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="module")
def server(demo_databases, tmp_path_factory):
    server = Server(demo_databases.copy(SPEC, tmp_path_factory.mktemp("e2e-export")))
    yield server
    server.stop()


def default_query() -> UsageQuery:
    """What the page shows first: generations of the last 30 days and today (UTC)."""
    today = datetime.now(UTC).date()
    return UsageQuery(
        since=today - timedelta(days=30),
        until=today + timedelta(days=1),
        kinds=["capture", "release", "expiry"],
    )


def test_parquet_download_reads_back_as_the_previewed_export(
    page, server, demo_databases, tmp_path
):
    # the file the server runs on, copied: its expiry job booked the lapsed holds at start
    with Ledger.open(demo_databases.copy(SPEC, tmp_path)) as ledger:
        ledger.expire_holds()
        shown = preview(ledger, usage_export(default_query()), limit=5)
    page.goto(f"{server.url}/usage_export")
    wait_idle(page)
    rows = page.locator("[data-testid='stMetric']", has_text="Rows in the export")
    expect(rows).to_contain_text(f"{shown.total_rows:,}")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download Parquet").click()
    path = download.value.path()
    assert download.value.suggested_filename.endswith(".parquet")
    with duckdb.connect() as con:
        described = con.execute("DESCRIBE SELECT * FROM read_parquet($p)", {"p": str(path)})
        columns = [(name, kind) for name, kind, *_ in described.fetchall()]
        (count,) = con.execute("SELECT count(*) FROM read_parquet($p)", {"p": str(path)}).fetchone()
    assert count == shown.total_rows > 1000
    assert columns == [(c.name, c.type) for c in EVENT_COLUMNS]
    screenshot(page, "usage_export")


def test_sql_box_runs_a_query_and_refuses_a_write(page, server):
    page.goto(f"{server.url}/usage_export")
    wait_idle(page)
    box = page.get_by_label("SQL", exact=True)
    box.fill("SELECT count(*) AS accounts FROM accounts")
    box.press("Control+Enter")
    wait_idle(page)
    page.get_by_role("button", name="Run", exact=True).click()
    wait_idle(page)
    expect(page.get_by_text("1 row(s) in")).to_be_visible()
    box.fill("DROP TABLE journal")
    box.press("Control+Enter")
    wait_idle(page)
    page.get_by_role("button", name="Run", exact=True).click()
    wait_idle(page)
    expect(page.get_by_text("read-only mode")).to_be_visible()
    assert page.get_by_text("Traceback").count() == 0
