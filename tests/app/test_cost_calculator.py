"""Cost calculator page (AppTest)."""

import pytest
from streamlit.testing.v1 import AppTest


@pytest.fixture
def calculator(open_page) -> AppTest:
    return open_page("pages/cost_calculator.py")


def select(app: AppTest, label: str, value) -> AppTest:
    next(box for box in app.selectbox if box.label == label).set_value(value)
    return app.run()


def test_hailuo_1080p_6s_costs_1100_and_10s_is_never_offered(calculator):
    app = calculator
    select(app, "Provider", "MiniMax")
    select(app, "Model", "MiniMax-Hailuo-02")
    select(app, "Resolution", "1080P")
    duration = next(box for box in app.selectbox if box.label == "Duration")
    assert duration.options == ["6"]
    credits = next(m for m in app.metric if m.label == "Credits")
    assert credits.value == "1,100"
    select(app, "Resolution", "768P")
    duration = next(box for box in app.selectbox if box.label == "Duration")
    assert duration.options == ["6", "10"]


def test_catalog_highlights_skus_sold_below_cost(calculator):
    app = calculator
    app.number_input[0].set_value(0.0004).run()
    assert any("sold below the provider's cost" in c.value for c in app.caption)
