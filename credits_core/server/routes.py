"""The endpoints of API v1 (DESIGN.md's table), plus the admin endpoints the CLI uses.

Writes go to the ledger's writer and are awaited (`write`); reads are snapshot reads.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from credits_core.ledger import Balance, Reservation
from credits_core.ledger.context import WriteFuture
from credits_core.server import batch, views
from credits_core.server.api import Context, JsonAnswer, actor, idempotency_key, needs
from credits_core.server.bodies import (
    AccountBody,
    AdjustBody,
    ConfirmBody,
    DeliverBody,
    EvaluateBody,
    ExpireBody,
    ExportBody,
    ExtendBody,
    GrantBody,
    QuoteBody,
    RefundBody,
    ReserveBody,
    ValidateBody,
)
from credits_core.server.errors import ApiError, invalid
from credits_core.server.keys import LOCAL_ADMIN, Principal

router = APIRouter(prefix="/v1")
MAX_PAGE = 1_000


def context_of(request: Request) -> Context:
    return request.app.state.context


async def write(context: Context, operation: str, *args: Any, **kwargs: Any) -> Any:
    """Queue a write on the ledger's writer and await the commit that holds it."""
    return await batch.answered(context.ledger.submit(operation, *args, **kwargs))


async def written(context: Context, future: WriteFuture) -> tuple[Any, Balance]:
    """A queued write's result and the balance it left, read back only when the writer
    did not say (a keyed write answered from its first result)."""
    result = await batch.answered(future)
    balance = future.balance or await read(context, "balance", result.user_id)
    return result, balance


async def read(context: Context, method: str, *args: Any, **kwargs: Any) -> Any:
    """A ledger read in a worker thread: a balance read costs milliseconds of DuckDB
    (which lets go of the GIL), and the event loop keeps serving meanwhile."""
    return await asyncio.to_thread(getattr(context.ledger, method), *args, **kwargs)


def ok(body: Any, status: int = 200) -> JSONResponse:
    return JsonAnswer(body, status_code=status)


# --------------------------------------------------------------------------- health


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """No key needed: the server is up, the price book in force, each job's last run."""
    context = context_of(request)
    jobs = context.jobs.status() if context.jobs is not None else {}
    version = context.book.version_at(context.ledger.now()).version
    return ok({"status": "ok", "price_book": version, "jobs": jobs})


# --------------------------------------------------------------------------- pricing


@router.post("/quotes")
async def quote(
    body: QuoteBody, request: Request, _who: Annotated[Principal, Depends(needs("quote"))]
) -> JSONResponse:
    context = context_of(request)
    priced = context.book.quote(body.model, provider=body.provider, plan=body.plan, **body.options)
    return ok(views.quote(priced))


# --------------------------------------------------------------------------- accounts


@router.post("/accounts", status_code=201)
async def create_account(
    body: AccountBody, request: Request, _who: Annotated[Principal, Depends(needs("admin"))]
) -> JSONResponse:
    account = await write(
        context_of(request),
        "create_account",
        body.user_id,
        email=body.email,
        plan=body.plan,
        idempotency_key=idempotency_key(request),
    )
    return ok(views.record(account), 201)


@router.get("/accounts/{user_id:path}/balance")
async def balance(
    user_id: str, request: Request, _who: Annotated[Principal, Depends(needs("read"))]
) -> JSONResponse:
    return ok(views.balance(await read(context_of(request), "balance", user_id)))


@router.post("/accounts/{user_id:path}/grants", status_code=201)
async def grant(
    user_id: str,
    body: GrantBody,
    request: Request,
    who: Annotated[Principal, Depends(needs("admin"))],
) -> JSONResponse:
    made = await write(
        context_of(request),
        "grant",
        user_id,
        body.credits,
        kind=body.kind,
        expires_at=body.expires_at,
        priority=body.priority,
        reason=body.reason,
        actor=actor(who, request),
        idempotency_key=idempotency_key(request),
    )
    return ok(views.record(made), 201)


@router.post("/accounts/{user_id:path}/validate")
async def validate(
    user_id: str,
    body: ValidateBody,
    request: Request,
    _who: Annotated[Principal, Depends(needs("reserve"))],
) -> JSONResponse:
    context = context_of(request)
    credits = body.credits
    if body.model is not None:
        priced = context.book.quote(
            body.model, provider=body.provider, plan=context.plan_of(user_id), **body.options
        )
        if credits is not None and credits != priced.credits:
            raise invalid(
                f"credits={credits} disagrees with the quote for {priced.model} "
                f"({priced.credits}); send credits or model, not both.",
                "credits",
            )
        credits = priced.credits
    if credits is None:
        raise invalid("Send credits, or model with its options, to validate.", "credits")
    now = await read(context, "validate", user_id, credits)
    return ok({"required": credits, "available": now.available})


# --------------------------------------------------------------------------- reservations


async def reserve_hold(
    context: Context, body: ReserveBody, key: str | None, booked_by: str
) -> tuple[Reservation, Balance]:
    return await written(context, batch.submit_reserve(context, body, key, booked_by))


@router.post("/reservations", status_code=201)
async def reserve(
    body: ReserveBody, request: Request, who: Annotated[Principal, Depends(needs("reserve"))]
) -> JSONResponse:
    context = context_of(request)
    hold, now = await reserve_hold(context, body, idempotency_key(request), actor(who, request))
    return ok(views.reserved(hold, now), 201)


@router.post("/reservations/{transaction_id:path}/confirm")
async def confirm(
    transaction_id: str,
    body: ConfirmBody,
    request: Request,
    who: Annotated[Principal, Depends(needs("reserve"))],
) -> JSONResponse:
    context = context_of(request)
    future = context.ledger.submit(
        "confirm",
        transaction_id,
        success=body.success,
        credits=body.credits,
        actor=actor(who, request),
        idempotency_key=idempotency_key(request),
    )
    hold, now = await written(context, future)
    return ok(views.confirmed(hold, now))


@router.post("/reservations/{transaction_id:path}/extend")
async def extend(
    transaction_id: str,
    body: ExtendBody,
    request: Request,
    who: Annotated[Principal, Depends(needs("reserve"))],
) -> JSONResponse:
    hold = await write(
        context_of(request),
        "extend",
        transaction_id,
        batch.ttl(body.ttl_seconds),
        actor=actor(who, request),
        idempotency_key=idempotency_key(request),
    )
    return ok(views.reservation(hold))


@router.get("/accounts/{user_id:path}/transactions")
async def transactions(
    user_id: str,
    request: Request,
    _who: Annotated[Principal, Depends(needs("read"))],
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^[so][0-9]{1,18}$")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    kind: Annotated[list[str] | None, Query()] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    """The journal newest first; pass `next_cursor` back as `cursor` for older entries.
    `since` <= ts < `until` and `kind` (repeatable) filter it."""
    context = context_of(request)
    filtered = since is not None or until is not None or bool(kind)
    before = int(cursor[1:]) if cursor and cursor[0] == "s" else None
    if cursor and cursor[0] == "o":
        offset = int(cursor[1:])
    elif before is not None:
        offset = max(await read(context, "count_history", user_id) - before + 1, 0)
    window = {"since": since, "until": until, "kinds": kind}
    frame = await read(context, "history", user_id, **window, limit=limit, offset=offset)
    if before is not None:
        frame = frame[frame["seq"] < before]
    next_cursor = None
    if filtered and len(frame) == limit:
        next_cursor = f"o{offset + limit}"
    elif not filtered and len(frame) and int(frame["seq"].min()) > 1:
        next_cursor = f"s{int(frame['seq'].min())}"
    return ok({"entries": views.frame_rows(frame), "next_cursor": next_cursor})


# --------------------------------------------------------------------------- support


@router.post("/accounts/{user_id:path}/adjustments", status_code=201)
async def adjust(
    user_id: str,
    body: AdjustBody,
    request: Request,
    who: Annotated[Principal, Depends(needs("support"))],
) -> JSONResponse:
    entry = await write(
        context_of(request),
        "adjust",
        user_id,
        body.credits,
        reason=body.reason,
        actor=actor(who, request),
        idempotency_key=idempotency_key(request),
    )
    return ok(views.record(entry), 201)


@router.post("/refunds", status_code=201)
async def refund(
    body: RefundBody, request: Request, who: Annotated[Principal, Depends(needs("support"))]
) -> JSONResponse:
    entry = await write(
        context_of(request),
        "refund",
        body.transaction_id,
        reason=body.reason,
        actor=actor(who, request),
        idempotency_key=idempotency_key(request),
    )
    return ok(views.record(entry), 201)


# --------------------------------------------------------------------------- bulk


@router.post("/usage")
async def usage(
    request: Request, who: Annotated[Principal, Depends(needs("admin"))]
) -> JSONResponse:
    """Finished generations as JSON lines or Parquet (`apply_usage` columns)."""
    context = context_of(request)
    events = batch.usage_frame(await request.body(), request.headers.get("content-type", ""))
    outcome = await write(
        context,
        "apply_usage",
        events,
        actor=actor(who, request),
        idempotency_key=idempotency_key(request),
    )
    return ok(batch.usage_answer(outcome))


@router.post("/batch")
async def run_batch(
    request: Request, who: Annotated[Principal, Depends(needs("reserve"))]
) -> JSONResponse:
    """Up to 1,000 reserve and confirm operations, answered in order."""
    operations = batch.operations(await request.body())
    results = await batch.run(context_of(request), operations, actor(who, request))
    return ok({"results": results})


# --------------------------------------------------------------------------- admin


@router.post("/admin/expire")
async def expire(
    body: ExpireBody, request: Request, _who: Annotated[Principal, Depends(needs("admin"))]
) -> JSONResponse:
    """Book lapsed holds and grants now (the server also does it on a timer)."""
    context = context_of(request)
    answer: dict[str, Any] = {}
    if body.holds:
        answer["holds"] = views.record(await write(context, "expire_holds"))
    if body.grants:
        answer["grants"] = views.record(await write(context, "expire_grants"))
    return ok(answer)


@router.get("/admin/invariants")
async def invariants(
    request: Request, _who: Annotated[Principal, Depends(needs("admin"))]
) -> JSONResponse:
    """Every violated ledger rule; [] when the ledger is sound."""
    ledger = context_of(request).ledger
    violations = await asyncio.to_thread(ledger.check_invariants)
    return ok({"violations": violations, "path": ledger.path})


@router.post("/admin/alerts/evaluate")
async def evaluate_alerts(
    body: EvaluateBody, request: Request, _who: Annotated[Principal, Depends(needs("admin"))]
) -> JSONResponse:
    from credits_core.alerts import AlertRules, Evaluator

    ledger = context_of(request).ledger
    rules = AlertRules.load()
    result = await asyncio.to_thread(Evaluator(ledger, rules).evaluate, body.users)
    return ok({**vars(result), "rules": len(rules.enabled)})


@router.post("/admin/alerts/deliver")
async def deliver_alerts(
    body: DeliverBody, request: Request, who: Annotated[Principal, Depends(needs("admin"))]
) -> JSONResponse:
    from credits_core.alerts import deliver

    if not body.to.startswith(("http://", "https://")):
        local_only(who, "deliver to a file; deliver to a webhook URL instead")
    ledger = context_of(request).ledger
    result = await asyncio.to_thread(
        deliver, ledger, body.to, limit=body.limit, max_attempts=body.max_attempts
    )
    return ok(vars(result))


@router.post("/admin/export")
async def export(
    body: ExportBody, request: Request, who: Annotated[Principal, Depends(needs("admin"))]
) -> JSONResponse:
    """Write a usage export to a file on the server's machine (`credits export`)."""
    from credits_core.export import UsageQuery, usage_export, write

    local_only(who, "write an export file")
    fields = body.model_dump(exclude={"format", "out", "partition_by_month", "overwrite"})
    query = usage_export(UsageQuery(**fields))
    written = await asyncio.to_thread(
        write,
        context_of(request).ledger,
        query,
        body.format,
        body.out,
        partition_by_month=body.partition_by_month,
        overwrite=body.overwrite,
    )
    return ok({"path": str(written.path), "format": written.format, "rows": written.rows})


def local_only(who: Principal, what: str) -> None:
    """Files are written as the server's user: only its own token may ask for that."""
    if who.name != LOCAL_ADMIN:
        raise ApiError(
            403,
            "forbidden",
            f"Only the server's own user (the local admin token in <db>.server.json) may {what}.",
            {"scope": "local-admin"},
        )


@router.get("/admin/alerts")
async def list_alerts(
    request: Request,
    _who: Annotated[Principal, Depends(needs("admin"))],
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> JSONResponse:
    from credits_core.alerts import open_alert_counts, users_in_alert

    ledger = context_of(request).ledger
    counts = open_alert_counts(ledger)
    frame = users_in_alert(ledger, limit=limit)
    return ok(
        {
            "total": counts.total,
            "summary": counts.describe(),
            "alerts": views.frame_rows(frame),
        }
    )


# --------------------------------------------------------------------------- last
# Ids may hold "/" (stored verbatim), so these catch-all paths come after the longer ones.


@router.get("/accounts/{user_id:path}")
async def account(
    user_id: str, request: Request, _who: Annotated[Principal, Depends(needs("read"))]
) -> JSONResponse:
    context = context_of(request)
    found = await read(context, "account", user_id)
    now = await read(context, "balance", user_id)
    return ok({**views.record(found), "balance": views.balance(now)})


@router.get("/reservations/{transaction_id:path}")
async def reservation(
    transaction_id: str, request: Request, _who: Annotated[Principal, Depends(needs("read"))]
) -> JSONResponse:
    return ok(views.reservation(await read(context_of(request), "reservation", transaction_id)))
