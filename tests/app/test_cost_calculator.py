"""Cost calculator page (AppTest)."""

import pytest
from streamlit.testing.v1 import AppTest

from credits_core.ledger import Ledger
from credits_core.pricing import PriceBook


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


def test_can_this_user_afford_it_prices_for_the_users_own_plan(calculator, demo_db):
    app = calculator
    select(app, "Provider", "Google")
    select(app, "Model", "Veo 3")
    select(app, "Duration", 8)
    select(app, "Audio", True)
    select(app, "Plan", "free")  # the calculator's plan must not matter
    book = PriceBook.load()
    with Ledger.open(demo_db) as ledger:
        users = ledger.find_accounts("u_", limit=200)
    users = users[users["plan"] == "business"]
    price = book.quote("Veo 3", plan="business", duration=8, audio=True).credits
    assert price < book.quote("Veo 3", plan="free", duration=8, audio=True).credits
    poor = users[users["available"] < price].iloc[0]
    rich = users[users["available"] >= price].iloc[0]
    next(t for t in app.text_input if t.key == "afford_user").input(poor["user_id"]).run()
    assert app.error[0].value == (
        f"Insufficient credits. You need {price} credits but only have {poor['available']}. "
        f"You're {price - poor['available']} credits short."
    )
    assert any("for the business plan, the plan" in c.value for c in app.caption)
    next(t for t in app.text_input if t.key == "afford_user").input(rich["user_id"]).run()
    assert app.success[0].value == (
        f"Yes: on the business plan this costs {rich['user_id']} {price:,} credits, and "
        f"{rich['available']:,} are available."
    )
    next(t for t in app.text_input if t.key == "afford_user").input("u_nobody").run()
    assert "No account" in app.warning[0].value


def test_a_changed_option_says_why_beside_the_field(calculator):
    app = calculator
    select(app, "Provider", "MiniMax")
    select(app, "Model", "MiniMax-Hailuo-02")
    select(app, "Resolution", "768P")
    select(app, "Duration", 10)
    assert not [c for c in app.caption if "Changed from" in c.value]
    select(app, "Resolution", "1080P")
    note = next(c.value for c in app.caption if "Changed from" in c.value)
    assert (
        "Changed from 10 to 6: MiniMax-Hailuo-02 has no duration=10 with resolution=1080P" in note
    )


def test_the_catalog_flags_skus_below_cost_under_any_plan(calculator):
    app = calculator
    catalog = app.dataframe[1].value
    hailuo = catalog[(catalog["model"] == "MiniMax-Hailuo-02")
                     & (catalog["options"] == "resolution=1080P, duration=6")].iloc[0]  # fmt: skip
    assert hailuo["margin_pct"] > 0 > hailuo["margin_pct_business"]
    assert hailuo["below_cost"] and hailuo["below_cost_on"] == "business"
    book = PriceBook.load()
    assert catalog["below_cost_on"].tolist() == book.margins_by_plan()["below_cost_on"].tolist()
