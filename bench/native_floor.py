"""The floor of the writer's design with the writer outside the GIL: the prototype.

bench/floor.py's floor is bound by the GIL: the writer's Python work and every lock
hand-off hold it, so 32 threads reach about 9,000-13,000 pairs/s on 2 cores. This builds
the same design in C (native_floor.c): one pthread writer takes what is queued, decides
each command against an in-memory balance array, appends the batch with ONE pwrite to an
O_DSYNC log (acknowledged means durable) and wakes each caller; callers block in C through
ctypes, which releases the GIL. It measures, against the 10,000 pairs/s from 32 threads
(p99 of one call <= 50 ms) target, alternating 3 rounds each of: the Python floor, the
native floor bare, the native floor with each call building a frozen dataclass result
as the ledger's Python API would, and the same with the ledger's own argument checks and
command built first (commands.build, what Ledger.reserve/confirm do before queueing). No
DuckDB applier runs in the native floor.

    python bench/native_floor.py [pairs_each]   # needs cc; skipped without it
"""

from __future__ import annotations

import ctypes
import dataclasses
import datetime
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.floor import floor_pairs_per_s, seconds_together  # noqa: E402
from credits_core.ledger import commands  # noqa: E402

THREADS = 32
ROUNDS = 3
HOLD = datetime.timedelta(minutes=10)


@dataclasses.dataclass(frozen=True)
class Reservation:
    """A result as the ledger's API returns one (credits_core/ledger/values.py)."""

    transaction_id: str
    user_id: str
    credits: int
    balance_after: int
    status: str
    reason: str | None
    created_at: datetime.datetime
    expires_at: datetime.datetime


def _build(folder: Path) -> ctypes.CDLL:
    so = folder / "libnative_floor.so"
    source = Path(__file__).with_name("native_floor.c")
    subprocess.run(
        ["cc", "-O2", "-shared", "-fPIC", "-pthread", "-o", str(so), str(source)],
        check=True,
        timeout=120,
    )
    lib = ctypes.CDLL(str(so))  # CDLL, not PyDLL: the GIL is released during each call
    lib.nf_open.argtypes, lib.nf_open.restype = [ctypes.c_char_p, ctypes.c_int], ctypes.c_int
    lib.nf_call.argtypes = [ctypes.c_int, ctypes.c_longlong]
    lib.nf_call.restype = ctypes.c_longlong
    lib.nf_close.argtypes, lib.nf_close.restype = [], None
    lib.nf_batches.restype = lib.nf_commands.restype = ctypes.c_longlong
    return lib


def _ledger_call(user: int, name: str, credits: int, n: int) -> None:
    """What the ledger's Python API does for a call besides the writer's work: check the
    arguments and build the command (commands.build, as Ledger.reserve/confirm do)."""
    now = datetime.datetime.now(datetime.UTC)
    if credits < 0:
        commands.build("reserve", now, name, -credits, reason="generation")
    else:
        commands.build("confirm", now, f"hold-{user}-{n}", True)


def native_round(lib: ctypes.CDLL, folder: Path, pairs_each: int, results: str) -> dict:
    """One measurement: pairs/s, p99 ms of one call and mean commands per batch.
    `results`: "" (bare), "result" (a dataclass per call) or "ledger" (also the
    ledger's own argument checks and command, before the native call)."""
    if (err := lib.nf_open(str(folder / "log").encode(), THREADS)) != 0:
        raise OSError(-err, "nf_open failed")
    latencies: list[list[int]] = [[] for _ in range(THREADS)]
    failures: list[int] = []
    call, clock = lib.nf_call, time.perf_counter_ns

    def caller(user: int) -> None:
        mine, name = latencies[user], f"u_{user}"
        for n in range(pairs_each):
            for credits in (-5, 1):  # a reserve of 5, then a confirm giving 1 back
                t0 = clock()
                if results == "ledger":
                    _ledger_call(user, name, credits, n)
                balance = call(user, credits)
                if results:
                    now = datetime.datetime.now(datetime.UTC)
                    Reservation(f"tx_{user}_{n}", name, credits, balance, "held", None, now,
                                now + HOLD)  # fmt: skip
                mine.append(clock() - t0)
                if balance < 0:
                    failures.append(balance)

    seconds = seconds_together(caller, range(THREADS))
    lib.nf_close()
    if failures:
        raise RuntimeError(f"{len(failures)} calls failed, e.g. {failures[0]}")
    every = sorted(ns for mine in latencies for ns in mine)
    return {
        "pairs_s": THREADS * pairs_each / seconds,
        "p99_ms": every[int(len(every) * 0.99)] / 1e6,
        "batch": lib.nf_commands() / max(lib.nf_batches(), 1),
    }


def main(pairs_each: int = 400) -> None:
    if shutil.which("cc") is None:
        print("native floor skipped: no `cc` on PATH")
        return
    with tempfile.TemporaryDirectory(prefix="native_floor_") as tmp:
        lib = _build(Path(tmp))
        print(f"{THREADS} threads x {pairs_each} pairs, {ROUNDS} rounds alternating")
        for n in range(1, ROUNDS + 1):
            python = floor_pairs_per_s(THREADS, pairs_each)
            print(f"round {n}  python floor     {python:>9,.0f} pairs/s")
            variants = (("native bare", ""), ("native+result", "result"),
                        ("native+ledger call", "ledger"))  # fmt: skip
            for label, results in variants:
                r = native_round(lib, Path(tmp), pairs_each, results)
                print(f"round {n}  {label:<16} {r['pairs_s']:>9,.0f} pairs/s"
                      f"  p99 {r['p99_ms']:5.2f} ms  {r['batch']:4.1f} cmds/batch"
                      f"  x{r['pairs_s'] / python:.2f} python floor")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 400)
