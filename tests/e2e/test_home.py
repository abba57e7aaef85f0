"""The home page in a real browser on a freshly started server."""

from __future__ import annotations

from tests.e2e.conftest import screenshot, wait_idle


def test_home_renders_the_catalog(page, start_server, tmp_path):
    server = start_server(tmp_path / "credits.duckdb")
    page.goto(server.url)
    wait_idle(page)
    assert page.get_by_role("heading", name="Credits back office").is_visible()
    assert page.get_by_text("Price catalog").is_visible()
    assert screenshot(page, "home").stat().st_size > 10_000
