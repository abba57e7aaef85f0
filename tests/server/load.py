"""Clients that reserve and confirm over HTTP until the server goes away, and the check
that what they were told is in the ledger file.

Each worker reserves 1 credit with Idempotency-Key `r-<worker>-<n>`, then confirms it
(success on even n, failure on odd) with key `c-<worker>-<n>`; every 2xx answer is
recorded. Bounded: at most `max_pairs` pairs per worker and `max_s` seconds.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import httpx

from credits_core.ledger import Ledger

USERS = [f"u_load_{n}" for n in range(16)]


@dataclass
class Acked:
    """What the clients were told: request key -> (body sent, answer)."""

    reserves: dict[str, tuple[dict, dict]] = field(default_factory=dict)
    confirms: dict[str, tuple[str, dict, dict]] = field(default_factory=dict)
    started: threading.Event = field(default_factory=threading.Event)


def fund(database) -> None:
    with Ledger.open(database) as ledger:
        for user in USERS:
            ledger.create_account(user)
            ledger.grant(user, 1_000_000, kind="topup")


async def _worker(http: httpx.AsyncClient, n: int, acked: Acked, max_pairs: int, end: float):
    for j in range(max_pairs):
        if time.monotonic() > end:
            return
        body = {"user_id": USERS[n % len(USERS)], "credits": 1, "reason": "load"}
        key = f"r-{n}-{j}"
        try:
            reply = await http.post("/reservations", json=body, headers={"Idempotency-Key": key})
            if reply.status_code != 201:
                return
            acked.reserves[key] = (body, reply.json())
            acked.started.set()
            hold = reply.json()["transaction_id"]
            outcome = {"success": j % 2 == 0}
            ckey = f"c-{n}-{j}"
            reply = await http.post(
                f"/reservations/{hold}/confirm", json=outcome, headers={"Idempotency-Key": ckey}
            )
            if reply.status_code != 200:
                return
            acked.confirms[ckey] = (hold, outcome, reply.json())
        except httpx.HTTPError:
            return


async def _run(url: str, key: str, workers: int, acked: Acked, max_pairs: int, max_s: float):
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=url + "/v1", headers=headers, limits=limits, timeout=30
    ) as http:
        end = time.monotonic() + max_s
        await asyncio.gather(*(_worker(http, n, acked, max_pairs, end) for n in range(workers)))


def start(url: str, key: str, *, workers: int = 64, max_pairs: int = 400, max_s: float = 30):
    """Run the clients in a thread; returns (thread, acked)."""
    acked = Acked()
    thread = threading.Thread(
        target=lambda: asyncio.run(_run(url, key, workers, acked, max_pairs, max_s)), daemon=True
    )
    thread.start()
    return thread, acked


def check_file(database, acked: Acked) -> None:
    """Every acknowledged reserve and confirm is in the file, and the ledger is sound."""
    with Ledger.open(database) as ledger:
        assert ledger.check_invariants() == []
        for _key, (body, answer) in acked.reserves.items():
            hold = ledger.reservation(answer["transaction_id"])
            assert (hold.user_id, hold.credits) == (body["user_id"], body["credits"])
        for _key, (hold_id, outcome, answer) in acked.confirms.items():
            hold = ledger.reservation(hold_id)
            assert hold.status == ("captured" if outcome["success"] else "released")
            assert hold.status == answer["status"]
