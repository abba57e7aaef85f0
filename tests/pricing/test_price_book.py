"""The shipped price book: every platform SKU at exactly its current price."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

NOW = datetime(2026, 11, 24, tzinfo=UTC)

PLATFORM_SKUS = [
    ("MiniMax-Hailuo-02", {"resolution": "512P", "duration": 6}, 320),
    ("MiniMax-Hailuo-02", {"resolution": "512P", "duration": 10}, 420),
    ("MiniMax-Hailuo-02", {"resolution": "768P", "duration": 6}, 680),
    ("MiniMax-Hailuo-02", {"resolution": "768P", "duration": 10}, 1240),
    ("MiniMax-Hailuo-02", {"resolution": "1080P", "duration": 6}, 1100),
    ("T2V-01-Director", {}, 980),
    ("I2V-01-Director", {}, 980),
    ("S2V-01", {}, 1420),
    ("Gen-4 Turbo", {"duration": 5}, 620),
    ("Gen-4 Turbo", {"duration": 10}, 1120),
    ("Gen-3a Turbo", {"duration": 5}, 620),
    ("Gen-3a Turbo", {"duration": 10}, 1120),
    ("Gen-4 Aleph", {"duration": 10}, 3120),
    ("FLUX.1 Kontext [pro]", {}, 110),
    ("FLUX.1 Kontext [max]", {}, 190),
    ("FLUX 1.1 [pro] Ultra", {}, 150),
    ("FLUX.1 [dev]", {}, 90),
    ("FLUX.1 [pro]", {}, 130),
    ("Music 1.5", {}, 90),
]


@pytest.mark.parametrize(("model", "options", "credits"), PLATFORM_SKUS)
def test_every_platform_sku_costs_exactly_its_price(book, model, options, credits):
    quote = book.quote(model, at=NOW, **options)
    assert quote.credits == credits
    assert quote.derived is False
    assert quote.price_book_version == "2026.11"


def test_design_examples(book):
    quote = book.quote("MiniMax-Hailuo-02", resolution="1080P", duration=6, at=NOW)
    assert quote.credits == 1100
    assert quote.model == "MiniMax-Hailuo-02"
    assert dict(quote.options) == {"resolution": "1080P", "duration": 6}
    assert quote.provider_cost_usd == pytest.approx(0.49)
    assert quote.usd_value == pytest.approx(0.55)
    assert quote.margin_usd == pytest.approx(0.06)
    assert [step.rule for step in quote.breakdown] == ["table"]


def test_providers_are_the_four_named(book):
    version = book.version_at(NOW)
    assert set(version.providers) == {"BFL", "MiniMax", "Runway", "Google"}
    assert {m.provider for m in version.models.values()} == {"BFL", "MiniMax", "Runway", "Google"}


@pytest.mark.parametrize(
    ("model", "options", "credits", "cost"),
    [
        ("Veo 3", {"duration": 8, "audio": True}, 6520, 3.20),
        ("Veo 3", {"duration": 4, "audio": False}, 1720, 0.80),
        ("Veo 2", {"duration": 5}, 5120, 2.50),
        ("Imagen 4 Fast", {}, 70, 0.02),
        ("Imagen 4 Standard", {"count": 4}, 350, 0.16),
        ("Imagen 4 Ultra", {}, 150, 0.06),
    ],
)
def test_google_models_are_priced_cost_plus_and_marked_derived(book, model, options, credits, cost):
    # (provider cost + fee) / $0.0005 per credit, rounded up to 10 credits.
    quote = book.quote(model, at=NOW, **options)
    assert quote.derived is True
    assert quote.credits == credits
    assert quote.provider_cost_usd == pytest.approx(cost)
    assert quote.breakdown[0].rule == "cost_plus"


def test_costs_without_a_primary_source_are_flagged_estimates(book):
    assert book.quote("S2V-01", at=NOW).cost_is_estimate is True
    assert book.quote("MiniMax-Hailuo-02", resolution="512P", duration=6, at=NOW).cost_is_estimate
    assert not book.quote(
        "MiniMax-Hailuo-02", resolution="768P", duration=6, at=NOW
    ).cost_is_estimate
