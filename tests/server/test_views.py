"""The API's JSON shapes (views.py): times as ISO 8601, read through a cache."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from credits_core.server import views


def test_the_same_instant_in_two_zones_keeps_each_zones_text():
    instant = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    paris = instant.astimezone(ZoneInfo("Europe/Paris"))
    assert instant == paris  # equal, and equal keys to a cache of times alone
    assert views.iso(instant) == "2026-12-07T12:00:00+00:00"
    assert views.iso(paris) == "2026-12-07T13:00:00+01:00"
    assert views.iso(instant) == instant.isoformat()
