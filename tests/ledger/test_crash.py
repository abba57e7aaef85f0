"""A process killed (SIGKILL) in the middle of a large apply_usage leaves a sound ledger.

The parent builds a ledger file with accounts and grants. A child process opens it,
builds a large usage batch, prints "starting" and calls apply_usage; the parent
kills it after a random delay. Reopened, the file must open, pass
check_invariants(), and hold the batch wholly or not at all: every user's balance
and journal equal either the state before the batch or the state after it in full
(taken from a child that was left to finish on a copy of the same file).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from credits_core import Ledger
from tests.processes import kill_after_start

REPO = Path(__file__).resolve().parents[2]
BUILT_AT = datetime(2025, 3, 1, tzinfo=UTC)
USERS = [f"u_{i:04d}" for i in range(200)]
EVENTS = 1_000_000

CHILD = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime, timedelta, UTC

    import numpy as np
    import pandas as pd

    from credits_core import Ledger

    path, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
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
    print("starting", flush=True)
    t0 = time.perf_counter()
    out = ledger.apply_usage(events)
    elapsed = time.perf_counter() - t0
    ledger.close()
    print("done", elapsed, out["status"].astype(str).value_counts().to_dict(), flush=True)
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
    """Every user's balance and journal length, and the ledger's own verdict."""
    with Ledger.open(str(path)) as ledger:
        problems = ledger.check_invariants()
        users = {}
        for user in USERS:
            b = ledger.balance(user)
            users[user] = (b.total, b.held, b.available, len(ledger.history(user, limit=None)))
    return {"problems": problems, "users": users}


def start_child(path: Path, seed: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(EVENTS), str(seed)],
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
    child = start_child(full, seed=11)
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    done = [line for line in out.splitlines() if line.startswith("done")]
    assert done, out
    elapsed = float(done[0].split()[1])
    after = state(full)
    return {"pristine": pristine, "before": before, "after": after, "elapsed": elapsed}


def test_reference_batch_changes_the_ledger(reference):
    before, after = reference["before"], reference["after"]
    assert before["problems"] == [] and after["problems"] == []
    # the batch really moves balances and journals, so "wholly present" and
    # "wholly absent" are told apart below
    assert all(after["users"][u][3] > before["users"][u][3] for u in USERS)
    assert sum(after["users"][u][0] for u in USERS) < sum(before["users"][u][0] for u in USERS)
    assert after["users"]["u_0000"][0] >= 0


@pytest.mark.parametrize("fraction", [0.3, 0.8, 0.9, 1.0])
def test_sigkill_during_apply_usage_leaves_all_or_nothing(reference, tmp_path, fraction):
    path = tmp_path / "killed.duckdb"
    shutil.copy(reference["pristine"], path)
    child = start_child(path, seed=11)
    kill_after_start(child, reference["elapsed"] * fraction * random.uniform(0.8, 1.2))

    got = state(path)
    assert got["problems"] == []
    assert got["users"] in (reference["before"]["users"], reference["after"]["users"]), (
        "the batch is partly present after the kill: "
        + json.dumps(
            {
                u: [
                    got["users"][u],
                    reference["before"]["users"][u],
                    reference["after"]["users"][u],
                ]
                for u in USERS[:3]
            }
        )
    )
