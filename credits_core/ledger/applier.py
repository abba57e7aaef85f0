"""The applier: one thread that puts the logged batches into the DuckDB file.

The writer answers a batch's callers once its record is in the redo log (redo.py),
then hands the batch's changes here. The applier takes every batch waiting, merges
them (changes.py) and writes them in one DuckDB transaction, together with the number
of the last batch it holds (`redo_position`), so that on opening exactly the batches
after it are applied again (`replay`). Under load one DuckDB commit thus carries many
batches: DuckDB's cost is per statement and per commit, not per row. A bulk usage
batch (Arrow tables, set-based statements) comes alone and is applied alone.

The applier waits before it applies: until a reader needs the file to catch up, or
`APPLY_ROWS` rows wait, or the oldest waiting batch has waited `APPLY_DELAY_S`. Each
DuckDB statement lets go of the GIL and must take it back, which under load costs up
to a switch interval (5 ms) while the writer's callers hold it: so fewer, larger
applies cost the process far less than one apply after another.

Readers see every acknowledged write: `catch_up()`, which the store runs before each
read, wakes the applier and waits until the file holds every batch logged so far (one
apply, a few ms under load). A failed apply is rolled back and retried; the batches stay logged,
so nothing acknowledged is lost even if the process dies meanwhile. Waiting batches
are bounded (`MAX_WAITING_ROWS`): when the file falls that far behind, the writer waits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import duckdb

from credits_core.ledger import bulk, marks
from credits_core.ledger.changes import ENTRIES, Changes
from credits_core.ledger.errors import LedgerBehind
from credits_core.ledger.redo import RedoLog, check_sequence
from credits_core.ledger.store import Store, describe, rollback

logger = logging.getLogger(__name__)

MAX_APPLY_ROWS = 60_000  # rows one DuckDB transaction writes at most (one batch may exceed it)
APPLY_ROWS = 20_000  # this many rows waiting are applied at once
APPLY_DELAY_S = 0.05  # else a logged batch waits this long at most, unless a reader needs it
MAX_WAITING_ROWS = 400_000  # rows logged but not yet applied, before the writer waits
RETRY_PAUSE_S = 0.5  # between attempts of a failed apply
CATCH_UP_S = 30.0  # how long a read waits for the file to hold what was acknowledged
REPLAY_CHUNK_BATCHES = 1_000  # logged batches merged into one write when replaying


def applied_position(cur: duckdb.DuckDBPyConnection) -> int:
    (number,) = cur.execute("SELECT applied FROM redo_position").fetchone()
    return int(number)


def _write(cur: duckdb.DuckDBPyConnection, batches: list[tuple[int, Changes]]) -> int | None:
    """Write the batches' changes, their history marks and their position, inside the
    caller's transaction. Returns the journal row a bulk usage batch was appended from
    (its marks are written once committed: marks.mark_committed), or None. (A bulk usage
    batch is always applied on its own: the writer logs it once the file holds every
    batch before it, and logs nothing after it until the file holds it.)"""
    changes = Changes.merge([changes for _, changes in batches])
    entries = changes.rows.get(ENTRIES.name, [])
    floor = marks.journal_length(cur) if entries or changes.usage else 0
    changes.write(cur)
    if entries:  # once the accounts these batches opened exist
        marks.mark_entries(cur, entries, floor)
    for booked in changes.usage:
        bulk.write_usage(cur, booked)
    cur.execute("UPDATE redo_position SET applied = ?", [batches[-1][0]])
    return floor if changes.usage else None


def replay(store: Store, log: RedoLog) -> int:
    """Apply the logged batches the file does not hold yet, in one transaction, then
    empty the log. Returns the number of the last batch the file holds."""
    cur = store.cursor(barrier=False)
    try:
        applied = applied_position(cur)
        records = list(log.records())
        check_sequence(store.path, applied, [number for number, _ in records])
        later = [(number, changes) for number, changes in records if number > applied]
        if later:
            cur.execute("BEGIN")
            try:
                chunks = range(0, len(later), REPLAY_CHUNK_BATCHES)
                floors = [_write(cur, later[start : start + REPLAY_CHUNK_BATCHES])
                          for start in chunks]  # fmt: skip
                cur.execute("COMMIT")
            except BaseException:
                rollback(cur)
                raise
            logger.info("replayed %d logged batch(es) into %s", len(later), store.path)
            bulk_floors = [floor for floor in floors if floor is not None]
            if bulk_floors:
                marks.mark_committed(cur, min(bulk_floors))
            applied = later[-1][0]
        log.empty()
        return applied
    finally:
        cur.close()


class Applier:
    """Writes logged batches into the file, behind the writer (see the module)."""

    def __init__(self, store: Store, applied: int) -> None:
        self._store = store
        self.applied = applied  # the last batch the file holds
        self.logged = applied  # the last batch the log holds
        # (number, changes, rows, when it was handed over: time.monotonic())
        self._waiting: deque[tuple[int, Changes, int, float]] = deque()
        self._waiting_rows = 0
        self._readers = 0  # reads waiting for the file to catch up
        self._stopping = False
        self._changed = threading.Condition()
        self.failure: str | None = None  # why the last apply failed, until one succeeds
        self.apply_sizes: deque[int] = deque(maxlen=100_000)  # batches per transaction
        # Test hook: called with the cursor inside each apply's transaction, before COMMIT.
        self.before_apply: Callable[[duckdb.DuckDBPyConnection], None] | None = None
        self._thread = threading.Thread(target=self._run, name="ledger-applier", daemon=True)
        self._thread.start()

    def logged_up_to(self, number: int) -> None:
        """The log holds batch `number`: reads from now on wait until the file does."""
        with self._changed:
            assert number == self.logged + 1, (number, self.logged)
            self.logged = number

    def put(self, number: int, changes: Changes) -> None:
        """Hand over a logged batch; waits while too many rows are waiting already."""
        rows = changes.count()
        with self._changed:
            self._changed.wait_for(lambda: self._waiting_rows < MAX_WAITING_ROWS or self._stopping)
            self._waiting.append((number, changes, rows, time.monotonic()))
            self._waiting_rows += rows
            self._changed.notify_all()

    def catch_up(self, timeout_s: float | None = None) -> None:
        """Wait until the file holds every batch logged so far; LedgerBehind if not
        within `timeout_s` (default CATCH_UP_S)."""
        if self.applied >= self.logged:  # the usual case, without the lock
            return
        timeout_s = CATCH_UP_S if timeout_s is None else timeout_s
        with self._changed:
            target = self.logged
            self._readers += 1
            self._changed.notify_all()
            try:
                caught_up = self._changed.wait_for(lambda: self.applied >= target, timeout_s)
            finally:
                self._readers -= 1
            if not caught_up:
                raise LedgerBehind(self._store.path, target - self.applied, timeout_s,
                                   self.failure)  # fmt: skip

    def stop(self, timeout_s: float) -> bool:
        """Apply what waits, then stop; False if it could not within `timeout_s` (what
        is left stays in the log, applied when the file is next opened)."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join(timeout=timeout_s)
        return not self._thread.is_alive() and self.applied == self.logged

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        cur = self._store.cursor(barrier=False)
        try:
            while True:
                batches = self._take()
                if not batches:
                    return
                if not self._apply(cur, batches):
                    return
        finally:
            cur.close()

    def _take(self) -> list[tuple[int, Changes]]:
        """Wait until logged batches are due (see the module) and take them, up to
        MAX_APPLY_ROWS (at least one); none when stopping."""
        with self._changed:
            while not self._due():
                wait_s = None
                if self._waiting:
                    wait_s = self._waiting[0][3] + APPLY_DELAY_S - time.monotonic()
                self._changed.wait(wait_s)
            taken, rows = [], 0
            while self._waiting and (not taken or rows + self._waiting[0][2] <= MAX_APPLY_ROWS):
                number, changes, count, _ = self._waiting.popleft()
                taken.append((number, changes))
                rows += count
            return taken

    def _due(self) -> bool:
        if not self._waiting:
            return self._stopping
        if self._stopping or self._readers:
            return True
        oldest = self._waiting[0][3]
        return self._waiting_rows >= APPLY_ROWS or time.monotonic() >= oldest + APPLY_DELAY_S

    def _apply(self, cur: duckdb.DuckDBPyConnection, batches: list[tuple[int, Changes]]) -> bool:
        """Write the batches in one transaction, retrying until it commits; False when
        stopping with it still failing."""
        while True:
            try:
                cur.execute("BEGIN")
                bulk_floor = _write(cur, batches)
                if self.before_apply is not None:
                    self.before_apply(cur)
                cur.execute("COMMIT")
                break
            except Exception as error:
                rollback(cur)
                self.failure = describe(error)
                logger.warning("applying %d logged batch(es) failed: %s", len(batches), error)
                if self._stopping:
                    return False
                time.sleep(RETRY_PAUSE_S)
        if bulk_floor is not None:
            marks.mark_committed(cur, bulk_floor)
        rows = sum(changes.count() for _, changes in batches)
        with self._changed:
            self.applied = batches[-1][0]
            self._waiting_rows -= rows
            self.failure = None
            self.apply_sizes.append(len(batches))
            self._changed.notify_all()
        return True
