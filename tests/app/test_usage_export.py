"""The usage export page in AppTest: filters, preview and row count, downloads, the SQL box,
and who may open it. The bytes of a download are tested in tests/export/test_formats.py
(AppTest cannot read them) and in the browser test."""

from __future__ import annotations

from datetime import date

from credits_core.export import UsageQuery, preview, usage_export
from credits_core.ledger import Ledger

PAGE = "pages/usage_export.py"
ANALYST = "ana@corp.example"
NOVEMBER = (date(2026, 11, 1), date(2026, 11, 20))


def expected(demo_db, **query):
    query = {"since": date(2026, 11, 1), "until": date(2026, 11, 21), **query}
    with Ledger.open(demo_db) as ledger:  # the app holds it read-write in this process
        return preview(ledger, usage_export(UsageQuery(**query)), limit=100)


def by_label(elements, label):
    return next(element for element in elements if element.label == label)


def test_the_analyst_sees_the_preview_and_its_row_count(open_page, demo_db):
    app = open_page(PAGE, email=ANALYST)
    app.date_input(key="export_dates").set_value(NOVEMBER).run()
    shown = expected(demo_db, kinds=["capture", "release", "expiry"])
    assert app.metric[0].value == f"{shown.total_rows:,}"
    table = app.dataframe[0].value
    assert list(table.columns) == list(shown.rows.columns)
    assert table["transaction_id"].tolist() == shown.rows["transaction_id"].tolist()
    labels = [button.label for button in app.get("download_button")]
    assert labels == ["Download CSV", "Download Parquet", "Download JSON lines", "Download XLSX"]


def test_filters_and_group_by_change_the_preview(open_page, demo_db):
    app = open_page(PAGE, email=ANALYST)
    app.date_input(key="export_dates").set_value(NOVEMBER)
    by_label(app.multiselect, "Group by (none: one row per event)").set_value(["provider", "day"])
    by_label(app.multiselect, "Providers").set_value(["Google", "Runway"])
    app.run()
    assert not app.exception
    shown = expected(
        demo_db,
        kinds=["capture", "release", "expiry"],
        providers=["Google", "Runway"],
        group_by=["provider", "day"],
    )
    table = app.dataframe[0].value
    assert list(table.columns[:2]) == ["day", "provider"]
    assert set(table["provider"]) == {"Google", "Runway"}
    assert app.metric[0].value == f"{shown.total_rows:,}"
    assert table["generations"].tolist() == shown.rows["generations"].tolist()


def test_support_and_product_are_refused_the_page(open_page):
    for email in ("sam@corp.example", "pat@corp.example"):
        app = open_page(PAGE, email=email)
        assert "Your roles do not include this page (Usage export)" in app.error[0].value
        assert not app.metric and not app.dataframe
        assert not any(button.label == "Run" for button in app.button)


def test_a_saved_example_loads_and_runs(open_page):
    app = open_page(PAGE, email=ANALYST)
    app.selectbox(key="example").set_value("Credits spent and provider cost per model").run()
    assert app.text_area(key="sql").value.startswith("SELECT model, provider")
    by_label(app.button, "Run").click().run()
    assert not app.error
    assert any(caption.value.startswith("Data as of") for caption in app.caption)
    result = app.dataframe[-1].value
    assert list(result.columns[:3]) == ["model", "provider", "generations"]
    assert len(result) > 3


def test_a_write_in_the_sql_box_is_a_message_not_a_traceback(open_page):
    app = open_page(PAGE, email=ANALYST)
    app.text_area(key="sql").set_value("DELETE FROM journal").run()
    by_label(app.button, "Run").click().run()
    assert not app.exception
    assert "read-only" in app.error[0].value
    app.text_area(key="sql").set_value("SELECT * FROM read_csv('/etc/passwd')").run()
    by_label(app.button, "Run").click().run()
    assert "file system operations are disabled" in app.error[0].value
