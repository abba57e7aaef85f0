"""What a caller gets for a request that cannot be priced, and how options normalise."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from credits_core import CreditsError
from credits_core.pricing import (
    InvalidOption,
    MissingOption,
    PricingError,
    UnknownModel,
    UnknownPlan,
    UnknownProvider,
)

NOW = datetime(2026, 11, 24, tzinfo=UTC)
HAILUO = "MiniMax-Hailuo-02"


def test_unknown_model_names_the_closest_models(book):
    with pytest.raises(UnknownModel) as caught:
        book.quote("Hailuo-02", resolution="1080P", duration=6, at=NOW)
    assert caught.value.closest[0] == HAILUO
    assert "Closest: MiniMax-Hailuo-02" in str(caught.value)


def test_every_pricing_error_is_a_credits_error_and_a_value_error():
    for cls in (UnknownModel, InvalidOption, MissingOption, UnknownPlan, UnknownProvider):
        assert issubclass(cls, PricingError)
        assert issubclass(cls, CreditsError)
        assert issubclass(cls, ValueError)


def test_1080p_exists_only_at_6_seconds(book):
    with pytest.raises(InvalidOption) as caught:
        book.quote(HAILUO, resolution="1080P", duration=10, at=NOW)
    assert str(caught.value) == (
        "MiniMax-Hailuo-02 has no duration=10 with resolution=1080P. "
        "With resolution=1080P, valid duration values: 6."
    )
    assert caught.value.option == "duration"


def test_invalid_value_names_the_valid_values(book):
    with pytest.raises(InvalidOption, match=r"Valid resolution values: 512P, 768P, 1080P\."):
        book.quote(HAILUO, resolution="4K", duration=6, at=NOW)


def test_option_that_changes_the_price_has_no_default(book):
    with pytest.raises(MissingOption) as caught:
        book.quote(HAILUO, resolution="1080P", at=NOW)
    assert caught.value.option == "duration"
    assert "one of: 6, 10" in str(caught.value)


def test_count_defaults_to_one_and_fixed_options_may_be_left_out(book):
    assert book.quote("FLUX.1 Kontext [pro]", at=NOW).options["count"] == 1
    assert book.quote("S2V-01", at=NOW).options == {"duration": 6}
    assert book.quote("S2V-01", duration=6, at=NOW).credits == 1420


def test_option_the_model_does_not_take_is_refused(book):
    with pytest.raises(InvalidOption, match=re.escape("Music 1.5 takes no option 'duration'")):
        book.quote("Music 1.5", duration=30, at=NOW)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1080p", "1080P"), (" 1080P ", "1080P"), ("1080P", "1080P")],
)
def test_resolution_normalises_case_and_spaces(book, raw, expected):
    quote = book.quote(HAILUO, resolution=raw, duration=6, at=NOW)
    assert quote.options["resolution"] == expected
    assert quote.credits == 1100


@pytest.mark.parametrize("raw", [6, "6", 6.0, "6.0", " 6 "])
def test_whole_numbers_normalise(book, raw):
    assert book.quote(HAILUO, resolution="1080P", duration=raw, at=NOW).options["duration"] == 6


@pytest.mark.parametrize("raw", [6.5, "six", True, "", [6]])
def test_ambiguous_numbers_are_rejected(book, raw):
    with pytest.raises(InvalidOption):
        book.quote(HAILUO, resolution="1080P", duration=raw, at=NOW)


@pytest.mark.parametrize(
    ("raw", "expected"), [(True, True), ("yes", True), ("false", False), (0, False)]
)
def test_booleans_normalise(book, raw, expected):
    assert book.quote("Veo 3", duration=4, audio=raw, at=NOW).options["audio"] is expected


def test_none_means_not_given(book):
    assert book.quote("FLUX.1 [pro]", count=None, at=NOW).options["count"] == 1


def test_provider_is_checked_ignoring_case_and_by_alias(book):
    assert (
        book.quote(HAILUO, provider="minimax", resolution="768P", duration=6, at=NOW).credits == 680
    )
    assert book.quote("FLUX.1 [pro]", provider="black forest labs", at=NOW).provider == "BFL"


def test_wrong_provider_says_whose_model_it_is(book):
    with pytest.raises(InvalidOption, match="Veo 3 is a Google model, not MiniMax"):
        book.quote("Veo 3", provider="MiniMax", duration=4, audio=True, at=NOW)


def test_unknown_provider_lists_the_providers(book):
    with pytest.raises(UnknownProvider, match="Valid providers: BFL, MiniMax, Runway, Google"):
        book.quote("Veo 3", provider="OpenAI", duration=4, audio=True, at=NOW)


def test_unknown_plan_lists_the_plans(book):
    with pytest.raises(UnknownPlan, match="Valid plans: free, standard, pro, business"):
        book.quote("Music 1.5", plan="gold", at=NOW)


def test_model_names_match_ignoring_case_and_spacing(book):
    assert book.quote("flux.1  kontext [PRO]", at=NOW).model == "FLUX.1 Kontext [pro]"


def test_valid_values_never_offer_a_combination_that_does_not_exist(book):
    assert book.valid_values(HAILUO, "duration", {"resolution": "1080P"}, at=NOW) == [6]
    assert book.valid_values(HAILUO, "duration", {"resolution": "768p"}, at=NOW) == [6, 10]
    assert book.valid_values(HAILUO, "resolution", {"duration": 10}, at=NOW) == ["512P", "768P"]
