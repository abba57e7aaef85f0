"""Domain values (values.py): small immutable records that survive a JSON round trip."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from credits_core.ledger import Balance, Grant, Reservation
from tests.ledger.support import funded

PLUS_TWO = timezone(timedelta(hours=2))


def test_a_balance_is_a_named_triple():
    balance = Balance(total=500, held=100, available=400)
    assert tuple(balance) == (500, 100, 400)
    assert repr(balance) == "Balance(total=500, held=100, available=400)"


def test_values_are_immutable(ledger):
    funded(ledger)
    hold = ledger.reserve("u_1", 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        hold.status = "captured"


def test_times_are_kept_in_utc():
    grant = Grant("g", "u", "plan", 1, 1, 20, None, datetime(2025, 1, 1, 14, tzinfo=PLUS_TWO), "g")
    assert grant.created_at.tzinfo is UTC and grant.created_at.hour == 12


def test_a_reservation_survives_a_json_round_trip(ledger):
    funded(ledger)
    hold = ledger.reserve("u_1", 10, metadata={"model": "Gen-4 Turbo"})
    assert Reservation.from_dict(hold.to_dict()) == hold
    assert hold.to_dict()["drawn"] == [["grant-1-1", 10]]


def test_a_grant_knows_when_it_is_spendable():
    end = datetime(2025, 1, 2, tzinfo=UTC)
    grant = Grant("g", "u", "promo", 1, 1, 10, end, datetime(2025, 1, 1, tzinfo=UTC), "g")
    assert grant.is_live(end - timedelta(microseconds=1))
    assert not grant.is_live(end)
