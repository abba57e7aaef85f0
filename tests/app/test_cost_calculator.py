"""Cost calculator page (AppTest)."""

import pytest
from streamlit.testing.v1 import AppTest

from credits_core.ledger import Ledger


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


def test_can_this_user_afford_it_gives_ok_or_the_exact_message(calculator, demo_db):
    app = calculator
    select(app, "Provider", "Google")
    select(app, "Model", "Veo 3")
    select(app, "Duration", 8)
    select(app, "Audio", True)
    with Ledger.open(demo_db) as ledger:
        users = ledger.find_accounts("u_", limit=50)
    poor = users[users["available"] < 6520].iloc[0]
    rich = users[users["available"] >= 6520].iloc[0]
    next(t for t in app.text_input if t.key == "afford_user").input(poor["user_id"]).run()
    assert app.error[0].value == (
        f"Insufficient credits. You need 6520 credits but only have {poor['available']}. "
        f"You're {6520 - poor['available']} credits short."
    )
    next(t for t in app.text_input if t.key == "afford_user").input(rich["user_id"]).run()
    assert app.success[0].value == f"OK: {rich['available']:,} credits available, 6,520 needed."
    next(t for t in app.text_input if t.key == "afford_user").input("u_nobody").run()
    assert "No account" in app.warning[0].value
