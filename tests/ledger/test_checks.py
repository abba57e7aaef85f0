"""Input checks (checks.py): what valid input becomes once checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np

from credits_core.ledger import checks


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
    assert checks.model_of('{"model": "Gen-4 Turbo"}') == "Gen-4 Turbo"
    assert checks.model_of('{"model": 7}') is None
    assert checks.model_of(None) is None


def test_entry_kinds_accept_one_or_many():
    assert checks.entry_kinds("grant") == ["grant"]
    assert checks.entry_kinds(("reserve", "capture")) == ["reserve", "capture"]
    assert checks.entry_kinds(None) is None


def test_ledger_made_ids_are_recognised():
    assert checks.LEDGER_MADE_ID.match("use-12-345")
    assert not checks.LEDGER_MADE_ID.match("gen-12")
