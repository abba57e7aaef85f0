"""Ledger server figures over HTTP, each beside a same-run `GET /v1/health` figure.

    python bench/bench_server.py --db data/bench-100k.duckdb

Serves a copy of the database with `credits serve` on free 127.0.0.1 ports, funds 1,000
bench accounts, and measures with Debian's `wrk` (skipped, saying so, without it):

1. reserve then confirm, 64 connections: pairs/s, and requests/s against health's;
2. `POST /v1/batch` of 100 operations (100 reserves, then their 100 confirms), 8
   connections: pairs/s, against health at 8 connections;
3. p99 of a reserve at half the peak pair rate: paced by wrk, and open loop (a bounded
   Python client, bench/open_loop.py) beside health's p99 at the same rate; the open
   loop runs right after the peak runs, then holds the rate for a minute (its p99, and
   each 10 s window's), and prints its own lag (a CPU-starved client sends late);
4. a dashboard page rendered in Chromium while wrk holds the API at peak, against the
   same page on the idle server.

Only 127.0.0.1 is loaded; every run is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import open_loop  # noqa: E402
from bench.open_loop import Call  # noqa: E402
from credits_core.ledger import Ledger  # noqa: E402
from credits_core.server.keys import KeyStore  # noqa: E402

USERS = 1_000
HOLD_S = 60  # seconds the open-loop p99 holds half the peak for
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

PAIRS_LUA = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  pending, reserves, confirms, errors = {}, 0, 0, 0
  headers = {["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY"),
             ["Content-Type"] = "application/json"}
end
function request()
  local hold = table.remove(pending)
  if hold then
    return wrk.format("POST", "/v1/reservations/" .. hold .. "/confirm", headers,
                      '{"success": true}')
  end
  local user = "u_bench_" .. math.random(USERS)
  return wrk.format("POST", "/v1/reservations", headers,
                    '{"user_id": "' .. user .. '", "credits": 1, "reason": "bench"}')
end
function response(status, hdrs, body)
  if status == 201 then
    reserves = reserves + 1
    table.insert(pending, string.match(body, '"transaction_id":"([^"]+)"'))
  elseif status == 200 then confirms = confirms + 1
  else errors = errors + 1 end
end
function done(summary, latency, requests)
  local r, c, e = 0, 0, 0
  for _, t in ipairs(threads) do
    r = r + t:get("reserves"); c = c + t:get("confirms"); e = e + t:get("errors")
  end
  io.write(string.format("COUNTS %d %d %d\n", r, c, e))
end
""".replace("USERS", str(USERS))

BATCH_LUA = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  pending, confirmed, errors = {}, 0, 0
  headers = {["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY"),
             ["Content-Type"] = "application/json"}
end
function request()
  local ops = {}
  if #pending >= 100 then
    for i = 1, 100 do
      ops[i] = '{"op":"confirm","transaction_id":"' .. table.remove(pending) .. '","success":true}'
    end
  else
    for i = 1, 100 do
      ops[i] = '{"op":"reserve","user_id":"u_bench_' .. math.random(USERS) .. '","credits":1}'
    end
  end
  return wrk.format("POST", "/v1/batch", headers,
                    '{"operations": [' .. table.concat(ops, ",") .. ']}')
end
function response(status, hdrs, body)
  if status ~= 200 then errors = errors + 1 return end
  local held = '"transaction_id":"([^"]+)","user_id":"[^"]*","status":"pending"'
  for tid in string.gmatch(body, held) do
    table.insert(pending, tid)
  end
  for _ in string.gmatch(body, '"status":"captured"') do confirmed = confirmed + 1 end
end
function done(summary, latency, requests)
  local c, e = 0, 0
  for _, t in ipairs(threads) do c = c + t:get("confirmed"); e = e + t:get("errors") end
  io.write(string.format("COUNTS %d %d %d\n", 0, c, e))
end
""".replace("USERS", str(USERS))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, database: Path, keys_file: Path) -> None:
        self.port, self.api_port = free_port(), free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.dashboard = f"http://127.0.0.1:{self.port}"
        # the dashboard in local mode, as make run serves it
        env = {**os.environ, "CREDITS_API_KEYS": str(keys_file), "CREDITS_LOCAL": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "credits_core", "serve", "--db", str(database),
             "--port", str(self.port), "--api-port", str(self.api_port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                jobs = httpx.get(self.api + "/v1/health", timeout=2).json()["jobs"]
                if all(j["runs"] >= 1 for j in jobs.values() if j["every_s"]):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit("credits serve did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=120)


def wrk(url: str, path: str, connections: int, seconds: int, script: str | None, key: str):
    """Run wrk; returns (requests/s, COUNTS tuple or None)."""
    rate, counts, _ = wrk_run(url, path, connections, seconds, script, key)
    return rate, counts


def paced_p99_ms(url: str, pairs_per_s: float, seconds: int, key: str) -> tuple[float, float]:
    """Reserve+confirm pairs paced to `pairs_per_s` over 64 connections (each waits its
    share of the interval before a request: wrk's delay()); (p99 ms of one request as
    wrk measures it, requests/s reached)."""
    delay_ms = 64 * 1000 / (2 * pairs_per_s)
    script = PAIRS_LUA + f"\nfunction delay() return {delay_ms:.3f} end\n"
    rate, _, out = wrk_run(url, "/", 64, seconds, script, key)
    found = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return float(found.group(1)) * scale[found.group(2)], rate


def wrk_run(url: str, path: str, connections: int, seconds: int, script: str | None, key: str):
    """Run wrk; returns (requests/s, COUNTS tuple or None, wrk's output)."""
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script or "")
    if script:
        command += ["-s", lua.name]
    env = {**os.environ, "BENCH_KEY": key}
    out = subprocess.run(
        [*command, url + path], capture_output=True, text=True, env=env, timeout=seconds + 60
    ).stdout
    os.unlink(lua.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    counts = re.search(r"COUNTS (\d+) (\d+) (\d+)", out)
    return rate, tuple(int(x) for x in counts.groups()) if counts else None, out


def open_loop_run(url: str, key: str, rate: float, seconds: float, kind: str) -> open_loop.Run:
    """An open-loop run of `kind` requests at `rate` a second (bench/open_loop.py):
    "health", or "reserve", each hold then confirmed on the same connection, unmeasured."""
    address = urlsplit(url)
    headers = {"Authorization": f"Bearer {key}"}
    if kind == "health":
        plan, follow_up = (lambda n: Call("GET", "/v1/health")), None
    else:

        def plan(n: int) -> Call:
            body = {"user_id": f"u_bench_{n % USERS + 1}", "credits": 1, "reason": "p99"}
            return Call("POST", "/v1/reservations", body)

        def follow_up(n: int, hold: dict) -> Call:
            path = f"/v1/reservations/{hold['transaction_id']}/confirm"
            return Call("POST", path, {"success": True})

    run = open_loop.run(address.hostname, address.port, headers, rate, seconds, plan, follow_up)
    done = asyncio.run(run)
    if done.failures:
        print(f"  ({done.failures} {kind} requests failed)")
    return done


def window_p99s(run: open_loop.Run, window_s: float) -> list[float]:
    """The p99 (ms) of the requests due in each `window_s` of the run."""
    windows: dict[int, list[float]] = {}
    for due, latency in zip(run.due, run.latencies, strict=True):
        windows.setdefault(int(due // window_s), []).append(latency)
    return [p99(latencies) for _, latencies in sorted(windows.items()) if len(latencies) > 1]


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] * 1000


def render_seconds(url: str) -> float:
    """Seconds from navigation to the home page's script run finished, in Chromium."""
    from playwright.sync_api import sync_playwright

    idle = "[data-testid='stApp'][data-test-script-state='notRunning']"
    with sync_playwright() as play:
        browser = play.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        started = time.perf_counter()
        page.goto(url, timeout=120_000)
        page.wait_for_selector("[data-testid='stMetric']", timeout=120_000)
        page.wait_for_selector(idle, timeout=120_000)
        seconds = time.perf_counter() - started
        browser.close()
    return seconds


def prepare(source: Path, folder: Path) -> tuple[Path, Path, str]:
    database = folder / "bench-server.duckdb"
    shutil.copy(source, database)
    with Ledger.open(database) as ledger:
        users = pd.DataFrame({"user_id": [f"u_bench_{n}" for n in range(1, USERS + 1)]})
        ledger.create_accounts(users)
        ledger.grant_many(users.assign(credits=100_000_000, kind="topup"))
    keys_file = folder / "keys.toml"
    key = KeyStore(keys_file).create("bench", "reserve,read")
    return database, keys_file, key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="data/bench-100k.duckdb")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_server: skipped, `wrk` is not installed (apt-get install -y wrk).")
        return
    with tempfile.TemporaryDirectory(prefix="bench-server-") as folder:
        database, keys_file, key = prepare(Path(args.db), Path(folder))
        server = Server(database, keys_file)
        try:
            run(server, key, args.seconds)
        finally:
            server.stop()


def warm_up(server: Server, key: str) -> float:
    """One reserve and confirm of every bench account (the writer loads each account the
    first time it touches it); returns the seconds it took."""
    started = time.perf_counter()
    http = httpx.Client(base_url=server.api + "/v1", headers={"Authorization": f"Bearer {key}"})
    users = [f"u_bench_{n}" for n in range(1, USERS + 1)]
    reserves = [{"op": "reserve", "user_id": user, "credits": 1} for user in users]
    answer = http.post("/batch", json={"operations": reserves}, timeout=300).json()
    holds = [r["body"]["transaction_id"] for r in answer["results"]]
    confirms = [{"op": "confirm", "transaction_id": h, "success": True} for h in holds]
    http.post("/batch", json={"operations": confirms}, timeout=300)
    return time.perf_counter() - started


def run(server: Server, key: str, seconds: int) -> None:
    print(f"bench_server: {seconds} s per figure, 2 wrk threads, 127.0.0.1")
    warm_s = warm_up(server, key)
    print(f"warm-up: every bench account reserved and confirmed once in {warm_s:.1f} s")
    health64, _ = wrk(server.api, "/v1/health", 64, seconds, None, key)
    rate, (_reserves, confirms, errors) = wrk(server.api, "/", 64, seconds, PAIRS_LUA, key)
    pairs = confirms / seconds
    print(
        f"reserve+confirm, 64 connections: {pairs:,.0f} pairs/s ({rate:,.0f} requests/s, "
        f"{errors} errors) vs GET /v1/health {health64:,.0f} requests/s: x{rate / health64:.2f}"
        f" (target >= 1,000 pairs/s and x0.5)"
    )
    health8, _ = wrk(server.api, "/v1/health", 8, seconds, None, key)
    batch_rate, (_, confirmed, batch_errors) = wrk(server.api, "/", 8, seconds, BATCH_LUA, key)
    print(
        f"/v1/batch of 100, 8 connections: {confirmed / seconds:,.0f} pairs/s "
        f"({batch_rate:,.1f} batches/s, {batch_errors} errors) vs GET /v1/health "
        f"{health8:,.0f} requests/s (target >= 10,000 pairs/s)"
    )
    half = max(pairs / 2, 1)
    paced_ms, paced_rate = paced_p99_ms(server.api, half, seconds, key)
    print(
        f"p99 of a reserve or confirm paced by wrk at half peak ({half:,.0f} pairs/s asked, "
        f"{paced_rate / 2:,.0f} reached): {paced_ms:.1f} ms (target <= 50 ms)"
    )
    # the first run starts right after the peak runs; the second holds that rate on
    after_peak = open_loop_run(server.api, key, half, seconds, "reserve")
    held = open_loop_run(server.api, key, half, HOLD_S, "reserve")
    health = open_loop_run(server.api, key, half, seconds, "health")
    windows = window_p99s(held, seconds)
    print(
        f"p99 reserve at half peak, open loop ({half:,.0f} pairs/s, confirms beside, "
        f"{open_loop.CONNECTIONS} connections): {p99(held.latencies):.1f} ms over {HOLD_S} s "
        f"at that rate, by {seconds} s: {' '.join(f'{ms:.0f}' for ms in windows)} ms "
        f"({sum(ms > 50 for ms in windows)} of {len(windows)} over 50); the first "
        f"{seconds} s, right after the peak runs: {p99(after_peak.latencies):.1f} ms; vs "
        f"GET /v1/health at the same rate {p99(health.latencies):.1f} ms (target <= 50 ms)"
    )
    lags = held.lag + after_peak.lag
    print(f"  the client's own lag, p99: {p99(lags):.1f} ms (how late it sent, CPU-starved)")
    if not Path(CHROMIUM).exists():
        print("dashboard under load: skipped, Debian's chromium is not installed")
        return
    idle_s = render_seconds(server.dashboard)
    loaded = subprocess.Popen(
        ["wrk", "-t", "2", "-c", "64", "-d", "30s", "-s", _lua(PAIRS_LUA), server.api + "/"],
        env={**os.environ, "BENCH_KEY": key}, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(2)
    busy_s = render_seconds(server.dashboard)
    loaded.send_signal(signal.SIGINT)
    loaded.wait(timeout=60)
    print(
        f"home page rendered in Chromium at peak API load: {busy_s:.2f} s vs idle server "
        f"{idle_s:.2f} s: x{busy_s / idle_s:.1f} (target < 3 s)"
    )


def _lua(script: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    return lua.name


if __name__ == "__main__":
    main()
