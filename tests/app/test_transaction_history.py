"""Transaction history page (AppTest): find a user, balance, journal, support actions."""

from __future__ import annotations

import shutil

import pytest

from credits_core.ledger import Ledger

PAGE = "pages/transaction_history.py"


def metric(app, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def test_deep_link_shows_the_users_balance(open_page, demo_db):
    app = open_page(PAGE, user="u_12")
    with Ledger.open(demo_db) as ledger:
        balance = ledger.balance("u_12")
    assert app.text_input(key="user").value == "u_12"
    assert metric(app, "Total") == f"{balance.total:,}"
    assert metric(app, "Held") == f"{balance.held:,}"
    assert metric(app, "Available") == f"{balance.available:,}"
    journal = app.dataframe[1].value
    assert journal["balance_after"].iloc[0] == balance.total


def test_partial_email_search_lists_matches(open_page):
    app = open_page(PAGE, user="@example.com")
    matches = app.dataframe[0].value
    assert len(matches) == 20
    assert set(matches.columns) >= {"user_id", "email", "available"}


def test_unknown_user_says_so(open_page):
    app = open_page(PAGE, user="nobody-here")
    assert "No user id or email contains 'nobody-here'" in app.warning[0].value


@pytest.fixture
def writable_db(demo_db, tmp_path, monkeypatch):
    copy = tmp_path / "credits.duckdb"
    shutil.copy(demo_db, copy)
    monkeypatch.setenv("CREDITS_DB", str(copy))
    return copy


def test_support_refund_changes_the_balance_once(open_page, writable_db):
    app = open_page(PAGE, user="u_12")
    before = int(metric(app, "Total").replace(",", ""))
    holds = app.dataframe[2].value
    refundable = holds[(holds["status"] == "captured") & holds["refunded_at"].isna()]
    transaction, credits = refundable.iloc[0][["transaction_id", "captured"]]
    form_select = next(s for s in app.selectbox if s.label == "Captured generation")
    form_select.set_value(transaction)
    next(t for t in app.text_input if t.key == "refund_reason").input("Generation came out black")
    next(b for b in app.button if b.label == "Review refund").click().run()
    assert f"Confirm: Refund {int(credits):,} credits to u_12" in app.warning[0].value
    next(b for b in app.button if b.label == "Confirm").click().run()
    assert not app.exception
    assert int(metric(app, "Total").replace(",", "")) == before + int(credits)
    with Ledger.open(writable_db) as ledger:
        refunds = ledger.history("u_12", kinds=["refund"])
    assert refunds["actor"].tolist() == ["local-admin"]
    assert refunds["reason"].tolist() == ["Generation came out black"]


def test_product_role_sees_history_but_no_support_actions(open_page):
    app = open_page(PAGE, email="pat@corp.example", user="u_12")
    assert metric(app, "Total")
    labels = [button.label for button in app.button]
    assert "Review refund" not in labels and "Review adjustment" not in labels
    assert all("Support actions" not in header.value for header in app.subheader)


def test_analyst_may_not_open_the_page(open_page):
    app = open_page(PAGE, email="ana@corp.example", user="u_12")
    assert "Your roles do not include this page" in app.error[0].value
    assert not app.metric


def test_support_role_signed_in_is_the_actor(open_page, writable_db):
    app = open_page(PAGE, email="sam@corp.example", user="u_12")
    next(t for t in app.text_input if t.key == "adjust_credits").input("500")
    next(t for t in app.text_input if t.key == "adjust_reason").input("Slow queue")
    next(b for b in app.button if b.label == "Review adjustment").click().run()
    next(b for b in app.button if b.label == "Confirm").click().run()
    with Ledger.open(writable_db) as ledger:
        adjustments = ledger.history("u_12", kinds=["adjust"])
    assert adjustments["actor"].tolist() == ["sam@corp.example"]
    assert adjustments["credits"].tolist() == [500]


def test_a_partial_search_counts_matches_and_loads_nobody_until_one_is_picked(open_page, demo_db):
    app = open_page(PAGE, user="@example.com")
    with Ledger.open(demo_db) as ledger:
        count = ledger.count_accounts("@example.com")
    assert count > 20
    assert any(f"{count:,} users match" in m.value for m in app.markdown)
    assert not app.metric  # no user's balance yet
    assert all("Support actions" not in header.value for header in app.subheader)
    assert not [b for b in app.button if b.label.startswith("Review")]
    picker = next(s for s in app.selectbox if s.label == "Pick a user")
    assert picker.value is None
    picker.set_value("u_7").run()
    assert app.text_input(key="user").value == "u_7"
    assert app.subheader[0].value.startswith("u_7 · ")
    assert metric(app, "Total")


def test_a_single_match_loads_that_user(open_page):
    app = open_page(PAGE, user="u_399")
    assert app.subheader[0].value.startswith("u_399 · ")


def review_adjustment(app, credits: str, reason: str):
    next(t for t in app.text_input if t.key == "adjust_credits").input(credits)
    next(t for t in app.text_input if t.key == "adjust_reason").input(reason)
    next(b for b in app.button if b.label == "Review adjustment").click().run()
    assert not app.exception
    return app


@pytest.mark.parametrize(
    ("credits", "reason", "problem"),
    [
        ("12.7", "Slow queue", "Credits must be a whole number; 12.7 has a fraction."),
        ("0", "Slow queue", "0 credits changes nothing"),
        ("-1000000", "Slow queue", "so at most"),
        ("999999999999999", "Slow queue", "At most 1,000,000 credits can be added"),
        ("500", "   ", "Write a reason"),
        ("", "", "Type the credits to add"),
    ],
)
def test_bad_support_input_is_refused_before_confirm(open_page, credits, reason, problem):
    app = review_adjustment(open_page(PAGE, user="u_12"), credits, reason)
    assert problem in app.error[0].value
    assert "Confirm" not in [b.label for b in app.button]
    assert not app.warning


def test_a_good_adjustment_is_offered_for_confirmation_with_its_effect(open_page):
    app = review_adjustment(open_page(PAGE, user="u_12"), "1,250", "Slow queue")
    available = int(metric(app, "Available").replace(",", ""))
    assert (
        f"Confirm: Add 1,250 credits to u_12: available {available:,} -> {available + 1250:,}."
        in app.warning[0].value
    )
    assert "Confirm" in [b.label for b in app.button]


def test_after_booking_a_new_mistake_shows_no_stale_success(open_page, writable_db):
    app = review_adjustment(open_page(PAGE, user="u_12"), "40", "Goodwill")
    next(b for b in app.button if b.label == "Confirm").click().run()
    assert app.success[0].value.startswith("Booked: Add 40 credits to u_12")
    review_adjustment(app, "-0.5", "Goodwill")
    assert "has a fraction" in app.error[0].value
    assert not app.success
