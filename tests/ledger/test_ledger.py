"""The Ledger facade (ledger.py): lifecycle, clock, and sharing one Ledger between threads."""

from __future__ import annotations

import threading

from credits_core.ledger import Ledger
from tests.ledger.support import START, funded


def test_a_ledger_is_a_context_manager(db_path):
    with Ledger.open(db_path) as ledger:
        ledger.create_account("u_1")
    assert ledger._store.closed
    with Ledger.open(db_path) as again:
        assert again.account("u_1").user_id == "u_1"


def test_the_clock_dates_every_entry(ledger, clock):
    funded(ledger)
    clock.advance(days=3)
    ledger.reserve("u_1", 5)
    assert ledger.now() == clock.now
    assert list(ledger.history("u_1")["ts"].dt.to_pydatetime()) == [clock.now, START]


def test_create_account_is_idempotent_by_its_details(ledger):
    first = ledger.create_account("u_1", email="a@example.com", plan="pro")
    assert ledger.create_account("u_1", email="a@example.com", plan="pro") == first


def test_one_ledger_serves_many_threads(db_path):
    with Ledger.open(db_path) as ledger:
        funded(ledger, credits=10_000)
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(10):
                    hold = ledger.reserve("u_1", 7)
                    ledger.confirm(hold.transaction_id, success=True, credits=5)
            except BaseException as error:  # judged below
                errors.append(error)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert tuple(ledger.balance("u_1")) == (10_000 - 4 * 10 * 5, 0, 10_000 - 200)
        assert ledger.check_invariants() == []
