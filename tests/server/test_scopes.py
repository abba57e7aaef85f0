"""Every endpoint against every kind of caller: no key, a wrong key, a revoked key, and a
key of each scope. A key without the scope gets 403 naming the scope; admin does all."""

from __future__ import annotations

import json

import pytest

from credits_core.server.keys import SCOPES
from tests.server.conftest import client

USAGE = json.dumps(
    {"user_id": "u_rich", "credits": 5, "ts": "2026-01-01T00:00:00Z", "success": True}
)
ENDPOINTS = [
    ("POST", "/quotes", {"model": "Music 1.5"}, "quote"),
    ("POST", "/accounts", {"user_id": "u_scoped"}, "admin"),
    ("GET", "/accounts/u_rich", None, "read"),
    ("GET", "/accounts/u_rich/balance", None, "read"),
    ("POST", "/accounts/u_rich/grants", {"credits": 1, "kind": "promo"}, "admin"),
    ("POST", "/accounts/u_rich/validate", {"credits": 1}, "reserve"),
    ("POST", "/reservations", {"user_id": "u_rich", "credits": 1}, "reserve"),
    ("POST", "/reservations/hold-9-9/confirm", {"success": True}, "reserve"),
    ("POST", "/reservations/hold-9-9/extend", {"ttl_seconds": 60}, "reserve"),
    ("GET", "/reservations/hold-9-9", None, "read"),
    ("GET", "/accounts/u_rich/transactions", None, "read"),
    ("POST", "/accounts/u_rich/adjustments", {"credits": 1, "reason": "scope test"}, "support"),
    ("POST", "/refunds", {"transaction_id": "hold-9-9", "reason": "scope test"}, "support"),
    ("POST", "/usage", USAGE, "admin"),
    ("POST", "/batch", {"operations": []}, "reserve"),
    ("POST", "/admin/expire", {}, "admin"),
    ("GET", "/admin/invariants", None, "admin"),
    ("POST", "/admin/alerts/evaluate", {"users": ["u_rich"]}, "admin"),
    ("GET", "/admin/alerts", None, "admin"),
]
CALLERS = ["none", "wrong", "revoked", *SCOPES]


def send(http, method: str, path: str, body):
    if isinstance(body, str):
        headers = {"Content-Type": "application/x-ndjson"}
        return http.request(method, path, content=body, headers=headers)
    return http.request(method, path, json=body)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "path", "body", "scope"), ENDPOINTS)
def test_endpoint_against_caller(server, method, path, body, scope, caller):
    served, keys = server
    key = {"none": None, "wrong": "ck_not-a-real-key"}.get(caller, keys.get(caller))
    reply = send(client(served, key), method, path, body)
    error = reply.json().get("error") if reply.headers["content-type"].startswith("app") else {}
    if caller in ("none", "wrong", "revoked"):
        assert reply.status_code == 401, reply.text
        assert error["type"] == "unauthenticated"
    elif caller == scope or caller == "admin":
        assert reply.status_code not in (401, 403), reply.text
        assert reply.status_code < 500, reply.text
    else:
        assert reply.status_code == 403, reply.text
        assert error["type"] == "forbidden" and error["scope"] == scope
        assert scope in error["message"]


@pytest.mark.parametrize("caller", CALLERS)
def test_health_needs_no_key(server, caller):
    served, keys = server
    key = {"none": None, "wrong": "ck_not-a-real-key"}.get(caller, keys.get(caller))
    reply = client(served, key).get("/health")
    assert reply.status_code == 200
    assert set(reply.json()["jobs"]) >= {"expire_holds", "expire_grants", "alerts_full", "outbox"}


def test_file_delivery_is_for_the_local_admin_only(server, tmp_path):
    served, keys = server
    reply = client(served, keys["admin"]).post(
        "/admin/alerts/deliver", json={"to": str(tmp_path / "x.jsonl")}
    )
    assert reply.status_code == 403
    assert not (tmp_path / "x.jsonl").exists()
