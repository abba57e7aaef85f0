"""LedgerClient's transport: it retries reads and keyed writes after a lost connection,
and never a write without an idempotency key (it might book twice)."""

from __future__ import annotations

import socket
import threading

import pytest

from credits_core.client import LedgerClient, ServerUnavailable


class Dropper:
    """A TCP listener that accepts connections and closes them at once, counting them."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


@pytest.fixture
def dropper():
    server = Dropper()
    yield server
    server.sock.close()


@pytest.mark.parametrize(
    ("call", "attempts"),
    [
        (lambda c: c.reserve("u_1", 5), 1),  # a write without a key: never sent twice
        (lambda c: c.confirm("hold-1-1", success=True), 1),
        (lambda c: c.reserve("u_1", 5, idempotency_key="job-1"), 3),  # keyed: safe to resend
        (lambda c: c.balance("u_1"), 3),  # reads: always safe
    ],
)
def test_what_the_client_sends_again(dropper, call, attempts):
    client = LedgerClient(dropper.url, "ck_x", retries=2)
    with pytest.raises(ServerUnavailable, match="Cannot reach the ledger server"):
        call(client)
    assert dropper.connections == attempts
