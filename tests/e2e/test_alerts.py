"""Low-credit alerts in a real browser: the live part refreshes itself without reloading
the page, and support acknowledges an alert."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, wait_idle

RULES = Path(__file__).resolve().parents[2] / "data" / "alert_rules.toml"
EVERYONE = """
[[rules]]
name = "everyone"
kind = "available_below"
severity = "info"
below = 1_000_000_000
resolve_at = 2_000_000_000
"""


@pytest.fixture
def alerts_db(demo_db, tmp_path, monkeypatch) -> Path:
    """A demo ledger and an alert rules file of this test's own."""
    rules = tmp_path / "alert_rules.toml"
    shutil.copy(RULES, rules)
    monkeypatch.setenv("CREDITS_ALERT_RULES", str(rules))
    return demo_db


def open_alerts(page):
    return page.locator("[data-testid='stMetric']", has_text="Open alerts").locator(
        "[data-testid='stMetricValue']"
    )


def test_the_list_refreshes_itself_without_reloading_the_page(page, start_server, alerts_db):
    server = start_server(alerts_db)
    page.goto(f"{server.url}/low_credit_alerts")
    wait_idle(page)
    expect(open_alerts(page)).to_have_text(re.compile(r"^[\d,]+$"))
    before = int(open_alerts(page).inner_text().replace(",", ""))  # the demo's own alerts
    page.evaluate("window.__notReloaded = true")

    with open(os.environ["CREDITS_ALERT_RULES"], "a", encoding="utf-8") as rules:
        rules.write(EVERYONE)  # a rule every funded user matches
    other = page.context.new_page()  # someone else evaluates the rules meanwhile
    other.goto(f"{server.url}/low_credit_alerts")
    wait_idle(other)
    other.get_by_role("button", name="Evaluate the rules now").click()
    wait_idle(other)
    expect(open_alerts(other)).not_to_have_text(f"{before:,}")
    opened = open_alerts(other).inner_text()
    assert int(opened.replace(",", "")) > before
    other.close()

    expect(open_alerts(page)).to_have_text(opened, timeout=15_000)
    assert page.evaluate("window.__notReloaded") is True
    assert page.get_by_text("Page not found").count() == 0
    screenshot(page, "low_credit_alerts")
    page.get_by_role("tab", name="Rules").click()
    expect(page.get_by_role("button", name="Save rules")).to_be_visible()
    screenshot(page, "low_credit_alerts_rules")


def test_support_acknowledges_an_alert(page, start_server, alerts_db):
    server = start_server(alerts_db)
    page.goto(f"{server.url}/low_credit_alerts")
    wait_idle(page)
    page.get_by_role("button", name="Evaluate the rules now").click()
    wait_idle(page)
    page.get_by_text("Only users nobody acknowledged yet").click()
    wait_idle(page)
    caption = page.get_by_text(re.compile(r"users in alert match"))
    before = int(caption.inner_text().split()[0].replace(",", ""))
    page.locator("input[aria-label='Note (required): what was done']").fill(
        "Emailed about a top-up"
    )
    page.get_by_role("button", name="Acknowledge").click()
    wait_idle(page)
    expect(page.get_by_text(re.compile(r"^Acknowledged \d+ open alert"))).to_be_visible()
    expect(caption).to_have_text(
        re.compile(rf"^{before - 1:,} users in alert match"), timeout=15_000
    )
