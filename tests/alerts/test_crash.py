"""Exactly-once outbox under a crash: a process evaluating the rules and delivering the
outbox is killed (SIGKILL) at a random moment; afterwards evaluation and delivery run
again. Every user whose alerts opened then has exactly one outbox message (both rules
open in one evaluation), the JSONL destination holds each message exactly once, every
message is marked delivered, and the ledger is sound.
"""

from __future__ import annotations

import json
import os
import random
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
from tests.processes import kill_after_start

REPO = Path(__file__).resolve().parents[2]
USERS = [f"u_{i:05d}" for i in range(4_000)]
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
    ledger.close()
    print("done", time.perf_counter() - t0, flush=True)
    """
)


def build(path: Path) -> None:
    with Ledger.open(path) as ledger:
        ledger.create_accounts(pd.DataFrame({"user_id": USERS, "plan": "pro"}))
        ledger.grant_many(pd.DataFrame({"user_id": USERS, "credits": 100, "kind": "topup"}))


def start_child(path: Path, rules: Path, target: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(rules), str(target)],
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
    child = start_child(full, rules, tmp / "full.jsonl")
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    elapsed = float(next(line for line in out.splitlines() if line.startswith("done")).split()[1])
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


@pytest.mark.parametrize("fraction", [0.02, 0.05, 0.3, 0.7, 0.95])
def test_sigkill_between_evaluation_and_delivery_neither_loses_nor_repeats(
    reference, tmp_path, fraction
):
    path, target = tmp_path / "killed.duckdb", tmp_path / "messages.jsonl"
    shutil.copy(reference["pristine"], path)
    child = start_child(path, reference["rules"], target)
    kill_after_start(child, reference["elapsed"] * fraction * random.uniform(0.8, 1.2))
    finish_and_check(path, reference["rules"], target)


def test_evaluating_twice_writes_each_message_once(reference, tmp_path):
    path = tmp_path / "twice.duckdb"
    shutil.copy(reference["pristine"], path)
    with Ledger.open(path) as ledger:
        first = Evaluator(ledger, RULES).evaluate()
        second = Evaluator(ledger, RULES).evaluate()
    assert (first.opened, second.opened) == (2 * len(USERS), 0)
    finish_and_check(path, reference["rules"], tmp_path / "messages.jsonl")
