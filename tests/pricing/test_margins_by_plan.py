"""Margins per plan and why a form had to change an option (pricing book)."""

from __future__ import annotations

from credits_core.pricing import PriceBook


def test_every_sku_below_cost_under_some_plan_is_flagged():
    book = PriceBook.load()
    table = book.margins_by_plan()
    for plan in book.plans():
        priced = book.catalog(plan=plan)
        assert table[f"credits_{plan}"].tolist() == priced["credits"].tolist()
        below = priced["below_cost"].to_numpy()
        assert all(plan in names for names in table.loc[below, "below_cost_on"])
    assert table["below_cost"].tolist() == [bool(n) for n in table["below_cost_on"]]
    hailuo = table[(table["model"] == "MiniMax-Hailuo-02")
                   & (table["options"] == "resolution=1080P, duration=6")].iloc[0]  # fmt: skip
    assert hailuo["margin_pct_business"] < 0 < hailuo["margin_pct"]
    assert hailuo["below_cost_on"] == "business"


def test_option_change_names_the_combination_that_does_not_exist():
    book = PriceBook.load()
    assert book.option_change("MiniMax-Hailuo-02", "duration", 10, {"resolution": "1080P"}) == (
        "MiniMax-Hailuo-02 has no duration=10 with resolution=1080P; valid duration values: 6."
    )
    assert book.option_change("MiniMax-Hailuo-02", "duration", 10, {"resolution": "768P"}) is None
    assert (
        book.option_change("MiniMax-Hailuo-02", "duration", None, {"resolution": "1080P"}) is None
    )
