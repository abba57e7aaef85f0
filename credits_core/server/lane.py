"""The hot lane: reserve, confirm and batch requests served without FastAPI's machinery.

The platform's backend sends a reserve and a confirm for every generation, so these
three endpoints carry nearly all of the API's traffic. FastAPI's routing, dependency
solving and middleware cost each such request about three times what its handler does
(bench/bench_server.py). `HotLane`, an ASGI middleware behind `BodyLimit`, serves them
itself when they are well formed: it checks the key as `needs()` does, validates the
body with the route's own pydantic model, and calls the route's own function in
routes.py, whose answer or error goes out exactly as FastAPI would send it.

Anything else goes on to FastAPI unchanged: other paths and methods, a missing, wrong or
unscoped key, a body that is not JSON or does not validate. Those answers, the 4xx ones
above all, are thus FastAPI's own, and each rule is still written once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from credits_core.server.api import Context, answer_for, authorize, error_response
from credits_core.server.limits import replay


@dataclass(frozen=True)
class Lane:
    """One hot route: its path, the scope it needs, its body and its function."""

    path: re.Pattern[str]
    scope: str
    body: type[BaseModel] | None  # None: the function reads the body itself
    endpoint: Callable[..., Awaitable[Any]]


def hot_lanes() -> tuple[Lane, ...]:
    from credits_core.server import routes
    from credits_core.server.bodies import ConfirmBody, ReserveBody

    return (
        Lane(re.compile(r"/v1/reservations"), "reserve", ReserveBody, routes.reserve),
        Lane(
            re.compile(r"/v1/reservations/(?P<transaction_id>.*)/confirm"),
            "reserve",
            ConfirmBody,
            routes.confirm,
        ),
        Lane(re.compile(r"/v1/batch"), "reserve", None, routes.run_batch),
    )


class HotLane:
    """Serves the well-formed requests of `lanes`; passes every other one on to `app`."""

    def __init__(self, app: ASGIApp, lanes: tuple[Lane, ...]) -> None:
        self.app = app
        self.lanes = lanes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        found = self._match(_route_path(scope))
        if found is None:
            await self.app(scope, receive, send)
            return
        lane, params = found
        request = Request(scope, receive)
        body = await request.body()
        context: Context = scope["app"].state.context
        args = _arguments(lane, context, request, params, body)
        if args is None:  # FastAPI says what is wrong, as it always has
            await self.app(scope, replay(body, receive), send)
            return
        try:
            response = await lane.endpoint(*args)
        except Exception as error:
            response = error_response(answer_for(error, context.book))
        await response(scope, receive, send)

    def _match(self, path: str) -> tuple[Lane, dict[str, str]] | None:
        for lane in self.lanes:
            matched = lane.path.fullmatch(path)
            if matched is not None:
                return lane, matched.groupdict()
        return None


def _arguments(
    lane: Lane, context: Context, request: Request, params: dict[str, str], body: bytes
) -> list[Any] | None:
    """The route function's arguments, as FastAPI would pass them; None when FastAPI
    would refuse the request (it then does)."""
    try:
        who = authorize(context, request.headers.get("authorization"), lane.scope)
        model = None if lane.body is None else lane.body.model_validate(json.loads(body))
    except Exception:  # whatever it is (a bad key, bad JSON, JSON nested too deep...)
        return None
    args: list[Any] = list(params.values())
    if model is not None:
        args.append(model)
    return [*args, request, who]


def _route_path(scope: Scope) -> str:
    """The path below the app's root path, as Starlette's routing matches it (the root
    is cut only where a path segment ends)."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :]
    return path
