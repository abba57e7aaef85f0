"""SIGKILL while 32 threads write through the writer: every acknowledged call survives.

A child process opens a ledger file and runs 32 threads that reserve and confirm in a
loop, printing each acknowledgement (a call that returned) as it arrives. The parent
kills it with SIGKILL after a seeded delay, proves the child died by that signal, then
reopens the file: it must pass check_invariants(), hold every acknowledged hold, and
show every acknowledged confirmation as it was acknowledged.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from credits_core import Ledger
from tests.ledger.support import funded, sql

REPO = Path(__file__).resolve().parents[2]
THREADS = 32

CHILD = textwrap.dedent(
    """
    import sys, threading
    from credits_core import Ledger

    path = sys.argv[1]
    ledger = Ledger.open(path)
    out = threading.Lock()

    def say(line):
        with out:
            sys.stdout.write(line + "\\n")
            sys.stdout.flush()

    def work(n):
        user = f"u_{n:02d}"
        for i in range(100_000):
            hold = ledger.reserve(user, 1 + i % 5)
            say(f"reserved {hold.transaction_id}")
            done = ledger.confirm(hold.transaction_id, success=i % 3 != 0)
            say(f"{done.status} {done.transaction_id}")

    say("starting")
    threads = [threading.Thread(target=work, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    """
)


def kill_while_writing(path: str, delay_s: float) -> list[str]:
    """Run the child, SIGKILL it `delay_s` after it starts; return its whole lines."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, path],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert child.stdout.readline().strip() == "starting", child.stderr.read()
        reader = threading.Thread(target=lambda: lines.extend(child.stdout), daemon=True)
        reader.start()
        time.sleep(delay_s)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        reader.join(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL, (child.returncode, child.stderr.read())
    return [line for line in lines if line.endswith("\n")]  # a torn last line was not said


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_acknowledged_write_survives_a_sigkill_under_load(tmp_path, seed):
    path = str(tmp_path / "crash.duckdb")
    with Ledger.open(path) as ledger:
        for n in range(THREADS):
            funded(ledger, f"u_{n:02d}", credits=10_000_000)
    delay_s = random.Random(seed).uniform(0.3, 3.0)  # seeded: the kill lands mid-stream
    acks = [line.split() for line in kill_while_writing(path, delay_s)]

    with Ledger.open(path) as ledger:
        assert ledger.check_invariants() == []
        holds = dict(sql(ledger, "SELECT transaction_id, status FROM holds"))
        journal = {row[0] for row in sql(ledger, "SELECT DISTINCT transaction_id FROM journal")}
    reserved = [tid for word, tid in acks if word == "reserved"]
    confirmed = [(word, tid) for word, tid in acks if word in ("captured", "released")]
    assert reserved, "the child acknowledged nothing before the kill: no write was cut"
    assert all(tid in holds and tid in journal for tid in reserved)
    assert all(holds[tid] == status for status, tid in confirmed)
    # the kill cut the stream: some holds were written but never acknowledged as confirmed
    assert len(holds) >= len(reserved) >= len(confirmed)
