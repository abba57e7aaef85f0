"""The writer: one thread per ledger file per process that decides and logs every write.

Callers turn each write into a `Command` and queue it (a bounded queue: when it stays
full for `PUT_TIMEOUT_S` the call raises `WriterBusy`). The writer takes whatever is
queued, up to `MAX_BATCH_COMMANDS`, and decides each command in order against the
accounts it keeps in memory (state.py): that state is authoritative, since every write
of the process comes through here and DuckDB's lock keeps other processes out. What
the commands decided (batch.py, frozen as changes.py) is appended to the redo log as
one record and synced (redo.py); only then is each caller answered, so an acknowledged
write is a durable one. The applier (applier.py) puts the logged batches into the
DuckDB file behind the writer, many per transaction, and every read waits until the
file holds what was acknowledged before it.

- A command that breaks a rule (InsufficientCredits, TransactionClosed, an unknown
  account, an idempotency conflict, bad input) fails alone; it changed nothing.
- If the batch cannot be decided or logged, every caller of the batch gets one
  `WriteFailed`, nothing is logged, and the writer drops its state (reloaded on demand,
  once the file holds every logged batch) and goes on.
- Deciding reads the file only for what the kept accounts do not hold (an account not
  kept, a closed hold, a stored first result). What logged batches changed there but
  the file may not hold yet is kept aside (`Unapplied`) and read first, and an account
  is never dropped from memory while a batch that changed it is unapplied.
- A set-based write that is not decided in memory runs alone, once the file holds
  every logged batch, and the kept state is dropped. Sweeps and bulk grants run in
  their own DuckDB transaction. Bulk usage is decided on the file (it only reads it)
  and what it booked is logged as one record, answered, and put in the file by the
  applier like a batch: its caller does not wait for DuckDB's append. (Other modules'
  `Ledger.side_write()` work, which never writes the ledger's tables, runs beside the
  writer: see ledger.py.)

Balance listeners are told once per logged batch, with the users it touched, on a
thread of their own: a slow listener never delays a write.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from credits_core.errors import CreditsError
from credits_core.ledger import idempotency, marks
from credits_core.ledger.applier import Applier, replay
from credits_core.ledger.batch import Batch, KeyRecord
from credits_core.ledger.changes import FRAME_KEYS, Changes
from credits_core.ledger.context import Command, Context, Unapplied, WriteFuture
from credits_core.ledger.errors import (
    IdempotencyConflict,
    LedgerClosed,
    LedgerError,
    WriteFailed,
    WriterBusy,
)
from credits_core.ledger.inbox import Full, Inbox
from credits_core.ledger.listeners import Notifier
from credits_core.ledger.redo import RedoLog, has_records
from credits_core.ledger.state import Accounts
from credits_core.ledger.store import Store, describe, rollback

logger = logging.getLogger(__name__)

QUEUE_COMMANDS = 16_384  # commands waiting at most
MAX_BATCH_COMMANDS = 4_096  # commands one commit decides at most
PUT_TIMEOUT_S = 5.0  # how long a call waits for room in a full queue
LOG_LIMIT_BYTES = 64 * 2**20  # past this the log is emptied, once the file holds it all
DRAIN_S = 60.0  # how long the writer waits for the file to hold every logged batch


_STOP = object()


class Writer:
    """The one writer of a ledger file in this process (see the module's docstring)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._inbox = Inbox(QUEUE_COMMANDS)
        self._accounts = Accounts()
        self._unapplied = Unapplied()
        self._stale = False  # the kept state was dropped before the file held every batch
        self._closed = False
        self._close_lock = threading.Lock()
        self._log = RedoLog.for_database(store.path)
        try:
            self.applier = Applier(store, replay(store, self._log))
        except BaseException:
            self._log.close()
            raise
        store.barrier = self.applier.catch_up
        self.notifier = Notifier()
        self.batch_sizes: deque[int] = deque(maxlen=100_000)  # commands per logged batch
        # Test hook: called with the writer's cursor once a batch is decided, before it
        # is logged (and inside the transaction of a write that runs alone).
        self.before_commit: Callable[[duckdb.DuckDBPyConnection], None] | None = None
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    def submit(self, command: Command) -> WriteFuture:
        """Queue the command; its future resolves once its batch is durable."""
        [queued] = self.submit_many([command])
        if isinstance(queued, WriterBusy):
            raise queued
        return queued

    def submit_many(self, commands: list[Command]) -> list[WriteFuture | WriterBusy]:
        """Queue the commands in order, together (one wake-up of the writer, which then
        decides them in one batch); each place holds its future, or WriterBusy for those
        that found no room within PUT_TIMEOUT_S."""
        if self._closed:
            raise LedgerClosed()
        queued: list[WriteFuture | WriterBusy] = []
        for start in range(0, len(commands), MAX_BATCH_COMMANDS):
            part = commands[start : start + MAX_BATCH_COMMANDS]
            try:
                self._inbox.put_many(part, PUT_TIMEOUT_S)
                queued += [command.future for command in part]
            except Full:
                busy = WriterBusy(self._store.path, len(self._inbox), PUT_TIMEOUT_S)
                queued += [busy] * len(part)
        return queued

    def close(self, timeout_s: float = 60.0) -> None:
        """Log what is queued, put every logged batch in the file, then stop; later
        submissions raise LedgerClosed."""
        with self._close_lock:
            if self._closed:
                return
            self.notifier.drain(timeout_s)
            self._closed = True
            self._inbox.put(_STOP, timeout_s=None)
        self._thread.join(timeout=timeout_s)
        self._store.barrier = None
        if self.applier.stop(timeout_s):
            self._log.remove()
        else:
            self._log.close()
        self.notifier.stop(timeout_s)

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        cur = self._store.cursor(barrier=False)
        try:
            while True:
                commands, stop = self._take()
                try:
                    self._process(cur, commands)
                except Exception as error:  # a bug: answer everyone, keep serving
                    logger.exception("the ledger writer failed; its state is reloaded")
                    self._drop_state()
                    failed = WriteFailed(len(commands), describe(error))
                    for command in commands:
                        if not command.future.done():
                            command.future.set_exception(failed)
                if stop:
                    return
        finally:
            cur.close()

    def _take(self) -> tuple[list[Command], bool]:
        """Block for the first command, then take what else is queued (bounded); and
        whether the writer was told to stop (nothing is queued after that)."""
        commands = self._inbox.take(MAX_BATCH_COMMANDS)
        if _STOP not in commands:
            return commands, False
        at = commands.index(_STOP)
        for late in commands[at + 1 :]:  # queued by a call that raced close()
            late.future.set_exception(LedgerClosed())
        return commands[:at], True

    def _process(self, cur: duckdb.DuckDBPyConnection, commands: list[Command]) -> None:
        batch: list[Command] = []
        for command in commands:
            if command.decide is not None:
                batch.append(command)
                continue
            self._commit(cur, batch)
            batch = []
            if command.work is not None:
                self._run_alone(cur, command)
            else:
                self._log_alone(cur, command)
        self._commit(cur, batch)

    def _commit(self, cur: duckdb.DuckDBPyConnection, commands: list[Command]) -> None:
        """Decide the commands in order, log what they decided, answer, hand it on."""
        if not commands:
            return
        batch = Batch()
        outcomes: list[tuple[bool, Any]] = []
        try:
            self._fresh_state()
            context = Context(cur, self._accounts, batch, self._unapplied)
            self._prepare(context, commands)
            for command in commands:
                outcomes.append(self._decide(context, command))
            if self.before_commit is not None:
                self.before_commit(cur)
            changes = batch.changes()
            number = self._log_batch(batch, changes)
        except Exception as error:
            self._drop_state()
            failed = WriteFailed(len(commands), describe(error))
            logger.warning("ledger batch of %d commands failed: %s", len(commands), error)
            for command in commands:
                command.future.set_exception(failed)
            return
        self.batch_sizes.append(len(commands))
        self._answer(commands, outcomes)
        if number is not None:
            self.applier.put(number, changes)

    def _log_batch(self, batch: Batch, changes: Changes) -> int | None:
        """Append the batch to the redo log and sync it; its number, or None when it
        changed nothing."""
        if changes.empty:
            return None
        number = self._append(changes)
        for state in (*batch.accounts.values(), *batch.new_accounts):
            state.logged = number
        self._unapplied.add(number, batch)
        return number

    def _append(self, changes: Changes) -> int:
        """Append the changes to the redo log as the next batch, synced; its number."""
        if self._log.size_bytes > LOG_LIMIT_BYTES:
            self._drain()
            self._log.empty()
        number = self.applier.logged + 1
        self._log.append(number, changes)
        self.applier.logged_up_to(number)
        return number

    def _answer(self, commands: list[Command], outcomes: list[tuple[bool, Any]]) -> None:
        """Tell the listeners first, then the callers: a caller that waits for the
        listeners once answered finds its write among what they are told."""
        touched: set[str] = set()
        everyone = False
        for command, (ok, value) in zip(commands, outcomes, strict=True):
            if ok and command.touched is not None:
                users = command.touched(value)
                everyone = everyone or users is None
                touched |= users or set()
        if everyone or touched:
            self.notifier.publish(None if everyone else frozenset(touched))
        for command, (ok, value) in zip(commands, outcomes, strict=True):
            if ok:
                command.future.set_result(value)
            else:
                command.future.set_exception(value)

    def _fresh_state(self) -> None:
        """Before deciding: forget what the file now holds, and drop the least recently
        used accounts beyond capacity; after a dropped state, first wait for the file."""
        if self._stale:
            self._drain()
            self._accounts.clear()
            self._unapplied.clear()
            self._stale = False
        applied = self.applier.applied
        self._unapplied.forget(applied)
        self._accounts.trim(applied)

    def _drop_state(self) -> None:
        """Deciding changed kept accounts that were then not logged: drop them all (they
        are reloaded from the file, once it holds every logged batch)."""
        self._accounts.clear()
        self._unapplied.clear()
        self._stale = True

    def _drain(self) -> None:
        """Wait until the file holds every logged batch."""
        self.applier.catch_up(DRAIN_S)

    def _prepare(self, context: Context, commands: list[Command]) -> None:
        """Load, in a few statements, the accounts and first results the batch needs."""
        self._accounts.load(
            context.cur,
            user_ids=[u for c in commands for u in c.user_ids],
            account_nos=[n for c in commands for n in c.account_nos],
        )
        keys = sorted({c.key for c in commands if c.key is not None
                       and self._unapplied.key(c.key) is None})  # fmt: skip
        if keys:
            context.stored_keys = idempotency.recall_many(context.cur, keys)

    def _decide(self, context: Context, command: Command) -> tuple[bool, Any]:
        """(True, result) or (False, the rule it broke); anything else fails the batch.
        The command's future gets the balance its account is left with."""
        context.touched = None
        try:
            if command.key is not None:
                record = self._first_result(context, command.key)
                if record is not None:
                    if (record.operation, record.fingerprint) != (
                        command.operation,
                        command.fingerprint,
                    ):
                        raise IdempotencyConflict(command.key, command.operation, record.operation)
                    return True, command.decode(record.result)
            result = command.decide(context)
            if command.key is not None:
                record = KeyRecord(command.operation, command.fingerprint, command.encode(result))
                context.batch.remember(command.key, record, command.now)
            if context.touched is not None:
                command.future.balance = context.touched.balance(command.now)
            return True, result
        except LedgerError as rule:  # bad input too: checks.py raises LedgerErrors
            return False, rule

    def _first_result(self, context: Context, key: str) -> KeyRecord | None:
        first = context.batch.keys.get(key)
        if first is not None:
            return first[0]
        logged = self._unapplied.key(key)
        return logged if logged is not None else context.stored_keys.get(key)

    def _run_alone(self, cur: duckdb.DuckDBPyConnection, command: Command) -> None:
        """A set-based write in its own transaction (see the module's docstring)."""
        try:
            self._drain()
            cur.execute("BEGIN")
            floor = marks.journal_length(cur)
            result = self._keyed_work(cur, command)
            if self.before_commit is not None:
                self.before_commit(cur)
            cur.execute("COMMIT")
        except Exception as error:
            rollback(cur)
            self._drop_state()
            _fail_alone(command, error)
            return
        self._accounts.clear()  # it wrote accounts the kept state does not know of
        self._unapplied.clear()  # the file held every logged batch before it ran
        self._mark_appended(floor)
        self._answer_alone(command, result)

    def _log_alone(self, cur: duckdb.DuckDBPyConnection, command: Command) -> None:
        """A set-based write decided alone on the file (it only reads it), then logged
        and answered like a batch; the applier puts it in the file behind the answer."""
        assert command.book is not None
        try:
            self._drain()
            cur.execute("BEGIN")  # one snapshot for every read of the decision
            try:
                result, changes = self._booked(cur, command)
                if self.before_commit is not None:
                    self.before_commit(cur)
            finally:
                rollback(cur)
            number = None if changes.empty else self._append(changes)
        except Exception as error:
            _fail_alone(command, error)
            return
        if number is not None:
            self._drop_state()  # the kept accounts miss what it booked: reloaded later
        self._answer_alone(command, result)
        if number is not None:
            self.applier.put(number, changes)

    def _answer_alone(self, command: Command, result: Any) -> None:
        """Answer a write that ran alone: its listeners first, as in _answer."""
        self.batch_sizes.append(1)
        if command.touched is not None:
            self.notifier.publish(command.touched(result))
        command.future.set_result(result)

    def _booked(self, cur: duckdb.DuckDBPyConnection, command: Command) -> tuple[Any, Changes]:
        """The command's result and the changes it makes: its first result, when keyed
        and already used (no changes); else what it booked and, when keyed, its key."""
        assert command.book is not None
        changes = Changes()
        if command.key is not None:
            stored = idempotency.recall(cur, command.key, command.operation, command.fingerprint)
            if stored is not None:
                return command.decode(stored), changes
        result, booked = command.book(cur)
        if booked is not None:
            changes.usage.append(booked)
        if command.key is not None:
            blob = idempotency.frame_blob(result)
            first = (command.key, command.operation, command.fingerprint, blob, command.now)
            changes.add(FRAME_KEYS, [first])
        return result, changes

    def _mark_appended(self, floor: int) -> None:
        """History marks of what a write run alone appended (see marks.py)."""
        cur = self._store.cursor(barrier=False)
        try:
            marks.mark_committed(cur, floor)
        finally:
            cur.close()

    def _keyed_work(self, cur: duckdb.DuckDBPyConnection, command: Command) -> Any:
        if command.key is None:
            return command.work(cur)
        stored = idempotency.recall(cur, command.key, command.operation, command.fingerprint)
        if stored is not None:
            return command.decode(stored)
        result = command.work(cur)
        idempotency.remember(
            cur, command.key, command.operation, command.fingerprint, command.now,
            **command.encode(result),
        )  # fmt: skip
        return result


def _fail_alone(command: Command, error: Exception) -> None:
    """Fail a write that ran alone: with its typed error, or, for anything else (its
    SQL, the log), WriteFailed."""
    if not isinstance(error, CreditsError | ValueError | TypeError):
        error = WriteFailed(1, describe(error))
    command.future.set_exception(error)


# ---------------------------------------------------------------------- one per file


@dataclass(eq=False)
class Shared:
    """A ledger file as this process has it open: one store, one writer, for every
    `Ledger` of the file (":memory:" ledgers are never shared)."""

    key: str
    store: Store
    writer: Writer | None  # None when read-only
    users: int = 1
    # Other modules' transactions (alerts) run beside the writer, one at a time.
    side_lock: threading.Lock = field(default_factory=threading.Lock)


_shared: dict[str, Shared] = {}
_shared_lock = threading.Lock()


def open_shared(path: str, now: datetime, *, read_only: bool, wait_s: float) -> Shared:
    """The file's store and writer, opened now or shared with the Ledgers that have it."""
    key = path if path == ":memory:" else os.path.realpath(path)
    with _shared_lock:
        found = _shared.get(key)
        if found is not None and found.store.read_only == read_only:
            found.users += 1
            return found
        if read_only and has_records(path):  # batches a killed writer logged, unapplied
            _replay_only(path, now, wait_s)
        store = Store.open(path, now, read_only=read_only, wait=wait_s)
        try:
            shared = Shared(key, store, None if read_only else Writer(store))
        except BaseException:
            store.close()
            raise
        if path != ":memory:":
            _shared[key] = shared
        return shared


def _replay_only(path: str, now: datetime, wait_s: float) -> None:
    """Open the file for writing just to apply its redo log, so that a read-only open
    sees every acknowledged write."""
    store = Store.open(path, now, read_only=False, wait=wait_s)
    log = RedoLog.for_database(path)
    try:
        replay(store, log)
    finally:
        log.close()
        store.close()


def release(shared: Shared) -> None:
    """One Ledger is done with the file: the last one commits what is queued and closes."""
    with _shared_lock:
        shared.users -= 1
        if shared.users > 0:
            return
        if _shared.get(shared.key) is shared:
            del _shared[shared.key]
    if shared.writer is not None:
        shared.writer.close()
    shared.store.close()
