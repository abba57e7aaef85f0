"""The server's background jobs on a real ledger file: expiry sweeps on their timers, the
alert rules evaluated for the users a write touched, and what the home page shows."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest

from credits_core.alerts import users_in_alert
from credits_core.ledger import Ledger
from credits_core.server import jobs as jobs_module
from credits_core.server.jobs import Jobs, job_table


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def run(scenario) -> None:
    """asyncio.run(scenario()) in a thread of its own: a browser test's loop may be
    running in this one."""
    failures: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(scenario())
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the scenario did not finish in 120 s"
    if failures:
        raise failures[0]


async def wait_for(condition, timeout_s: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the job did not run in time"
        await asyncio.sleep(0.02)


def test_jobs_expire_holds_and_evaluate_touched_users(tmp_path):
    clock = Clock()
    ledger = Ledger.open(tmp_path / "ledger.duckdb", clock=clock)
    ledger.create_account("u_low")
    ledger.grant("u_low", 1_000, kind="topup")

    async def scenario() -> None:
        jobs = Jobs(ledger, holds_every_s=0.05, coalesce_s=0.05)
        jobs.start()
        assert jobs_module.running() is jobs
        try:
            hold = ledger.reserve("u_low", 900, ttl=timedelta(minutes=1))  # leaves 100 < 200
            await wait_for(lambda: jobs.states["alerts_touched"].runs >= 1)
            alerts = users_in_alert(ledger)
            assert "u_low/nearly-empty/1" in set(alerts["alert_id"])
            clock.now += timedelta(minutes=2)
            await wait_for(lambda: ledger.reservation(hold.transaction_id).status == "expired")
            table = job_table().set_index("job")
            assert table.loc["expire_holds", "runs"] >= 2 and table.loc["expire_holds", "ok"]
            swept = table.loc["expire_holds", "result"]
            assert re.match(r"^\d+ holds expired, \d+ credits returned$", swept)
            assert table.loc["outbox", "result"].startswith("idle: no destination")
            assert ledger.balance("u_low").available == 1_000
        finally:
            await jobs.stop()
        assert jobs_module.running() is None

    run(scenario)
    assert job_table() is None  # outside `credits serve` there are no jobs to show
    assert ledger.check_invariants() == []
    ledger.close()


def test_a_failing_job_records_its_error_and_runs_again(tmp_path):
    ledger = Ledger.open(tmp_path / "ledger.duckdb")

    async def scenario() -> None:
        jobs = Jobs(ledger, outbox="not-a-destination", outbox_every_s=0.05)
        jobs.start()
        try:
            await wait_for(lambda: jobs.states["outbox"].runs >= 2)
            status = jobs.status()["outbox"]
            assert status["last_ok"] is False and "InvalidDestination" in status["last_error"]
            assert status["failures"] >= 2
        finally:
            await jobs.stop()

    run(scenario)
    ledger.close()


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread niceness is Linux's")
def test_the_jobs_run_at_a_lower_priority_than_the_requests(tmp_path):
    """An alert evaluation takes both cores for a while: the jobs' threads yield the CPU
    to the event loop and the ledger's writer, which keep the process's priority."""
    ledger = Ledger.open(tmp_path / "ledger.duckdb")
    ours = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: dict[str, list[int]] = {}

    def niceness(prefix: str) -> list[int]:
        threads = [t for t in threading.enumerate() if t.name.startswith(prefix)]
        return [os.getpriority(os.PRIO_PROCESS, t.native_id) for t in threads]

    async def scenario() -> None:
        jobs = Jobs(ledger, holds_every_s=0.05)
        jobs.start()
        try:
            await wait_for(lambda: jobs.states["expire_holds"].runs >= 2)
            seen["jobs"], seen["writer"] = niceness("credits-job"), niceness("ledger-writer")
            seen["loop"] = [os.getpriority(os.PRIO_PROCESS, threading.get_native_id())]
        finally:
            await jobs.stop()

    run(scenario)
    ledger.close()
    assert seen["jobs"] and set(seen["jobs"]) == {min(19, ours + jobs_module.JOB_NICENESS)}
    # every ledger writer of the process (other tests may leave theirs) keeps its priority
    assert seen["writer"] and set(seen["writer"]) == {ours} and seen["loop"] == [ours]
