"""Support log page (AppTest): support actions across users, filtered, counted."""

from __future__ import annotations

import shutil

import pytest

from credits_core.ledger import Ledger
from credits_core.ledger.reports import SupportLogFilter

PAGE = "pages/support_log.py"


@pytest.fixture
def acted_db(demo_db, tmp_path, monkeypatch):
    copy = tmp_path / "credits.duckdb"
    shutil.copy(demo_db, copy)
    with Ledger.open(copy) as ledger:
        ledger.adjust("u_3", 75, reason="Slow queue", actor="kim@corp.example")
    monkeypatch.setenv("CREDITS_DB", str(copy))
    return copy


def test_the_log_lists_and_counts_every_agents_actions(open_page, acted_db):
    app = open_page(PAGE)
    with Ledger.open(acted_db) as ledger:
        count = ledger.count_support_log(SupportLogFilter(since=None))
    assert count > 1
    shown = app.dataframe[0].value
    assert "kim@corp.example" in set(shown["agent"])
    assert any(f"{count:,} support actions match" in c.value for c in app.caption)


def test_filtering_by_agent_shows_only_their_actions(open_page, acted_db):
    app = open_page(PAGE, agent="kim@")
    shown = app.dataframe[0].value
    assert shown[["agent", "user_id", "kind", "credits", "reason"]].values.tolist() == [
        ["kim@corp.example", "u_3", "adjustment", 75, "Slow queue"]
    ]
    assert any("1 support actions match" in c.value for c in app.caption)


def test_analysts_may_not_read_the_log(open_page, acted_db):
    app = open_page(PAGE, email="ana@corp.example")
    assert "Your roles do not include this page" in app.error[0].value
    assert not app.dataframe
