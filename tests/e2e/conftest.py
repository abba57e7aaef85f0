"""Browser tests: a real `credits serve` and Debian's Chromium driven by Playwright.

Chromium comes from apt (`.ci/run` installs it); without /usr/bin/chromium these tests
are skipped with that reason. Screenshots go to test-artifacts/screenshots/.

The tests run on copies of one demo ledger (DEMO, built once per run). A test that writes,
or that needs a fresh server, starts its own (`start_server`); the tests of a module that
leave the ledger as they found it share one (`demo_server`); such a module's tests run on
one xdist worker (tests/scheduling.py), so that its server starts once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from credits_core.demo import DemoSpec

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
DEMO = DemoSpec(users=300, days=30, seed=3, end=datetime(2026, 11, 24, tzinfo=UTC))

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(items):
    if not Path(CHROMIUM).exists():
        skip = pytest.mark.skip(
            reason="Debian's chromium is not installed (apt-get install chromium)"
        )
        for item in items:
            if "e2e" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict:
    return {
        "executable_path": CHROMIUM,
        "headless": True,
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    }


@pytest.fixture(scope="session")
def browser_context_args() -> dict:
    return {"viewport": {"width": 1400, "height": 1800}, "accept_downloads": True}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PORT_ATTEMPTS = 3


class PortTaken(RuntimeError):
    """`credits serve` exited because a port it was given was taken meanwhile."""


class Server:
    """A fresh `credits serve` (dashboard and API in one process) on free ports, against
    one database file, with a keys file of its own. Ready once the API's health says
    every timed background job has run once and Streamlit's health says ok."""

    def __init__(self, database: Path) -> None:
        # A free port can be taken by another process before the server binds it (seen
        # once under xdist): then the server says so and exits, and new ports are tried.
        for attempt in range(PORT_ATTEMPTS):
            try:
                self._start(database)
                return
            except PortTaken:
                if attempt == PORT_ATTEMPTS - 1:
                    raise

    def _start(self, database: Path) -> None:
        self.port, self.api_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        keys = database.with_name(database.name + ".keys.toml")
        env = {**os.environ, "CREDITS_DB": str(database), "CREDITS_API_KEYS": str(keys)}
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "credits_core", "serve", "--db", str(database),
                "--port", str(self.port), "--api-port", str(self.api_port),
            ],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                said = self.process.stderr.read().decode()
                if "is not available" in said or "Cannot listen" in said:
                    raise PortTaken(said)
                raise RuntimeError(f"credits serve exited: {said}")
            if self._ready():
                return
            time.sleep(0.05)  # polling interval of the health check, not a wait for an effect
        raise RuntimeError("credits serve did not become healthy in time")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/v1/health", timeout=1) as reply:
                jobs = json.load(reply)["jobs"]
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=1) as reply:
                dashboard = reply.read() == b"ok"
        except OSError:
            return False
        return dashboard and all(j["runs"] >= 1 for j in jobs.values() if j["every_s"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stderr.close()


@pytest.fixture
def start_server() -> Iterator:
    servers: list[Server] = []

    def start(database: Path) -> Server:
        servers.append(Server(database))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def demo_db(demo_databases, tmp_path) -> Path:
    """A copy of the demo ledger of this test's own."""
    return demo_databases.copy(DEMO, tmp_path)


@pytest.fixture(scope="module")
def demo_server(demo_databases, tmp_path_factory) -> Iterator[Server]:
    """One server on a copy of the demo ledger, for the tests of a module that leave the
    ledger as they found it."""
    server = Server(demo_databases.copy(DEMO, tmp_path_factory.mktemp("e2e-shared")))
    yield server
    server.stop()


# Counts the script runs that finish in a page (the app's script-state attribute leaving
# "running", read from the change itself: the attribute may have changed again by the
# time the observer runs), so that wait_idle waits for the run an action or a page load
# started, not a fixed time. The first run of a page counts too, though the app's element
# may appear already "running".
RUN_COUNTER = """
window.__runs = 0; window.__seen = 0;
const watch = () => new MutationObserver((changes) => {
  for (const change of changes) {
    if (change.oldValue === 'running' &&
        change.target.getAttribute('data-test-script-state') !== 'running') window.__runs++;
  }
}).observe(document.documentElement, {subtree: true, attributes: true,
           attributeOldValue: true, attributeFilter: ['data-test-script-state']});
document.readyState === 'loading' ? document.addEventListener('DOMContentLoaded', watch) : watch();
"""
DRAWN = """() => {
  const shown = (selector) => [...document.querySelectorAll(selector)].filter(
    (element) => element.getClientRects().length > 0);
  return shown("[data-testid='stDataFrame']").every((grid) => grid.querySelector('canvas')) &&
    shown("[data-testid='stVegaLiteChart']").every((chart) => chart.querySelector('canvas, svg'));
}
"""


@pytest.fixture(autouse=True)
def _count_script_runs(request) -> None:
    if "page" in request.fixturenames:
        request.getfixturevalue("context").add_init_script(RUN_COUNTER)


def wait_idle(page, new_run_timeout_ms: int = 2_000, load_timeout_ms: int = 60_000) -> None:
    """Wait until the script run that the last action (or page load) started has
    finished. An action that starts no run costs at most `new_run_timeout_ms`; a page's
    first run must finish within `load_timeout_ms`."""
    finished = "window.__runs > window.__seen"
    if page.evaluate("window.__runs === 0"):  # a page load: its first run always comes
        page.wait_for_function(finished, timeout=load_timeout_ms)
    else:
        with contextlib.suppress(PlaywrightTimeout):  # no new run: the page is as it was
            page.wait_for_function(finished, timeout=new_run_timeout_ms)
    page.wait_for_selector(IDLE, timeout=30_000)
    page.evaluate("window.__seen = window.__runs")


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_load_state("networkidle")
    page.wait_for_function(DRAWN, timeout=15_000)  # grids and charts draw after the run
    page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
