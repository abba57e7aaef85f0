"""The floor of the writer's design: the least work any ledger built this way can do.

A same-run baseline for bench_ledger's 32-thread figure. THREADS Python threads each
submit a reserve then a confirm, one at a time, as the ledger's callers do; one writer
thread takes what is queued, decides each command with a single dict update, appends
the batch to an O_DSYNC log and answers each caller through a raw lock; an applier
thread writes two journal rows and one balance per pair into a DuckDB file, many
batches per transaction, at most every APPLY_DELAY_S. No checks, no grants, no holds,
no idempotency, no listeners: whatever the ledger does beyond this is its own cost.

    python bench/floor.py   # prints pairs/s
"""

from __future__ import annotations

import os
import pickle
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

APPLY_DELAY_S = 0.05  # as the ledger's applier (credits_core/ledger/applier.py)
_STOP = None


class _Command:
    __slots__ = ("answered", "credits", "user")

    def __init__(self, user: str, credits: int) -> None:
        self.user, self.credits = user, credits
        self.answered = threading.Lock()
        self.answered.acquire()


def _writer(commands: queue.Queue, applies: queue.Queue, log_fd: int) -> None:
    balances: dict[str, int] = {}
    offset = seq = 0
    while (first := commands.get()) is not _STOP:  # sent once every caller is answered
        batch = [first]
        while not commands.empty():
            batch.append(commands.get())
        rows = []
        for command in batch:
            balance = balances.get(command.user, 10**9) - command.credits
            balances[command.user] = balance
            seq += 1
            rows.append((command.user, seq, -command.credits, balance))
        record = pickle.dumps(rows)
        os.pwrite(log_fd, record, offset)  # synced: O_DSYNC
        offset += len(record)
        for command in batch:
            command.answered.release()
        applies.put(rows)
    applies.put(_STOP)


def _applier(applies: queue.Queue, path: Path, users: list[str]) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE journal (user_id VARCHAR, seq BIGINT, credits BIGINT, "
                "balance_after BIGINT)")  # fmt: skip
    con.execute("CREATE TABLE accounts (user_id VARCHAR PRIMARY KEY, total BIGINT)")
    con.executemany("INSERT INTO accounts VALUES (?, 1000000000)", [[u] for u in users])
    stopping = False
    while not stopping:
        time.sleep(APPLY_DELAY_S)
        rows = []
        while not applies.empty() or not rows:
            taken = applies.get()
            if taken is _STOP:
                stopping = True
                break
            rows += taken
        if not rows:
            continue
        user, seq, credits, balance = zip(*rows, strict=True)
        big = pa.int64()
        con.register("batch", pa.table({
            "user_id": pa.array(user), "seq": pa.array(seq, big),
            "credits": pa.array(credits, big), "balance_after": pa.array(balance, big),
        }))  # fmt: skip
        con.execute("BEGIN")
        con.execute("INSERT INTO journal SELECT * FROM batch")
        con.execute("""
            UPDATE accounts SET total = b.total
            FROM (SELECT user_id, arg_max(balance_after, seq) AS total
                  FROM batch GROUP BY user_id) AS b
            WHERE accounts.user_id = b.user_id""")
        con.execute("COMMIT")
    con.close()


def seconds_together(work: Callable[[Any], None], arguments: Sequence[Any]) -> float:
    """Run work(argument) on a thread each, all let go at once; the seconds until the
    last is done (starting the threads is not timed)."""
    start = threading.Barrier(len(arguments) + 1)

    def run(argument: Any) -> None:
        start.wait()
        work(argument)

    threads = [threading.Thread(target=run, args=(argument,)) for argument in arguments]
    for thread in threads:
        thread.start()
    start.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - t0


def floor_pairs_per_s(threads: int, pairs_each: int, folder: Path | None = None) -> float:
    """Reserve+confirm pairs/s of the floor (see the module) from `threads` threads."""
    with tempfile.TemporaryDirectory(prefix="floor_", dir=folder) as tmp:
        users = [f"u_{n}" for n in range(threads)]
        log_fd = os.open(Path(tmp) / "log", os.O_RDWR | os.O_CREAT | os.O_DSYNC, 0o600)
        commands: queue.Queue = queue.Queue()
        applies: queue.Queue = queue.Queue()
        applier = threading.Thread(target=_applier, args=(applies, Path(tmp) / "f.duckdb", users))
        writer = threading.Thread(target=_writer, args=(commands, applies, log_fd))
        applier.start()
        writer.start()

        def caller(user: str) -> None:
            for _ in range(pairs_each):
                for credits in (5, -4):  # a reserve of 5, a capture of 4
                    command = _Command(user, credits)
                    commands.put(command)
                    command.answered.acquire()

        seconds = seconds_together(caller, users)
        commands.put(_STOP)
        writer.join()
        applier.join()
        os.close(log_fd)
    return threads * pairs_each / seconds


if __name__ == "__main__":
    print(f"floor, 32 threads: {floor_pairs_per_s(32, 400):,.0f} pairs/s")
