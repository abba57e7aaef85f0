"""The hot lane: reserve, confirm and batch served without FastAPI's machinery.

The same requests, sent to the API with its lane and to the API without it (FastAPI
serving everything), get the same answers and leave the same ledger; and the lane
really answers the well-formed ones itself, handing the others on unchanged.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pandas.testing import assert_frame_equal

from credits_core.ledger import Ledger
from credits_core.pricing import PriceBook
from credits_core.server.api import Context, create_api
from credits_core.server.keys import KeyStore
from credits_core.server.lane import HotLane, hot_lanes
from tests.ledger.support import FakeClock

# (method, path, key name or None, extra headers, JSON body or raw bytes)
Call = tuple[str, str, str | None, dict[str, str], Any]


def run_async(work: Coroutine) -> Any:
    """Run `work` on an event loop of its own thread (a browser test on the same worker
    may leave the main thread's loop running)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


def open_api(path, keys_file, lane: bool) -> tuple[FastAPI, Ledger]:
    ledger = Ledger.open(str(path), clock=FakeClock())
    ledger.create_account("u_500")
    ledger.grant("u_500", 500, kind="plan")
    ledger.create_account("u_rich", plan="business")
    ledger.grant("u_rich", 100_000, kind="topup")
    api = create_api(Context(ledger, PriceBook.load(), KeyStore(keys_file)))
    if not lane:
        api.user_middleware = [m for m in api.user_middleware if m.cls is not HotLane]
    return api, ledger


@pytest.fixture
def keys(tmp_path) -> tuple[Any, dict[str, str]]:
    keys_file = tmp_path / "keys.toml"
    store = KeyStore(keys_file)
    made = {scope: store.create(f"{scope}-key", scope) for scope in ("reserve", "support", "read")}
    return keys_file, made


async def send(api: FastAPI, keys: dict[str, str], call: Call) -> tuple[int, Any, str | None]:
    method, path, key, headers, body = call
    headers = dict(headers)
    if key is not None:
        headers["Authorization"] = f"Bearer {keys.get(key, key)}"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        answer = await http.request(method, path, content=content, headers=headers)
    return answer.status_code, answer.json(), answer.headers.get("www-authenticate")


def script() -> list[Call]:
    """Every kind of answer the hot endpoints give; `{hN}` stands for the N-th hold that
    a reserve answered with."""
    json_type = {"Content-Type": "application/json"}
    return [
        ("POST", "/v1/reservations", "reserve", {}, {"user_id": "u_500", "credits": 100}),
        ("POST", "/v1/reservations", "reserve", {}, {"user_id": "u_500", "credits": 1100}),
        (
            "POST",
            "/v1/reservations",
            "reserve",
            {},
            {
                "user_id": "u_rich",
                "model": "MiniMax-Hailuo-02",
                "options": {"resolution": "1080P", "duration": 6},
                "metadata": {"job": "j-1"},
            },
        ),
        (
            "POST",
            "/v1/reservations",
            "reserve",
            {"Idempotency-Key": "k-1"},
            {"user_id": "u_rich", "credits": 7, "ttl_seconds": 60},
        ),
        (
            "POST",
            "/v1/reservations",
            "reserve",
            {"Idempotency-Key": "k-1"},
            {"user_id": "u_rich", "credits": 7, "ttl_seconds": 60},
        ),
        (
            "POST",
            "/v1/reservations",
            "reserve",
            {"Idempotency-Key": "k-1"},
            {"user_id": "u_rich", "credits": 8},
        ),
        (
            "POST",
            "/v1/reservations",
            "support",
            {"X-Actor": "Ana"},
            {"user_id": "u_rich", "credits": 3, "reason": "r'; DROP TABLE journal; --"},
        ),
        ("POST", "/v1/reservations", "reserve", {}, {"user_id": "nobody", "credits": 1}),
        ("POST", "/v1/reservations", "reserve", {}, {"user_id": "u_rich", "credits": 0}),
        ("POST", "/v1/reservations", "reserve", {}, {"user_id": "u_rich", "model": "no-such"}),
        (
            "POST",
            "/v1/reservations",
            "reserve",
            {},
            {"user_id": "u_rich", "model": "MiniMax-Hailuo-02", "options": {"resolution": "4K"}},
        ),
        ("POST", "/v1/reservations", "reserve", {}, {"user_id": "u_rich"}),
        ("POST", "/v1/reservations/{h1}/confirm", "reserve", {}, {"success": True}),
        ("POST", "/v1/reservations/{h1}/confirm", "reserve", {}, {"success": True}),
        ("POST", "/v1/reservations/{h2}/confirm", "reserve", {}, {"success": True, "credits": 500}),
        (
            "POST",
            "/v1/reservations/{h3}/confirm",
            "reserve",
            {"Idempotency-Key": "c"},
            {"success": False},
        ),
        ("POST", "/v1/reservations/hold-9/ü/confirm", "reserve", {}, {"success": True}),
        (
            "POST",
            "/v1/batch",
            "reserve",
            {},
            {
                "operations": [
                    {"op": "reserve", "user_id": "u_500", "credits": 50},
                    {"op": "reserve", "user_id": "u_500", "credits": 5000},
                    {"op": "confirm", "transaction_id": "{h4}", "success": True},
                    {"op": "confirm", "transaction_id": "nope", "success": True},
                    {"op": "reserve", "user_id": "u_500", "credits": "5"},
                ]
            },
        ),
        # what the lane hands on: FastAPI answers these
        ("POST", "/v1/reservations", None, {}, {"user_id": "u_500", "credits": 1}),
        ("POST", "/v1/reservations", "wrong-key", {}, {"user_id": "u_500", "credits": 1}),
        ("POST", "/v1/reservations", "read", {}, {"user_id": "u_500", "credits": 1}),
        ("POST", "/v1/batch", "read", {}, {"operations": []}),
        ("POST", "/v1/reservations", "reserve", json_type, b'{"user_id": "u_500", '),
        ("POST", "/v1/reservations", "reserve", {}, {"user_id": "u_500", "credits": 1.5}),
        ("POST", "/v1/reservations", "reserve", {}, {"user_id": "u_500", "credit": 1}),
        ("POST", "/v1/reservations", "reserve", {}, ["not", "an", "object"]),
        ("POST", "/v1/reservations", "reserve", {}, b"[" * 100_000 + b"]" * 100_000),
        ("POST", "/v1/reservations/{h5}/confirm", "reserve", {}, {"success": "yes"}),
        ("POST", "/v1/batch", "reserve", {}, {"operations": "all"}),
        ("POST", "/v1/batch", "reserve", {}, b"[" * 100_000 + b"]" * 100_000),
        ("POST", "/v1/reservations/", "reserve", {}, {"user_id": "u_500", "credits": 1}),
        ("PUT", "/v1/reservations", "reserve", {}, {"user_id": "u_500", "credits": 1}),
    ]


def fill(value: Any, holds: list[str]) -> Any:
    """`value` with each `{hN}` replaced by the N-th hold made so far."""
    if isinstance(value, str):
        for n, hold in enumerate(holds, start=1):
            value = value.replace(f"{{h{n}}}", hold)
        return value
    if isinstance(value, dict):
        return {k: fill(v, holds) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, holds) for v in value]
    return value


def run_script(api: FastAPI, keys: dict[str, str]) -> list[tuple]:
    async def run() -> list[tuple]:
        holds: list[str] = []
        answers = []
        for method, path, key, headers, body in script():
            call = (method, fill(path, holds), key, headers, fill(body, holds))
            status, answer, challenge = await send(api, keys, call)
            if status == 201 and path == "/v1/reservations":
                holds.append(answer["transaction_id"])
            answers.append((method, path, status, answer, challenge))
        return answers

    return run_async(run())


def holds_made(ledger: Ledger) -> list[str]:
    return ledger.snapshot(
        lambda cur: [row[0] for row in cur.execute("SELECT transaction_id FROM holds").fetchall()]
    )


def test_the_lane_answers_as_fastapi_does(tmp_path, keys):
    keys_file, made = keys
    lane_api, lane_ledger = open_api(tmp_path / "lane.duckdb", keys_file, lane=True)
    plain_api, plain_ledger = open_api(tmp_path / "plain.duckdb", keys_file, lane=False)
    try:
        lane, plain = run_script(lane_api, made), run_script(plain_api, made)
        assert lane == plain
        assert {200, 201, 400, 401, 402, 403, 404, 405, 409} <= {
            status for _, _, status, _, _ in lane
        }
        for user in ("u_500", "u_rich"):
            assert lane_ledger.balance(user) == plain_ledger.balance(user)
            assert_frame_equal(lane_ledger.history(user), plain_ledger.history(user))
        assert lane_ledger.check_invariants() == []
    finally:
        lane_ledger.close()
        plain_ledger.close()


# ------------------------------------------------------------- the lane on its own


class Behind:
    """The app behind the lane: records what it is handed and answers 299."""

    def __init__(self) -> None:
        self.handed: list[tuple[str, bytes]] = []

    async def __call__(self, scope, receive, send) -> None:
        message = await receive()
        self.handed.append((scope["path"], message.get("body", b"")))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def through_lane(
    api: FastAPI, path: str, key: str | None, body: bytes, root_path: str = ""
) -> tuple[int, Behind]:
    behind = Behind()
    lane = HotLane(behind, hot_lanes())
    headers = [(b"content-type", b"application/json")]
    if key is not None:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
             "root_path": root_path, "query_string": b"", "headers": headers, "app": api,
             "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 80)}  # fmt: skip
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    run_async(lane(scope, receive, send))
    return sent[0]["status"], behind


def test_the_lane_answers_well_formed_requests_itself(tmp_path, keys):
    keys_file, made = keys
    api, ledger = open_api(tmp_path / "l.duckdb", keys_file, lane=True)
    try:
        body = json.dumps({"user_id": "u_500", "credits": 100}).encode()
        status, behind = through_lane(api, "/v1/reservations", made["reserve"], body)
        assert (status, behind.handed) == (201, [])
        hold = holds_made(ledger)[0]
        confirm = b'{"success": true}'
        status, behind = through_lane(
            api, f"/v1/reservations/{hold}/confirm", made["reserve"], confirm
        )
        assert (status, behind.handed) == (200, [])
        status, behind = through_lane(
            api, f"/v1/reservations/{hold}/confirm", made["reserve"], b'{"success": false}'
        )
        assert (status, behind.handed) == (409, [])  # a ledger error, answered by the lane
        assert ledger.balance("u_500").total == 400
    finally:
        ledger.close()


@pytest.mark.parametrize(
    ("path", "key", "body"),
    [
        ("/v1/reservations", None, b'{"user_id": "u_500", "credits": 1}'),
        ("/v1/reservations", "read", b'{"user_id": "u_500", "credits": 1}'),
        ("/v1/reservations", "reserve", b'{"user_id": "u_500", "credits": 1'),
        ("/v1/reservations", "reserve", b'{"user_id": "u_500", "credits": true}'),
        ("/v1/reservations/x/confirm", "reserve", b'{"success": true, "x": 1}'),
        ("/v1/batch", "support", b'{"operations": []}'),
        ("/v1/accounts", "reserve", b'{"user_id": "u_new"}'),
    ],
)
def test_the_lane_hands_on_what_fastapi_must_answer(tmp_path, keys, path, key, body):
    keys_file, made = keys
    api, ledger = open_api(tmp_path / "l.duckdb", keys_file, lane=True)
    try:
        status, behind = through_lane(api, path, made.get(key), body)
        assert (status, behind.handed) == (299, [(path, body)])
        assert holds_made(ledger) == []
    finally:
        ledger.close()


def test_the_lane_serves_below_a_root_path(tmp_path, keys):
    """Behind a proxy that keeps the prefix (`--root-path /credits`)."""
    keys_file, made = keys
    api, ledger = open_api(tmp_path / "l.duckdb", keys_file, lane=True)
    try:
        body = json.dumps({"user_id": "u_500", "credits": 5}).encode()
        path = "/credits/v1/reservations"
        status, behind = through_lane(api, path, made["reserve"], body, root_path="/credits")
        assert (status, behind.handed) == (201, [])
        assert ledger.balance("u_500").held == 5
    finally:
        ledger.close()
