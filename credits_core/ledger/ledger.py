"""`Ledger`: the public face of the reservation ledger.

Each method checks its arguments (typed errors, nothing written), takes the time from
the clock once, and runs its work in one write transaction (retried whole on
conflicts) or one read snapshot. Keyed writes go through the idempotency table in the
same transaction.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import duckdb
import pandas as pd
import pyarrow as pa

from credits_core.ledger import (
    adjustments,
    bulk,
    checks,
    grants,
    holds,
    idempotency,
    invariants,
    reads,
    reports,
)
from credits_core.ledger.errors import AccountExists, InsufficientCredits, InvalidArgument
from credits_core.ledger.hot import Hot, HotAccounts
from credits_core.ledger.journal import open_book
from credits_core.ledger.store import Store, default_path
from credits_core.ledger.values import (
    DEFAULT_PRIORITY,
    Account,
    Balance,
    Entry,
    Grant,
    Reservation,
    Sweep,
)

T = TypeVar("T")
Clock = Callable[[], datetime]
BalanceListener = Callable[[frozenset[str] | None], None]
# Writes that never change a balance, so listeners are not told about them.
BALANCE_NEUTRAL = frozenset({"create_account", "create_accounts", "extend"})
# Writes that keep the state they leave an account in (hot.py).
HOT_OPERATIONS = frozenset({"reserve", "confirm"})
logger = logging.getLogger(__name__)
DEFAULT_TTL = timedelta(minutes=15)
SYSTEM = "system"


class QuoteLike(Protocol):
    """What reserve() reads from a pricing quote (credits_core.pricing.Quote)."""

    credits: int
    model: str
    options: Any
    price_book_version: str
    provider_cost_usd: float | None


def system_clock() -> datetime:
    return datetime.now(UTC)


class Ledger:
    """Balances, grants, holds and the journal of every user, in one DuckDB file.

    Safe to share between threads: every call takes its own cursor and transaction.
    """

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._account_numbers: dict[str, int] = {}
        self._entries: defaultdict[int, int] = defaultdict(int)  # per account, as last seen
        self._hot = HotAccounts()
        self._listeners: list[BalanceListener] = []

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
        `NotALedger`.
        """
        clock = clock or system_clock
        now = checks.moment(clock(), "clock()")
        store = Store.open(
            str(path or default_path()),
            now,
            read_only=read_only,
            wait=checks.wait_seconds(wait),
        )
        return cls(store, clock)

    def close(self) -> None:
        self._store.close()

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

    def now(self) -> datetime:
        """The ledger's clock, as an aware UTC datetime."""
        return checks.moment(self._clock(), "clock()")

    def on_balance_change(self, listener: BalanceListener) -> Callable[[], None]:
        """Call `listener(user_ids)` after each committed write that may have changed
        balances: the users it touched, or None after a sweep (expire_holds/grants) that
        booked something. A listener that raises is logged and ignored: the write stands.
        Returns a function that removes the listener."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def transaction(self, operation: str, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `work(cursor)` in one write transaction of this ledger's file (retried whole
        on conflicts, like every ledger write), for modules that keep their own tables in
        the ledger file (alerts). Listeners are not called."""
        return self._store.write(operation, work)

    def snapshot(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `work(cursor)` in one read transaction (one consistent snapshot)."""
        return self._store.read(work)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of this ledger's connection, outside any transaction, for work the
        ledger API does not cover and that never writes the ledger's tables (the export
        copies a snapshot into another file with it). Close it when done."""
        return self._store.cursor()

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
        user_id = checks.user_id(user_id)
        email = checks.text(email, "email")
        plan = checks.text(plan, "plan")
        request = {"user_id": user_id, "email": email, "plan": plan}

        def work(cur: duckdb.DuckDBPyConnection, now: datetime) -> Account:
            row = cur.execute(
                "SELECT user_id, email, plan, created_at FROM accounts WHERE user_id = ?",
                [user_id],
            ).fetchone()
            if row is not None:
                existing = Account(*row)
                if (existing.email, existing.plan) != (email, plan):
                    raise AccountExists(user_id, existing.email, existing.plan)
                return existing
            cur.execute(
                """
                INSERT INTO accounts (user_id, account_no, email, plan, created_at)
                SELECT ?, coalesce(max(account_no), 0) + 1, ?, ?, ? FROM accounts
                """,
                [user_id, email, plan, now],
            )
            return Account(user_id, email, plan, now)

        return self._write("create_account", idempotency_key, request, work, Account)

    def create_accounts(self, accounts: pd.DataFrame, *, idempotency_key: str | None = None) -> int:
        """Open many accounts (columns user_id, optional email, plan): all or none."""
        frame = bulk.check_accounts(accounts)
        request = {"frame": idempotency.frame_fingerprint(frame)}
        return self._write(
            "create_accounts",
            idempotency_key,
            request,
            lambda cur, now: bulk.create_accounts(cur, now, frame),
            int,
        )

    def account(self, user_id: str) -> Account:
        user_id = checks.user_id(user_id)
        return self._store.read(lambda cur: reads.account(cur, user_id))

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
        user_id = checks.user_id(user_id)
        credits = checks.credits(credits)
        kind = checks.grant_kind(kind)
        priority = DEFAULT_PRIORITY[kind] if priority is None else checks.priority(priority)
        reason = checks.text(reason, "reason")
        actor = checks.text(actor, "actor") or SYSTEM
        if expires_at is not None:
            expires_at = checks.moment(expires_at, "expires_at")
        request = {
            "user_id": user_id,
            "credits": credits,
            "kind": kind,
            "expires_at": expires_at,
            "priority": priority,
            "reason": reason,
            "actor": actor,
        }

        def work(cur: duckdb.DuckDBPyConnection, now: datetime) -> Grant:
            if expires_at is not None:
                checks.future(expires_at, "expires_at", now)
            book = open_book(cur, user_id)
            grant = grants.create(
                cur,
                book,
                now,
                credits=credits,
                kind=kind,
                priority=priority,
                expires_at=expires_at,
                reason=reason,
                actor=actor,
            )
            book.save(cur)
            return grant

        return self._write("grant", idempotency_key, request, work, Grant)

    def grant_many(
        self, grants_frame: pd.DataFrame, *, idempotency_key: str | None = None
    ) -> pd.DataFrame:
        """Give many grants (columns user_id, credits, kind; optional expires_at,
        priority, reason, actor). Every row is checked first; all are written or none,
        and InvalidBatch names the bad rows. Returns one row per grant with its id."""
        frame = bulk.check_grants(grants_frame)
        frame["actor"] = frame["actor"].fillna(SYSTEM)
        request = {"frame": idempotency.frame_fingerprint(frame)}
        return self._write(
            "grant_many",
            idempotency_key,
            request,
            lambda cur, now: bulk.grant_many(cur, now, frame),
            pd.DataFrame,
        )

    def grants(self, user_id: str) -> list[Grant]:
        """The user's grants in burn order, spent and expired ones included."""
        user_id = checks.user_id(user_id)

        def read(cur: duckdb.DuckDBPyConnection) -> list[Grant]:
            reads.account_no(cur, user_id)
            return grants.listing(cur, user_id)

        return self._store.read(read)

    def expire_grants(self, now: datetime | None = None) -> Sweep:
        """Book the credits left in grants whose expiry is at or before `now` out of the
        balance (one `grant_expired` entry each). Running it again books nothing."""
        at = self.now() if now is None else checks.moment(now, "now")
        sweep = self._store.write("expire_grants", lambda cur: grants.expire(cur, at))
        self._hot.clear()
        if sweep.count:
            self._notify(None)
        return sweep

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
        user_id = checks.user_id(user_id)
        credits = checks.quoted_credits(credits, quote)
        reason = checks.text(reason, "reason")
        metadata_json = checks.metadata(metadata)
        ttl = checks.ttl(ttl)
        actor = checks.text(actor, "actor") or SYSTEM
        priced = checks.quote_fields(quote)
        priced["model"] = priced["model"] or checks.model_of(metadata_json)
        request = {
            "user_id": user_id,
            "credits": credits,
            "reason": reason,
            "metadata": metadata_json,
            "ttl": ttl.total_seconds(),
            "actor": actor,
            **priced,
        }

        def work(
            cur: duckdb.DuckDBPyConnection, now: datetime, hot: Hot | None
        ) -> tuple[Reservation, Hot]:
            return holds.reserve(
                cur,
                now,
                user_id,
                credits,
                reason=reason,
                actor=actor,
                ttl=ttl,
                metadata=metadata_json,
                model=priced["model"],
                options=priced["options_json"],
                price_book_version=priced["price_book_version"],
                provider_cost_usd=priced["provider_cost_usd"],
                hot=hot,
            )

        account_no = self._account_numbers.get(user_id)
        return self._write_hot("reserve", idempotency_key, request, account_no, work)

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
        transaction_id = checks.transaction_id(transaction_id)
        if not isinstance(success, bool):
            raise InvalidArgument(f"success must be True or False, not {success!r}.")
        if credits is not None:
            if not success:
                raise InvalidArgument(
                    "credits applies to a capture only; a release (success=False) returns "
                    "the whole hold. Leave credits out."
                )
            credits = checks.credits(credits)
        actor = checks.text(actor, "actor") or SYSTEM
        request = {
            "transaction_id": transaction_id,
            "success": success,
            "credits": credits,
            "actor": actor,
        }
        return self._write_hot(
            "confirm",
            idempotency_key,
            request,
            holds.account_of_hold(transaction_id),
            lambda cur, now, hot: holds.confirm(
                cur, now, transaction_id, success=success, credits=credits, actor=actor, hot=hot
            ),
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
        transaction_id = checks.transaction_id(transaction_id)
        ttl = checks.ttl(ttl)
        actor = checks.text(actor, "actor") or SYSTEM
        request = {"transaction_id": transaction_id, "ttl": ttl.total_seconds(), "actor": actor}
        return self._write(
            "extend",
            idempotency_key,
            request,
            lambda cur, now: holds.extend(cur, now, transaction_id, ttl, actor),
            Reservation,
        )

    def reservation(self, transaction_id: str) -> Reservation:
        """A hold as stored (a pending hold past expires_at can no longer be confirmed)."""
        transaction_id = checks.transaction_id(transaction_id)
        return self._store.read(lambda cur: holds.require(cur, transaction_id)[0])

    def expire_holds(self, now: datetime | None = None) -> Sweep:
        """Expire every pending hold whose expires_at is at or before `now`: its credits
        go back to its grants (or expire with them). Running it again books nothing."""
        at = self.now() if now is None else checks.moment(now, "now")
        sweep = self._store.write("expire_holds", lambda cur: holds.expire(cur, at))
        self._hot.clear()
        if sweep.count:
            self._notify(None)
        return sweep

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
        user_id = checks.user_id(user_id)
        credits = checks.credits(credits, signed=True)
        reason = checks.text(reason, "reason", required=True)
        actor = checks.text(actor, "actor", required=True)
        request = {"user_id": user_id, "credits": credits, "reason": reason, "actor": actor}
        return self._write(
            "adjust",
            idempotency_key,
            request,
            lambda cur, now: adjustments.adjust(
                cur, now, user_id, credits, reason=reason, actor=actor
            ),
            Entry,
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
        transaction_id = checks.transaction_id(transaction_id)
        reason = checks.text(reason, "reason", required=True)
        actor = checks.text(actor, "actor", required=True)
        request = {"transaction_id": transaction_id, "reason": reason, "actor": actor}
        return self._write(
            "refund",
            idempotency_key,
            request,
            lambda cur, now: adjustments.refund(
                cur, now, transaction_id, reason=reason, actor=actor
            ),
            Entry,
        )

    # ------------------------------------------------------------------ reads

    def balance(self, user_id: str) -> Balance:
        user_id = checks.user_id(user_id)
        now = self.now()
        return self._store.read(lambda cur: reads.balance(cur, user_id, now))

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
        number = self._account_no(user_id)
        frame = self._store.query(
            lambda cur: reads.history(
                cur, number, window, limit=count, offset=skip, entries=self._entries[number]
            )
        )
        self._saw_entries(number, frame["seq"].max() if skip == 0 and len(frame) else 0)
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
        number = self._account_no(user_id)
        count = self._store.query(lambda cur: reads.count_history(cur, number, window))
        self._saw_entries(number, count if window.everything else 0)
        return count

    def holds_life(self, user_id: str) -> pd.DataFrame:
        """Each generation of the user on one row, newest first (see reports.holds_life)."""
        self._account_no(user_id)
        now = self.now()
        return self._store.read(lambda cur: reports.holds_life(cur, user_id, now))

    def grants_frame(self, user_id: str) -> pd.DataFrame:
        """grants() as a DataFrame, with each grant's status now (active, spent, lapsed,
        expired)."""
        self._account_no(user_id)
        now = self.now()
        return self._store.query(lambda cur: reads.grants_frame(cur, user_id, now))

    def find_accounts(self, text: str, *, limit: int = 20) -> pd.DataFrame:
        """Accounts whose user id or email contains `text` (any case), exact id first."""
        text = checks.text(text.strip() if isinstance(text, str) else text, "text", required=True)
        count = checks.limit(limit)
        return self._store.query(lambda cur: reports.find_accounts(cur, text, count))

    def overview(self) -> reports.Overview:
        """The platform now: accounts, credits outstanding and held, consumption."""
        now = self.now()
        return self._store.read(lambda cur: reports.overview(cur, now))

    def consumption_by_day(self, *, days: int = 30) -> pd.DataFrame:
        """Credits captured per day over the last `days` days."""
        now = self.now()
        return self._store.query(lambda cur: reports.consumption_by_day(cur, now, days))

    def top_models(self, *, days: int = 7, limit: int = 8) -> pd.DataFrame:
        """The models that consumed the most credits over the last `days` days."""
        now = self.now()
        return self._store.query(lambda cur: reports.top_models(cur, now, days, limit))

    def check_invariants(self) -> list[str]:
        """Every violated ledger rule (see invariants.py); [] when the ledger is sound."""
        return self._store.read(invariants.check)

    # ------------------------------------------------------------------ bulk

    def apply_usage(
        self,
        events: pd.DataFrame,
        *,
        reason: str = "usage",
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> pd.DataFrame:
        """Book finished generations in one set-based transaction.

        Columns user_id, credits, ts, success; optional model, options, transaction_id.
        Returns, with the frame's index, user_id, status (captured, released,
        rejected_insufficient, duplicate, unknown_account), credits (spent) and
        transaction_id. See bulk.py for the rules.
        """
        usage = bulk.check_usage(events, self.now())
        reason = checks.text(reason, "reason", required=True)
        actor = checks.text(actor, "actor") or SYSTEM
        request = {"reason": reason, "actor": actor}
        if idempotency_key is not None:
            frame = events.to_pandas() if isinstance(events, pa.Table) else events
            request["frame"] = idempotency.frame_fingerprint(frame)
        return self._write(
            "apply_usage",
            idempotency_key,
            request,
            lambda cur, now: bulk.apply_usage(cur, now, usage, reason=reason, actor=actor),
            pd.DataFrame,
        )

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
        """The account's number; accounts are never renumbered, so it is cached, with
        its number of entries as first seen (a hint for history, see reads.history)."""
        user_id = checks.user_id(user_id)
        number = self._account_numbers.get(user_id)
        if number is None:
            number, entries = self._store.query(lambda cur: reads.account_size(cur, user_id))
            self._account_numbers[user_id] = number
            self._saw_entries(number, entries)
        return number

    def _saw_entries(self, number: int, entries: int) -> None:
        """An account has at least `entries` entries: entries are never removed."""
        self._entries[number] = max(self._entries[number], int(entries))

    def _write_hot(
        self,
        operation: str,
        key: str | None,
        request: dict[str, Any],
        account_no: int | None,
        work: Callable[[duckdb.DuckDBPyConnection, datetime, Hot | None], tuple[T, Hot | None]],
    ) -> T:
        """`_write` for a reserve or confirm: `work` starts from the account's kept state
        (hot.py), if any, and returns its result and the state after it, which is kept
        once the transaction has committed."""
        after: list[Hot] = []

        def attempt(cur: duckdb.DuckDBPyConnection, now: datetime) -> T:
            after.clear()
            result, state = work(cur, now, self._hot.take(account_no))
            after.extend([state] if state is not None else [])
            return result

        result = self._write(operation, key, request, attempt, Reservation)
        for state in after:
            self._account_numbers[state.user_id] = state.account_no
            self._saw_entries(state.account_no, state.entries)
            self._hot.put(state)
        return result

    def _write(
        self,
        operation: str,
        key: str | None,
        request: dict[str, Any],
        work: Callable[[duckdb.DuckDBPyConnection, datetime], T],
        result_type: type,
    ) -> T:
        """Run `work` in a retried write transaction, behind the idempotency key if any.
        A write other than a reserve or confirm drops the kept account states (hot.py):
        they would only cost a retry."""
        key = checks.idempotency_key(key)
        at = self.now()
        fingerprint = idempotency.fingerprint(operation, request) if key else ""

        def attempt(cur: duckdb.DuckDBPyConnection) -> T:
            if key is not None:
                stored = idempotency.recall(cur, key, operation, fingerprint)
                if stored is not None:
                    return _decode(stored, result_type)
            result = work(cur, at)
            if key is not None:
                idempotency.remember(cur, key, operation, fingerprint, at, **_encode(result))
            return result

        result = self._store.write(operation, attempt)
        if operation not in HOT_OPERATIONS:
            self._hot.clear()
        if self._listeners and operation not in BALANCE_NEUTRAL:
            self._notify(_touched(request, result))
        return result

    def _notify(self, user_ids: frozenset[str] | None) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(user_ids)
            except Exception:
                logger.exception("a balance-change listener failed; the write stands")


def _touched(request: dict[str, Any], result: object) -> frozenset[str] | None:
    """The users a committed write touched: its user_id, or the result's user ids."""
    if "user_id" in request:
        return frozenset({request["user_id"]})
    if isinstance(result, pd.DataFrame):
        return frozenset(result["user_id"].dropna().astype(str)) if "user_id" in result else None
    return frozenset({result.user_id})


def _encode(result: object) -> dict[str, Any]:
    if isinstance(result, pd.DataFrame):
        return {"frame": result}
    if isinstance(result, int):
        return {"result": result}
    return {"result": result.to_dict()}


def _decode(stored: idempotency.Stored, result_type: type) -> Any:
    if result_type is pd.DataFrame:
        return bulk.tidy(stored.frame)
    if result_type is int:
        return stored.result
    return result_type.from_dict(stored.result)
