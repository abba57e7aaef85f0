"""What the writer decides with: a queued write (`Command`) and its answer
(`WriteFuture`), the `Context` a command decides in (the kept accounts, the batch, and a
cursor for the rest), and what logged batches changed that the file may not hold yet
(`Unapplied`). The writer (writer.py) owns the thread and the batches; commands.py
builds the commands.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb

from credits_core.ledger import holds
from credits_core.ledger.batch import Batch, KeyRecord
from credits_core.ledger.errors import UnknownAccount, UnknownTransaction
from credits_core.ledger.listeners import Touched
from credits_core.ledger.state import Accounts, AccountState
from credits_core.ledger.values import Balance, Reservation

if TYPE_CHECKING:
    from credits_core.ledger.bulk import Booked

logger = logging.getLogger(__name__)


_CALLBACKS = threading.Lock()  # guards every WriteFuture's callbacks (held for moments)


class WriteFuture:
    """A write's answer, set once by the writer: its result or its typed error.

    `result(timeout)`, `exception(timeout)`, `done()` and `add_done_callback(fn)` behave
    as a `concurrent.futures.Future`'s; waiting is one lock, released once answered.
    (A Future costs a Condition and its RLock per write: under /v1/batch, a tenth of
    the event loop's time.) Once done, `balance` is the balance of the account the write
    decided on, as that write left it (None for set-based writes and for a keyed write
    answered from its first result): callers need not read it back."""

    __slots__ = ("_answered", "_callbacks", "_done", "_error", "_result", "balance")

    def __init__(self) -> None:
        self._answered = threading.Lock()
        self._answered.acquire()
        self._callbacks: list[Callable[[WriteFuture], None]] = []
        self._done = False
        self._result: Any = None
        self._error: BaseException | None = None
        self.balance: Balance | None = None

    def done(self) -> bool:
        return self._done

    def set_result(self, result: Any) -> None:
        self._result = result
        self._finish()

    def set_exception(self, error: BaseException) -> None:
        self._error = error
        self._finish()

    def add_done_callback(self, callback: Callable[[WriteFuture], None]) -> None:
        """Call `callback(self)` once answered: at once if it is, else on the writer's
        thread."""
        with _CALLBACKS:
            if not self._done:
                self._callbacks.append(callback)
                return
        callback(self)

    def result(self, timeout: float | None = None) -> Any:
        self._wait(timeout)
        if self._error is not None:
            raise self._error
        return self._result

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._wait(timeout)
        return self._error

    def _wait(self, timeout: float | None) -> None:
        if self._done:
            return
        if not self._answered.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError(f"the write was not answered within {timeout} s")
        self._answered.release()

    def _finish(self) -> None:
        with _CALLBACKS:
            assert not self._done, "a write is answered once"
            self._done = True
            callbacks, self._callbacks = self._callbacks, []
        self._answered.release()
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                logger.exception("a write's done-callback failed")


@dataclass(eq=False)
class Command:
    """One write, queued. Exactly one is set of `decide` (in memory, batched), `work`
    (SQL, alone in its own transaction) and `book` (decided alone on the file, giving
    its result and what it booked, then logged like a batch)."""

    operation: str
    now: datetime
    decide: Callable[[Context], Any] | None = None
    work: Callable[[duckdb.DuckDBPyConnection], Any] | None = None
    book: Callable[[duckdb.DuckDBPyConnection], tuple[Any, Booked | None]] | None = None
    key: str | None = None
    fingerprint: str = ""
    # A keyed write's first result: for `decide`, encode gives a JSON value and decode
    # takes it back; for `work`, encode gives idempotency.remember's keywords and decode
    # takes an idempotency.Stored.
    encode: Callable[[Any], Any] = lambda result: result
    decode: Callable[[Any], Any] = lambda stored: stored
    touched: Callable[[Any], Touched] | None = None  # None: changes no balance
    user_ids: tuple[str, ...] = ()  # accounts to load before deciding
    account_nos: tuple[int, ...] = ()
    future: WriteFuture = field(default_factory=WriteFuture)


class Unapplied:
    """The logged batches the file may not hold yet, newest last, for the decisions
    that would otherwise read the file: a hold changed (placed, resolved, extended),
    the first result of a keyed write, a refund. Lookups go through the batches newest
    first; they are rare (a hold closed since it was kept, a keyed write, a refund),
    and a batch goes once the file holds it."""

    def __init__(self) -> None:
        self._batches: deque[tuple[int, Batch]] = deque()

    def add(self, number: int, batch: Batch) -> None:
        self._batches.append((number, batch))

    def forget(self, applied: int) -> None:
        """Drop the batches the file holds now (up to `applied`)."""
        while self._batches and self._batches[0][0] <= applied:
            self._batches.popleft()

    def clear(self) -> None:
        self._batches.clear()

    def hold(self, transaction_id: str) -> Reservation | None:
        for _, batch in reversed(self._batches):
            hold = batch.hold(transaction_id)
            if hold is not None:
                return hold
        return None

    def key(self, key: str) -> KeyRecord | None:
        for _, batch in reversed(self._batches):
            first = batch.keys.get(key)
            if first is not None:
                return first[0]
        return None

    def refunded_at(self, transaction_id: str) -> datetime | None:
        for _, batch in reversed(self._batches):
            at = batch.refunded.get(transaction_id)
            if at is not None:
                return at
        return None


class Context:
    """What a command decides with: the kept accounts, the batch, what logged batches
    changed that the file may not hold yet, and a cursor for reading the rest."""

    def __init__(
        self,
        cur: duckdb.DuckDBPyConnection,
        accounts: Accounts,
        batch: Batch,
        unapplied: Unapplied,
    ) -> None:
        self.cur = cur
        self.accounts = accounts
        self.batch = batch
        self.unapplied = unapplied
        self.stored_keys: dict[str, KeyRecord] = {}
        self.touched: AccountState | None = None  # the account the command decides on

    def account(self, user_id: str) -> AccountState:
        state = self.accounts.get(user_id)
        if state is None:
            self.accounts.load(self.cur, user_ids=[user_id])
            state = self.accounts.get(user_id)
        if state is None:
            raise UnknownAccount(user_id)
        self.touched = state
        return state

    def hold(self, transaction_id: str) -> tuple[Reservation, AccountState]:
        """The hold as it stands now: pending (kept), changed in this batch or in one
        the file may not hold yet, or closed (read from the file). UnknownTransaction,
        or TransactionClosed for bulk usage."""
        account_no = holds.account_of_hold(transaction_id)
        state = None
        if account_no is not None:
            state = self.accounts.get_no(account_no)
            if state is None:
                self.accounts.load(self.cur, account_nos=[account_no])
                state = self.accounts.get_no(account_no)
        if state is not None:
            hold = (
                state.pending.get(transaction_id)
                or self.batch.hold(transaction_id)
                or self.unapplied.hold(transaction_id)
                or holds.load(self.cur, transaction_id)
            )
            if hold is not None:
                self.touched = state
                return hold, state
        holds.refuse_bulk(self.cur, transaction_id)
        raise UnknownTransaction(transaction_id)

    def refunded_at(self, transaction_id: str) -> datetime | None:
        """When this batch or a logged one the file may not hold yet refunded the
        transaction (None: look in the file)."""
        refunded = self.batch.refunded.get(transaction_id)
        return refunded or self.unapplied.refunded_at(transaction_id)
