"""Bad input: every kind gets its typed error with a message that says what to do, and
the ledger (journal, balances, grants, holds, keys) is left exactly as it was."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from credits_core.errors import CreditsError
from credits_core.ledger import (
    AccountExists,
    AmountNotInteger,
    HoldExpired,
    InvalidAmount,
    InvalidArgument,
    InvalidKind,
    InvalidMetadata,
    InvalidTimestamp,
    InvalidTTL,
    InvalidUserId,
    Ledger,
    LedgerError,
    NotALedger,
    TransactionClosed,
    UnknownAccount,
    UnknownTransaction,
)
from credits_core.ledger.checks import MAX_CREDITS
from tests.ledger.support import funded, unchanged

NAIVE = datetime(2030, 1, 1)

CASES = [
    # amounts
    ("grant 0", lambda lg, h: lg.grant("u_1", 0, kind="plan"), InvalidAmount, "must not be 0"),
    ("grant negative", lambda lg, h: lg.grant("u_1", -5, kind="plan"), InvalidAmount, "positive"),
    ("grant float", lambda lg, h: lg.grant("u_1", 1.5, kind="plan"), AmountNotInteger, "whole"),
    (
        "grant whole float",
        lambda lg, h: lg.grant("u_1", 100.0, kind="plan"),
        AmountNotInteger,
        "int",
    ),
    ("grant bool", lambda lg, h: lg.grant("u_1", True, kind="plan"), AmountNotInteger, "bool"),
    ("grant str", lambda lg, h: lg.grant("u_1", "100", kind="plan"), AmountNotInteger, "str"),
    (
        "grant Decimal",
        lambda lg, h: lg.grant("u_1", Decimal(5), kind="plan"),
        AmountNotInteger,
        "int",
    ),
    ("grant huge", lambda lg, h: lg.grant("u_1", 10**12, kind="plan"), InvalidAmount, "limit"),
    ("reserve 0", lambda lg, h: lg.reserve("u_1", 0), InvalidAmount, "must not be 0"),
    ("reserve negative", lambda lg, h: lg.reserve("u_1", -1), InvalidAmount, "positive"),
    ("reserve float", lambda lg, h: lg.reserve("u_1", 2.5), AmountNotInteger, "whole"),
    ("reserve none", lambda lg, h: lg.reserve("u_1"), InvalidAmount, "needs credits"),
    ("reserve huge", lambda lg, h: lg.reserve("u_1", MAX_CREDITS + 1), InvalidAmount, "limit"),
    ("validate bool", lambda lg, h: lg.validate("u_1", False), AmountNotInteger, "bool"),
    ("adjust 0", lambda lg, h: lg.adjust("u_1", 0, reason="r", actor="a"), InvalidAmount, "0"),
    (
        "adjust float",
        lambda lg, h: lg.adjust("u_1", -2.0, reason="r", actor="a"),
        AmountNotInteger,
        "int",
    ),
    ("capture 0", lambda lg, h: lg.confirm(h, success=True, credits=0), InvalidAmount, "0"),
    (
        "capture str",
        lambda lg, h: lg.confirm(h, success=True, credits="5"),
        AmountNotInteger,
        "str",
    ),
    # users
    (
        "unknown user grant",
        lambda lg, h: lg.grant("u_404", 5, kind="plan"),
        UnknownAccount,
        "create",
    ),
    ("unknown user reserve", lambda lg, h: lg.reserve("u_404", 5), UnknownAccount, "u_404"),
    (
        "unknown user adjust",
        lambda lg, h: lg.adjust("u_404", 5, reason="r", actor="a"),
        UnknownAccount,
        "u_404",
    ),
    ("unknown user balance", lambda lg, h: lg.balance("u_404"), UnknownAccount, "u_404"),
    ("empty user id", lambda lg, h: lg.reserve("", 5), InvalidUserId, "1-200 characters"),
    ("padded user id", lambda lg, h: lg.grant(" u_1", 5, kind="plan"), InvalidUserId, "spaces"),
    ("numeric user id", lambda lg, h: lg.create_account(123), InvalidUserId, "string"),
    (
        "account exists",
        lambda lg, h: lg.create_account("u_1", email="b@x.io"),
        AccountExists,
        "never overwritten",
    ),
    # transactions
    (
        "unknown transaction",
        lambda lg, h: lg.confirm("hold-7-7", success=True),
        UnknownTransaction,
        "reserve() returned",
    ),
    (
        "unknown refund",
        lambda lg, h: lg.refund("nope", reason="r", actor="a"),
        UnknownTransaction,
        "nope",
    ),
    (
        "blank transaction",
        lambda lg, h: lg.confirm("", success=True),
        InvalidArgument,
        "transaction id",
    ),
    (
        "success not bool",
        lambda lg, h: lg.confirm(h, success="yes"),
        InvalidArgument,
        "True or False",
    ),
    (
        "credits on release",
        lambda lg, h: lg.confirm(h, success=False, credits=5),
        InvalidArgument,
        "capture only",
    ),
    # metadata
    (
        "metadata list",
        lambda lg, h: lg.reserve("u_1", 5, metadata=[1]),
        InvalidMetadata,
        "must be a dict",
    ),
    (
        "metadata str",
        lambda lg, h: lg.reserve("u_1", 5, metadata="{}"),
        InvalidMetadata,
        "must be a dict",
    ),
    (
        "metadata int keys",
        lambda lg, h: lg.reserve("u_1", 5, metadata={1: 2}),
        InvalidMetadata,
        "keys must be strings",
    ),
    (
        "metadata set",
        lambda lg, h: lg.reserve("u_1", 5, metadata={"a": {1}}),
        InvalidMetadata,
        "JSON values",
    ),
    (
        "metadata object",
        lambda lg, h: lg.reserve("u_1", 5, metadata={"a": object()}),
        InvalidMetadata,
        "JSON",
    ),
    (
        "metadata nan",
        lambda lg, h: lg.reserve("u_1", 5, metadata={"a": float("nan")}),
        InvalidMetadata,
        "JSON",
    ),
    (
        "metadata huge",
        lambda lg, h: lg.reserve("u_1", 5, metadata={"a": "x" * 20_000}),
        InvalidMetadata,
        "limit",
    ),
    # grants
    (
        "unknown kind",
        lambda lg, h: lg.grant("u_1", 5, kind="gift"),
        InvalidKind,
        "plan, topup, promo",
    ),
    (
        "priority negative",
        lambda lg, h: lg.grant("u_1", 5, kind="plan", priority=-1),
        InvalidArgument,
        "priority",
    ),
    (
        "priority float",
        lambda lg, h: lg.grant("u_1", 5, kind="plan", priority=1.5),
        InvalidArgument,
        "priority",
    ),
    (
        "naive expiry",
        lambda lg, h: lg.grant("u_1", 5, kind="plan", expires_at=NAIVE),
        InvalidTimestamp,
        "no time zone",
    ),
    (
        "text expiry",
        lambda lg, h: lg.grant("u_1", 5, kind="plan", expires_at="2030-01-01"),
        InvalidTimestamp,
        "datetime",
    ),
    # holds
    (
        "ttl zero",
        lambda lg, h: lg.reserve("u_1", 5, ttl=timedelta(0)),
        InvalidTTL,
        "positive timedelta",
    ),
    ("ttl seconds", lambda lg, h: lg.reserve("u_1", 5, ttl=60), InvalidTTL, "timedelta"),
    (
        "ttl too long",
        lambda lg, h: lg.reserve("u_1", 5, ttl=timedelta(days=30)),
        InvalidTTL,
        "extend",
    ),
    ("extend negative", lambda lg, h: lg.extend(h, timedelta(minutes=-1)), InvalidTTL, "positive"),
    # corrections and keys
    (
        "adjust without reason",
        lambda lg, h: lg.adjust("u_1", 5, reason="", actor="a"),
        InvalidArgument,
        "reason is required",
    ),
    (
        "adjust without actor",
        lambda lg, h: lg.adjust("u_1", 5, reason="r", actor=None),
        InvalidArgument,
        "actor is required",
    ),
    (
        "blank key",
        lambda lg, h: lg.reserve("u_1", 5, idempotency_key=""),
        InvalidArgument,
        "job id",
    ),
    (
        "numeric key",
        lambda lg, h: lg.grant("u_1", 5, kind="plan", idempotency_key=7),
        InvalidArgument,
        "string",
    ),
    # reads
    ("naive since", lambda lg, h: lg.history("u_1", since=NAIVE), InvalidTimestamp, "aware"),
    ("zero limit", lambda lg, h: lg.history("u_1", limit=0), InvalidArgument, "positive int"),
    ("negative offset", lambda lg, h: lg.history("u_1", offset=-1), InvalidArgument, ">= 0"),
    ("empty search", lambda lg, h: lg.find_accounts("  "), InvalidArgument, "text is required"),
    ("naive sweep", lambda lg, h: lg.expire_holds(now=NAIVE), InvalidTimestamp, "time zone"),
]


@pytest.mark.parametrize(("name", "call", "error", "hint"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_with_a_typed_error_and_writes_nothing(
    ledger, name, call, error, hint
):
    funded(ledger, credits=500)
    hold = ledger.reserve("u_1", 100).transaction_id
    with unchanged(ledger), pytest.raises(error) as info:
        call(ledger, hold)
    assert hint in str(info.value)
    assert isinstance(info.value, LedgerError) and isinstance(info.value, CreditsError)


@pytest.mark.parametrize("bad", [0, -3, 1.0, True, "7", 10**10])
def test_bad_amounts_are_value_or_type_errors(ledger, bad):
    funded(ledger)
    with pytest.raises((ValueError, TypeError)):
        ledger.reserve("u_1", bad)


@pytest.mark.parametrize("bad", [1.0, True, "7", None])
def test_amounts_of_the_wrong_type_are_type_errors(ledger, bad):
    funded(ledger)
    with pytest.raises(TypeError):
        ledger.grant("u_1", bad, kind="plan")


def test_numpy_integers_are_whole_credits(ledger):
    funded(ledger)
    assert ledger.reserve("u_1", np.int64(5)).credits == 5


def test_closed_and_expired_holds_are_refused_and_write_nothing(ledger, clock):
    funded(ledger)
    closed = ledger.reserve("u_1", 10)
    ledger.confirm(closed.transaction_id, success=False)
    lapsing = ledger.reserve("u_1", 10, ttl=timedelta(minutes=1))
    clock.advance(minutes=1)
    with unchanged(ledger):
        with pytest.raises(TransactionClosed, match="reserve again"):
            ledger.confirm(closed.transaction_id, success=True)
        with pytest.raises(HoldExpired, match="extend"):
            ledger.confirm(lapsing.transaction_id, success=True)


def test_a_file_that_is_not_a_ledger_is_refused_untouched(tmp_path):
    path = tmp_path / "photo.duckdb"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(4096))
    with pytest.raises(NotALedger, match="new file name to create one"):
        Ledger.open(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
