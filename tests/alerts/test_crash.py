"""Exactly-once outbox under a crash: a process evaluating the rules and delivering the
outbox (in batches of 250) is killed (SIGKILL) at seeded points spread over its work;
afterwards evaluation and delivery run again. Every kill must be a real SIGKILL of a
live child (-9). Every user whose alerts opened then has exactly one outbox message,
the JSONL destination holds each message exactly once, every message is marked
delivered, and the ledger is sound. Across the kill points, some must find no batch
delivered and some find delivered batches.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from credits_core.alerts import AlertRules, Evaluator, deliver
from credits_core.ledger import Ledger
from tests.alerts.conftest import query, rule_set
from tests.conftest import long_run
from tests.processes import DONE, elapsed_of, finish, kill_delays, kill_part_way

REPO = Path(__file__).resolve().parents[2]
USERS = [f"u_{i:05d}" for i in range(4_000)]
SEED = 15
KILL_POINTS = [0.0, 0.5, DONE]  # fractions of the child's time (see tests/processes.py)
LONG_KILL_POINTS = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, DONE]
RULES = rule_set(
    {"name": "low", "kind": "available_below", "severity": "critical",
     "below": 200, "resolve_at": 500},
    {"name": "plan-low", "kind": "percent_of_plan_below", "severity": "warning",
     "below_percent": 10, "resolve_at_percent": 20},
)  # fmt: skip

CHILD = textwrap.dedent(
    """
    import sys, time
    from credits_core.alerts import AlertRules, Evaluator, deliver
    from credits_core.ledger import Ledger

    path, rules, target = sys.argv[1:4]
    ledger = Ledger.open(path)
    print("starting", flush=True)
    t0 = time.perf_counter()
    Evaluator(ledger, AlertRules.load(rules)).evaluate()
    while deliver(ledger, target, limit=250).pending:
        pass
    print("done", time.perf_counter() - t0, flush=True)
    sys.stdin.read()  # wait, ledger open, until the parent kills us or lets us finish
    ledger.close()
    """
)


def build(path: Path) -> None:
    with Ledger.open(path) as ledger:
        ledger.create_accounts(pd.DataFrame({"user_id": USERS, "plan": "pro"}))
        ledger.grant_many(pd.DataFrame({"user_id": USERS, "credits": 100, "kind": "topup"}))


def start_child(path: Path, rules: Path, target: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(rules), str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=str(REPO),
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A pristine file, and how long a child takes to evaluate and deliver it all."""
    tmp = tmp_path_factory.mktemp("alerts-crash")
    pristine, rules = tmp / "pristine.duckdb", tmp / "rules.toml"
    build(pristine)
    RULES.save(rules)
    full = tmp / "full.duckdb"
    shutil.copy(pristine, full)
    elapsed = elapsed_of(finish(start_child(full, rules, tmp / "full.jsonl")))
    lines = (tmp / "full.jsonl").read_text().splitlines()
    assert len(lines) == len(USERS)  # both rules match every user, one message each
    return {"pristine": pristine, "rules": rules, "elapsed": elapsed}


def finish_and_check(path: Path, rules: Path, target: Path) -> None:
    later = datetime.now(UTC) + timedelta(hours=2)  # past every claim's backoff
    with Ledger.open(path, clock=lambda: later) as ledger:
        Evaluator(ledger, AlertRules.load(rules)).evaluate()
        while deliver(ledger, str(target), limit=1_000).pending:
            pass
        alerts = query(ledger, "SELECT alert_id FROM alerts")["alert_id"]
        outbox = query(ledger, "SELECT message_id, user_id, status FROM alert_outbox")
        assert ledger.check_invariants() == []
    assert len(alerts) == 2 * len(USERS)
    assert sorted(outbox["user_id"]) == sorted(USERS)  # one message per user
    assert set(outbox["message_id"]) <= set(alerts)  # each keyed by an alert it announces
    assert set(outbox["status"]) == {"delivered"}
    sent = [json.loads(line)["message_id"] for line in target.read_text().splitlines()]
    assert len(sent) == len(set(sent)), "a message was delivered twice"
    assert sorted(sent) == sorted(outbox["message_id"]), "a message was lost"


def delivered(path: Path) -> int:
    """Messages marked delivered in the file as the kill left it."""
    with Ledger.open(path) as ledger:
        return len(query(ledger, "SELECT 1 FROM alert_outbox WHERE status = 'delivered'"))


@pytest.mark.long
def test_sigkill_between_evaluation_and_delivery_neither_loses_nor_repeats(reference, tmp_path):
    points = LONG_KILL_POINTS if long_run() else KILL_POINTS
    delays = kill_delays(reference["elapsed"], points, SEED)
    found = []
    for number, delay in enumerate(delays):
        path, target = tmp_path / f"killed-{number}.duckdb", tmp_path / f"sent-{number}.jsonl"
        shutil.copy(reference["pristine"], path)
        kill = kill_part_way(start_child(path, reference["rules"], target), delay)
        found.append(delivered(path))
        assert found[-1] == len(USERS) or not kill.after_done
        finish_and_check(path, reference["rules"], target)
    # the kills spread over the work: some before any batch was delivered, some after
    assert min(found) == 0 and max(found) > 0, list(zip(delays, found, strict=True))


def test_evaluating_twice_writes_each_message_once(reference, tmp_path):
    path = tmp_path / "twice.duckdb"
    shutil.copy(reference["pristine"], path)
    with Ledger.open(path) as ledger:
        first = Evaluator(ledger, RULES).evaluate()
        second = Evaluator(ledger, RULES).evaluate()
    assert (first.opened, second.opened) == (2 * len(USERS), 0)
    finish_and_check(path, reference["rules"], tmp_path / "messages.jsonl")
