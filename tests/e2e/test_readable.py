"""Issue 16 in a real browser: a partial search loads nobody, a bad adjustment is
refused before Confirm, the support log, a broken draft lists its problems. Screenshots
of each land in test-artifacts/screenshots/."""

from __future__ import annotations

from playwright.sync_api import expect

from credits_core.ledger import Ledger
from tests.e2e.conftest import screenshot, wait_idle

BROKEN_DRAFT = b"""
version = "draft"
effective_from = 2026-12-01
credit_usd = "lots"
"""


def test_support_pages_and_a_broken_draft_on_a_fresh_server(page, start_server, demo_db):
    with Ledger.open(demo_db) as ledger:
        count = ledger.count_accounts("@example.com")
    server = start_server(demo_db)
    page.goto(f"{server.url}/transaction_history?user=%40example.com")
    wait_idle(page)
    expect(page.get_by_text(f"{count:,} users match")).to_be_visible()
    assert page.locator("[data-testid='stMetric']").count() == 0  # nobody loaded
    assert page.get_by_text("Support actions").count() == 0
    screenshot(page, "transaction_history_search")

    page.goto(f"{server.url}/transaction_history?user=u_12")
    wait_idle(page)
    page.get_by_label("Credits (negative to remove)").fill("12.7")
    page.get_by_label("Reason (required)").first.fill("Slow queue")
    page.get_by_role("button", name="Review adjustment").click()
    wait_idle(page)
    problem = page.get_by_text("12.7 has a fraction")
    expect(problem).to_be_visible()
    assert problem.bounding_box()["y"] < page.viewport_size["height"] + 2000
    assert page.get_by_role("button", name="Confirm").count() == 0
    screenshot(page, "transaction_history_user")

    page.goto(f"{server.url}/support_log")
    wait_idle(page)
    expect(page.get_by_text("support actions match")).to_be_visible()
    screenshot(page, "support_log")

    page.goto(f"{server.url}/cost_calculator")
    wait_idle(page)
    screenshot(page, "cost_calculator_catalog")
    page.locator("input[type='file']").first.set_input_files(
        files=[{"name": "draft.toml", "mimeType": "text/plain", "buffer": BROKEN_DRAFT}]
    )
    wait_idle(page)
    problems = page.locator("[data-testid='stAlert'] li")
    expect(problems.first).to_be_visible()
    assert problems.count() >= 1
    expect(page.get_by_text("Draft not loaded: fix these")).to_be_visible()
    screenshot(page, "cost_calculator_draft")
