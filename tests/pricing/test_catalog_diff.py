"""The catalog (every SKU with margins) and the diff between two price books."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from credits_core.pricing import PriceBook

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def test_catalog_has_one_row_per_sku_with_margins(book):
    catalog = book.catalog(at=NOW)
    hailuo = catalog[catalog["model"] == "MiniMax-Hailuo-02"]
    assert hailuo["options"].tolist() == [
        "resolution=512P, duration=6",
        "resolution=512P, duration=10",
        "resolution=768P, duration=6",
        "resolution=768P, duration=10",
        "resolution=1080P, duration=6",
    ]
    row = hailuo.iloc[4]
    assert (row["credits"], row["usd_value"], row["provider_cost_usd"]) == (1100, 0.55, 0.49)
    assert row["margin_usd"] == pytest.approx(0.06)
    assert row["margin_pct"] == pytest.approx(10.9)
    assert len(catalog) == 38


def test_catalog_marks_derived_prices_and_sales_below_cost(book):
    catalog = book.catalog(at=NOW).set_index(["model", "options"])
    assert catalog.loc[("Veo 3", "duration=8, audio=true"), "derived"]
    assert not catalog.loc[("Gen-4 Turbo", "duration=10"), "derived"]
    assert catalog.loc[("Veo 3 Fast", "duration=4, audio=true"), "below_cost"]
    assert not catalog["below_cost"].drop(index="Veo 3 Fast", level="model").any()


def test_catalog_at_another_credit_value(book):
    catalog = book.catalog(at=NOW, credit_usd=0.0004).set_index(["model", "options"])
    row = catalog.loc[("MiniMax-Hailuo-02", "resolution=1080P, duration=6")]
    assert row["usd_value"] == pytest.approx(0.44)
    assert row["below_cost"]  # $0.44 < $0.49


def test_catalog_under_a_plan(book):
    catalog = book.catalog(at=NOW, plan="pro").set_index(["model", "options"])
    assert catalog.loc[("Music 1.5", ""), "credits"] == 81


def test_diff_lists_changed_added_and_removed_skus(book):
    text = Path(book.source).read_text(encoding="utf-8")
    draft = PriceBook.loads(
        text.replace("credits = 1100", "credits = 1210").replace(
            "[[revisions.promotions]]", 'remove_models = ["S2V-01"]\n\n[[revisions.promotions]]'
        ),
        source="draft",
    )
    diff = book.diff(draft, at=NOW)
    assert diff["model"].tolist() == ["MiniMax-Hailuo-02", "S2V-01"]
    changed, removed = diff.iloc[0], diff.iloc[1]
    assert changed["options"] == "resolution=1080P, duration=6"
    assert (changed["change"], changed["credits_before"], changed["credits_after"]) == (
        "changed",
        1100,
        1210,
    )
    assert (changed["delta"], changed["delta_pct"]) == (110, 10.0)
    assert (removed["change"], removed["credits_before"]) == ("removed", 1420)
    assert removed["credits_after"] is pd.NA
    added = draft.diff(book, at=NOW)
    assert added[["model", "change", "credits_after"]].values.tolist() == [
        ["MiniMax-Hailuo-02", "changed", 1100],
        ["S2V-01", "added", 1420],
    ]


def test_diff_of_a_book_with_itself_is_empty(book):
    assert book.diff(book, at=NOW).empty
