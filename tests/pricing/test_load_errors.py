"""A broken price book fails at load, naming the file, the key and the reason."""

from __future__ import annotations

import pytest

from credits_core.pricing import PriceBook, PriceBookError
from tests.pricing.conftest import MINI_BOOK

EXTRA_MODEL = """
[models.Extra]
provider = "Acme"
modality = "image"
{body}
"""


def problems_of(load_book, text: str) -> list[tuple[str, str]]:
    with pytest.raises(PriceBookError) as caught:
        load_book(text)
    return list(caught.value.problems)


def test_message_names_file_key_and_reason(write_book):
    path = write_book(MINI_BOOK.replace("credits = 301", "credits = -5"))
    with pytest.raises(PriceBookError) as caught:
        PriceBook.load(path)
    assert f"{path}: models.Clip.price.rows[2].credits: negative price -5" in str(caught.value)


def test_unknown_rule_kind(load_book):
    problems = problems_of(
        load_book, MINI_BOOK + EXTRA_MODEL.format(body='price = { kind = "auction" }')
    )
    assert problems[0][0].startswith("models.Extra.price")
    assert "fixed" in problems[0][1] and "cost_plus" in problems[0][1]


def test_table_missing_a_declared_combination(load_book):
    text = MINI_BOOK.replace('  { resolution = "720P", duration = 10, credits = 201 },\n', "")
    assert problems_of(load_book, text) == [
        ("models.Clip.price.rows", "misses the combination resolution=720P, duration=10")
    ]


def test_table_pricing_an_excluded_combination(load_book):
    text = MINI_BOOK.replace(
        "credits = 301 },",
        'credits = 301 },\n  { resolution = "1080P", duration = 10, credits = 1 },',
    )
    problems = problems_of(load_book, text)
    assert problems == [
        ("models.Clip.price.rows[3]", "prices a combination that `exclude` says does not exist")
    ]


def test_duplicate_model_ignoring_case(load_book):
    text = MINI_BOOK + MINI_BOOK[MINI_BOOK.index("[models.Clip]") :].replace("Clip", "CLIP")
    problems = problems_of(load_book, text)
    assert ("models.Clip", "duplicate model (names are matched ignoring case)") in problems


def test_duplicate_key_in_toml_is_a_syntax_problem(load_book):
    problems = problems_of(load_book, MINI_BOOK + '\n[models.Clip]\nprovider = "Acme"\n')
    assert problems[0][0] == "syntax"


def test_default_on_an_option_that_changes_the_price(load_book):
    text = MINI_BOOK.replace(
        "duration = [5, 10] }", "duration = { values = [5, 10], default = 5 } }"
    )
    assert problems_of(load_book, text) == [
        ("models.Clip.options.duration", "changes the price, so it may not have a default")
    ]


def test_cost_plus_without_a_cost(load_book):
    body = 'price = { kind = "cost_plus", fee_usd = 0.01 }'
    assert problems_of(load_book, MINI_BOOK + EXTRA_MODEL.format(body=body)) == [
        ("models.Extra.cost", "a cost_plus price needs the provider's cost")
    ]


def test_unknown_provider_of_a_model(load_book):
    text = MINI_BOOK + EXTRA_MODEL.format(body='price = { kind = "fixed", credits = 1 }').replace(
        'provider = "Acme"\nmodality = "image"', 'provider = "Nobody"\nmodality = "image"'
    )
    assert problems_of(load_book, text) == [
        ("models.Extra.provider", "unknown provider 'Nobody'; declared: Acme")
    ]


def test_misspelled_key_is_refused(load_book):
    body = 'price = { kind = "fixed", credits = 1 }\nminimum_credit = 5'
    problems = problems_of(load_book, MINI_BOOK + EXTRA_MODEL.format(body=body))
    assert problems == [("models.Extra.minimum_credit", "Extra inputs are not permitted")]


def test_per_unit_needs_an_explicit_rounding(load_book):
    body = 'options = { count = [1, 2] }\nprice = { kind = "per_unit", per = "count", credits = 3 }'
    problems = problems_of(load_book, MINI_BOOK + EXTRA_MODEL.format(body=body))
    assert problems == [("models.Extra.price.per_unit.rounding", "Field required")]


def test_revisions_must_move_forward_in_time(load_book):
    revision = '\n[[revisions]]\nversion = "v0"\neffective_from = 2025-01-01T00:00:00Z\n'
    problems = problems_of(load_book, MINI_BOOK + revision)
    assert problems == [
        ("revisions[0].effective_from", "must be after 2026-01-01 00:00:00+00:00 (v1)")
    ]


def test_revision_cannot_remove_a_model_that_is_not_there(load_book):
    revision = (
        '\n[[revisions]]\nversion = "v2"\neffective_from = 2027-01-01T00:00:00Z\n'
        'remove_models = ["Nope"]\n'
    )
    assert problems_of(load_book, MINI_BOOK + revision) == [
        ("revisions[0].remove_models", "'Nope' is not a model of the version before")
    ]


def test_effective_date_needs_a_utc_offset(load_book):
    text = MINI_BOOK.replace("2026-01-01T00:00:00Z", "2026-01-01T00:00:00")
    problems = problems_of(load_book, text)
    assert problems[0][0] == "effective_from"
    assert "UTC offset" in problems[0][1]


def test_missing_file(tmp_path):
    with pytest.raises(PriceBookError, match="cannot be read"):
        PriceBook.load(tmp_path / "nope.toml")


def test_every_problem_is_reported_at_once(load_book):
    text = MINI_BOOK.replace("credits = 301", "credits = -1").replace(
        "credits = 101", "credits = -2"
    )
    assert len(problems_of(load_book, text)) == 2


def test_shipped_book_loads_whole():
    book = PriceBook.load()
    assert [v.version for v in book.versions] == ["2026.06", "2026.11"]
