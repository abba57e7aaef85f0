"""An open-loop HTTP/1.1 load client for 127.0.0.1, cheap enough not to be the bottleneck.

Requests are due at a fixed rate whatever the server does (open loop): each one's
latency runs from the moment it was due, so time spent queued behind a slow server
counts, as it would for a caller. A general-purpose client (httpx) costs about half a
millisecond of Python per request, and at a thousand pairs a second on two cores it
became the thing measured (its own health checks waited over 100 ms); this one writes
prepared bytes on keep-alive connections and reads a response by its Content-Length,
a few tens of microseconds per request. Bounded: `rate * seconds` requests, each
connection's reads time out.

Two things would make the client, not the server, the thing measured, and both are
guarded against. Too few connections: a connection carries one request at a time, so
with 64 connections and pairs taking over 64 / rate seconds each, due requests queue in
the client and latencies grow without bound (at 1,320 pairs/s, 64 connections gave a
p99 of seconds in 2 runs of about 20); CONNECTIONS is four times that. And a client starved of
CPU sends late: `Run.lag` is how late each request was handed to a connection, and the
bench prints its p99 beside the latencies. Every connection is opened before the first
request is due, so that opening them is not counted as the first requests' latency.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

TIMEOUT_S = 30.0
CONNECTIONS = 256


@dataclass(frozen=True)
class Run:
    """What one open-loop run saw: for each answered request, when it was due (s from
    the start) and its latency (s); how late the client handed each request to a
    connection (s); and how many requests failed."""

    due: list[float]
    latencies: list[float]
    lag: list[float]
    failures: int


@dataclass(frozen=True)
class Call:
    """One request: method, path and JSON body (None: no body)."""

    method: str
    path: str
    body: dict | None = None


# what to send for request n; after a reply, what (if anything) to send next, unmeasured
Plan = Callable[[int], Call]
FollowUp = Callable[[int, dict], Call | None]


async def run(
    host: str,
    port: int,
    headers: dict[str, str],
    rate_per_s: float,
    seconds: float,
    plan: Plan,
    follow_up: FollowUp | None = None,
    connections: int = CONNECTIONS,
) -> Run:
    """Send `rate_per_s * seconds` requests at `rate_per_s`; latencies run from when
    each request was due."""
    due: asyncio.Queue[tuple[float, int] | None] = asyncio.Queue()
    answered: list[tuple[float, float]] = []
    lag: list[float] = []
    failures = [0]
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (job := await due.get()) is not None:
                at, n = job
                status, reply = await _exchange(reader, writer, host, head, plan(n))
                if status >= 400:
                    failures[0] += 1
                    continue
                answered.append((at - start, time.perf_counter() - at))
                after = follow_up(n, reply) if follow_up else None
                if after is not None:
                    status, _ = await _exchange(reader, writer, host, head, after)
                    failures[0] += status >= 400
        finally:
            writer.close()

    # every connection is open before the clock starts: a client at a steady rate keeps
    # its connections alive, and 256 opening at once is not a reserve's latency
    opened = await asyncio.gather(
        *(asyncio.open_connection(host, port) for _ in range(connections))
    )
    workers = [asyncio.create_task(connection(*pair)) for pair in opened]
    start = time.perf_counter()
    for n in range(int(rate_per_s * seconds)):
        at = start + n / rate_per_s
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        lag.append(time.perf_counter() - at)
        due.put_nowait((at, n))
    for _ in workers:
        due.put_nowait(None)
    await asyncio.gather(*workers)
    answered.sort()
    return Run([d for d, _ in answered], [latency for _, latency in answered], lag, failures[0])


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, head: str, call: Call
) -> tuple[int, dict]:
    body = b"" if call.body is None else json.dumps(call.body).encode()
    kind = "Content-Type: application/json\r\n" if call.body is not None else ""
    writer.write(
        f"{call.method} {call.path} HTTP/1.1\r\nHost: {host}\r\n{head}{kind}"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    header = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT_S)
    lines = header.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")
    )
    reply = await asyncio.wait_for(reader.readexactly(length), TIMEOUT_S)
    return status, json.loads(reply) if reply else {}
