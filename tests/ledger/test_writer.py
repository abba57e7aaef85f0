"""The writer (writer.py): many callers' writes decided in memory and committed together.

Real threads on a real file: the same calls made at once must leave the same ledger as
made one at a time, nothing acknowledged may be lost, and a failed commit fails exactly
the callers of its batch.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from credits_core.ledger import Ledger, LedgerClosed, WriteFailed, WriterBusy, commands
from credits_core.ledger import writer as writer_module
from tests.ledger.support import FakeClock, funded, sql, state, unchanged


def run_threads(count: int, work) -> list:
    """Run work(i) on `count` threads started together; return what each returned."""
    start = threading.Barrier(count)

    def go(i: int):
        start.wait()
        return work(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(go, range(count)))


def test_sixteen_threads_open_320_accounts_at_once(db_path, clock):
    with Ledger.open(db_path, clock=clock) as ledger:

        def sign_up(thread: int) -> int:
            for n in range(20):
                user = f"u_{thread:02d}_{n:02d}"
                ledger.create_account(user, email=f"{user}@example.com", plan="free")
                ledger.grant(user, 100, kind="plan")
            return 20

        assert sum(run_threads(16, sign_up)) == 320
        rows = sql(ledger, "SELECT count(*), count(DISTINCT account_no), sum(total) FROM accounts")
        assert rows == [(320, 320, 32_000)]
        assert ledger.balance("u_15_19") == (100, 0, 100)
        assert ledger.check_invariants() == []


def test_eight_threads_grant_adjust_and_refund_one_user_and_all_600_succeed(db_path, clock):
    with Ledger.open(db_path, clock=clock) as ledger:
        funded(ledger, credits=10_000)
        captured = []
        for _ in range(8 * 25):
            hold = ledger.reserve("u_1", 7)
            captured.append(ledger.confirm(hold.transaction_id, success=True).transaction_id)
        before = ledger.balance("u_1").total

        def support(thread: int) -> int:
            done = 0
            for n in range(25):
                ledger.grant("u_1", 3, kind="promo", reason=f"t{thread}")
                done += 1
                ledger.adjust("u_1", 2, reason="goodwill", actor=f"agent{thread}")
                done += 1
                ledger.refund(captured[thread * 25 + n], reason="failed render", actor="ops")
                done += 1
            return done

        assert sum(run_threads(8, support)) == 600
        assert ledger.balance("u_1").total == before + 200 * (3 + 2 + 7)
        assert ledger.check_invariants() == []


def operations(seed: int, users: list[str]) -> list[tuple]:
    """A thread's calls: grants and holds that always fit, some captured in part, some
    released, some left pending."""
    rng = random.Random(seed)
    calls = []
    for _ in range(5):
        user = rng.choice(users)
        calls.append(("grant", user, rng.randint(50, 200)))
        outcome = rng.choice(["all", "part", "none", "open"])
        calls.append(("hold", user, rng.randint(1, 40), outcome))
    return calls


def play(ledger: Ledger, calls: list[tuple]) -> None:
    for call in calls:
        if call[0] == "grant":
            ledger.grant(call[1], call[2], kind="topup")
            continue
        _, user, credits, outcome = call
        hold = ledger.reserve(user, credits)
        if outcome == "all":
            ledger.confirm(hold.transaction_id, success=True)
        elif outcome == "part":
            ledger.confirm(hold.transaction_id, success=True, credits=max(1, credits // 2))
        elif outcome == "none":
            ledger.confirm(hold.transaction_id, success=False)


def test_calls_made_at_once_leave_the_ledger_they_leave_made_one_at_a_time(tmp_path, clock):
    users = [f"u_{i}" for i in range(6)]
    plans = [operations(seed, users) for seed in range(32)]
    balances = []
    for name, concurrent in (("one_at_a_time", False), ("at_once", True)):
        with Ledger.open(str(tmp_path / f"{name}.duckdb"), clock=clock) as ledger:
            for user in users:
                funded(ledger, user, credits=40 * 32 * 5)  # every hold fits before any grant
            if concurrent:
                run_threads(32, lambda i, ledger=ledger: play(ledger, plans[i]))
                assert max(ledger.writer.batch_sizes) > 1  # the writer did batch them
            else:
                for calls in plans:
                    play(ledger, calls)
            balances.append({user: tuple(ledger.balance(user)) for user in users})
            assert ledger.check_invariants() == []
    assert balances[0] == balances[1]


def test_two_ledgers_on_one_file_share_the_writer_and_lose_no_update(db_path, clock):
    with Ledger.open(db_path, clock=clock) as first, Ledger.open(db_path, clock=clock) as second:
        assert first.writer is second.writer
        first.create_account("u_1")

        def grant(i: int) -> None:
            ledger = first if i % 2 else second
            for _ in range(25):
                ledger.grant("u_1", 1, kind="topup")
                ledger.adjust("u_1", 1, reason="both", actor="ops")

        run_threads(8, grant)
        assert first.balance("u_1") == second.balance("u_1") == (400, 0, 400)
        assert first.check_invariants() == []


def test_a_failed_commit_fails_every_caller_of_its_batch_and_writes_nothing(ledger):
    funded(ledger, credits=1_000)
    writer = ledger.writer
    release = threading.Event()
    waiting = threading.Event()

    def hold_then_break(cur) -> None:
        waiting.set()
        release.wait(10)
        cur.execute("SELECT * FROM no_such_table")  # a real DuckDB error inside the batch

    with unchanged(ledger):
        writer.before_commit = hold_then_break
        first = ledger.submit("reserve", "u_1", 10)
        assert waiting.wait(10)
        queued = [ledger.submit("reserve", "u_1", 10 + n) for n in range(5)]  # next batch
        writer.before_commit = lambda cur: cur.execute("SELECT * FROM no_such_table")
        release.set()
        with pytest.raises(WriteFailed, match=r"batch of 1 write\(s\)"):
            first.result(10)
        errors = [f.exception(10) for f in queued]
        assert all(isinstance(e, WriteFailed) for e in errors)
        assert {str(e) for e in errors} == {str(errors[0])}  # one error for the whole batch
        assert "batch of 5 write(s)" in str(errors[0])
    writer.before_commit = None
    hold = ledger.reserve("u_1", 10)  # the writer reloaded its state and goes on
    assert hold.transaction_id == "hold-1-2"
    assert tuple(ledger.balance("u_1")) == (1_000, 10, 990)
    assert ledger.check_invariants() == []


def test_a_rule_broken_in_a_batch_fails_alone(ledger):
    funded(ledger, credits=100)
    writer = ledger.writer
    release = threading.Event()
    writer.before_commit = lambda cur: release.wait(10)
    blocker = ledger.submit("grant", "u_1", 1, "topup")
    futures = [ledger.submit("reserve", "u_1", 60) for _ in range(3)]
    release.set()
    blocker.result(10)
    outcomes = [f.exception(10) for f in futures]
    writer.before_commit = None
    assert [type(o).__name__ for o in outcomes].count("NoneType") == 1
    refused = [o for o in outcomes if o is not None]
    assert {str(o) for o in refused} == {
        "Insufficient credits. You need 60 credits but only have 41. You're 19 credits short."
    }
    assert tuple(ledger.balance("u_1")) == (101, 60, 41)


def test_a_full_queue_refuses_with_ledger_busy_and_the_queued_writes_still_commit(
    db_path, clock, monkeypatch
):
    monkeypatch.setattr(writer_module, "QUEUE_COMMANDS", 4)
    monkeypatch.setattr(writer_module, "PUT_TIMEOUT_S", 0.05)
    with Ledger.open(db_path, clock=clock) as ledger:
        funded(ledger, credits=100)
        release = threading.Event()
        ledger.writer.before_commit = lambda cur: release.wait(10)
        futures = [ledger.submit("grant", "u_1", 1, "topup")]
        with pytest.raises(WriterBusy, match="overloaded") as busy:
            for _ in range(20):
                futures.append(ledger.submit("grant", "u_1", 1, "topup"))
        assert "nothing was written" in str(busy.value)
        release.set()
        assert all(f.result(10).credits == 1 for f in futures)
        ledger.writer.before_commit = None
        assert ledger.balance("u_1").total == 100 + len(futures)


def test_a_slow_listener_never_delays_a_write(ledger):
    funded(ledger, credits=100)
    listening = threading.Event()
    go_on = threading.Event()
    heard = []

    def slow(users) -> None:
        listening.set()
        go_on.wait(10)
        heard.append(users)

    ledger.on_balance_change(slow)
    ledger.grant("u_1", 5, kind="topup")
    assert listening.wait(10)
    for _ in range(5):  # the listener is stuck, the writes are not
        ledger.adjust("u_1", 1, reason="while it listens", actor="ops")
    assert ledger.balance("u_1").total == 110
    assert heard == []
    go_on.set()
    assert ledger.wait_for_listeners(10)
    assert heard and all(users == frozenset({"u_1"}) for users in heard)


def test_closing_commits_what_is_queued(db_path, clock):
    ledger = Ledger.open(db_path, clock=clock)
    funded(ledger, credits=100)
    futures = [ledger.submit("adjust", "u_1", 1, "queued", "ops") for _ in range(50)]
    ledger.close()
    assert all(f.done() and f.exception() is None for f in futures)
    with pytest.raises(LedgerClosed):
        ledger.submit("adjust", "u_1", 1, "late", "ops")
    with Ledger.open(db_path, clock=clock) as again:
        assert again.balance("u_1").total == 150
        assert again.check_invariants() == []


def test_a_write_queued_behind_the_stop_is_refused_not_left_waiting(db_path, clock):
    """A call that checked the ledger was open just before close() queued its stop, and
    then queued its write behind it: the writer refuses it with LedgerClosed instead of
    leaving its caller waiting for an answer that never comes."""
    ledger = Ledger.open(db_path, clock=clock)
    funded(ledger, credits=100)
    late = commands.build("adjust", clock(), "u_1", 1, "raced close()", "ops")
    ledger.writer._inbox.put_many([writer_module._STOP, late], timeout_s=1)
    assert isinstance(late.future.exception(10), LedgerClosed)
    ledger.close()
    with Ledger.open(db_path, clock=clock) as again:
        assert again.balance("u_1").total == 100  # nothing of it was written


def test_submit_checks_its_arguments_at_once(ledger):
    funded(ledger)
    with unchanged(ledger), pytest.raises(ValueError, match="credits"):
        ledger.submit("reserve", "u_1", 0)
    with pytest.raises(ValueError, match="not a ledger write"):
        ledger.submit("drop_everything", "u_1")


def test_submit_many_queues_every_call_at_one_instant(db_path, clock: FakeClock):
    """A batch of requests is one moment: the clock is read once, however long the calls
    take to check; a call that breaks a rule gets its error in its place and the others
    are written."""
    with Ledger.open(db_path, clock=lambda: clock.advance(seconds=1)) as ledger:
        funded(ledger, credits=100)
        queued = ledger.submit_many([
            ("reserve", ("u_1", 30), {}),
            ("reserve", ("u_1", 0), {}),  # bad input: refused before it is queued
            ("reserve", ("u_1", 80), {}),  # more than is left: refused by the writer
            ("reserve", ("u_1", 70), {"reason": "fits"}),
        ])  # fmt: skip
        assert isinstance(queued[1], ValueError) and "credits" in str(queued[1])
        first, short, last = (queued[0].result(), queued[2].exception(), queued[3].result())
        assert short is not None and "You need 80 credits but only have 70" in str(short)
        assert first.created_at == last.created_at
        assert (last.reason, ledger.balance("u_1").available) == ("fits", 0)
        assert ledger.check_invariants() == []


def test_submit_many_is_decided_in_one_batch(db_path, clock):
    """The calls of one request are queued together, so the writer decides them in one
    batch (one synced log write): it is not woken by the first of them while the rest
    are still being checked."""
    with Ledger.open(db_path, clock=clock) as ledger:
        funded(ledger, credits=10_000)
        batches_before = len(ledger.writer.batch_sizes)
        queued = ledger.submit_many([("reserve", ("u_1", 1), {}) for _ in range(2_000)])
        assert [f.result(10).credits for f in queued] == [1] * 2_000
        assert list(ledger.writer.batch_sizes)[batches_before:] == [2_000]
        assert ledger.balance("u_1").held == 2_000


def test_a_submit_many_without_room_is_refused_whole(db_path, clock, monkeypatch):
    """A request whose calls do not all fit in the queue gets WriterBusy in every place
    and writes nothing; what was queued before it commits."""
    monkeypatch.setattr(writer_module, "QUEUE_COMMANDS", 8)
    monkeypatch.setattr(writer_module, "PUT_TIMEOUT_S", 0.05)
    with Ledger.open(db_path, clock=clock) as ledger:
        funded(ledger, credits=100)
        inside, release = threading.Event(), threading.Event()
        ledger.writer.before_commit = lambda cur: inside.set() or release.wait(10)
        holding = ledger.submit("grant", "u_1", 1, "topup")
        assert inside.wait(10)  # the writer waits in that batch
        waiting = ledger.submit_many([("grant", ("u_1", 1, "topup"), {}) for _ in range(5)])
        refused = ledger.submit_many([("grant", ("u_1", 1, "topup"), {}) for _ in range(4)])
        assert all(isinstance(r, WriterBusy) for r in refused)
        assert "nothing was written" in str(refused[0])
        ledger.writer.before_commit = None
        release.set()
        assert [f.result(10).credits for f in [holding, *waiting]] == [1] * 6
        assert ledger.balance("u_1").total == 106
        assert ledger.check_invariants() == []


def test_the_writer_keeps_no_state_across_a_sweep(ledger, clock: FakeClock):
    funded(ledger, credits=100)
    hold = ledger.reserve("u_1", 30, ttl=timedelta(minutes=1))
    clock.advance(minutes=2)
    assert ledger.expire_holds().count == 1
    again = ledger.reserve("u_1", 100)  # the expired hold's credits are back
    assert again.credits == 100
    assert ledger.reservation(hold.transaction_id).status == "expired"
    assert state(ledger)[1][0][5:8] == (100, 100, 4)  # total, held, entries
    assert ledger.check_invariants() == []


def test_a_sweep_with_nothing_lapsed_waits_for_no_write(ledger, clock: FakeClock):
    """The server sweeps every 30 s; a sweep runs alone, so one with nothing to book must
    not queue behind the writes (nor stop them while it runs)."""
    funded(ledger, credits=100)
    ledger.reserve("u_1", 30, ttl=timedelta(minutes=5))
    held, release = threading.Event(), threading.Event()

    def hold_the_batch(cur) -> None:
        held.set()
        release.wait(10)

    ledger.writer.before_commit = hold_the_batch
    writing = ledger.submit("reserve", "u_1", 10)
    try:
        assert held.wait(10)
        started = time.monotonic()
        assert ledger.expire_holds().count == 0  # the hold lapses in 5 minutes, not yet
        assert ledger.expire_grants().count == 0
        assert time.monotonic() - started < 5  # answered while the batch is still held
        assert not writing.done()
    finally:
        release.set()
    ledger.writer.before_commit = None
    writing.result(10)
    clock.advance(minutes=16)  # past both holds' expiry (the second: the default 15)
    assert ledger.expire_holds().count == 2  # and with something lapsed, it books it
    assert ledger.balance("u_1") == (100, 0, 100)


def test_a_writes_future_says_the_balance_it_left(ledger, clock: FakeClock):
    funded(ledger, credits=100)
    ledger.grant("u_1", 50, kind="promo", expires_at=clock.now + timedelta(minutes=5))
    clock.advance(minutes=10)  # the promo lapsed; no sweep has booked it out yet
    reserved = ledger.submit("reserve", "u_1", 30)
    hold = reserved.result(10)
    assert reserved.balance == ledger.balance("u_1") == (100, 30, 70)
    confirmed = ledger.submit("confirm", hold.transaction_id, success=True, credits=10)
    confirmed.result(10)
    assert confirmed.balance == ledger.balance("u_1") == (90, 0, 90)
    swept = ledger.submit("expire_grants")
    swept.result(10)
    assert swept.balance is None  # a set-based write: read the balance when needed


def test_another_modules_side_write_runs_beside_the_writer(db_path, clock):
    """An alert evaluation's side write never holds up the ledger's writes."""
    with Ledger.open(db_path, clock=clock) as ledger:
        funded(ledger, credits=100)
        inside, go_on = threading.Event(), threading.Event()

        def slow(cur) -> int:
            cur.execute("CREATE TABLE IF NOT EXISTS notes (n INTEGER)")
            cur.execute("INSERT INTO notes VALUES (1)")
            inside.set()
            assert go_on.wait(10)
            return 1

        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(ledger.side_write, "notes", slow)
            assert inside.wait(10)
            hold = ledger.reserve("u_1", 30)  # while the side write is open
            ledger.confirm(hold.transaction_id, success=True)
            assert not pending.done()
            go_on.set()
            assert pending.result(10) == 1
        assert ledger.balance("u_1") == (70, 0, 70)
        assert sql(ledger, "SELECT count(*) FROM notes") == [(1,)]
        assert ledger.check_invariants() == []
