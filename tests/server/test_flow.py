"""The platform's flow end to end over real HTTP against a real `credits serve`:
quote, validate (the exact 402), reserve, generate, confirm success or failure."""

from __future__ import annotations

import pytest

from credits_core import InsufficientCredits, TransactionClosed, UnknownAccount
from credits_core.client import LedgerClient
from tests.server.conftest import client

MESSAGE_500 = (
    "Insufficient credits. You need 1100 credits but only have 500. You're 600 credits short."
)
HAILUO = {"model": "MiniMax-Hailuo-02", "options": {"resolution": "1080P", "duration": 6}}


def test_seed_flow_over_http(server):
    served, keys = server
    http = client(served, keys["reserve"])
    quoted = client(served, keys["quote"]).post("/quotes", json=HAILUO)
    assert quoted.status_code == 200
    assert quoted.json()["credits"] == 1100

    refused = http.post("/accounts/u_500/validate", json={"credits": 1100})
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert error == {
        "type": "insufficient_credits",
        "message": MESSAGE_500,
        "class": "InsufficientCredits",
        "required": 1100,
        "available": 500,
        "shortfall": 600,
    }
    priced = http.post("/reservations", json={"user_id": "u_500", "reason": "video", **HAILUO})
    assert priced.status_code == 402 and priced.json()["error"]["message"] == MESSAGE_500

    ok = http.post("/accounts/u_500/validate", json={"credits": 300})
    assert ok.json() == {"required": 300, "available": 500}
    hold = http.post("/reservations", json={"user_id": "u_500", "credits": 300, "reason": "img"})
    assert hold.status_code == 201
    body = hold.json()
    assert body["status"] == "pending" and body["credits"] == 300
    assert body["balance"] == {"total": 500, "held": 300, "available": 200}

    captured = http.post(f"/reservations/{body['transaction_id']}/confirm", json={"success": True})
    assert captured.status_code == 200
    assert captured.json()["status"] == "captured" and captured.json()["captured"] == 300
    assert captured.json()["balance"] == {"total": 200, "held": 0, "available": 200}

    second = http.post("/reservations", json={"user_id": "u_500", "credits": 150}).json()
    assert second["balance"]["available"] == 50
    released = http.post(
        f"/reservations/{second['transaction_id']}/confirm", json={"success": False}
    )
    assert released.json()["status"] == "released"
    assert released.json()["balance"] == {"total": 200, "held": 0, "available": 200}
    again = http.post(f"/reservations/{second['transaction_id']}/confirm", json={"success": True})
    assert again.status_code == 409 and again.json()["error"]["type"] == "transaction_closed"


def test_python_client_raises_the_ledgers_errors(server):
    served, keys = server
    with LedgerClient(served.url, keys["admin"]) as ledger:
        ledger.create_account("u_client", plan="pro")
        ledger.grant("u_client", 500, kind="plan")
        quote = ledger.quote("MiniMax-Hailuo-02", resolution="1080P", duration=6)
        assert quote.credits == 1100
        with pytest.raises(InsufficientCredits) as caught:
            ledger.validate("u_client", 1100)
        assert str(caught.value) == MESSAGE_500
        assert (caught.value.required, caught.value.available, caught.value.shortfall) == (
            1100,
            500,
            600,
        )
        hold = ledger.reserve("u_client", 120, reason="music", idempotency_key="job-1")
        assert ledger.reserve("u_client", 120, reason="music", idempotency_key="job-1") == hold
        assert ledger.balance("u_client").available == 380
        done = ledger.confirm(hold.transaction_id, success=True, credits=100)
        assert (done.status, done.captured, done.released) == ("captured", 100, 20)
        assert ledger.balance("u_client").total == 400
        with pytest.raises(TransactionClosed):
            ledger.confirm(hold.transaction_id, success=False)
        with pytest.raises(UnknownAccount, match="No account for user 'ghost'"):
            ledger.balance("ghost")
        history = ledger.history("u_client", limit=None)
        assert list(history["kind"]) == ["release", "capture", "reserve", "grant"]
        assert ledger.check_invariants() == []


def test_usage_as_parquet_books_finished_generations(server):
    import io

    import pandas as pd

    served, keys = server
    events = pd.DataFrame(
        {
            "user_id": ["u_rich", "u_rich", "u_nobody"],
            "credits": [40, 60, 5],
            "ts": pd.to_datetime(["2026-01-01T10:00Z", "2026-01-01T11:00Z", "2026-01-01T12:00Z"]),
            "success": [True, False, True],
            "transaction_id": ["ext-parquet-1", "ext-parquet-2", "ext-parquet-3"],
        }
    )
    body = io.BytesIO()
    events.to_parquet(body)
    http = client(served, keys["admin"])
    headers = {"Content-Type": "application/vnd.apache.parquet"}
    reply = http.post("/usage", content=body.getvalue(), headers=headers)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert (answer["booked"], answer["rejected"]) == (2, 1)
    assert [o["status"] for o in answer["outcomes"]] == ["captured", "released", "unknown_account"]
    again = http.post("/usage", content=body.getvalue(), headers=headers).json()
    assert [o["status"] for o in again["outcomes"]][:2] == ["duplicate", "duplicate"]
