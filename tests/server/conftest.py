"""A real `credits serve` subprocess on free ports, over a real ledger file.

`Served.start(db)` runs `python -m credits_core serve` and waits for `GET /v1/health`;
keys are made with the real `credits keys create` code in a keys file of the test's own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from credits_core.ledger import Ledger
from credits_core.server import runfile
from credits_core.server.keys import SCOPES, KeyStore

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    """One `credits serve` process."""

    def __init__(self, database: Path, keys_file: Path, *extra: str) -> None:
        self.database = database
        self.port, self.api_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.dashboard = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "CREDITS_API_KEYS": str(keys_file), "CREDITS_DB": str(database)}
        # output goes to files, so a chatty server never blocks on a full pipe
        self.out_path = database.with_name(f"{database.name}.{self.api_port}.out")
        self.err_path = database.with_name(f"{database.name}.{self.api_port}.err")
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "credits_core", "serve", "--db", str(database),
                 "--port", str(self.port), "--api-port", str(self.api_port), *extra],
                cwd=ROOT, env=env, stdout=out, stderr=err,
            )  # fmt: skip
        self.wait_healthy()

    def wait_healthy(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"credits serve exited {self.process.returncode}: {self.output()}"
                )
            try:
                healthy = httpx.get(self.url + "/v1/health", timeout=1).status_code == 200
            except httpx.TransportError:
                healthy = False
            if healthy and runfile.find(self.database) is not None:
                return
            time.sleep(0.1)
        raise RuntimeError("credits serve did not answer /v1/health in time")

    def output(self) -> str:
        return self.out_path.read_text() + self.err_path.read_text()

    def signal(self, number: int) -> int:
        self.process.send_signal(number)
        self.process.wait(timeout=60)
        return self.process.returncode

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def keys_file(tmp_path) -> Path:
    return tmp_path / "api_keys.toml"


def make_keys(keys_file: Path) -> dict[str, str]:
    """One key per scope, and one revoked key."""
    store = KeyStore(keys_file)
    keys = {scope: store.create(f"{scope}-key", scope) for scope in SCOPES}
    keys["revoked"] = store.create("revoked-key", "admin")
    store.revoke("revoked-key")
    return keys


def seed(database: Path) -> None:
    """Accounts the tests use: u_500 has 500 credits, u_rich 100,000."""
    with Ledger.open(database) as ledger:
        ledger.create_account("u_500", email="five@example.com")
        ledger.grant("u_500", 500, kind="plan", expires_at=datetime.now(UTC) + timedelta(days=30))
        ledger.create_account("u_rich", plan="business")
        ledger.grant("u_rich", 100_000, kind="topup")


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[tuple[Served, dict[str, str]]]:
    """A server shared by the tests that leave its accounts as they need them (u_500 is
    only used by the flow test), with a key per scope."""
    folder = tmp_path_factory.mktemp("served")
    database, keys_file = folder / "ledger.duckdb", folder / "api_keys.toml"
    seed(database)
    keys = make_keys(keys_file)
    served = Served(database, keys_file, "--body-timeout", "2")
    yield served, keys
    served.stop()


def client(served: Served, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=served.url + "/v1", headers=headers, timeout=30)


def pytest_collection_modifyitems(config, items):
    """The `long` variants here run only when asked for (`make test-long`: the long test
    profile, or `-m long`)."""
    if os.environ.get("CREDITS_TEST_PROFILE") == "long" or "long" in config.getoption("markexpr"):
        return
    skip = pytest.mark.skip(reason="long variant: run with -m long (make test-long)")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)
