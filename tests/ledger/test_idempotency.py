"""Idempotency keys (idempotency.py): the same key and request returns the first result and
writes nothing; a different request under the key raises IdempotencyConflict."""

from __future__ import annotations

import threading
from datetime import timedelta

import pandas as pd
import pytest

from credits_core.ledger import IdempotencyConflict, Ledger
from tests.ledger.support import funded, sql, unchanged


def usage(credits: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u_1"],
            "credits": [credits],
            "ts": pd.to_datetime(["2025-01-01T11:00:00Z"]),
            "success": [True],
        }
    )


CALLS = {
    "create_account": (
        lambda ledger: ledger.create_account("u_9", email="n@x.io", idempotency_key="k"),
        lambda ledger: ledger.create_account("u_8", email="n@x.io", idempotency_key="k"),
    ),
    "grant": (
        lambda ledger: ledger.grant("u_1", 100, kind="promo", idempotency_key="k"),
        lambda ledger: ledger.grant("u_1", 101, kind="promo", idempotency_key="k"),
    ),
    "reserve": (
        lambda ledger: ledger.reserve("u_1", 100, idempotency_key="k"),
        lambda ledger: ledger.reserve("u_1", 100, reason="other", idempotency_key="k"),
    ),
    "adjust": (
        lambda ledger: ledger.adjust("u_1", -5, reason="r", actor="a", idempotency_key="k"),
        lambda ledger: ledger.adjust("u_1", -6, reason="r", actor="a", idempotency_key="k"),
    ),
    "grant_many": (
        lambda ledger: ledger.grant_many(
            pd.DataFrame({"user_id": ["u_1"], "credits": [5], "kind": ["promo"]}),
            idempotency_key="k",
        ),
        lambda ledger: ledger.grant_many(
            pd.DataFrame({"user_id": ["u_1"], "credits": [6], "kind": ["promo"]}),
            idempotency_key="k",
        ),
    ),
    "apply_usage": (
        lambda ledger: ledger.apply_usage(usage(10), idempotency_key="k"),
        lambda ledger: ledger.apply_usage(usage(11), idempotency_key="k"),
    ),
}


def same_result(first, again) -> bool:
    if isinstance(first, pd.DataFrame):
        return first.equals(again)
    return first == again


@pytest.mark.parametrize("operation", CALLS)
def test_same_key_same_request_returns_the_first_result_and_writes_nothing(
    ledger, clock, operation
):
    funded(ledger)
    same, _ = CALLS[operation]
    first = same(ledger)
    clock.advance(minutes=1)  # even later, the answer is the first one
    with unchanged(ledger):
        assert same_result(first, same(ledger))


@pytest.mark.parametrize("operation", CALLS)
def test_same_key_different_request_raises_and_writes_nothing(ledger, operation):
    funded(ledger)
    same, different = CALLS[operation]
    same(ledger)
    with unchanged(ledger), pytest.raises(IdempotencyConflict, match="already used"):
        different(ledger)


def test_a_key_is_bound_to_its_operation(ledger):
    funded(ledger)
    ledger.grant("u_1", 100, kind="promo", idempotency_key="job-1")
    with (
        unchanged(ledger),
        pytest.raises(IdempotencyConflict, match="a grant request, not reserve"),
    ):
        ledger.reserve("u_1", 100, idempotency_key="job-1")


def test_a_replayed_reservation_is_the_first_one_even_after_it_was_captured(ledger):
    funded(ledger)
    first = ledger.reserve("u_1", 100, idempotency_key="job-42")
    ledger.confirm(first.transaction_id, success=True)
    again = ledger.reserve("u_1", 100, idempotency_key="job-42")
    assert again == first and again.status == "pending"
    assert tuple(ledger.balance("u_1")) == (400, 0, 400)


def test_keyed_confirm_and_extend_replay(ledger, clock):
    funded(ledger)
    hold = ledger.reserve("u_1", 100)
    extended = ledger.extend(hold.transaction_id, timedelta(minutes=30), idempotency_key="e")
    clock.advance(minutes=1)
    with unchanged(ledger):
        assert ledger.extend(hold.transaction_id, timedelta(minutes=30), idempotency_key="e") == (
            extended
        )
    done = ledger.confirm(hold.transaction_id, success=True, idempotency_key="c")
    with unchanged(ledger):
        assert ledger.confirm(hold.transaction_id, success=True, idempotency_key="c") == done
    with pytest.raises(IdempotencyConflict):
        ledger.confirm(hold.transaction_id, success=False, idempotency_key="c")


def test_a_failed_request_does_not_use_up_its_key(ledger):
    funded(ledger, credits=50)
    with pytest.raises(Exception, match="Insufficient"):
        ledger.reserve("u_1", 100, idempotency_key="job-7")
    ledger.grant("u_1", 100, kind="topup")
    assert ledger.reserve("u_1", 100, idempotency_key="job-7").status == "pending"


def test_racing_threads_with_one_key_write_once(db_path):
    with Ledger.open(db_path) as ledger:
        funded(ledger, credits=1000)
        results = []
        barrier = threading.Barrier(6)

        def work() -> None:
            barrier.wait()
            results.append(ledger.reserve("u_1", 100, idempotency_key="job-1"))

        threads = [threading.Thread(target=work) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({r.transaction_id for r in results}) == 1
        assert tuple(ledger.balance("u_1")) == (1000, 100, 900)
        assert sql(ledger, "SELECT count(*) FROM holds") == [(1,)]
