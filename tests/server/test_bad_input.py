"""Bad input over HTTP: each gets its status and JSON error type (never a traceback),
and the journal is unchanged (the invariants hold and no entry was added)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.server.conftest import client


def journal_state(served, keys) -> tuple[list[str], int]:
    """The invariant violations and the number of journal entries of u_rich."""
    admin = client(served, keys["admin"])
    violations = admin.get("/admin/invariants").json()["violations"]
    newest = admin.get("/accounts/u_rich/transactions", params={"limit": 1}).json()["entries"]
    return violations, newest[0]["seq"]


@pytest.fixture
def unchanged(server):
    served, keys = server
    before = journal_state(served, keys)
    yield
    after = journal_state(served, keys)
    assert after == before
    assert after[0] == []


def raw_post(served, key: str, path: str, content: bytes):
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return httpx.post(served.url + "/v1" + path, content=content, headers=headers, timeout=30)


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b'{"user_id": "u_rich", "credits": ', None),  # malformed JSON
        (b"[1, 2]", None),  # not an object
        (b'{"user_id": 7, "credits": 10}', "user_id"),  # wrong type
        (b'{"user_id": "u_rich", "credits": 10, "colour": "red"}', "colour"),  # unknown field
        (b'{"credits": 10}', "user_id"),  # missing field
        (b'{"user_id": "u_rich", "credits": 10, "ttl_seconds": "soon"}', "ttl_seconds"),
        (b'{"user_id": "u_rich", "credits": 10, "ttl_seconds": 1e300}', "ttl_seconds"),
        (b'{"user_id": "u_rich", "credits": 10, "metadata": [1]}', "metadata"),
    ],
)
def test_bad_shapes_are_400(server, unchanged, content, field):
    served, keys = server
    reply = raw_post(served, keys["reserve"], "/reservations", content)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request"
    assert error["field"] == field
    assert "Traceback" not in reply.text


@pytest.mark.parametrize(
    "path", ["/reservations", "/reservations/hold-1-1/confirm", "/batch", "/quotes"]
)
def test_json_nested_too_deep_is_400(server, unchanged, path):
    served, keys = server
    reply = raw_post(served, keys["admin"], path, b"[" * 100_000 + b"]" * 100_000)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request"
    assert "Invalid request" in error["message"]
    assert "Traceback" not in reply.text


@pytest.mark.parametrize(
    ("amount", "says"),
    [
        (0, "must not be 0"),
        (-5, "must be positive"),
        (1.5, "valid integer"),
        (10**12, "beyond the limit"),
        (10**40, "beyond the limit"),
        ("100", "valid integer"),
        (True, "valid integer"),
        (None, "Send credits"),
    ],
)
@pytest.mark.parametrize("path", ["/reservations", "/accounts/u_rich/grants"])
def test_bad_amounts_are_400(server, unchanged, amount, says, path):
    served, keys = server
    body = {"user_id": "u_rich", "credits": amount, "reason": "bad amount"}
    if path != "/reservations":
        body = {"credits": amount, "kind": "promo"}
        if amount is None:
            says = "valid integer"
    reply = client(served, keys["admin"]).post(path, json=body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["type"] == "invalid_request"
    assert reply.json()["error"]["field"] == "credits"
    assert says in reply.json()["error"]["message"]


@pytest.mark.parametrize(
    ("amount", "says"),
    [(b"1e400", "valid integer"), (b"NaN", "valid integer"),
     (str(10**40).encode(), "beyond the limit")],
)  # fmt: skip
def test_a_batch_answers_each_odd_amount_in_its_place(server, unchanged, amount, says):
    """Odd numbers (past a float, NaN, past 64 bits) are refused per operation, naming
    the field as the operation names it and with the message a single reserve gets, and
    the operations beside them are answered."""
    served, keys = server
    odd = b'{"op": "reserve", "user_id": "u_rich", "credits": ' + amount + b"}"
    unknown = b'{"op": "confirm", "transaction_id": "hold-1-999999", "success": true}'
    reply = raw_post(served, keys["admin"], "/batch", b'{"operations": [%s, %s]}' % (odd, unknown))
    assert reply.status_code == 200, reply.text
    first, second = reply.json()["results"]
    assert (first["status"], first["error"]["field"]) == (400, "credits")
    assert says in first["error"]["message"]
    assert second["status"] == 404


@pytest.mark.parametrize(
    "user_id",
    [
        "u_'; DROP TABLE journal; --",
        'u_" OR 1=1 --',
        "用户_😀",
        "u/../../etc/passwd",
        "u_%2F?x=1#frag",
        "Robert'); DELETE FROM accounts;--",
    ],
)
def test_odd_ids_are_stored_verbatim(server, user_id):
    served, keys = server
    admin = client(served, keys["admin"])
    made = admin.post("/accounts", json={"user_id": user_id, "email": "odd@example.com"})
    assert made.status_code == 201, made.text
    assert made.json()["user_id"] == user_id
    from credits_core.client import LedgerClient

    with LedgerClient(served.url, keys["admin"]) as ledger:
        ledger.grant(user_id, 50, kind="promo")
        assert ledger.account(user_id).user_id == user_id
        hold = ledger.reserve(user_id, 20)
        assert ledger.reservation(hold.transaction_id).user_id == user_id
        assert list(ledger.history(user_id)["kind"]) == ["reserve", "grant"]
        assert ledger.check_invariants() == []


def test_oversize_body_is_413_before_it_is_read(server, unchanged):
    served, keys = server
    big = b'{"operations": [' + b" " * (1024 * 1024 + 10) + b"]}"
    reply = raw_post(served, keys["reserve"], "/batch", big)
    assert reply.status_code == 413
    assert reply.json()["error"]["type"] == "payload_too_large"


def test_oversize_body_without_length_is_413(server, unchanged):
    served, keys = server

    def chunks():
        for _ in range(40):
            yield b" " * 65536

    headers = {"Authorization": f"Bearer {keys['reserve']}"}
    reply = httpx.post(served.url + "/v1/batch", content=chunks(), headers=headers, timeout=30)
    assert reply.status_code == 413
    assert reply.json()["error"]["type"] == "payload_too_large"


def test_usage_takes_more_than_one_megabyte(server):
    served, keys = server
    line = b'{"user_id": "u_nobody", "credits": 1, "ts": "2026-01-01T00:00:00Z", "success": true}\n'
    body = line * (1024 * 1024 // len(line) + 100)
    headers = {"Authorization": f"Bearer {keys['admin']}", "Content-Type": "application/x-ndjson"}
    reply = httpx.post(served.url + "/v1/usage", content=body, headers=headers, timeout=60)
    assert reply.status_code == 200, reply.text[:300]
    assert reply.json()["booked"] == 0
    assert {o["status"] for o in reply.json()["outcomes"]} == {"unknown_account"}


def test_slow_client_gets_408_and_blocks_nobody(server, unchanged):
    served, keys = server
    body = b'{"user_id": "u_rich", "credits": 10}'
    head = (
        f"POST /v1/reservations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {keys['reserve']}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", served.api_port), timeout=10) as slow:
        slow.sendall(head)
        started = time.monotonic()
        answer = b""
        for byte in body:
            try:
                slow.sendall(bytes([byte]))
            except OSError:
                break
            fast = client(served, keys["read"]).get("/accounts/u_rich/balance")
            assert fast.status_code == 200  # the server keeps serving others meanwhile
            slow.settimeout(0.5)
            try:
                answer += slow.recv(4096)
            except TimeoutError:
                continue
            if answer:
                break
        assert time.monotonic() - started < 10
        slow.settimeout(5)
        while chunk := slow.recv(4096):  # the server closes the connection after it
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"request_timeout" in answer


def test_same_idempotency_key_with_another_body_is_409(server):
    served, keys = server
    http = client(served, keys["reserve"])
    headers = {"Idempotency-Key": "job-conflict"}
    first = http.post("/reservations", json={"user_id": "u_rich", "credits": 7}, headers=headers)
    assert first.status_code == 201
    before = journal_state(served, keys)
    again = http.post("/reservations", json={"user_id": "u_rich", "credits": 7}, headers=headers)
    assert again.json()["transaction_id"] == first.json()["transaction_id"]
    other = http.post("/reservations", json={"user_id": "u_rich", "credits": 8}, headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["type"] == "idempotency_conflict"
    assert journal_state(served, keys) == before


def test_unknown_endpoint_and_method_are_json(server):
    served, keys = server
    http = client(served, keys["admin"])
    assert http.get("/nowhere").json()["error"]["type"] == "not_found"
    wrong = http.delete("/reservations")
    assert wrong.status_code == 405 and wrong.json()["error"]["type"] == "method_not_allowed"
