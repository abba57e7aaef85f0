"""API keys: who may call the ledger server, and with which scopes.

A key is `ck_` + 43 random URL-safe characters, shown once when it is made. Only its
SHA-256 is stored (the key has 256 bits of entropy, so a fast hash is enough), in
`data/api_keys.toml` or the file `$CREDITS_API_KEYS` names, written atomically and
readable only by its owner. A running server re-reads the file when it changes
(checked at most every `RELOAD_S`), so new and revoked keys take effect within a second.

Scopes: `quote`; `read` (balance, account, reservation, transactions); `reserve`
(validate, reserve, confirm, extend, batch); `support` (adjustments, refunds, and the
`X-Actor` header); `admin` (everything, and accounts, grants, usage, sweeps, checks).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from credits_core.errors import CreditsError

SCOPES = ("quote", "read", "reserve", "support", "admin")
DEFAULT_KEYS_FILE = Path(__file__).resolve().parents[2] / "data" / "api_keys.toml"
KEY_PREFIX = "ck_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
RELOAD_S = 0.2
LOCAL_ADMIN = "local-admin"


class ApiKeyError(CreditsError, ValueError):
    """A key request is invalid (bad name, unknown scope, duplicate, unknown key)."""


class KeysFileError(CreditsError):
    """The keys file is broken: no key is accepted until it is fixed."""


@dataclass(frozen=True)
class ApiKey:
    """One stored key: its name, the hash of its secret, its scopes, and its life."""

    name: str
    digest: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's name and what it may do."""

    name: str
    scopes: frozenset[str] = field(default_factory=frozenset)

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


def keys_path(path: str | Path | None = None) -> Path:
    return Path(path or os.environ.get("CREDITS_API_KEYS") or DEFAULT_KEYS_FILE)


def digest(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def check_scopes(scopes: str | list[str] | tuple[str, ...]) -> frozenset[str]:
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    chosen = frozenset(s.strip() for s in items if s.strip())
    unknown = sorted(chosen - set(SCOPES))
    if unknown or not chosen:
        raise ApiKeyError(
            f"Unknown scope(s) {', '.join(unknown) or '(none given)'}: choose from "
            f"{', '.join(SCOPES)} (comma-separated)."
        )
    return chosen


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name) or name == LOCAL_ADMIN:
        raise ApiKeyError(
            f"Key name {name!r} must be 1-64 letters, digits, '_', '.', '@' or '-', start "
            f"with a letter or digit, and not be {LOCAL_ADMIN!r}."
        )
    return name


class KeyStore:
    """The keys file, re-read when it changes; `authenticate` answers per request."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = keys_path(path)
        self._keys: dict[str, ApiKey] = {}
        self._by_digest: dict[str, ApiKey] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._refresh(force=True)

    # ---------------------------------------------------------------- reading

    def listing(self) -> list[ApiKey]:
        self._refresh(force=True)
        return sorted(self._keys.values(), key=lambda k: k.name)

    def authenticate(self, secret: str) -> Principal | None:
        """The active key with this secret, or None."""
        self._refresh()
        key = self._by_digest.get(digest(secret))
        if key is None or not key.active:
            return None
        return Principal(key.name, key.scopes)

    def _refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < RELOAD_S:
            return
        with self._lock:
            self._checked = now
            stamp = _stamp(self.path)
            if stamp == self._stamp:
                return
            keys = _load(self.path) if stamp is not None else {}
            self._keys = keys
            self._by_digest = {k.digest: k for k in keys.values()}
            self._stamp = stamp

    # ---------------------------------------------------------------- writing

    def create(self, name: str, scopes: str | list[str], *, replace: bool = False) -> str:
        """Make a key and return its secret (the only time it is seen)."""
        name = check_name(name)
        chosen = check_scopes(scopes)
        secret = new_secret()
        with _file_lock(self.path):
            keys = _load(self.path) if self.path.exists() else {}
            if name in keys and not replace:
                raise ApiKeyError(
                    f"A key named {name!r} exists already. Revoke it first "
                    f"(`credits keys revoke {name}`) or choose another name."
                )
            keys[name] = ApiKey(name, digest(secret), chosen, datetime.now(UTC))
            _save(self.path, keys)
        self._refresh(force=True)
        return secret

    def revoke(self, name: str) -> ApiKey:
        with _file_lock(self.path):
            keys = _load(self.path) if self.path.exists() else {}
            key = keys.get(name)
            if key is None:
                known = ", ".join(sorted(keys)) or "none"
                raise ApiKeyError(f"No key named {name!r} (keys: {known}).")
            if key.active:
                key = ApiKey(key.name, key.digest, key.scopes, key.created_at, datetime.now(UTC))
                keys[name] = key
                _save(self.path, keys)
        self._refresh(force=True)
        return key


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def _load(path: Path) -> dict[str, ApiKey]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        keys = {}
        for name, entry in data.get("keys", {}).items():
            revoked = entry.get("revoked_at")
            keys[name] = ApiKey(
                name=name,
                digest=str(entry["hash"]),
                scopes=frozenset(entry["scopes"]),
                created_at=datetime.fromisoformat(entry["created_at"]),
                revoked_at=datetime.fromisoformat(revoked) if revoked else None,
            )
        return keys
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as error:
        raise KeysFileError(
            f"{path} is not a valid keys file ({error}). Fix or remove it; keys are made "
            "with `credits keys create`."
        ) from None


def _save(path: Path, keys: dict[str, ApiKey]) -> None:
    """Write the file atomically, readable by its owner only."""
    lines = ["# API keys of the credits ledger server (hashes only; `credits keys ...`).", ""]
    for key in sorted(keys.values(), key=lambda k: k.name):
        lines += [
            f"[keys.{json.dumps(key.name)}]",
            f"hash = {json.dumps(key.digest)}",
            f"scopes = {json.dumps(sorted(key.scopes))}",
            f"created_at = {json.dumps(key.created_at.isoformat())}",
        ]
        if key.revoked_at is not None:
            lines.append(f"revoked_at = {json.dumps(key.revoked_at.isoformat())}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write("\n".join(lines))
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


@contextlib.contextmanager
def _file_lock(path: Path):
    """One writer of the keys file at a time (between processes too)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f".{path.name}.lock")
    descriptor = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)
