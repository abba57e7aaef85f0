"""The home page: the platform's figures from the ledger."""

import shutil

from credits_core.alerts import Evaluator, open_alert_counts
from credits_core.ledger import Ledger


def test_home_shows_the_ledger_overview(open_page, demo_db):
    app = open_page()
    metrics = {m.label: m.value for m in app.metric}
    with Ledger.open(demo_db) as ledger:
        overview = ledger.overview()
        daily, models = ledger.consumption_by_day(days=30), ledger.top_models(days=7)
    assert metrics["Accounts"] == f"{overview.accounts:,}" == "400"
    assert metrics["Credits outstanding"] == f"{overview.outstanding:,}"
    assert metrics["Held now"] == f"{overview.held:,}"
    assert app.title[0].value == "Credits back office"
    # a chart of what was consumed, or a line saying nothing was
    charts = len(app.get("vega_lite_chart")) + len(app.get("arrow_vega_lite_chart"))
    assert charts == (not daily.empty) + (not models.empty)
    captions = [c.value for c in app.caption]
    assert ("No credits were consumed in the last 7 days." in captions) == models.empty
    assert ("No credits were consumed in the last 30 days." in captions) == daily.empty


def test_home_counts_open_alerts_by_severity(open_page, demo_db, tmp_path, monkeypatch):
    copy = tmp_path / "credits.duckdb"
    shutil.copy(demo_db, copy)
    monkeypatch.setenv("CREDITS_DB", str(copy))
    with Ledger.open(copy) as ledger:
        Evaluator(ledger).evaluate()
        counts = open_alert_counts(ledger)
    app = open_page()
    tile = next(m for m in app.metric if m.label == "Open alerts")
    assert counts.total > 0 and tile.value == f"{counts.total:,}"
    assert counts.describe() in [c.value for c in app.caption]
