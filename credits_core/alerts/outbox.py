"""The notification outbox: one message per fired alert, and the sender that delivers it.

Evaluation writes a message in the same transaction that opens its alert (its id is the
alert's id), so the outbox holds exactly one message per alert. `deliver` sends what is
due to a webhook (POST of one JSON object, header `Idempotency-Key: <message_id>`) or
appends it to a JSON Lines file:

1. claim: in one transaction, due messages get `attempts + 1` and `next_attempt_at`
   pushed out by the backoff (30 s x 2^(attempts-1), at most an hour), so a second
   sender does not take them and a sender that dies leaves them to be retried;
2. send;
3. mark: delivered ones get `status = 'delivered'` and `delivered_at`; failures keep the
   error and wait for their next attempt, or are `failed` after `max_attempts`.

A crash between 2 and 3 sends a message again later: the JSONL sink skips message ids
the file already holds, a webhook receives the same idempotency key. Nothing is lost.

The page reads `outbox_state` and `outbox_frame` and puts failed messages back in the
queue with `retry_failed`; the ledger server runs `deliver` as a background job.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from credits_core.access import Action, Identity
from credits_core.alerts.errors import InvalidDestination
from credits_core.ledger import Ledger

BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
MAX_ATTEMPTS = 8
MESSAGE_FIELDS = (
    "message_id",
    "user_id",
    "email",
    "rule",
    "severity",
    "available",
    "topup_packs",
    "topup_credits",
    "topup_usd",
    "message",
    "created_at",
)


@dataclass(frozen=True)
class Delivery:
    """What one `deliver` run did."""

    destination: str
    delivered: int
    failed: int
    gave_up: int
    pending: int


def backoff(attempts: int, base: timedelta = BASE_DELAY) -> timedelta:
    """The wait after the `attempts`-th attempt: base x 2^(attempts-1), at most an hour."""
    return min(base * 2 ** max(attempts - 1, 0), MAX_DELAY)


def check_destination(destination: str) -> str:
    destination = (destination or "").strip()
    if destination.startswith(("http://", "https://")) or destination.endswith(".jsonl"):
        return destination
    raise InvalidDestination(
        f"Cannot deliver to {destination!r}: give an http(s):// webhook URL or a path "
        "ending in .jsonl."
    )


def deliver(
    ledger: Ledger,
    destination: str,
    *,
    limit: int = 1_000,
    max_attempts: int = MAX_ATTEMPTS,
    base_delay: timedelta = BASE_DELAY,
    timeout: float = 10.0,
) -> Delivery:
    """Send the due outbox messages (at most `limit`) to `destination` and mark them."""
    destination = check_destination(destination)
    now = ledger.now()
    claimed = ledger.side_write(
        "claim_outbox", lambda cur: _claim(cur, now, destination, limit, base_delay)
    )
    send = _send_file if destination.endswith(".jsonl") else _send_webhook
    errors = send(destination, claimed, timeout) if not claimed.empty else {}
    delivered = [m for m in claimed["message_id"] if m not in errors]
    gave_up = ledger.side_write(
        "mark_outbox", lambda cur: _mark(cur, ledger.now(), delivered, errors, max_attempts)
    )
    pending = ledger.snapshot(
        lambda cur: cur.execute(
            "SELECT count(*) FROM alert_outbox WHERE status = 'pending'"
        ).fetchone()[0]
    )
    return Delivery(destination, len(delivered), len(errors), gave_up, int(pending))


def _claim(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    destination: str,
    limit: int,
    base_delay: timedelta,
) -> pd.DataFrame:
    due = cur.execute(
        f"""
        SELECT {", ".join(MESSAGE_FIELDS)}, attempts FROM alert_outbox
        WHERE status = 'pending' AND next_attempt_at <= ?
        ORDER BY created_at, message_id LIMIT ?
        """,
        [now, limit],
    ).df()
    if due.empty:
        return due
    due["attempts"] += 1
    claims = pd.DataFrame(
        {
            "message_id": due["message_id"],
            "attempts": due["attempts"].astype("int32"),
            "next_attempt_at": [now + backoff(int(a), base_delay) for a in due["attempts"]],
        }
    )
    cur.register("claims", claims)
    cur.execute(
        """
        UPDATE alert_outbox
        SET attempts = c.attempts, next_attempt_at = c.next_attempt_at, destination = ?
        FROM claims c WHERE alert_outbox.message_id = c.message_id
        """,
        [destination],
    ).fetchall()
    cur.unregister("claims")
    return due


def _mark(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    delivered: list[str],
    errors: dict[str, str],
    max_attempts: int,
) -> int:
    if delivered:
        cur.execute(
            """
            UPDATE alert_outbox SET status = 'delivered', delivered_at = ?, last_error = NULL
            WHERE message_id IN (SELECT unnest(?)) AND status = 'pending'
            """,
            [now, delivered],
        ).fetchall()
    if not errors:
        return 0
    failures = pd.DataFrame(
        {"message_id": list(errors), "error": [e[:500] for e in errors.values()]}
    )
    cur.register("failures", failures)
    cur.execute(
        """
        UPDATE alert_outbox
        SET last_error = f.error,
            status = CASE WHEN attempts >= ? THEN 'failed' ELSE status END
        FROM failures f WHERE alert_outbox.message_id = f.message_id
          AND alert_outbox.status = 'pending'
        """,
        [max_attempts],
    ).fetchall()
    cur.unregister("failures")
    (gave_up,) = cur.execute(
        "SELECT count(*) FROM alert_outbox WHERE message_id IN (SELECT unnest(?)) "
        "AND status = 'failed'",
        [list(errors)],
    ).fetchone()
    return int(gave_up)


def payload(row: dict) -> dict:
    """The JSON object sent for one message."""
    body = {field: row[field] for field in MESSAGE_FIELDS}
    body["created_at"] = pd.Timestamp(row["created_at"]).isoformat()
    for field in ("topup_packs", "topup_credits", "topup_usd", "available"):
        body[field] = None if pd.isna(body[field]) else int(body[field])
    return body


def _send_file(destination: str, claimed: pd.DataFrame, timeout: float) -> dict[str, str]:
    """Append the messages the file does not hold yet; one fsync for the batch."""
    path = Path(destination)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        present = _ids_in(path)
        lines = [
            json.dumps(payload(row)) + "\n"
            for row in claimed.to_dict("records")
            if row["message_id"] not in present
        ]
        with path.open("a", encoding="utf-8") as out:
            out.writelines(lines)
            out.flush()
            os.fsync(out.fileno())
    except OSError as error:
        return dict.fromkeys(claimed["message_id"], f"cannot write {path}: {error}")
    return {}


def _ids_in(path: Path) -> set[str]:
    if not path.exists():
        return set()
    ids = set()
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                ids.add(json.loads(line)["message_id"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash: its message is sent again
    return ids


def _send_webhook(destination: str, claimed: pd.DataFrame, timeout: float) -> dict[str, str]:
    errors = {}
    for row in claimed.to_dict("records"):
        error = _post(destination, payload(row), timeout)
        if error is not None:
            errors[row["message_id"]] = error
    return errors


def _post(url: str, body: dict, timeout: float) -> str | None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": body["message_id"]},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            reply.read()
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code} {error.reason}"
    except (urllib.error.URLError, OSError) as error:
        return f"{type(error).__name__}: {error}"
    return None


OUTBOX_STATUSES = ("pending", "delivered", "failed")


def outbox_frame(
    ledger: Ledger, *, status: str | None = None, limit: int | None = 500, offset: int = 0
) -> pd.DataFrame:
    """Outbox messages, newest first (only those with `status` when given): who, what,
    and its delivery: status, attempts, next attempt, delivered at, where, last error."""
    return ledger.snapshot(
        lambda cur: cur.execute(
            """
            SELECT message_id, user_id, email, rule, severity, available, topup_packs,
                   topup_credits, topup_usd, message, created_at, status, attempts,
                   next_attempt_at, delivered_at, destination, last_error
            FROM alert_outbox WHERE $status IS NULL OR status = $status
            ORDER BY created_at DESC, message_id LIMIT $limit OFFSET $offset
            """,
            {"status": status, "limit": limit, "offset": offset},
        ).df()
    )


def outbox_counts(ledger: Ledger) -> dict[str, int]:
    """Messages by status: pending, delivered, failed."""
    rows = ledger.snapshot(
        lambda cur: cur.execute("SELECT status, count(*) FROM alert_outbox GROUP BY ALL").fetchall()
    )
    return dict.fromkeys(OUTBOX_STATUSES, 0) | {s: int(n) for s, n in rows}


@dataclass(frozen=True)
class OutboxState:
    """Delivery at a glance: messages waiting (`retrying` of them after a failed
    attempt), sent, failed for good; the last send and the newest error."""

    pending: int
    retrying: int
    sent: int
    failed: int
    last_sent_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None


def outbox_state(ledger: Ledger) -> OutboxState:
    def read(cur: duckdb.DuckDBPyConnection) -> OutboxState:
        pending, retrying, sent, failed, last_sent = cur.execute(
            """
            SELECT count(*) FILTER (WHERE status = 'pending'),
                   count(*) FILTER (WHERE status = 'pending' AND attempts > 0),
                   count(*) FILTER (WHERE status = 'delivered'),
                   count(*) FILTER (WHERE status = 'failed'),
                   max(delivered_at)
            FROM alert_outbox
            """
        ).fetchone()
        error = cur.execute(
            """
            SELECT last_error, next_attempt_at FROM alert_outbox
            WHERE last_error IS NOT NULL AND status <> 'delivered'
            ORDER BY next_attempt_at DESC, message_id LIMIT 1
            """
        ).fetchone()
        last_error, error_at = error if error else (None, None)
        return OutboxState(
            int(pending), int(retrying), int(sent), int(failed), last_sent, last_error, error_at
        )

    return ledger.snapshot(read)


def retry_failed(
    ledger: Ledger, identity: Identity, message_ids: Iterable[str] | None = None
) -> int:
    """Put messages that failed for good back in the queue, due now, with a fresh count
    of attempts (all failed ones when `message_ids` is None); returns how many. The last
    error stays until a delivery succeeds. Support's action, recorded in no other table:
    the message's attempts and delivery say what became of it."""
    identity.require(Action.ACKNOWLEDGE_ALERT)
    ids = None if message_ids is None else sorted(set(message_ids))
    now = ledger.now()

    def work(cur: duckdb.DuckDBPyConnection) -> int:
        (count,) = cur.execute(
            """
            UPDATE alert_outbox SET status = 'pending', attempts = 0, next_attempt_at = $now
            WHERE status = 'failed' AND ($all OR list_contains($ids, message_id))
            """,
            {"now": now, "all": ids is None, "ids": ids or []},
        ).fetchone()
        return int(count)

    return ledger.side_write("retry_outbox", work)
