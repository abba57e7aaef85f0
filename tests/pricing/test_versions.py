"""Several versions coexist; a quote uses the one in force at its time."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from credits_core.pricing import NoPriceBookInForce, UnknownModel
from tests.pricing.conftest import MINI_BOOK

RAISE_IN_JUNE = """
[[revisions]]
version = "v2"
effective_from = 2026-06-01T00:00:00Z
note = "1080P gets dearer"

[revisions.models.Clip]
provider = "Acme"
modality = "video"
options = { resolution = ["720P", "1080P"], duration = [5, 10] }
exclude = [{ resolution = "1080P", duration = 10 }]

[revisions.models.Clip.price]
kind = "table"
rows = [
  { resolution = "720P", duration = 5, credits = 101 },
  { resolution = "720P", duration = 10, credits = 201 },
  { resolution = "1080P", duration = 5, credits = 350 },
]
"""


def test_quote_uses_the_version_in_force(load_book):
    book = load_book(MINI_BOOK + RAISE_IN_JUNE)
    before = book.quote("Clip", resolution="1080P", duration=5, at="2026-05-31T23:59:59Z")
    after = book.quote("Clip", resolution="1080P", duration=5, at="2026-06-01T00:00:00Z")
    assert (before.credits, before.price_book_version) == (301, "v1")
    assert (after.credits, after.price_book_version) == (350, "v2")


def test_a_scheduled_version_is_not_used_before_it_starts(load_book):
    book = load_book(MINI_BOOK + RAISE_IN_JUNE.replace("2026-06-01", "2099-01-01"))
    assert book.quote("Clip", resolution="1080P", duration=5).credits == 301


def test_no_version_in_force_before_the_first(load_book):
    book = load_book(MINI_BOOK)
    with pytest.raises(NoPriceBookInForce, match="earliest takes effect"):
        book.quote("Clip", resolution="720P", duration=5, at=datetime(2025, 12, 31, tzinfo=UTC))


def test_times_may_be_dates_naive_utc_or_iso_strings(load_book):
    book = load_book(MINI_BOOK + RAISE_IN_JUNE)
    for at in (date(2026, 6, 1), datetime(2026, 6, 1), "2026-06-01T02:00:00+02:00"):
        assert book.quote("Clip", resolution="1080P", duration=5, at=at).price_book_version == "v2"


def test_shipped_google_models_exist_only_from_november(book):
    with pytest.raises(UnknownModel):
        book.quote("Veo 3", duration=4, audio=True, at="2026-10-31T23:59:59Z")
    assert book.quote("Veo 3", duration=4, audio=True, at="2026-11-01T00:00:00Z").credits == 3320


def test_revision_keeps_what_it_does_not_change(book):
    june, november = book.versions
    assert june.models["MiniMax-Hailuo-02"] == november.models["MiniMax-Hailuo-02"]
    assert june.plans == november.plans
    assert november.note != june.note
