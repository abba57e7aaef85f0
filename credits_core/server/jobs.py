"""The server's background jobs, each visible on `GET /v1/health` and the home page.

- `expire_holds` every 30 s and `expire_grants` every 5 min (writes, through the writer);
- `alerts_touched`: the users each committed write touched (`Ledger.on_balance_change`),
  coalesced for `coalesce_s` and evaluated in a worker thread, never on the writer's;
- `alerts_full`: every funded account every 5 min;
- `outbox`: delivery of due alert messages every 30 s, to the webhook URL or .jsonl
  file named by `--outbox` / `$CREDITS_OUTBOX` (idle, and saying so, without one).

A job that fails records its error and runs again at its next time; it never stops the
server. The jobs of the server running in this process are `running()`.

The jobs' work runs on threads of their own at a lower CPU priority (JOB_NICENESS): an
alert evaluation keeps the CPU busy for a few hundred ms at a time, and at the same
priority it competed with the event loop answering reserves (the slowest reserves at
half the peak load came during evaluations).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from credits_core.ledger import Ledger

logger = logging.getLogger(__name__)
_current: Jobs | None = None
JOB_THREADS = 4  # jobs that may run at once (the sweeps mostly wait for the writer)
JOB_NICENESS = 10  # added to the process's niceness for the jobs' threads (Linux)


def lower_priority() -> None:
    """Make the calling thread yield the CPU to the server's other threads: Linux gives
    each thread its own niceness (elsewhere setpriority would act on a process, so
    nothing is done). Raising niceness needs no privilege; lowering it back would."""
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        niceness = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness + JOB_NICENESS))
    except OSError as error:
        logger.warning("background jobs run at normal priority: %s", error)


@dataclass
class JobState:
    """One job's schedule and its last run."""

    name: str
    every_s: float
    what: str
    runs: int = 0
    failures: int = 0
    last_run_at: datetime | None = None
    last_duration_s: float | None = None
    last_result: str | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "every_s": self.every_s,
            "runs": self.runs,
            "failures": self.failures,
            "last_run_at": self.last_run_at.isoformat() if self.last_run_at else None,
            "last_duration_s": self.last_duration_s,
            "last_ok": None if self.runs == 0 else self.last_error is None,
            "last_result": self.last_result,
            "last_error": self.last_error,
        }


class Jobs:
    """The background jobs of one server over one ledger."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        outbox: str | None = None,
        holds_every_s: float = 30,
        grants_every_s: float = 300,
        alerts_every_s: float = 300,
        outbox_every_s: float = 30,
        coalesce_s: float = 0.5,
    ) -> None:
        self.ledger = ledger
        self.outbox = outbox
        self.coalesce_s = coalesce_s
        destination = outbox or "(none)"
        self.states = {
            s.name: s
            for s in (
                JobState("expire_holds", holds_every_s, "book holds past their expiry"),
                JobState("expire_grants", grants_every_s, "book grants past their expiry"),
                JobState("alerts_touched", 0, "evaluate alert rules for users just written"),
                JobState("alerts_full", alerts_every_s, "evaluate alert rules for everyone"),
                JobState("outbox", outbox_every_s, f"deliver alert messages to {destination}"),
            )
        }
        self._touched: set[str] = set()
        self._everyone = False
        self._guard = threading.Lock()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        self._inflight: set[asyncio.Future] = set()
        self._basis: tuple[Any, Any] | None = None  # plans and price book, loaded once
        self._rules: tuple[Any, Any] | None = None  # (file stamp, rules)
        self._unlisten: Callable[[], None] | None = None
        self._threads = ThreadPoolExecutor(
            JOB_THREADS, thread_name_prefix="credits-job", initializer=lower_priority
        )

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        global _current
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._unlisten = self.ledger.on_balance_change(self._on_change)
        self._tasks = [
            asyncio.create_task(self._every("expire_holds", self._expire_holds)),
            asyncio.create_task(self._every("expire_grants", self._expire_grants)),
            asyncio.create_task(self._every("alerts_full", self._alerts_full)),
            asyncio.create_task(self._every("outbox", self._deliver)),
            asyncio.create_task(self._alerts_touched()),
        ]
        _current = self

    async def stop(self) -> None:
        """Stop the timers; a run in progress is let finish (it uses the ledger)."""
        global _current
        if self._unlisten is not None:
            self._unlisten()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*self._inflight, return_exceptions=True)
        self._threads.shutdown(wait=False)  # nothing runs on them any more
        if _current is self:
            _current = None

    def status(self) -> dict[str, dict[str, Any]]:
        return {name: state.as_dict() for name, state in self.states.items()}

    # ---------------------------------------------------------------- running

    async def _every(self, name: str, job: Callable[[], Awaitable[str]]) -> None:
        state = self.states[name]
        while True:
            await self._run(state, job)
            await asyncio.sleep(state.every_s)

    async def _run(self, state: JobState, job: Callable[[], Awaitable[str]]) -> None:
        started = time.monotonic()
        state.last_run_at = datetime.now(UTC)
        run = asyncio.ensure_future(job())
        self._inflight.add(run)
        run.add_done_callback(self._inflight.discard)
        try:
            state.last_result = await asyncio.shield(run)
            state.last_error = None
        except asyncio.CancelledError:
            raise
        except Exception as error:
            state.failures += 1
            state.last_error = f"{type(error).__name__}: {error}"
            logger.warning("background job %s failed: %s", state.name, state.last_error)
        state.runs += 1
        state.last_duration_s = round(time.monotonic() - started, 4)

    async def _in_thread(self, work: Callable[..., Any], *args: Any) -> Any:
        """Run blocking work on one of the jobs' low-priority threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, functools.partial(work, *args))

    # The sweeps run on a thread: they first read whether anything lapsed (and queue no
    # write when nothing did), and a read may wait for the file to catch up.
    async def _expire_holds(self) -> str:
        sweep = await self._in_thread(self.ledger.expire_holds)
        return f"{sweep.count} holds expired, {sweep.credits} credits returned"

    async def _expire_grants(self) -> str:
        sweep = await self._in_thread(self.ledger.expire_grants)
        return f"{sweep.count} grants expired, {sweep.credits} credits removed"

    async def _alerts_full(self) -> str:
        return await self._in_thread(self._evaluate, None)

    async def _deliver(self) -> str:
        if self.outbox is None:
            return "idle: no destination (serve --outbox URL or FILE.jsonl)"
        from credits_core.alerts import deliver

        done = await self._in_thread(deliver, self.ledger, self.outbox)
        if done.failed:
            raise RuntimeError(f"{done.failed} messages failed ({done.pending} pending)")
        return f"{done.delivered} delivered, {done.pending} pending"

    def _evaluate(self, users: list[str] | None) -> str:
        """Evaluate the alert rules (read again when their file changes) for `users`."""
        from credits_core.alerts import AlertRules, Evaluator
        from credits_core.plans import Plans
        from credits_core.pricing import PriceBook

        if self._basis is None:
            self._basis = (Plans.load(), PriceBook.load())
        path = AlertRules.default_path()
        stamp = (path.stat().st_mtime_ns, path.stat().st_size) if path.exists() else None
        if self._rules is None or self._rules[0] != stamp:
            self._rules = (stamp, AlertRules.load(path))
        plans, book = self._basis
        result = Evaluator(self.ledger, self._rules[1], plans=plans, book=book).evaluate(users)
        return (
            f"{result.users} users: {result.opened} opened, {result.resolved} resolved, "
            f"{result.open} open"
        )

    # ---------------------------------------------------------------- touched users

    def _on_change(self, user_ids: frozenset[str] | None) -> None:
        """Called after each committed write (from the writer's thread): note the users."""
        with self._guard:
            if user_ids is None:
                self._everyone = True
            else:
                self._touched |= user_ids
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _alerts_touched(self) -> None:
        state = self.states["alerts_touched"]
        while True:
            await self._wake.wait()
            # Each evaluation is a side write beside the ledger's writer, and takes CPU
            # from the requests: after a long one, gather writes longer, so that
            # evaluating takes at most a fifth of the time.
            await asyncio.sleep(max(self.coalesce_s, 4 * (state.last_duration_s or 0)))
            self._wake.clear()
            with self._guard:
                users, everyone = sorted(self._touched), self._everyone
                self._touched, self._everyone = set(), False
            if users or everyone:
                chosen = None if everyone else users
                await self._run(state, functools.partial(self._in_thread, self._evaluate, chosen))


def running() -> Jobs | None:
    """The jobs of the server in this process, if it runs one."""
    return _current


def job_table() -> pd.DataFrame | None:
    """The home page's view of the jobs: one row each; None outside `credits serve`."""
    jobs = running()
    if jobs is None:
        return None
    rows = [
        {
            "job": name,
            "what": s["what"],
            "when": f"every {s['every_s']:g} s" if s["every_s"] else "after writes",
            "last_run_at": pd.Timestamp(s["last_run_at"]) if s["last_run_at"] else pd.NaT,
            "ok": s["last_ok"],
            "result": s["last_error"] or s["last_result"],
            "runs": s["runs"],
        }
        for name, s in jobs.status().items()
    ]
    return pd.DataFrame(rows)
