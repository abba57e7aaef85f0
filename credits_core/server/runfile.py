"""`<db>.server.json`: how other processes find the server that owns a ledger file.

The server writes it (mode 0600: only its user can read the local admin token in it)
once its API listens, and removes it when it stops. It holds the API's URL, the
dashboard's URL, the server's PID and a fresh random admin token. A file whose PID is
no longer running was left by a server that was killed: it is stale and ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class RunFile:
    """What a running server tells its clients."""

    api_url: str
    dashboard_url: str
    pid: int
    token: str
    database: str
    started_at: str


def path_for(database: str | Path) -> Path:
    database = Path(database).resolve()
    return database.with_name(database.name + ".server.json")


def new_token() -> str:
    return "local_" + secrets.token_urlsafe(32)


def write(database: str | Path, api_url: str, dashboard_url: str, token: str) -> RunFile:
    entry = RunFile(
        api_url=api_url,
        dashboard_url=dashboard_url,
        pid=os.getpid(),
        token=token,
        database=str(Path(database).resolve()),
        started_at=datetime.now(UTC).isoformat(),
    )
    target = path_for(database)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        json.dump(asdict(entry), out)
    os.replace(temporary, target)
    return entry


def remove(database: str | Path, pid: int | None = None) -> None:
    """Remove the file if it is ours (`pid`, default this process)."""
    found = read_any(database)
    if found is not None and found.pid == (pid or os.getpid()):
        with contextlib.suppress(FileNotFoundError):
            path_for(database).unlink()


def read_any(database: str | Path) -> RunFile | None:
    """The file's contents, stale or not; None when there is none or it is unreadable."""
    try:
        data = json.loads(path_for(database).read_text(encoding="utf-8"))
        return RunFile(**data)
    except (OSError, ValueError, TypeError):
        return None


def find(database: str | Path) -> RunFile | None:
    """The live server of this database, or None (no file, or a stale one)."""
    found = read_any(database)
    if found is None or not alive(found.pid):
        return None
    return found


def alive(pid: int) -> bool:
    """Is `pid` a running `credits serve`? (A PID reused by another program, or a zombie
    left by a killed server, is not.)"""
    if Path("/proc/self").exists():
        try:
            return b"serve" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
