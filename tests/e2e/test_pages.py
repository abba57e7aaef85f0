"""Every page in a real browser against a real `credits serve` on a demo ledger."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from playwright.sync_api import expect

from credits_core.ledger import Ledger
from tests.e2e.conftest import DEMO, screenshot, wait_idle


@pytest.fixture(scope="module")
def pristine(demo_databases):
    """The demo ledger as the shared server's copy started (open it read only)."""
    return demo_databases.pristine(DEMO)


def test_deep_link_opens_the_users_history_on_a_fresh_server(page, start_server, demo_db):
    with Ledger.open(demo_db, read_only=True) as ledger:
        balance = ledger.balance("u_12")
    server = start_server(demo_db)  # the deep link is the first page this server serves
    page.goto(f"{server.url}/transaction_history?user=u_12")
    wait_idle(page)
    expect(page.get_by_text("u_12 · ", exact=False).first).to_be_visible()
    total = page.locator("[data-testid='stMetric']", has_text="Total")
    expect(total).to_contain_text(f"{balance.total:,}")
    assert page.get_by_text("Page not found").count() == 0
    screenshot(page, "transaction_history")


def test_journal_csv_download_matches_the_ledger(page, demo_server, pristine):
    with Ledger.open(pristine, read_only=True) as ledger:
        expected = ledger.history("u_12", limit=None)
    server = demo_server
    page.goto(f"{server.url}/transaction_history?user=u_12")
    wait_idle(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download these entries (CSV)").click()
    rows = pd.read_csv(io.StringIO(download.value.path().read_text()))
    assert len(rows) == len(expected)
    assert rows["transaction_id"].tolist() == expected["transaction_id"].tolist()
    assert rows["balance_after"].tolist() == expected["balance_after"].tolist()


def test_home_and_cost_calculator_render(page, demo_server):
    server = demo_server
    page.goto(server.url)
    wait_idle(page)
    accounts = page.locator("[data-testid='stMetric']", has_text="Accounts")
    expect(accounts).to_contain_text("300")
    screenshot(page, "home")
    page.goto(f"{server.url}/cost_calculator")
    wait_idle(page)
    credits = page.locator("[data-testid='stMetric']", has_text="Credits").first
    expect(credits).to_contain_text("110")
    assert page.get_by_text("Page not found").count() == 0
    screenshot(page, "cost_calculator")
