"""The home page: the platform's figures from the ledger."""

from credits_core.ledger import Ledger


def test_home_shows_the_ledger_overview(open_page, demo_db):
    app = open_page()
    metrics = {m.label: m.value for m in app.metric}
    with Ledger.open(demo_db) as ledger:
        overview = ledger.overview()
    assert metrics["Accounts"] == f"{overview.accounts:,}" == "400"
    assert metrics["Credits outstanding"] == f"{overview.outstanding:,}"
    assert metrics["Held now"] == f"{overview.held:,}"
    assert app.title[0].value == "Credits back office"
    assert len(app.get("vega_lite_chart")) + len(app.get("arrow_vega_lite_chart")) == 2
