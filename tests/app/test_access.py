"""What people without a role, or without a usable access file, see: one page that says
so, never the company's figures."""

from __future__ import annotations

import pytest

PAGES = [None, "pages/transaction_history.py", "pages/usage_export.py"]


def texts(app) -> str:
    return " ".join(
        [e.value for e in app.error] + [w.value for w in app.warning] + [t.value for t in app.title]
    )


@pytest.mark.parametrize("where", PAGES)
def test_a_person_with_no_role_sees_only_whom_to_ask(open_page, where):
    app = open_page(where, email="eve@corp.example")
    assert len(app.metric) == 0 and len(app.dataframe) == 0  # no totals, no tables
    assert "no role" in texts(app) and "ada@corp.example" in texts(app)
    assert "eve@corp.example" in texts(app)


def test_a_look_alike_of_a_support_email_has_no_role(open_page):
    app = open_page("pages/transaction_history.py", email="ſam@corp.example", user="u_12")
    assert len(app.metric) == 0 and "no role" in texts(app)


@pytest.mark.parametrize("where", PAGES)
def test_a_missing_access_file_lets_nobody_in_and_says_why(open_page, monkeypatch, tmp_path, where):
    monkeypatch.delenv("CREDITS_LOCAL")
    monkeypatch.setenv("CREDITS_ACCESS", str(tmp_path / "missing.toml"))
    app = open_page(where)
    assert len(app.metric) == 0 and len(app.dataframe) == 0
    assert "no access file" in texts(app) and "CREDITS_LOCAL=1" in texts(app)


def test_without_local_mode_asked_for_nobody_is_let_in(open_page, monkeypatch):
    monkeypatch.delenv("CREDITS_LOCAL")
    app = open_page()
    assert len(app.metric) == 0 and "nobody can be identified" in texts(app)


def test_local_mode_asked_for_shows_home_with_a_banner(open_page):
    app = open_page()
    assert len(app.metric) >= 5
    assert any("Local mode" in info.value for info in app.info)
