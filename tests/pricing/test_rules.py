"""Each rule kind, and the modifiers applied on top of the base price, in order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.pricing.conftest import MINI_BOOK

NOW = datetime(2026, 11, 24, tzinfo=UTC)

PER_SECOND = """
[models.Narrate]
provider = "Acme"
modality = "music"
options = {{ duration = [1, 3, 7] }}

[models.Narrate.price]
kind = "per_unit"
per = "duration"
unit = "second"
credits = 12.5
rounding = "{rounding}"
step = {step}
"""


@pytest.mark.parametrize(
    ("rounding", "step", "duration", "credits"),
    [
        ("up", 1, 3, 38),  # 37.5
        ("down", 1, 3, 37),
        ("half_up", 1, 3, 38),
        ("half_up", 1, 7, 88),  # 87.5
        ("up", 10, 1, 20),  # 12.5 -> next multiple of 10
        ("down", 10, 7, 80),  # 87.5
        ("half_up", 10, 3, 40),  # 37.5 -> 40
    ],
)
def test_per_unit_price_rounds_as_declared(load_book, rounding, step, duration, credits):
    book = load_book(MINI_BOOK + PER_SECOND.format(rounding=rounding, step=step))
    quote = book.quote("Narrate", duration=duration, at=NOW)
    assert quote.credits == credits
    assert "12.5 credits per second" in quote.breakdown[0].detail


def test_per_unit_rate_can_depend_on_another_option(book):
    # Veo 3's provider cost is per second, at a rate that depends on audio.
    with_audio = book.quote("Veo 3", duration=6, audio=True, at=NOW)
    without = book.quote("Veo 3", duration=6, audio=False, at=NOW)
    assert with_audio.provider_cost_usd == pytest.approx(2.40)
    assert without.provider_cost_usd == pytest.approx(1.20)


def test_per_image_price_multiplies_by_count(book):
    assert book.quote("FLUX.1 Kontext [pro]", count=3, at=NOW).credits == 330
    assert book.quote("FLUX.1 Kontext [pro]", count=3, at=NOW).provider_cost_usd == pytest.approx(
        0.12
    )


def test_cost_plus_rounds_up_to_the_step(load_book):
    book = load_book(
        MINI_BOOK
        + """
[models.Still]
provider = "Acme"
modality = "image"
price = { kind = "cost_plus", fee_usd = 0.015, step = 10 }
cost = { kind = "fixed", usd = 0.021 }
"""
    )
    # (0.021 + 0.015) / 0.0005 = 72 -> 80
    quote = book.quote("Still", at=NOW)
    assert quote.credits == 80
    assert quote.derived
    assert "rounded up to a multiple of 10" in quote.breakdown[0].detail


def test_table_price_looks_up_the_combination(load_book):
    book = load_book(MINI_BOOK)
    assert book.quote("Clip", resolution="720P", duration=10, at=NOW).credits == 201
    assert book.quote("Clip", resolution="1080P", duration=5, at=NOW).credits == 301


def test_plan_modifier_applies_with_its_rounding(book, load_book):
    assert (
        book.quote("MiniMax-Hailuo-02", resolution="1080P", duration=6, plan="pro").credits == 990
    )
    half = load_book(MINI_BOOK).quote("Clip", resolution="720P", duration=5, plan="half", at=NOW)
    assert half.credits == 51  # 50.5 rounded up
    assert [s.rule for s in half.breakdown] == ["table", "plan"]
    assert half.plan == "half"


def test_plan_without_a_discount_adds_no_step(book):
    quote = book.quote("Music 1.5", plan="free", at=NOW)
    assert quote.credits == 90
    assert [s.rule for s in quote.breakdown] == ["fixed"]


def test_minimum_charge_applies_after_the_plan_discount(book):
    quote = book.quote("FLUX.1 [dev]", plan="business", at=NOW)
    assert [(s.rule, s.credits) for s in quote.breakdown] == [
        ("per_unit", 90),
        ("plan", 72),
        ("minimum", 80),
    ]
    assert quote.credits == 80


def test_minimum_does_not_raise_a_price_above_it(book):
    assert book.quote("FLUX.1 [dev]", count=2, plan="business", at=NOW).credits == 144


PROMOS = """
[[promotions]]
name = "Spring"
models = ["Clip"]
multiplier = 0.9
starts = 2026-03-01T00:00:00Z
ends = 2026-04-01T00:00:00Z

[[promotions]]
name = "Video week"
modalities = ["video"]
multiplier = 0.5
starts = 2026-03-10T00:00:00Z
ends = 2026-03-17T00:00:00Z
"""


@pytest.mark.parametrize(
    ("at", "credits", "promotion"),
    [
        ("2026-02-28T23:59:59+00:00", 101, None),
        ("2026-03-01T00:00:00+00:00", 91, "Spring"),  # 90.9 rounded up
        ("2026-03-12T00:00:00+00:00", 51, "Video week"),  # the better offer wins
        ("2026-03-31T23:59:59+00:00", 91, "Spring"),
        ("2026-04-01T00:00:00+00:00", 101, None),  # ends is exclusive
    ],
)
def test_promotions_are_time_boxed_and_the_best_one_applies(load_book, at, credits, promotion):
    book = load_book(MINI_BOOK + PROMOS)
    quote = book.quote("Clip", resolution="720P", duration=5, at=at)
    assert quote.credits == credits
    assert quote.promotion == promotion


def test_shipped_launch_promotion_discounts_veo_3_fast_until_new_year(book):
    during = book.quote("Veo 3 Fast", duration=4, audio=True, at="2026-12-31T23:00:00Z")
    after = book.quote("Veo 3 Fast", duration=4, audio=True, at="2027-01-01T00:00:00Z")
    assert (during.credits, during.promotion) == (1056, "Veo 3 Fast launch")
    assert (after.credits, after.promotion) == (1320, None)
    assert during.margin_usd < 0  # sold below cost while the offer runs
