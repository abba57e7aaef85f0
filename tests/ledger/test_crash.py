"""A process killed (SIGKILL) in the middle of a large apply_usage leaves a sound ledger.

The parent builds a ledger file with accounts and grants. A child process opens it,
builds a large usage batch, prints "starting", calls apply_usage, prints "done" and
waits (without closing the ledger); the parent kills it at seeded points spread over
the write and after it. Each kill must be a real SIGKILL of a live child (-9).
Reopened, the file must open, pass check_invariants(), and hold the batch wholly or
not at all: every user's balance and journal equal either the state before the batch
or the state after it in full (taken from a child that was left to finish on a copy
of the same file); a batch the child saw acknowledged must be there. Across the kill
points, some must find the batch all written and some find none of it.

The answer comes once the batch is in the redo log, before the file holds it: a child
whose applier is held back is killed right after the answer, and the reopened ledger
must hold the whole batch, from the log alone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from credits_core import Ledger
from tests.conftest import long_run
from tests.processes import DONE, elapsed_of, finish, kill_delays, kill_part_way

REPO = Path(__file__).resolve().parents[2]
BUILT_AT = datetime(2025, 3, 1, tzinfo=UTC)
USERS = [f"u_{i:04d}" for i in range(200)]
EVENTS = 1_000_000
SEED = 15
KILL_POINTS = [0.0, 0.5, DONE]  # fractions of the write's time (see tests/processes.py)
LONG_KILL_POINTS = [0.0, 0.05, 0.15, 0.3, 0.45, 0.6, 0.75, 0.85, 0.95, 1.05, 1.2, 1.5, DONE]

CHILD = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime, timedelta, UTC

    import numpy as np
    import pandas as pd

    from credits_core import Ledger

    path, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    hold, key = sys.argv[4] == "hold", sys.argv[5] or None
    users = [f"u_{i:04d}" for i in range(200)]
    at = datetime(2025, 3, 2, tzinfo=UTC)
    rng = np.random.default_rng(seed)
    events = pd.DataFrame(
        {
            "user_id": np.array(users, dtype=object)[rng.integers(0, len(users), n)],
            "credits": rng.integers(1, 100, n),
            "ts": pd.Timestamp(datetime(2025, 3, 1, 6, tzinfo=UTC))
            + pd.to_timedelta(rng.integers(0, 12 * 3600 * 1000, n), unit="ms"),
            "success": rng.random(n) < 0.85,
            "model": np.array(["FLUX.1 Kontext [pro]", "Gen-4 Turbo", "Music 1.5"], dtype=object)[
                rng.integers(0, 3, n)
            ],
        }
    )
    ledger = Ledger.open(path, clock=lambda: at)
    applier = ledger.writer.applier
    if hold:  # the file never gets the batch: only the redo log holds it
        applier.before_apply = lambda cur: time.sleep(3600)
    print("starting", flush=True)
    t0 = time.perf_counter()
    out = ledger.apply_usage(events, idempotency_key=key)
    elapsed = time.perf_counter() - t0
    counts = out["status"].astype(str).value_counts().to_dict()
    print("done", elapsed, counts, applier.logged - applier.applied, flush=True)
    sys.stdin.read()  # wait, ledger open, until the parent kills us or lets us finish
    ledger.close()
    """
)


def build(path: Path) -> None:
    with Ledger.open(str(path), clock=lambda: BUILT_AT) as ledger:
        ledger.create_accounts(pd.DataFrame({"user_id": USERS}))
        # user 0 has little: some of its events are rejected, the rest are not
        credits = [500, *[50_000_000] * (len(USERS) - 1)]
        ledger.grant_many(
            pd.DataFrame({"user_id": USERS, "credits": credits, "kind": ["plan"] * len(USERS)})
        )


def state(path: Path) -> dict:
    """Every user's balance row and journal (entries, credits, last balance), and the
    ledger's own verdict."""
    with Ledger.open(str(path)) as ledger:
        problems = ledger.check_invariants()
        rows = ledger.snapshot(
            lambda cur: cur.execute(
                """
                SELECT a.user_id, a.total, a.held, count(j.seq), sum(j.credits),
                       max(j.seq)
                FROM accounts AS a JOIN journal AS j USING (account_no)
                GROUP BY ALL
                ORDER BY a.user_id
                """
            ).fetchall()
        )
    return {"problems": problems, "users": {user: tuple(rest) for user, *rest in rows}}


def start_child(path: Path, seed: int, *, hold: bool = False, key: str = "") -> subprocess.Popen:
    """A child booking the batch of `seed`; `hold`: its applier never puts it in the
    file; `key`: with that idempotency key."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    arguments = [str(path), str(EVENTS), str(seed), "hold" if hold else "-", key]
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(REPO),
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The file before the batch, and the states before and after it in full."""
    tmp = tmp_path_factory.mktemp("crash")
    pristine = tmp / "pristine.duckdb"
    build(pristine)
    before = state(pristine)
    full = tmp / "full.duckdb"
    shutil.copy(pristine, full)
    elapsed = elapsed_of(finish(start_child(full, seed=11)))
    after = state(full)
    return {"pristine": pristine, "before": before, "after": after, "elapsed": elapsed}


def test_reference_batch_changes_the_ledger(reference):
    before, after = reference["before"], reference["after"]
    assert before["problems"] == [] and after["problems"] == []
    # the batch really moves balances and journals, so "wholly present" and
    # "wholly absent" are told apart below
    assert all(after["users"][u][2] > before["users"][u][2] for u in USERS)
    assert sum(after["users"][u][0] for u in USERS) < sum(before["users"][u][0] for u in USERS)
    assert after["users"]["u_0000"][0] >= 0


@pytest.mark.long
def test_sigkill_during_apply_usage_leaves_all_or_nothing(reference, tmp_path):
    points = LONG_KILL_POINTS if long_run() else KILL_POINTS
    delays = kill_delays(reference["elapsed"], points, SEED)
    written = []
    for number, delay in enumerate(delays):
        path = tmp_path / f"killed-{number}.duckdb"
        shutil.copy(reference["pristine"], path)
        kill = kill_part_way(start_child(path, seed=11), delay)
        got = state(path)
        assert got["problems"] == []
        whole = got["users"] == reference["after"]["users"]
        assert whole or got["users"] == reference["before"]["users"], partly(got, reference)
        assert whole or not kill.after_done, "a batch acknowledged as written was lost"
        written.append(whole)
    # the kills spread over the whole write: some found the batch all written, some none
    assert True in written and False in written, list(zip(delays, written, strict=True))


def test_sigkill_after_the_answer_finds_the_batch_in_the_redo_log(reference, tmp_path):
    """The answer comes once the batch is in the redo log: killed before the file got
    any of it, the reopened ledger holds it all, and the same keyed call answers the
    same without booking it twice."""
    path = tmp_path / "held.duckdb"
    shutil.copy(reference["pristine"], path)
    child = start_child(path, seed=11, hold=True, key="usage-2025-03-01")
    child.stdout.readline()  # starting
    done = child.stdout.readline()
    assert done.startswith(DONE), (done, child.stderr.read())
    assert done.split()[-1] == "1", f"the file already held the batch: {done}"
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=60) == -signal.SIGKILL
    for stream in (child.stdin, child.stdout, child.stderr):
        stream.close()
    assert state(path) == reference["after"]
    again = finish(start_child(path, seed=11, key="usage-2025-03-01"))
    assert counts_of(again) == counts_of(done)
    assert state(path) == reference["after"]


def counts_of(done_line: str) -> str:
    """The outcome's status counts a child printed."""
    line = next(line for line in done_line.splitlines() if line.startswith(DONE))
    return line[line.index("{") : line.index("}") + 1]


def partly(got: dict, reference: dict) -> str:
    return "the batch is partly present after the kill: " + json.dumps(
        {
            u: [got["users"][u], reference["before"]["users"][u], reference["after"]["users"][u]]
            for u in USERS[:3]
        }
    )
