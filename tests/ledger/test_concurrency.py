"""The ledger under real concurrency: threads sharing one Ledger on a real DuckDB file,
and a second process that tries to open a file this process holds.

DuckDB gives snapshot isolation, so a check-then-insert reservation double-spends
when two threads race; these tests race them on purpose and check that no credit is
ever spent twice and that every credit is accounted for at the end.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest

from credits_core import InsufficientCredits, Ledger, TransactionClosed


def run_threads(n: int, target) -> list:
    """Run target(i, barrier) in n threads started together; return what each returned
    (or the exception it raised)."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def work(i: int) -> None:
        try:
            results[i] = target(i, barrier)
        except BaseException as exc:  # collected and judged by the test
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results


@pytest.mark.parametrize("attempt", range(5))
def test_ten_racing_reservations_for_the_last_credits_only_one_wins(tmp_path, attempt):
    with Ledger.open(str(tmp_path / "race.duckdb")) as ledger:
        ledger.create_account("u_race", email="race@example.com", plan="free")
        ledger.grant("u_race", 3, kind="topup")

        def reserve(i, barrier):
            barrier.wait()
            return ledger.reserve("u_race", 3, reason="image", idempotency_key=f"job-{i}")

        results = run_threads(10, reserve)

        won = [r for r in results if not isinstance(r, BaseException)]
        lost = [r for r in results if isinstance(r, InsufficientCredits)]
        others = [r for r in results if isinstance(r, BaseException) and r not in lost]
        assert others == [], f"unexpected errors: {others!r}"
        assert len(won) == 1 and len(lost) == 9
        assert won[0].status == "pending"
        for exc in lost:
            assert (exc.required, exc.available, exc.shortfall) == (3, 0, 3)
            assert str(exc) == (
                "Insufficient credits. You need 3 credits but only have 0. You're 3 credits short."
            )
        b = ledger.balance("u_race")
        assert (b.total, b.held, b.available) == (3, 3, 0)
        assert ledger.check_invariants() == []


def test_mixed_concurrent_load_conserves_every_credit(tmp_path):
    users = [f"u_{i}" for i in range(4)]
    per_user = 400
    threads = 8
    ops_per_thread = 40
    with Ledger.open(str(tmp_path / "mixed.duckdb")) as ledger:
        for u in users:
            ledger.create_account(u, email=f"{u}@example.com", plan="pro")
            ledger.grant(u, per_user, kind="plan")

        def work(i, barrier):
            rng = random.Random(i)
            captured: Counter = Counter()
            outcomes: Counter = Counter()
            barrier.wait()
            for _ in range(ops_per_thread):
                user = rng.choice(users)
                credits = rng.randint(1, 40)
                try:
                    r = ledger.reserve(user, credits, reason="video", ttl=timedelta(hours=1))
                except InsufficientCredits:
                    outcomes["insufficient"] += 1
                    continue
                mode = rng.choice(["success", "failure", "partial"])
                if mode == "success":
                    done = ledger.confirm(r.transaction_id, success=True)
                    expected = credits
                elif mode == "failure":
                    done = ledger.confirm(r.transaction_id, success=False)
                    expected = 0
                else:
                    expected = rng.randint(1, credits)
                    done = ledger.confirm(r.transaction_id, success=True, credits=expected)
                assert done.captured == expected
                assert done.captured + done.released == credits
                captured[user] += done.captured
                outcomes[mode] += 1
            return captured, outcomes

        results = run_threads(threads, work)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == [], f"threads failed: {errors!r}"

        captured = sum((c for c, _ in results), Counter())
        outcomes = sum((o for _, o in results), Counter())
        # the load really did exercise every path
        assert outcomes["success"] and outcomes["failure"] and outcomes["partial"]
        for u in users:
            b = ledger.balance(u)
            assert b.held == 0, u
            assert b.total == per_user - captured[u], u
            assert b.available == b.total, u
            # the journal says the same: its captures add up to what the threads saw
            captures = ledger.history(u, kinds=["capture"], limit=None)
            assert -int(captures["credits"].sum()) == captured[u], u
        assert ledger.check_invariants() == []


def test_one_idempotency_key_from_ten_threads_books_one_hold(tmp_path):
    with Ledger.open(str(tmp_path / "key.duckdb")) as ledger:
        ledger.create_account("u_key", email="key@example.com", plan="pro")
        ledger.grant("u_key", 100, kind="plan")

        def reserve(i, barrier):
            barrier.wait()
            return ledger.reserve("u_key", 30, reason="video", idempotency_key="job-42")

        results = run_threads(10, reserve)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == [], f"the same request failed: {errors!r}"
        assert len({r.transaction_id for r in results}) == 1
        b = ledger.balance("u_key")
        assert (b.total, b.held, b.available) == (100, 30, 70)
        reserves = ledger.history("u_key", kinds=["reserve"], limit=None)
        assert len(reserves) == 1
        assert ledger.check_invariants() == []


@pytest.mark.parametrize("attempt", range(3))
def test_racing_capture_release_and_sweeper_resolve_each_hold_once(tmp_path, attempt):
    holds_n = 6
    rng = random.Random(attempt)
    # the sweeper starts at once; each confirmation a little later or not, so that
    # some holds are won by the sweeper, others by a capture or a release
    delays = [rng.uniform(0, 0.08) for _ in range(2 * holds_n)]
    with Ledger.open(str(tmp_path / "resolve.duckdb")) as ledger:
        ledger.create_account("u_res", email="res@example.com", plan="pro")
        ledger.grant("u_res", 1_000, kind="plan")
        tids = [
            ledger.reserve("u_res", 10 * (i + 1), reason="music").transaction_id
            for i in range(holds_n)
        ]
        later = ledger.now() + timedelta(days=1)  # every hold has lapsed by then

        def work(i, barrier):
            barrier.wait()
            if i == 2 * holds_n:
                return ledger.expire_holds(now=later)
            time.sleep(delays[i])
            tid = tids[i // 2]
            return ledger.confirm(tid, success=i % 2 == 0)

        results = run_threads(2 * holds_n + 1, work)
        sweep = results[-1]
        assert not isinstance(sweep, BaseException), sweep
        spent = 0
        for k, tid in enumerate(tids):
            final = ledger.reservation(tid)
            assert final.status in ("captured", "released", "expired")
            capture, release = results[2 * k], results[2 * k + 1]
            for call, outcome in ((capture, "captured"), (release, "released")):
                if isinstance(call, BaseException):
                    assert isinstance(call, TransactionClosed), call
                else:
                    # a confirmation that succeeded is the one that resolved the hold
                    assert call.status == outcome == final.status, (tid, call, final)
            assert (final.status == "expired") == (tid in sweep.ids)
            if final.status == "captured":
                spent += final.credits
        b = ledger.balance("u_res")
        assert (b.total, b.held, b.available) == (1_000 - spent, 0, 1_000 - spent)
        entries = ledger.history("u_res", kinds=["capture", "release", "expire"], limit=None)
        assert sorted(entries["transaction_id"]) == sorted(tids)  # one resolution each
        assert ledger.check_invariants() == []


CHILD = textwrap.dedent(
    """
    import sys
    from credits_core import Ledger, LedgerBusy
    try:
        Ledger.open(sys.argv[1])
    except LedgerBusy as exc:
        print(f"BUSY:{exc.pid}:{exc}")
        sys.exit(3)
    print("OPENED")
    """
)


def test_second_process_gets_ledger_busy_naming_the_holder(tmp_path):
    path = str(tmp_path / "busy.duckdb")
    with Ledger.open(path) as ledger:
        ledger.create_account("u_1", email="one@example.com", plan="free")
        ledger.grant("u_1", 500, kind="plan")
        r = ledger.reserve("u_1", 120, reason="music")
        ledger.confirm(r.transaction_id, success=True)

        proc = subprocess.run(
            [sys.executable, "-c", CHILD, path],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
        assert proc.stdout.startswith("BUSY:")
        assert proc.stdout.startswith(f"BUSY:{os.getpid()}:"), proc.stdout
        assert f"PID {os.getpid()}" in proc.stdout, proc.stdout
        assert "Traceback" not in proc.stderr

        # the holder is unaffected
        b = ledger.balance("u_1")
        assert (b.total, b.held, b.available) == (380, 0, 380)

    # the file is intact afterwards
    with Ledger.open(path) as ledger:
        b = ledger.balance("u_1")
        assert (b.total, b.held, b.available) == (380, 0, 380)
        assert ledger.check_invariants() == []
