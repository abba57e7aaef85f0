"""Errors (errors.py): one class per rule under LedgerError(CreditsError), each message
saying what to do."""

from __future__ import annotations

import pytest

from credits_core.errors import CreditsError
from credits_core.ledger import errors
from credits_core.ledger.errors import (
    AmountNotInteger,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    InvalidBatch,
    LedgerBusy,
    LedgerError,
)


def test_every_ledger_error_is_a_credits_error():
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, Exception)]
    ledger_errors = [c for c in classes if c.__module__ == errors.__name__]
    assert len(ledger_errors) > 20
    assert all(issubclass(c, LedgerError) and issubclass(c, CreditsError) for c in ledger_errors)


@pytest.mark.parametrize(("required", "available"), [(1100, 500), (3, 0), (2, 1)])
def test_insufficient_credits_is_the_platforms_message(required, available):
    error = InsufficientCredits(required, available)
    shortfall = required - available
    assert str(error) == (
        f"Insufficient credits. You need {required} credits but only have {available}. "
        f"You're {shortfall} credits short."
    )
    assert (error.required, error.available, error.shortfall) == (required, available, shortfall)


def test_bad_amounts_are_value_errors_and_wrong_types_also_type_errors():
    assert issubclass(InvalidAmount, ValueError)
    assert issubclass(AmountNotInteger, TypeError) and issubclass(AmountNotInteger, ValueError)


def test_messages_say_what_to_do():
    assert "use a new key" in str(IdempotencyConflict("k", "reserve", "reserve"))
    busy = LedgerBusy("data/x.duckdb", "python, PID 42", 42, 0)
    assert "PID 42" in str(busy) and "--wait" in str(busy)


def test_a_bad_batch_names_its_first_rows_and_counts_the_rest():
    error = InvalidBatch("grant_many: bad.", [(i, "credits is missing") for i in range(12)])
    assert "row 0: credits is missing" in str(error) and "row 9" in str(error)
    assert "row 10" not in str(error) and "(and 2 more)" in str(error)
    assert error.problems[11] == (11, "credits is missing")
