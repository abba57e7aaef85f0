"""Low-credit alerts page (AppTest): users in alert with the core's figures, filters,
acknowledgement by support, the rules and their editor for product, roles."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from credits_core.alerts import (
    AlertRules,
    Evaluator,
    deliver,
    open_alert_counts,
    outbox_state,
    rule_changes,
    users_in_alert,
)
from credits_core.ledger import Ledger

PAGE = "pages/low_credit_alerts.py"
RULES = Path(__file__).resolve().parents[2] / "data" / "alert_rules.toml"


@pytest.fixture
def alerts_db(open_page, demo_db, tmp_path, monkeypatch) -> Path:
    """A copy of the demo ledger, evaluated once, and a copy of the rules file."""
    copy, rules = tmp_path / "credits.duckdb", tmp_path / "alert_rules.toml"
    shutil.copy(demo_db, copy)
    shutil.copy(RULES, rules)
    monkeypatch.setenv("CREDITS_DB", str(copy))
    monkeypatch.setenv("CREDITS_ALERT_RULES", str(rules))
    with Ledger.open(copy) as ledger:
        assert Evaluator(ledger, AlertRules.load(rules)).evaluate().opened > 0
    return copy


def metric(app, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def test_users_in_alert_match_the_core(open_page, alerts_db):
    app = open_page(PAGE)
    with Ledger.open(alerts_db) as ledger:
        counts = open_alert_counts(ledger)
        expected = users_in_alert(ledger, limit=None)
    assert metric(app, "Open alerts") == f"{counts.total:,}"
    assert metric(app, "Users in alert") == f"{counts.users:,}" == f"{len(expected):,}"
    for severity, count in counts.by_severity.items():
        assert metric(app, severity.capitalize()) == f"{count:,}"
    shown = app.dataframe[0].value
    assert shown["user_id"].tolist() == expected["user_id"].tolist()[:50]
    assert shown["history"].iloc[0] == f"/transaction_history?user={shown['user_id'].iloc[0]}"
    assert shown["severity"].iloc[0] == "critical"  # most severe first
    assert len(app.get("vega_lite_chart")) + len(app.get("arrow_vega_lite_chart")) == 1


def caption_count(app) -> int:
    text = next(c.value for c in app.caption if "users in alert match" in c.value)
    return int(text.split()[0].replace(",", ""))


def test_each_user_once_with_true_counts_and_pages(open_page, alerts_db):
    app = open_page(PAGE)
    with Ledger.open(alerts_db) as ledger:
        everyone = users_in_alert(ledger, limit=None)
        open_total = open_alert_counts(ledger).total
    assert everyone["user_id"].is_unique and open_total > len(everyone) > 50
    assert caption_count(app) == len(everyone)
    first = app.dataframe[0].value
    assert len(first) == 50 and first["user_id"].is_unique
    app.number_input(key="alerts_page").set_value(2).run()
    second = app.dataframe[0].value
    assert second["user_id"].tolist() == everyone["user_id"].tolist()[50:100]


def test_filters_narrow_the_list(open_page, alerts_db):
    app = open_page(PAGE)
    app.multiselect(key="severities").set_value(["info"]).run()
    shown = app.dataframe[0].value
    assert not shown.empty and set(shown["severity"]) == {"info"}
    user = shown["user_id"].iloc[0]
    app.text_input(key="search").input(user).run()
    assert set(app.dataframe[0].value["user_id"]) == {user}
    assert caption_count(app) == 1


def test_support_acknowledges_every_alert_of_a_user_at_once(open_page, alerts_db):
    app = open_page(PAGE, email="sam@corp.example")
    with Ledger.open(alerts_db) as ledger:
        several = users_in_alert(ledger, limit=None).query("alerts > 1")
    user_id = several["user_id"].iloc[0]
    app.checkbox(key="unacknowledged").check().run()
    before = caption_count(app)
    app.selectbox(key="ack_user").set_value(user_id)
    app.text_input(key="ack_note").input("Emailed about a top-up")
    next(b for b in app.button if b.label == "Acknowledge").click().run()
    assert not app.exception and not app.error
    count = several["alerts"].iloc[0]
    assert app.success[0].value == f"Acknowledged {count} open alert(s) of {user_id}."
    app.run()
    assert caption_count(app) == before - 1
    with Ledger.open(alerts_db) as ledger:
        row = users_in_alert(ledger, search=user_id, limit=None).iloc[0]
    assert (row["acknowledged_by"], row["note"]) == ("sam@corp.example", "Emailed about a top-up")
    assert not any(e.label == "Save rules" for e in app.button)  # support cannot edit rules


def test_the_outbox_shows_delivery_state_and_support_retries_failures(open_page, alerts_db):
    with Ledger.open(alerts_db) as ledger:
        deliver(ledger, "http://127.0.0.1:9/nothing", max_attempts=1, timeout=1, limit=3)
        failed = outbox_state(ledger).failed
    assert failed == 3
    app = open_page(PAGE, email="sam@corp.example")
    assert metric(app, "Failed for good") == "3"
    assert any("Last delivery error" in e.value for e in app.error)
    next(b for b in app.button if b.label == "Retry failed messages").click().run()
    assert "3 message(s) are pending again" in app.success[0].value
    with Ledger.open(alerts_db) as ledger:
        assert outbox_state(ledger).failed == 0
    assert metric(app, "Failed for good") == "0"


def test_acknowledging_without_a_note_is_refused(open_page, alerts_db):
    app = open_page(PAGE, email="sam@corp.example")
    next(b for b in app.button if b.label == "Acknowledge").click().run()
    assert "Write a note" in app.error[0].value
    with Ledger.open(alerts_db) as ledger:
        assert users_in_alert(ledger)["acknowledged_at"].isna().all()


def test_product_edits_the_rules_but_does_not_acknowledge(open_page, alerts_db):
    app = open_page(PAGE, email="pat@corp.example")
    assert not any(s.label == "Alert" for s in app.selectbox)
    assert any(b.label == "Save rules" for b in app.button)
    next(b for b in app.button if b.label == "Save rules").click().run()
    assert "unchanged" in app.error[0].value  # nothing edited: nothing saved
    with Ledger.open(alerts_db) as ledger:
        assert rule_changes(ledger).empty


def test_analysts_do_not_see_the_page(open_page, alerts_db):
    app = open_page(PAGE, email="ana@corp.example")
    assert "Your roles do not include this page" in app.error[0].value
    assert not app.dataframe


def test_a_broken_rules_file_is_an_error_not_a_traceback(
    open_page, alerts_db, monkeypatch, tmp_path
):
    broken = tmp_path / "broken.toml"
    broken.write_text("[[rules]]\nname = 'x'\n", encoding="utf-8")
    monkeypatch.setenv("CREDITS_ALERT_RULES", str(broken))
    app = open_page(PAGE)
    assert "broken.toml" in app.error[0].value


def test_a_rules_edit_saved_on_the_page_shows_on_the_next_rerun(open_page, alerts_db):
    app = open_page(PAGE, email="pat@corp.example")
    rules_table = next(d for d in app.dataframe if d.key == "rules_editor")
    assert rules_table.value.set_index("name").loc["nearly-empty", "below"] == 200
    for below in (150, 120):  # two saves in a row: each one is read back at once
        app.session_state["rules_editor"] = {
            "edited_rows": {0: {"below": below}},
            "added_rows": [],
            "deleted_rows": [],
        }
        next(b for b in app.button if b.label == "Save rules").click().run()
        assert not app.exception and not app.error
        rules_table = next(d for d in app.dataframe if d.key == "rules_editor")
        assert rules_table.value.set_index("name").loc["nearly-empty", "below"] == below
    assert AlertRules.load().get("nearly-empty").below == 120
    with Ledger.open(alerts_db) as ledger:
        assert len(rule_changes(ledger)) == 2
