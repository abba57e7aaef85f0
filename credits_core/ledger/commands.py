"""The ledger's writes as commands for the writer: each function checks its arguments
(typed errors, nothing written) and returns the `Command` that the writer decides in
memory (`decided`) or runs alone in its own transaction (`alone`). `Ledger`'s write
methods and `Ledger.submit` build their commands here, with the ledger's time `now`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import duckdb
import pandas as pd
import pyarrow as pa

from credits_core.ledger import adjustments, bulk, checks, grants, holds, idempotency
from credits_core.ledger.context import Command, Context
from credits_core.ledger.errors import AccountExists, InvalidArgument
from credits_core.ledger.state import AccountState
from credits_core.ledger.values import (
    DEFAULT_PRIORITY,
    Account,
    Entry,
    Grant,
    Reservation,
    Sweep,
)

T = TypeVar("T")

# Writes that never change a balance, so listeners are not told about them.
BALANCE_NEUTRAL = frozenset({"create_account", "create_accounts", "extend"})
DEFAULT_TTL = timedelta(minutes=15)
SYSTEM = "system"


class QuoteLike(Protocol):
    """What reserve() reads from a pricing quote (credits_core.pricing.Quote)."""

    credits: int
    model: str
    options: Any
    price_book_version: str
    provider_cost_usd: float | None


def create_account(
    now: datetime, user_id: str, email: str | None, plan: str | None, idempotency_key: str | None
) -> Command:
    user_id = checks.user_id(user_id)
    email = checks.text(email, "email")
    plan = checks.text(plan, "plan")
    request = {"user_id": user_id, "email": email, "plan": plan}

    def decide(context: Context) -> Account:
        state = context.accounts.get(user_id)
        if state is not None:
            if (state.email, state.plan) != (email, plan):
                raise AccountExists(user_id, state.email, state.plan)
            return Account(user_id, state.email, state.plan, state.created_at)
        number = context.accounts.allocate_account_no(context.cur)
        state = AccountState(user_id, number, email, plan, now, 0, 0, 0)
        context.accounts.keep(state)
        context.batch.open_account(state)
        return Account(user_id, email, plan, now)

    return decided("create_account", now, idempotency_key, request, decide, Account)


def create_accounts(now: datetime, accounts: pd.DataFrame, idempotency_key: str | None) -> Command:
    frame = bulk.check_accounts(accounts)
    request = {"frame": idempotency.frame_fingerprint(frame)}
    return alone(
        "create_accounts",
        now,
        idempotency_key,
        request,
        lambda cur: bulk.create_accounts(cur, now, frame),
        int,
    )


def grant(
    now: datetime,
    user_id: str,
    credits: int,
    kind: str,
    expires_at: datetime | None = None,
    priority: int | None = None,
    reason: str | None = None,
    actor: str | None = None,
    idempotency_key: str | None = None,
) -> Command:
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

    def decide(context: Context) -> Grant:
        if expires_at is not None:
            checks.future(expires_at, "expires_at", now)
        return grants.create(
            context.batch,
            context.account(user_id),
            now,
            credits=credits,
            kind=kind,
            priority=priority,
            expires_at=expires_at,
            reason=reason,
            actor=actor,
        )

    return decided("grant", now, idempotency_key, request, decide, Grant)


def grant_many(now: datetime, grants_frame: pd.DataFrame, idempotency_key: str | None) -> Command:
    frame = bulk.check_grants(grants_frame)
    frame["actor"] = frame["actor"].fillna(SYSTEM)
    request = {"frame": idempotency.frame_fingerprint(frame)}
    return alone(
        "grant_many",
        now,
        idempotency_key,
        request,
        lambda cur: bulk.grant_many(cur, now, frame),
        pd.DataFrame,
    )


def reserve(
    now: datetime,
    user_id: str,
    credits: int | None = None,
    reason: str = "generation",
    metadata: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    ttl: timedelta = DEFAULT_TTL,
    quote: QuoteLike | None = None,
    actor: str | None = None,
) -> Command:
    user_id = checks.user_id(user_id)
    credits = checks.quoted_credits(credits, quote)
    reason = checks.text(reason, "reason")
    metadata_json = checks.metadata(metadata)
    ttl = checks.ttl(ttl)
    actor = checks.text(actor, "actor") or SYSTEM
    priced = checks.quote_fields(quote)
    priced["model"] = priced["model"] or checks.model_of(metadata)
    request = {
        "user_id": user_id,
        "credits": credits,
        "reason": reason,
        "metadata": metadata_json,
        "ttl": ttl.total_seconds(),
        "actor": actor,
        **priced,
    }

    def decide(context: Context) -> Reservation:
        return holds.reserve(
            context,
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
        )

    return decided("reserve", now, idempotency_key, request, decide, Reservation)


def confirm(
    now: datetime,
    transaction_id: str,
    success: bool,
    credits: int | None = None,
    actor: str | None = None,
    idempotency_key: str | None = None,
) -> Command:
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
    return decided(
        "confirm",
        now,
        idempotency_key,
        request,
        lambda context: holds.confirm(
            context, now, transaction_id, success=success, credits=credits, actor=actor
        ),
        Reservation,
    )


def extend(
    now: datetime,
    transaction_id: str,
    ttl: timedelta,
    actor: str | None = None,
    idempotency_key: str | None = None,
) -> Command:
    transaction_id = checks.transaction_id(transaction_id)
    ttl = checks.ttl(ttl)
    actor = checks.text(actor, "actor") or SYSTEM
    request = {"transaction_id": transaction_id, "ttl": ttl.total_seconds(), "actor": actor}
    return decided(
        "extend",
        now,
        idempotency_key,
        request,
        lambda context: holds.extend(context, now, transaction_id, ttl, actor),
        Reservation,
    )


def adjust(
    now: datetime,
    user_id: str,
    credits: int,
    reason: str,
    actor: str,
    idempotency_key: str | None = None,
) -> Command:
    user_id = checks.user_id(user_id)
    credits = checks.credits(credits, signed=True)
    reason = checks.text(reason, "reason", required=True)
    actor = checks.text(actor, "actor", required=True)
    request = {"user_id": user_id, "credits": credits, "reason": reason, "actor": actor}
    return decided(
        "adjust",
        now,
        idempotency_key,
        request,
        lambda context: adjustments.adjust(
            context, now, user_id, credits, reason=reason, actor=actor
        ),
        Entry,
    )


def refund(
    now: datetime,
    transaction_id: str,
    reason: str,
    actor: str,
    idempotency_key: str | None = None,
) -> Command:
    transaction_id = checks.transaction_id(transaction_id)
    reason = checks.text(reason, "reason", required=True)
    actor = checks.text(actor, "actor", required=True)
    request = {"transaction_id": transaction_id, "reason": reason, "actor": actor}
    return decided(
        "refund",
        now,
        idempotency_key,
        request,
        lambda context: adjustments.refund(
            context, now, transaction_id, reason=reason, actor=actor
        ),
        Entry,
    )


def expire_holds(at: datetime, now: datetime | None = None) -> Command:
    at = at if now is None else checks.moment(now, "now")
    return Command("expire_holds", at, work=lambda cur: holds.expire(cur, at), touched=_swept)


def expire_grants(at: datetime, now: datetime | None = None) -> Command:
    at = at if now is None else checks.moment(now, "now")
    return Command("expire_grants", at, work=lambda cur: grants.expire(cur, at), touched=_swept)


def apply_usage(
    now: datetime,
    events: pd.DataFrame,
    reason: str = "usage",
    actor: str | None = None,
    idempotency_key: str | None = None,
) -> Command:
    usage = bulk.check_usage(events, now)
    reason = checks.text(reason, "reason", required=True)
    actor = checks.text(actor, "actor") or SYSTEM
    request = {"reason": reason, "actor": actor}
    if idempotency_key is not None:
        frame = events.to_pandas() if isinstance(events, pa.Table) else events
        request["frame"] = idempotency.frame_fingerprint(frame)
    return alone(
        "apply_usage",
        now,
        idempotency_key,
        request,
        lambda cur: bulk.decide_usage(cur, now, usage, reason=reason, actor=actor),
        pd.DataFrame,
        logged=True,
    )


def decided(
    operation: str,
    now: datetime,
    key: str | None,
    request: dict[str, Any],
    decide: Callable[[Context], T],
    result_type: type,
) -> Command:
    """A write the writer decides in memory, batched with others."""
    key = checks.idempotency_key(key)
    return Command(
        operation,
        now,
        decide=decide,
        key=key,
        fingerprint=idempotency.fingerprint(operation, request) if key else "",
        encode=_to_dict,
        decode=result_type.from_dict,
        touched=None if operation in BALANCE_NEUTRAL else _user_of,
        user_ids=(request["user_id"],) if "user_id" in request else (),
        account_nos=_hold_account(request),
    )


def alone(
    operation: str,
    now: datetime,
    key: str | None,
    request: dict[str, Any],
    work: Callable[[duckdb.DuckDBPyConnection], Any],
    result_type: type,
    *,
    logged: bool = False,
) -> Command:
    """A set-based write the writer runs alone: in its own transaction, or, `logged`,
    decided on the file (`work` gives its result and what it booked) and logged."""
    key = checks.idempotency_key(key)
    return Command(
        operation,
        now,
        **({"book": work} if logged else {"work": work}),
        key=key,
        fingerprint=idempotency.fingerprint(operation, request) if key else "",
        encode=_encode,
        decode=lambda stored: _decode(stored, result_type),
        touched=None if operation in BALANCE_NEUTRAL else _users_of_frame,
    )


def _to_dict(result: Account | Grant | Reservation | Entry) -> dict[str, Any]:
    return result.to_dict()


def _swept(sweep: Sweep) -> frozenset[str]:
    return frozenset(sweep.users)


def _user_of(result: Account | Grant | Reservation | Entry) -> frozenset[str]:
    return frozenset({result.user_id})


def _users_of_frame(result: pd.DataFrame) -> frozenset[str] | None:
    if "user_id" not in result:
        return None
    return frozenset(result["user_id"].dropna().astype(str))


def _hold_account(request: dict[str, Any]) -> tuple[int, ...]:
    transaction_id = request.get("transaction_id")
    number = None if transaction_id is None else holds.account_of_hold(transaction_id)
    return () if number is None else (number,)


def _encode(result: object) -> dict[str, Any]:
    if isinstance(result, pd.DataFrame):
        return {"frame": result}
    return {"result": result}


def _decode(stored: idempotency.Stored, result_type: type) -> Any:
    if result_type is pd.DataFrame:
        return bulk.tidy(stored.frame)
    return stored.result


# Every write a caller may submit, by the name of its Ledger method.
BUILDERS: dict[str, Callable[..., Command]] = {
    "create_account": create_account,
    "create_accounts": create_accounts,
    "grant": grant,
    "grant_many": grant_many,
    "reserve": reserve,
    "confirm": confirm,
    "extend": extend,
    "adjust": adjust,
    "refund": refund,
    "expire_holds": expire_holds,
    "expire_grants": expire_grants,
    "apply_usage": apply_usage,
}


def build(operation: str, now: datetime, *args: Any, **kwargs: Any) -> Command:
    """The command of the write `operation`, checked now."""
    builder = BUILDERS.get(operation)
    if builder is None:
        raise InvalidArgument(
            f"{operation!r} is not a ledger write; use one of {', '.join(BUILDERS)}."
        )
    return builder(now, *args, **kwargs)
