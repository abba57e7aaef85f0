"""`credits serve`: one process that owns the ledger file and serves everyone else.

The dashboard is Streamlit's `st.App` (app.py and pages/, on `--port`); the API is a
second uvicorn server on `--api-port`, started in the app's lifespan on the same event
loop; both share one `Ledger`. Startup order: open the ledger (LedgerBusy if another
process holds it), bind the API port, start the API and the jobs, then write
`<db>.server.json`. On SIGTERM or Ctrl-C the API stops taking requests at once, the
requests in flight get their answers, the jobs stop, the ledger commits what is queued
and closes the file, and `<db>.server.json` is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from credits_core.errors import CreditsError
from credits_core.ledger import Ledger
from credits_core.pricing import PriceBook
from credits_core.server import runfile
from credits_core.server.api import Context, create_api
from credits_core.server.jobs import Jobs
from credits_core.server.keys import KeyStore
from credits_core.server.limits import BODY_TIMEOUT_S

ROOT = Path(__file__).resolve().parents[2]
APP_SCRIPT = ROOT / "app.py"
SHUTDOWN_GRACE_S = 30


class ServerError(CreditsError):
    """The server cannot start: a server already owns the file, or a port is taken."""


@dataclass(frozen=True)
class ServeOptions:
    database: str
    host: str = "127.0.0.1"
    port: int = 8501
    api_port: int = 8502
    outbox: str | None = None
    keys_file: str | None = None
    demo_key_file: str | None = None
    root_path: str = ""
    wait_s: float = 0.0
    body_timeout_s: float = BODY_TIMEOUT_S


class ApiServer(uvicorn.Server):
    """The API's uvicorn server: the dashboard's server owns the signal handlers."""

    def capture_signals(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()


def serve(options: ServeOptions) -> int:
    """Run the server until SIGTERM or Ctrl-C."""
    import streamlit as st

    existing = runfile.find(options.database)
    if existing is not None:
        raise ServerError(
            f"{options.database} is already served by PID {existing.pid} at "
            f"{existing.api_url}; use that server (the CLI finds it), or stop it first."
        )
    if not APP_SCRIPT.is_file():
        raise ServerError(f"The dashboard script {APP_SCRIPT} is missing; reinstall.")
    _check_port_free(options.host, options.port, "--port")
    api_socket = _bind(options.host, options.api_port)
    ledger = Ledger.open(options.database, wait=options.wait_s)
    received: list[int] = []  # the stop signals that arrived
    app = st.App(str(APP_SCRIPT), lifespan=_lifespan(options, ledger, api_socket, received))
    sys.argv = [str(APP_SCRIPT)]  # Streamlit's main script: its folder holds pages/
    config = {
        "server.address": options.host,
        "server.port": options.port,
        "server.headless": True,
        "server.fileWatcherType": "none",
        "server.runOnSave": False,
        "browser.gatherUsageStats": False,
    }
    try:
        app.run(config=config)
    except KeyboardInterrupt:  # Ctrl-C, raised again once the shutdown above is complete
        return 130
    # Ctrl-C is 130 even when the interrupt raised again after the shutdown went astray
    # between uvicorn and asyncio (a test saw 0 once, under load)
    return 130 if signal.SIGINT in received else 0


def _lifespan(
    options: ServeOptions, ledger: Ledger, api_socket: socket.socket, received: list[int]
):
    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        jobs = Jobs(ledger, outbox=options.outbox)
        token = runfile.new_token()
        context = Context(ledger, PriceBook.load(), KeyStore(options.keys_file), token, jobs)
        api = create_api(
            context, root_path=options.root_path, body_timeout_s=options.body_timeout_s
        )
        server = ApiServer(
            uvicorn.Config(
                api,
                log_level="warning",
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
                backlog=2048,
            )
        )
        task = asyncio.create_task(server.serve(sockets=[api_socket]))
        try:
            while not server.started:
                if task.done():
                    task.result()
                    raise ServerError("The API server stopped while starting.")
                await asyncio.sleep(0.01)
            _stop_api_on_signals(server, received)
            jobs.start()
            api_url = f"http://{options.host}:{options.api_port}"
            dashboard_url = f"http://{options.host}:{options.port}"
            runfile.write(options.database, api_url, dashboard_url, token)
            print(_banner(options, ledger, api_url, dashboard_url), flush=True)
            _tune_gc()
            yield
        finally:
            server.should_exit = True
            await asyncio.gather(task, return_exceptions=True)
            await jobs.stop()
            ledger.close()  # the writer commits what is queued, then the file is closed
            runfile.remove(options.database)
            print(f"Ledger server stopped; {options.database} closed.", flush=True)

    return lifespan


# The garbage collector's thresholds once the server is up (young objects, then the two
# older generations). Python's defaults (700, 10, 10) made a full collection, which scans
# every object of the process (Streamlit, pandas, pyarrow, the ledger's kept accounts),
# stop the process for ~100 ms every few seconds under load: the p99 of a reserve at half
# the peak went from ~100 ms to ~30 ms with these, and the peak from ~1,100 to ~1,500
# pairs/s (small ledger, same runs).
GC_THRESHOLDS = (50_000, 50, 1_000)


def _tune_gc() -> None:
    """Leave what start-up made out of every collection (gc.freeze), and collect the
    young generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _stop_api_on_signals(server: uvicorn.Server, received: list[int]) -> None:
    """On SIGTERM/SIGINT the API stops taking requests at once, then the dashboard's
    server (uvicorn's own handler, called next) shuts down and runs the lifespan's end.
    Each signal is noted in `received`."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(number: int, frame: Any, previous: Any = previous) -> None:
            received.append(number)
            server.should_exit = True
            if callable(previous):
                previous(number, frame)

        signal.signal(sig, handler)


def _bind(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
    # proto says TCP. With Nagle on, every answer on a kept-alive connection waited for
    # the client's delayed ACK: 40 ms a request.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ServerError(
            f"Cannot listen on {host}:{port} for the API ({error.strerror}); choose "
            "another --api-port."
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _check_port_free(host: str, port: int, flag: str) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ServerError(
                f"Cannot listen on {host}:{port} for the dashboard ({error.strerror}); "
                f"choose another {flag}."
            ) from None


def _banner(options: ServeOptions, ledger: Ledger, api_url: str, dashboard_url: str) -> str:
    lines = [
        f"Credits ledger server owns {options.database}",
        f"  Dashboard: {dashboard_url}",
        f"  API:       {api_url}/v1   (docs {api_url}/v1/docs)",
    ]
    key = _demo_key(options.demo_key_file)
    if key is None and options.demo_key_file:
        lines.append("  No demo key for this database: make one with `credits keys create ...`.")
    if key is not None:
        user = _some_user(ledger)
        body = json.dumps({"user_id": user, "model": "Music 1.5", "reason": "try-it"})
        lines += [
            f"  Demo key:  {key}   (local demo only; stored hashed, scopes in `credits keys list`)",
            "  Reserve credits:",
            f"    curl -s -X POST {api_url}/v1/reservations -H 'Authorization: Bearer {key}' "
            f"-H 'Content-Type: application/json' -d '{body}'",
        ]
    lines.append("  Stop with Ctrl-C: what is queued is committed, then the file is closed.")
    return "\n".join(lines)


def _demo_key(path: str | None) -> str | None:
    if not path or not Path(path).is_file():
        return None
    return Path(path).read_text(encoding="utf-8").strip() or None


def _some_user(ledger: Ledger) -> str:
    found = ledger.find_accounts("u_", limit=1)
    return str(found["user_id"].iloc[0]) if len(found) else "u_1"
