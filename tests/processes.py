"""Crash tests' shared step: kill a child process with SIGKILL part-way through its work."""

from __future__ import annotations

import os
import signal
import subprocess
import time


def kill_after_start(child: subprocess.Popen, seconds: float) -> None:
    """Wait for the child to print "starting", let it work `seconds`, then SIGKILL it."""
    try:
        line = child.stdout.readline()
        assert line.strip() == "starting", (line, child.stderr.read())
        time.sleep(seconds)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
