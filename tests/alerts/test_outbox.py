"""The outbox sender: to a JSONL file or a webhook (a real local HTTP server), marking
what was delivered, retrying failures with exponential backoff, giving up in the end."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from credits_core.alerts import InvalidDestination, deliver, outbox_counts
from credits_core.alerts.outbox import backoff
from tests.alerts.conftest import account, evaluator, query

LOW = {"name": "low", "kind": "available_below", "severity": "critical",
       "below": 200, "resolve_at": 500}  # fmt: skip


@pytest.fixture
def alerted(ledger):
    for user_id in ("u_1", "u_2", "u_3"):
        account(ledger, user_id, 100)
    evaluator(ledger, LOW).evaluate()
    return ledger


class Receiver:
    """A webhook on 127.0.0.1 that answers with the next status of `statuses`."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status == 200:
                    receiver.received.append((body, self.headers["Idempotency-Key"]))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses: list[int]) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for server in made:
        server.close()


def test_delivers_each_message_once_to_a_jsonl_file(alerted, tmp_path):
    target = tmp_path / "out" / "messages.jsonl"
    result = deliver(alerted, str(target))
    assert (result.delivered, result.failed, result.pending) == (3, 0, 0)
    assert deliver(alerted, str(target)).delivered == 0
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert sorted(m["message_id"] for m in lines) == ["u_1/low/1", "u_2/low/1", "u_3/low/1"]
    assert {m["severity"] for m in lines} == {"critical"} and lines[0]["available"] == 100
    assert outbox_counts(alerted) == {"pending": 0, "delivered": 3, "failed": 0}


def test_a_message_the_file_already_holds_is_not_written_again(alerted, tmp_path, clock):
    """A sender that died after writing and before marking sends again: the file
    keeps one line per message."""
    target = tmp_path / "messages.jsonl"
    deliver(alerted, str(target))
    alerted.side_write(
        "test", lambda cur: cur.execute("UPDATE alert_outbox SET status = 'pending'").fetchall()
    )
    clock.advance(seconds=backoff(1).total_seconds())  # the claim's lease is over
    assert deliver(alerted, str(target)).delivered == 3
    assert len(target.read_text().splitlines()) == 3


def test_delivers_to_a_webhook_with_an_idempotency_key(alerted, receiver):
    hook = receiver([])
    result = deliver(alerted, hook.url)
    assert result.delivered == 3
    assert sorted(key for _body, key in hook.received) == [
        "u_1/low/1", "u_2/low/1", "u_3/low/1",
    ]  # fmt: skip
    body, key = hook.received[0]
    assert body["message_id"] == key and "Suggested top-up" in body["message"]
    delivered = query(alerted, "SELECT status, attempts, destination FROM alert_outbox")
    assert set(delivered["status"]) == {"delivered"} and set(delivered["attempts"]) == {1}
    assert set(delivered["destination"]) == {hook.url}


def test_failures_are_retried_with_exponential_backoff(alerted, receiver, clock):
    hook = receiver([500, 500, 500])  # the first three posts fail
    first = deliver(alerted, hook.url)
    assert (first.delivered, first.failed, first.pending) == (0, 3, 3)
    row = query(alerted, "SELECT * FROM alert_outbox ORDER BY message_id").iloc[0]
    assert row["attempts"] == 1 and row["last_error"] == "HTTP 500 Internal Server Error"
    assert row["next_attempt_at"] == clock.now + backoff(1)
    assert deliver(alerted, hook.url).delivered == 0  # not due yet: nothing is sent
    clock.advance(seconds=backoff(1).total_seconds())
    assert deliver(alerted, hook.url).delivered == 3
    assert query(alerted, "SELECT max(attempts) FROM alert_outbox").iloc[0, 0] == 2


def test_backoff_doubles_up_to_an_hour():
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(20) == timedelta(hours=1)


def test_a_message_that_keeps_failing_is_given_up_after_max_attempts(alerted, clock):
    dead = "http://127.0.0.1:9/nothing-listens-here"
    for _ in range(3):
        result = deliver(alerted, dead, max_attempts=3, timeout=1)
        clock.advance(hours=1)
    assert (result.failed, result.gave_up, result.pending) == (3, 3, 0)
    assert outbox_counts(alerted)["failed"] == 3


def test_a_destination_must_be_a_url_or_a_jsonl_file(alerted):
    with pytest.raises(InvalidDestination, match=r"webhook URL or a path ending in \.jsonl"):
        deliver(alerted, "ftp://example.com/x")
    assert outbox_counts(alerted)["pending"] == 3
