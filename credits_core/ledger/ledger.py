"""`Ledger`: the public face of the reservation ledger.

Each method checks its arguments in the caller's thread (typed errors, nothing
written) and takes the time from the clock once. A read runs on its own snapshot; a
write becomes a command (commands.py) for the file's one writer (writer.py), and
returns once the commit that holds it is done. `submit()` queues a write and returns
its future, for callers that wait asynchronously (the HTTP API).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import duckdb
import pandas as pd

from credits_core.ledger import (
    checks,
    commands,
    grants,
    holds,
    invariants,
    reads,
)
from credits_core.ledger.commands import DEFAULT_TTL, QuoteLike
from credits_core.ledger.context import Command, WriteFuture
from credits_core.ledger.directory import Directory
from credits_core.ledger.errors import (
    InsufficientCredits,
    LedgerClosed,
    LedgerError,
    ReadOnlyLedger,
)
from credits_core.ledger.ledger_reports import LedgerReports
from credits_core.ledger.listeners import BalanceListener
from credits_core.ledger.store import Store, default_path
from credits_core.ledger.values import (
    Account,
    Balance,
    Entry,
    Grant,
    Reservation,
    Sweep,
)
from credits_core.ledger.writer import (
    Shared,
    Writer,
    open_shared,
    release,
)

T = TypeVar("T")
Clock = Callable[[], datetime]
Call = tuple[str, tuple[Any, ...], dict[str, Any]]  # a write: operation, arguments, keywords
LISTENER_DRAIN_S = 30.0


def system_clock() -> datetime:
    return datetime.now(UTC)


class Ledger(LedgerReports):
    """Balances, grants, holds and the journal of every user, in one DuckDB file.

    Safe to share between threads, and several Ledgers of one file in one process
    share its store and its writer.
    """

    def __init__(self, shared: Shared, clock: Clock) -> None:
        self._shared = shared
        self._store: Store = shared.store
        self._clock = clock
        self._closing = False
        self._closed = False
        self._directory = Directory()
        self._listeners: list[BalanceListener] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        *,
        clock: Clock | None = None,
        read_only: bool = False,
        wait: float = 0.0,
    ) -> Ledger:
        """Open (or create) a ledger file; ":memory:" for a throwaway one.

        `path` defaults to $CREDITS_DB or data/credits.duckdb. If another process holds
        the file, wait up to `wait` seconds, then raise `LedgerBusy` naming it. An older
        ledger is upgraded in one transaction; a file that is not a ledger raises
        `NotALedger`. Ledgers of one file in one process share its writer.
        """
        clock = clock or system_clock
        now = checks.moment(clock(), "clock()")
        shared = open_shared(
            str(path or default_path()),
            now,
            read_only=read_only,
            wait_s=checks.wait_seconds(wait),
        )
        return cls(shared, clock)

    def close(self) -> None:
        """Commit what is queued (when this is the file's last Ledger) and close."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        writer = self._shared.writer
        if self._listeners:  # they hear every write made so far, and may still write
            writer.notifier.drain(LISTENER_DRAIN_S)
            for listener in self._listeners:
                writer.notifier.listeners.remove(listener)
        self._closed = True
        release(self._shared)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def path(self) -> str:
        return self._store.path

    @property
    def read_only(self) -> bool:
        return self._store.read_only

    @property
    def writer(self) -> Writer:
        """The file's writer (its batch sizes; a test hook before each commit)."""
        return self._open_writer("writing")

    def now(self) -> datetime:
        """The ledger's clock, as an aware UTC datetime."""
        return checks.moment(self._clock(), "clock()")

    def on_balance_change(self, listener: BalanceListener) -> Callable[[], None]:
        """Call `listener(user_ids)` once per committed batch of writes that may have
        changed balances: the users it touched (a sweep names those whose holds or grants
        it expired; None only when a bulk write cannot say). Listeners run on a thread of
        their own, so they never delay a write; a listener that raises is logged and
        ignored. Returns a function that removes the listener."""
        listeners = self._open_writer("listening").notifier.listeners
        listeners.append(listener)
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)
                listeners.remove(listener)

        return remove

    def wait_for_listeners(self, timeout_s: float = LISTENER_DRAIN_S) -> bool:
        """Wait until the balance listeners have heard every committed write; False if
        they are still busy after `timeout_s`."""
        return self._open_writer("listening").notifier.drain(timeout_s)

    def side_write(self, operation: str, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `work(cursor)` as a side write: one DuckDB write transaction of this ledger's
        file, for modules that keep their own tables in it (alerts). `work` must not write
        the ledger's own tables, so it cannot disturb what the writer keeps: it runs beside
        the writer, on a cursor of its own, one side write at a time. Holding the writer
        instead cost 4.5x the pairs/s while alerts were evaluated (bench: alert evaluation
        beside 32 writing threads). Listeners are not called."""
        store = self._open_store()
        self._open_writer(operation)  # a read-only ledger refuses, as for any write
        with self._shared.side_lock:
            return store.transaction(work)

    def snapshot(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `work(cursor)` in one read transaction (one consistent snapshot)."""
        return self._open_store().read(work)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of this ledger's connection, outside any transaction, for work the
        ledger API does not cover and that never writes the ledger's tables (the export
        copies a snapshot into another file with it). Close it when done."""
        return self._open_store().cursor()

    def submit(self, operation: str, /, *args: Any, **kwargs: Any) -> WriteFuture:
        """Queue the write `operation` (a write method's name: "reserve", "confirm",
        "grant", ...) with that method's arguments, and return its `WriteFuture`.

        The arguments are checked now (raising the method's typed errors at once); the
        future is answered once the write is durable, with its result or its typed
        error. Callers that wait asynchronously use `add_done_callback` (the server
        wakes its event loop from it with `call_soon_threadsafe`)."""
        return self._submit(commands.build(operation, self.now(), *args, **kwargs))

    def submit_many(self, calls: Iterable[Call]) -> list[WriteFuture | LedgerError]:
        """Queue many writes, each `(operation, args, keywords)` as submit() takes them,
        all at one instant (the clock is read once: a batch of requests is one moment).
        Each is checked on its own: one whose arguments break a rule gets its typed error
        in its place, and the others are queued."""
        now = self.now()
        built: list[Command | LedgerError] = []
        for operation, args, keywords in calls:
            try:
                built.append(commands.build(operation, now, *args, **keywords))
            except LedgerError as error:
                built.append(error)
        ready = [c for c in built if isinstance(c, Command)]
        try:  # all at once: the writer decides them together
            writer = self._open_writer(ready[0].operation) if ready else None
            queued = iter(writer.submit_many(ready) if writer else [])
        except LedgerError as error:
            queued = iter([error] * len(ready))
        return [next(queued) if isinstance(c, Command) else c for c in built]

    # ------------------------------------------------------------------ accounts

    def create_account(
        self,
        user_id: str,
        *,
        email: str | None = None,
        plan: str | None = None,
        idempotency_key: str | None = None,
    ) -> Account:
        """Open an account. The same details again return it; other details raise."""
        return self._call(
            commands.create_account(self.now(), user_id, email, plan, idempotency_key)
        )

    def create_accounts(self, accounts: pd.DataFrame, *, idempotency_key: str | None = None) -> int:
        """Open many accounts (columns user_id, optional email, plan): all or none."""
        return self._call(commands.create_accounts(self.now(), accounts, idempotency_key))

    def account(self, user_id: str) -> Account:
        user_id = checks.user_id(user_id)
        return self._open_store().read(lambda cur: reads.account(cur, user_id))

    # ------------------------------------------------------------------ grants

    def grant(
        self,
        user_id: str,
        credits: int,
        *,
        kind: str,
        expires_at: datetime | None = None,
        priority: int | None = None,
        reason: str | None = None,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> Grant:
        """Give credits. `priority` defaults by kind (lower burns first): adjustment 0,
        promo 10, plan 20, topup 30. A grant is spendable until `expires_at`."""
        return self._call(
            commands.grant(self.now(), user_id, credits, kind, expires_at, priority, reason, actor,
                        idempotency_key)
        )  # fmt: skip

    def grant_many(
        self, grants_frame: pd.DataFrame, *, idempotency_key: str | None = None
    ) -> pd.DataFrame:
        """Give many grants (columns user_id, credits, kind; optional expires_at,
        priority, reason, actor). Every row is checked first; all are written or none,
        and InvalidBatch names the bad rows. Returns one row per grant with its id."""
        return self._call(commands.grant_many(self.now(), grants_frame, idempotency_key))

    def grants(self, user_id: str) -> list[Grant]:
        """The user's grants in burn order, spent and expired ones included."""
        user_id = checks.user_id(user_id)

        def read(cur: duckdb.DuckDBPyConnection) -> list[Grant]:
            reads.account_no(cur, user_id)
            return grants.listing(cur, user_id)

        return self._open_store().read(read)

    def expire_grants(self, now: datetime | None = None) -> Sweep:
        """Book the credits left in grants whose expiry is at or before `now` out of the
        balance (one `grant_expired` entry each). Running it again books nothing."""
        return self._sweep(commands.expire_grants(self.now(), now), grants.any_lapsed)

    # ------------------------------------------------------------------ holds

    def validate(self, user_id: str, credits: int) -> Balance:
        """Raise InsufficientCredits unless `credits` fit the available balance now."""
        user_id = checks.user_id(user_id)
        credits = checks.credits(credits)
        balance = self.balance(user_id)
        if credits > balance.available:
            raise InsufficientCredits(credits, balance.available)
        return balance

    def reserve(
        self,
        user_id: str,
        credits: int | None = None,
        *,
        reason: str = "generation",
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        ttl: timedelta = DEFAULT_TTL,
        quote: QuoteLike | None = None,
        actor: str | None = None,
    ) -> Reservation:
        """Hold credits for one generation until confirm() or its expiry (now + ttl).

        With a pricing `quote`, credits default to quote.credits (and must equal it if
        given) and the hold keeps the model, options and price book version. Without
        one, the model is metadata["model"] when present.
        """
        return self._call(
            commands.reserve(
                self.now(), user_id, credits, reason, metadata, idempotency_key, ttl, quote, actor
            )
        )

    def confirm(
        self,
        transaction_id: str,
        *,
        success: bool,
        credits: int | None = None,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> Reservation:
        """Resolve a pending hold: capture it (all, or `credits` of it; the rest returns)
        on success, release it on failure. Confirming again with the same outcome
        returns the same result; another outcome raises TransactionClosed. At or after
        the hold's expires_at it raises HoldExpired (see holds.py)."""
        return self._call(
            commands.confirm(self.now(), transaction_id, success, credits, actor, idempotency_key)
        )

    def extend(
        self,
        transaction_id: str,
        ttl: timedelta,
        *,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> Reservation:
        """Renew a pending hold's lease: it now expires at now + ttl. Refused (with
        TransactionClosed / HoldExpired) once the hold is closed or has expired."""
        return self._call(commands.extend(self.now(), transaction_id, ttl, actor, idempotency_key))

    def reservation(self, transaction_id: str) -> Reservation:
        """A hold as stored (a pending hold past expires_at can no longer be confirmed)."""
        transaction_id = checks.transaction_id(transaction_id)
        return self._open_store().read(lambda cur: holds.require(cur, transaction_id))

    def expire_holds(self, now: datetime | None = None) -> Sweep:
        """Expire every pending hold whose expires_at is at or before `now`: its credits
        go back to its grants (or expire with them). Running it again books nothing."""
        return self._sweep(commands.expire_holds(self.now(), now), holds.any_lapsed)

    # ------------------------------------------------------------------ corrections

    def adjust(
        self,
        user_id: str,
        credits: int,
        *,
        reason: str,
        actor: str,
        idempotency_key: str | None = None,
    ) -> Entry:
        """Add (a new adjustment grant) or remove (from available credits) credits."""
        return self._call(
            commands.adjust(self.now(), user_id, credits, reason, actor, idempotency_key)
        )

    def refund(
        self,
        transaction_id: str,
        *,
        reason: str,
        actor: str,
        idempotency_key: str | None = None,
    ) -> Entry:
        """Give back what a captured hold (or booked usage) spent, once."""
        return self._call(
            commands.refund(self.now(), transaction_id, reason, actor, idempotency_key)
        )

    # ------------------------------------------------------------------ reads

    def balance(self, user_id: str) -> Balance:
        user_id = checks.user_id(user_id)
        now = self.now()
        return self._open_store().read(lambda cur: reads.balance(cur, user_id, now))

    def history(
        self,
        user_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kinds: Iterable[str] | str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> pd.DataFrame:
        """The user's journal newest first (since <= ts < until; limit=None for all;
        `offset` entries skipped, for paging).

        Columns: ts, kind, credits (change of the total), held (change of held credits),
        balance_after, held_after, available_after, transaction_id, grant_id, reason,
        actor, model, metadata (a dict or None), seq.
        """
        window = self._window(since, until, kinds)
        count, skip = checks.limit(limit), checks.offset(offset)
        store = self._open_store()
        self._directory.read_long_once(lambda: store.query(reads.long_histories))
        user_id = checks.user_id(user_id)
        found = self._account(user_id)
        frame, newest = store.query(
            lambda cur: reads.history(
                cur, found.number, window, limit=count, offset=skip, entries=found.entries,
                marks=found.marks,
            )
        )  # fmt: skip
        self._directory.saw(user_id, newest)
        return frame

    def count_history(
        self,
        user_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kinds: Iterable[str] | str | None = None,
    ) -> int:
        """How many entries history() would return with these filters and no limit."""
        window = self._window(since, until, kinds)
        user_id = checks.user_id(user_id)
        number = self._account(user_id).number
        count = self._open_store().query(lambda cur: reads.count_history(cur, number, window))
        if window.everything:
            self._directory.saw(user_id, count)
        return count

    def check_invariants(self) -> list[str]:
        """Every violated ledger rule (see invariants.py); [] when the ledger is sound."""
        return self._open_store().read(invariants.check)

    # ------------------------------------------------------------------ bulk

    def apply_usage(
        self,
        events: pd.DataFrame,
        *,
        reason: str = "usage",
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> pd.DataFrame:
        """Book finished generations, set-based: decided on the file, durable in the
        redo log when this returns, and put in the file in one transaction behind it.

        Columns user_id, credits, ts, success; optional model, options, transaction_id.
        Returns, with the frame's index, user_id, status (captured, released,
        rejected_insufficient, duplicate, unknown_account), credits (spent) and
        transaction_id. See bulk.py for the rules.
        """
        return self._call(commands.apply_usage(self.now(), events, reason, actor, idempotency_key))

    # ------------------------------------------------------------------ machinery

    def _window(
        self,
        since: datetime | None,
        until: datetime | None,
        kinds: Iterable[str] | str | None,
    ) -> reads.Window:
        return reads.Window(
            None if since is None else checks.moment(since, "since"),
            None if until is None else checks.moment(until, "until"),
            checks.entry_kinds(kinds),
        )

    def _account_no(self, user_id: str) -> int:
        return self._account(checks.user_id(user_id)).number

    def _account(self, user_id: str) -> reads.AccountSize:
        """The account's number, entries and history marks, as last read (directory.py)."""
        found = self._directory.get(user_id)
        if found is None:
            found = self._open_store().query(lambda cur: reads.account_size(cur, user_id))
            self._directory.put(user_id, found)
        return found

    def _open_store(self) -> Store:
        if self._closed:
            raise LedgerClosed()
        return self._store

    def _open_writer(self, operation: str) -> Writer:
        self._open_store()
        if self._shared.writer is None:
            raise ReadOnlyLedger(operation)
        return self._shared.writer

    def _submit(self, command: Command) -> WriteFuture:
        return self._open_writer(command.operation).submit(command)

    def _sweep(
        self, command: Command, any_lapsed: Callable[[duckdb.DuckDBPyConnection, datetime], bool]
    ) -> Sweep:
        """Run a sweep, unless a read shows it has nothing to book: a sweep runs alone,
        after the file has caught up, and drops the writer's kept accounts, so the
        server's timer would otherwise stall every write every 30 s for nothing. (The
        read sees every write acknowledged before it, so nothing lapsed is missed.)"""
        if not self.read_only and not self.snapshot(lambda cur: any_lapsed(cur, command.now)):
            return Sweep(0, 0)
        return self._call(command)

    def _call(self, command: Command) -> Any:
        """Queue the write and wait for the commit that holds it."""
        return self._submit(command).result()
