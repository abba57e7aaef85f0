"""Crash tests' shared steps: kill a child process with SIGKILL part-way through its work,
and prove that the kill landed.

A crash child prints "starting" when its work begins and "done" once it is finished
(committed), then waits on its stdin without exiting, so that a kill at any moment
finds it alive: every kill is a real SIGKILL (return code -9), never a child that had
already exited. The parent closes the child's stdin to let a reference run finish.
Kill delays are fractions of a reference run's time with seeded jitter, so a run
repeats its kill points. Fraction 0 kills right after "starting" and DONE right after
"done": the two ends of the work, whatever the machine's load, so that a test can
insist that its kills found the work both unwritten and written.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass

DONE = "done"  # a kill point: right after the child reported its work committed


@dataclass(frozen=True)
class Kill:
    """Where a kill landed: its delay after "starting", and whether the child had
    reported its work done before it."""

    delay_s: float
    after_done: bool


def kill_delays(elapsed_s: float, fractions: list[float | str], seed: int) -> list[float | str]:
    """Each fraction of `elapsed_s`, jittered by +-10% with a seeded generator."""
    jitter = random.Random(seed)
    return [
        point if point == DONE else elapsed_s * point * jitter.uniform(0.9, 1.1)
        for point in fractions
    ]


def finish(child: subprocess.Popen, timeout_s: float = 300) -> str:
    """Let a reference child run to the end; return its stdout (it must exit 0)."""
    out, err = child.communicate(input="", timeout=timeout_s)
    assert child.returncode == 0, err
    return out


def elapsed_of(out: str) -> float:
    """The work's duration, from the child's "done SECONDS ..." line."""
    return float(next(line for line in out.splitlines() if line.startswith(DONE)).split()[1])


def kill_part_way(child: subprocess.Popen, delay: float | str) -> Kill:
    """Wait for "starting", then SIGKILL the child `delay` seconds later (or right after
    it reports "done"); assert that it was alive and died by that signal."""
    try:
        line = child.stdout.readline()
        assert line.strip() == "starting", (line, child.stderr.read())
        if delay == DONE:
            line = child.stdout.readline()
            assert line.startswith(DONE), (line, child.stderr.read())
            seconds = 0.0
        else:
            seconds = float(delay)
            time.sleep(seconds)
        assert child.poll() is None, f"the child exited ({child.returncode}) before the kill"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
        assert child.returncode == -signal.SIGKILL, child.returncode
        rest = child.stdout.read()
        return Kill(seconds, delay == DONE or DONE in rest)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                stream.close()
