"""API v1 of the ledger server: the FastAPI app, its authentication and its errors.

`create_api(...)` builds the app over one shared `Ledger`. Every handler is `async`:
writes are handed to the ledger's writer (`Ledger.submit`) and awaited, reads are
snapshot reads. Keys and scopes are checked by `needs(scope)`; the key's name is the
actor of every write, and `X-Actor` (support or admin keys) names the person. Every
error is JSON `{"error": {"type", "message", ...}}` (errors.py), never a traceback.
The routes themselves are in routes.py; reserve, confirm and batch requests that are
well formed take the hot lane (lane.py) to the same route functions.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from credits_core.errors import CreditsError
from credits_core.ledger import Ledger
from credits_core.pricing import InvalidOption, PriceBook, UnknownPlan, UnknownProvider
from credits_core.server.errors import ApiError, from_exception
from credits_core.server.keys import LOCAL_ADMIN, KeysFileError, KeyStore, Principal, same_secret
from credits_core.server.limits import BODY_TIMEOUT_S, BodyLimit

logger = logging.getLogger(__name__)
MAX_ACTOR = 200


@dataclass
class Context:
    """What the handlers share: the ledger, the price book, the keys, the jobs."""

    ledger: Ledger
    book: PriceBook
    keys: KeyStore
    local_token: str | None = None
    jobs: Any = None  # jobs.Jobs, when the server runs them
    plans: dict[str, str | None] = field(default_factory=dict)  # user -> plan (never changes)

    def principal(self, header: str | None) -> Principal:
        if not header:
            raise unauthenticated(
                "No API key: send it as `Authorization: Bearer <key>` (make one with "
                "`credits keys create NAME --scopes ...`)."
            )
        scheme, _, secret = header.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise unauthenticated("The Authorization header must be `Bearer <key>`.")
        if self.local_token and same_secret(secret, self.local_token):
            return Principal(LOCAL_ADMIN, frozenset({"admin"}))
        try:
            found = self.keys.authenticate(secret)
        except KeysFileError as error:
            raise ApiError(503, "keys_unavailable", str(error)) from None
        if found is None:
            raise unauthenticated(
                "This API key is not valid or has been revoked. Ask for a new one "
                "(`credits keys create`)."
            )
        return found

    def plan_of(self, user_id: str) -> str | None:
        """The account's plan (accounts are never changed, so it is kept)."""
        if user_id not in self.plans:
            self.plans[user_id] = self.ledger.account(user_id).plan
        return self.plans[user_id]


def unauthenticated(message: str) -> ApiError:
    return ApiError(401, "unauthenticated", message, headers={"WWW-Authenticate": "Bearer"})


def needs(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the caller's key, which must have `scope` (or admin)."""

    async def check(request: Request) -> Principal:
        return authorize(request.app.state.context, request.headers.get("authorization"), scope)

    return check


def authorize(context: Context, header: str | None, scope: str) -> Principal:
    """The key in the Authorization `header`, which must have `scope` (or admin)."""
    who = context.principal(header)
    if not who.allows(scope):
        raise ApiError(
            403,
            "forbidden",
            f"The key {who.name!r} does not have the {scope!r} scope this needs "
            f"(it has: {', '.join(sorted(who.scopes)) or 'none'}). Use a key with it.",
            {"scope": scope},
        )
    return who


def actor(who: Principal, request: Request) -> str:
    """Who a write is booked to: the key's name, or `X-Actor (via key)` for support."""
    person = request.headers.get("x-actor")
    if person is None or not who.allows("support"):
        return who.name
    person = person.strip()
    if not person or len(person) > MAX_ACTOR or not person.isprintable():
        raise ApiError(
            400,
            "invalid_request",
            f"X-Actor must name a person in 1-{MAX_ACTOR} printable characters.",
            {"field": "X-Actor"},
        )
    return f"{person} (via {who.name})"


def idempotency_key(request: Request) -> str | None:
    return request.headers.get("idempotency-key")


class JsonAnswer(JSONResponse):
    """A JSON answer rendered by orjson (same compact UTF-8 text as Starlette's, several
    times faster); what orjson cannot render (an integer past 64 bits, say) goes to
    Starlette's json.dumps as before."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:
            return super().render(content)


def error_response(error: ApiError) -> JSONResponse:
    return JsonAnswer(error.body(), status_code=error.status, headers=error.headers or None)


def answer_for(error: BaseException, book: PriceBook | None = None) -> ApiError:
    """The ApiError for any exception a handler raised."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, CreditsError):
        answer = from_exception(error)
        if (
            book is not None
            and isinstance(error, InvalidOption)
            and not isinstance(error, UnknownProvider | UnknownPlan)
        ):
            answer.extra["valid_values"] = _valid_values(book, error)
        return answer
    logger.error("API handler failed", exc_info=error)
    return from_exception(error)


def _valid_values(book: PriceBook, error: InvalidOption) -> list:
    try:
        return [str(v) for v in book.valid_values(error.model, error.option)]
    except Exception:
        return []


def validation_answer(errors: Sequence[Mapping[str, Any]]) -> ApiError:
    """The 400 for pydantic's validation errors (`errors()` of its exception)."""
    problems, fields = [], []
    for item in errors:
        where = [str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path")]
        name = where[0] if where else None  # the top-level field (not pydantic's type tags)
        if item.get("type") == "json_invalid":
            problems.append(f"the body is not valid JSON ({item.get('ctx', {}).get('error')})")
            name = None
        elif item.get("type") == "extra_forbidden":
            problems.append(f"unknown field {name!r}")
        else:
            given = item.get("input")
            shown = "" if isinstance(given, dict) or given is None else f" (got {given!r:.60})"
            problems.append(f"{name or 'body'}: {item.get('msg')}{shown}")
        fields.append(name)
    message = "Invalid request: " + "; ".join(problems) + ". See /v1/docs for each body."
    return ApiError(400, "invalid_request", message, {"field": fields[0] if fields else None})


def create_api(
    context: Context,
    *,
    body_timeout_s: float = BODY_TIMEOUT_S,
    root_path: str = "",
) -> FastAPI:
    """The API v1 app over `context` (docs at /v1/docs, OpenAPI at /v1/openapi.json)."""
    from credits_core.server import routes
    from credits_core.server.lane import HotLane, hot_lanes

    api = FastAPI(
        title="Credits ledger API",
        version="1",
        description="Reserve, confirm and read credits of the credits ledger server.",
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
        root_path=root_path,
        # No OpenTelemetry: otherwise every request looks up the global providers
        # (a tenth of a reserve's time under load).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    api.state.context = context
    api.include_router(routes.router)

    @api.exception_handler(ApiError)
    async def on_api_error(_request: Request, error: ApiError) -> JSONResponse:
        return error_response(error)

    @api.exception_handler(CreditsError)
    async def on_credits_error(_request: Request, error: CreditsError) -> JSONResponse:
        return error_response(answer_for(error, context.book))

    @api.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(validation_answer(error.errors()))

    @api.exception_handler(HTTPException)
    async def on_http(_request: Request, error: HTTPException) -> JSONResponse:
        kinds = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}
        kind = kinds.get(error.status_code, "http_error")
        messages = {  # FastAPI's 400: a body it could not parse (JSON nested too deep)
            400: f"Invalid request: {error.detail}. Send the JSON body /v1/docs shows.",
            404: "No such endpoint; see /v1/docs for the API.",
        }
        message = messages.get(error.status_code, str(error.detail))
        return error_response(ApiError(error.status_code, kind, message))

    @api.exception_handler(Exception)
    async def on_crash(_request: Request, error: Exception) -> JSONResponse:
        return error_response(answer_for(error))

    api.add_middleware(HotLane, lanes=hot_lanes())
    api.add_middleware(BodyLimit, body_timeout_s=body_timeout_s)
    return api
