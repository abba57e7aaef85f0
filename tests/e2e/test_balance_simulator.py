"""Balance simulator in a real browser: a shared link, the URL following the inputs, a CSV
download, the chart, and the replay tab. None of them writes to the ledger: they share
one server."""

from __future__ import annotations

import io
from urllib.parse import urlencode

import pandas as pd
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, wait_idle

LINK = {"mix": "FLUX.1 Kontext [pro]~~1", "balance": "1000", "monthly": "0", "days": "20",
        "runs": "50", "start": "2026-12-01"}  # fmt: skip


def test_a_shared_link_opens_the_same_scenario(page, demo_server):
    server = demo_server
    page.goto(f"{server.url}/balance_simulator?{urlencode(LINK)}")
    wait_idle(page)
    runs_dry = page.locator("[data-testid='stMetric']", has_text="Runs dry on")
    expect(runs_dry).to_contain_text("2026-12-10")  # 1000 credits at 110 a day: day 9
    expect(page.locator("[data-testid='stVegaLiteChart']").first).to_be_visible()
    assert page.get_by_text("Page not found").count() == 0
    screenshot(page, "balance_simulator")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download day by day (CSV)").click()
    daily = pd.read_csv(io.StringIO(download.value.path().read_text()))
    assert len(daily) == 20
    assert daily["available"].iloc[8] == 10


def test_changed_inputs_go_into_the_url(page, demo_server):
    server = demo_server
    page.goto(f"{server.url}/balance_simulator?{urlencode(LINK)}")
    wait_idle(page)
    horizon = page.get_by_label("Horizon (days)")
    horizon.fill("30")
    horizon.press("Enter")
    wait_idle(page)
    page.wait_for_function("() => window.location.search.includes('days=30')")
    assert "mix=FLUX.1" in page.url.replace("+", " ").replace("%20", " ")


def test_replay_tab_runs_on_the_ledger(page, demo_server):
    server = demo_server
    page.goto(
        f"{server.url}/balance_simulator?tab=Price-change+replay&draft=edit+prices+in+a+table"
    )
    wait_idle(page)
    page.get_by_role("button", name="Run the replay").click()
    wait_idle(page)
    expect(page.get_by_text("Replayed", exact=False).first).to_be_visible()
    users = page.locator("[data-testid='stMetric']", has_text="Users paying more")
    expect(users).to_contain_text("0")
    screenshot(page, "balance_simulator_replay")
