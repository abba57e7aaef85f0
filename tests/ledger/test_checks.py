"""Input checks (checks.py): what valid input becomes once checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from credits_core.ledger import checks
from credits_core.ledger.errors import InvalidMetadata


def test_whole_numbers_of_any_integer_type_are_credits():
    assert checks.credits(np.int32(7)) == 7 and type(checks.credits(np.int32(7))) is int
    assert checks.credits(-5, signed=True) == -5


def test_times_become_utc():
    local = datetime(2025, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert checks.moment(local, "at") == datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def test_metadata_is_stored_as_canonical_json():
    assert checks.metadata({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert checks.metadata(None) is None


def test_the_model_comes_from_metadata_when_it_is_text():
    assert checks.model_of({"model": "Gen-4 Turbo"}) == "Gen-4 Turbo"
    assert checks.model_of({"model": 7}) is None
    assert checks.model_of({"prompt": "a cat"}) is None
    assert checks.model_of(None) is None


def test_text_beyond_ascii_is_checked_character_by_character():
    assert checks.text_problem("café ☕", "reason") is None
    assert checks.text_problem("plain ascii", "reason") is None
    assert "U+0007" in checks.text_problem("bell\a", "reason")
    assert "U+D800" in checks.text_problem("half \ud800", "reason")
    assert "U+00A0" in checks.text_problem("no\u00a0break", "user_id")
    assert checks.text_problem("two\nlines", "reason") is None  # free text may break lines
    assert checks.text_problem("two\nlines", "user_id") is not None


def test_metadata_with_a_lone_surrogate_is_refused():
    with pytest.raises(InvalidMetadata, match="not valid Unicode"):
        checks.metadata({"prompt": "half \ud800"})
    assert checks.metadata({"prompt": "café"}) == '{"prompt":"caf\\u00e9"}'
    assert checks.metadata({"a": {"b": [1]}}) == '{"a":{"b":[1]}}'


def test_entry_kinds_accept_one_or_many():
    assert checks.entry_kinds("grant") == ["grant"]
    assert checks.entry_kinds(("reserve", "capture")) == ["reserve", "capture"]
    assert checks.entry_kinds(None) is None


def test_ledger_made_ids_are_recognised():
    assert checks.LEDGER_MADE_ID.match("use-12-345")
    assert not checks.LEDGER_MADE_ID.match("gen-12")
