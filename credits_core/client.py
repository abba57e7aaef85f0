"""`LedgerClient(url, api_key)`: the ledger over HTTP, with the ledger's method names.

    with LedgerClient("http://127.0.0.1:8502", api_key) as ledger:
        hold = ledger.reserve("u_1", 300, reason="video", idempotency_key="job-42")
        ledger.confirm(hold.transaction_id, success=True)

It returns the same values (Balance, Reservation, Account, Grant, Entry, Sweep, a
history DataFrame) and raises the same typed errors with the same messages as the
embedded `Ledger` (`InsufficientCredits` says "Insufficient credits. You need ...").
It keeps connections alive (httpx), and retries a write after a lost connection or a
503 only when it carries an idempotency key, so a retry can never book twice; reads
are always retried. `connect(database)` finds the server that owns a database file
(`<db>.server.json`) or the one `$CREDITS_URL` / `$CREDITS_API_KEY` name.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote as url_quote

import httpx
import pandas as pd

from credits_core.errors import CreditsError
from credits_core.ledger import Account, Balance, Entry, Grant, Reservation, Sweep
from credits_core.ledger.reads import HISTORY_COLUMNS
from credits_core.server import runfile
from credits_core.server.errors import to_exception

RETRIES = 3
BACKOFF_S = 0.2
TIMEOUT_S = 30.0


class ServerUnavailable(CreditsError, ConnectionError):
    """The ledger server could not be reached."""

    def __init__(self, url: str, why: str) -> None:
        self.url = url
        super().__init__(
            f"Cannot reach the ledger server at {url} ({why}). Check that `credits serve` "
            "runs there, or unset CREDITS_URL to use the database file directly."
        )


@dataclass(frozen=True)
class RemoteQuote:
    """A quote priced by the server's price book (the fields `Quote` has that JSON carries)."""

    model: str
    provider: str
    options: dict[str, Any]
    credits: int
    price_book_version: str
    breakdown: tuple[dict[str, Any], ...]
    provider_cost_usd: float | None
    plan: str | None


class LedgerClient:
    """The ledger server's API v1 as the ledger's methods."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout_s: float = TIMEOUT_S,
        retries: int = RETRIES,
        database: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.retries = retries
        self.path = database or self.url
        self._http = httpx.Client(
            base_url=self.url + "/v1",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_s,
        )

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType
    ) -> None:
        self.close()

    read_only = False

    # ---------------------------------------------------------------- pricing and reads

    def quote(
        self, model: str, provider: str | None = None, plan: str | None = None, **options: Any
    ) -> RemoteQuote:
        body = {"model": model, "provider": provider, "plan": plan, "options": options}
        data = self._call("POST", "/quotes", body, read=True)
        return RemoteQuote(**{**data, "breakdown": tuple(data["breakdown"])})

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health", read=True)

    def balance(self, user_id: str) -> Balance:
        return Balance(**self._call("GET", f"/accounts/{_segment(user_id)}/balance", read=True))

    def account(self, user_id: str) -> Account:
        data = self._call("GET", f"/accounts/{_segment(user_id)}", read=True)
        data.pop("balance")
        return Account.from_dict(data)

    def validate(self, user_id: str, credits: int) -> Balance:
        self._call("POST", f"/accounts/{_segment(user_id)}/validate", {"credits": credits}, True)
        return self.balance(user_id)

    def reservation(self, transaction_id: str) -> Reservation:
        return _reservation(self._call("GET", f"/reservations/{_segment(transaction_id)}", True))

    def history(
        self,
        user_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kinds: list[str] | str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> pd.DataFrame:
        """The user's journal newest first, like `Ledger.history` (limit=None: all)."""
        params: dict[str, Any] = {"offset": offset}
        if since is not None:
            params["since"] = since.isoformat()
        if until is not None:
            params["until"] = until.isoformat()
        if kinds:
            params["kind"] = [kinds] if isinstance(kinds, str) else list(kinds)
        rows: list[dict[str, Any]] = []
        path = f"/accounts/{_segment(user_id)}/transactions"
        cursor = None
        while limit is None or len(rows) < limit:
            page = 1_000 if limit is None else min(1_000, limit - len(rows))
            query = {**params, "limit": page, **({"cursor": cursor} if cursor else {})}
            data = self._call("GET", path, None, True, query)
            rows += data["entries"]
            cursor = data["next_cursor"]
            if cursor is None or not data["entries"]:
                break
        return _history_frame(rows)

    # ---------------------------------------------------------------- writes

    def create_account(
        self,
        user_id: str,
        *,
        email: str | None = None,
        plan: str | None = None,
        idempotency_key: str | None = None,
    ) -> Account:
        body = {"user_id": user_id, "email": email, "plan": plan}
        return Account.from_dict(self._write("/accounts", body, idempotency_key))

    def grant(
        self,
        user_id: str,
        credits: int,
        *,
        kind: str,
        expires_at: datetime | None = None,
        priority: int | None = None,
        reason: str | None = None,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> Grant:
        body = {
            "credits": credits,
            "kind": kind,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "priority": priority,
            "reason": reason,
        }
        path = f"/accounts/{_segment(user_id)}/grants"
        return Grant.from_dict(self._write(path, body, idempotency_key, actor))

    def reserve(
        self,
        user_id: str,
        credits: int | None = None,
        *,
        reason: str = "generation",
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        ttl: timedelta | None = None,
        quote: Any = None,
        actor: str | None = None,
    ) -> Reservation:
        body: dict[str, Any] = {"user_id": user_id, "credits": credits, "reason": reason}
        if metadata is not None:
            body["metadata"] = metadata
        if ttl is not None:
            body["ttl_seconds"] = ttl.total_seconds() if isinstance(ttl, timedelta) else ttl
        if quote is not None:
            body.update(model=quote.model, provider=quote.provider, options=dict(quote.options))
        return _reservation(self._write("/reservations", body, idempotency_key, actor))

    def confirm(
        self,
        transaction_id: str,
        *,
        success: bool,
        credits: int | None = None,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> Reservation:
        path = f"/reservations/{_segment(transaction_id)}/confirm"
        body = {"success": success, "credits": credits}
        return _reservation(self._write(path, body, idempotency_key, actor))

    def extend(
        self,
        transaction_id: str,
        ttl: timedelta,
        *,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> Reservation:
        seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else ttl
        path = f"/reservations/{_segment(transaction_id)}/extend"
        return _reservation(self._write(path, {"ttl_seconds": seconds}, idempotency_key, actor))

    def adjust(
        self,
        user_id: str,
        credits: int,
        *,
        reason: str,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> Entry:
        path = f"/accounts/{_segment(user_id)}/adjustments"
        body = {"credits": credits, "reason": reason}
        return Entry.from_dict(self._write(path, body, idempotency_key, actor))

    def refund(
        self,
        transaction_id: str,
        *,
        reason: str,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> Entry:
        body = {"transaction_id": transaction_id, "reason": reason}
        return Entry.from_dict(self._write("/refunds", body, idempotency_key, actor))

    # ---------------------------------------------------------------- admin

    def expire_holds(self) -> Sweep:
        return Sweep.from_dict(self._write("/admin/expire", {"grants": False})["holds"])

    def expire_grants(self) -> Sweep:
        return Sweep.from_dict(self._write("/admin/expire", {"holds": False})["grants"])

    def check_invariants(self) -> list[str]:
        return self._call("GET", "/admin/invariants", read=True)["violations"]

    def evaluate_alerts(self, users: list[str] | None = None) -> dict[str, Any]:
        return self._write("/admin/alerts/evaluate", {"users": users})

    def deliver_alerts(self, to: str, *, limit: int, max_attempts: int) -> dict[str, Any]:
        body = {"to": to, "limit": limit, "max_attempts": max_attempts}
        return self._write("/admin/alerts/deliver", body)

    def export(self, **fields: Any) -> dict[str, Any]:
        """Write a usage export on the server's machine (fields of `ExportBody`)."""
        for name in ("since", "until"):
            if fields.get(name) is not None:
                fields[name] = fields[name].isoformat()
        return self._write("/admin/export", fields)

    def alerts(self, *, limit: int = 50) -> dict[str, Any]:
        return self._call("GET", "/admin/alerts", None, True, {"limit": limit})

    # ---------------------------------------------------------------- transport

    def _write(
        self, path: str, body: dict[str, Any], key: str | None = None, actor: str | None = None
    ) -> Any:
        headers = {}
        if key is not None:
            headers["Idempotency-Key"] = key
        if actor is not None:
            headers["X-Actor"] = actor
        body = {k: v for k, v in body.items() if v is not None}
        return self._call("POST", path, body, read=key is not None, headers=headers)

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        read: bool = False,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One request; `read` (a read, or a keyed write) may be sent again safely."""
        attempts = self.retries + 1 if read else 1
        for attempt in range(attempts):
            try:
                reply = self._http.request(method, path, json=body, params=params, headers=headers)
            except httpx.TransportError as error:
                if attempt + 1 == attempts:
                    raise ServerUnavailable(self.url, str(error) or type(error).__name__) from None
                time.sleep(BACKOFF_S * 2**attempt)
                continue
            if reply.status_code == 503 and attempt + 1 < attempts:
                time.sleep(float(reply.headers.get("Retry-After", BACKOFF_S)))
                continue
            if reply.is_success:
                return reply.json()
            try:
                answer = reply.json()
            except ValueError:
                answer = {"error": {"type": "unexpected", "message": reply.text[:500]}}
            raise to_exception(reply.status_code, answer)
        raise AssertionError("unreachable")


def connect(database: str | Path | None) -> LedgerClient | None:
    """A client of the server for `database`: $CREDITS_URL and $CREDITS_API_KEY when set,
    else the live server named in `<db>.server.json` (its local admin token); None when
    no server owns the file (a stale file from a killed server is ignored)."""
    url, key = os.environ.get("CREDITS_URL"), os.environ.get("CREDITS_API_KEY")
    if url and key:
        return LedgerClient(url, key)
    if database is None or str(database) == ":memory:":
        return None
    found = runfile.find(database)
    if found is None:
        return None
    return LedgerClient(found.api_url, found.token, database=str(database))


def _segment(value: str) -> str:
    """A path segment, quoted so that ids with '/', '?', '..' or unicode reach the server
    verbatim."""
    return url_quote(str(value), safe="").replace(".", "%2E")


def _reservation(data: dict[str, Any]) -> Reservation:
    return Reservation(
        transaction_id=data["transaction_id"],
        user_id=data["user_id"],
        credits=data["credits"],
        status=data["status"],
        reason=data["reason"],
        created_at=datetime.fromisoformat(data["created_at"]),
        expires_at=datetime.fromisoformat(data["expires_at"]),
        captured=data["captured"],
        released=data["released"],
        resolved_at=datetime.fromisoformat(data["resolved_at"]) if data["resolved_at"] else None,
        model=data["model"],
        metadata_json=None if data["metadata"] is None else json.dumps(data["metadata"]),
        price_book_version=data["price_book_version"],
        options_json=None if data["options"] is None else json.dumps(data["options"]),
        provider_cost_usd=data["provider_cost_usd"],
        drawn=tuple((d["grant_id"], d["credits"]) for d in data["drawn"]),
    )


def _history_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    return frame
