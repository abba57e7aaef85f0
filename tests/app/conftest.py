from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from credits_core.demo import DemoSpec

APP = str(Path(__file__).resolve().parents[2] / "app.py")
DEMO = DemoSpec(users=400, days=30, seed=5, end=datetime(2026, 11, 24, tzinfo=UTC))


@pytest.fixture(scope="session")
def demo_db(demo_databases, tmp_path_factory) -> Path:
    """This worker's copy of the demo ledger (built once per run): the pages write to it."""
    return demo_databases.copy(DEMO, tmp_path_factory.mktemp("app"))


@pytest.fixture
def open_page(demo_db, monkeypatch):
    monkeypatch.setenv("CREDITS_DB", str(demo_db))
    st.cache_data.clear()  # each test starts as a fresh server would (AppTest shares them)

    def open_(page: str | None = None, *, email: str | None = None, **query) -> AppTest:
        """Run the app on `page`; with `email`, as that person signed in through the
        identity provider (else in local mode, with every role)."""
        app = AppTest.from_file(APP, default_timeout=30)
        if email is not None:
            app.secrets["auth"] = {"redirect_uri": "http://localhost/cb", "cookie_secret": "s"}
            app.user["email"] = email
            app.user["is_logged_in"] = True
        if page:
            app.switch_page(page)
        app.query_params.update(query)
        app.run()
        assert not app.exception, app.exception
        return app

    return open_
