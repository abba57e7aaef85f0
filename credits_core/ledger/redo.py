"""The redo log: where a batch becomes durable before its callers are answered.

The writer (writer.py) appends each batch's changes (changes.py) as one record, in one
synced write shared by every caller of the batch, and only then answers them. The
applier (applier.py) puts the logged batches into the DuckDB file behind it, and
records in that same transaction the number of the last batch it applied
(`redo_position`). On opening, the records after that number are applied again; once
every record is applied the log is emptied.

A record is `length (4 bytes) | crc32 (4) | batch number (8) | payload`, the payload a
pickle of the batch's rows (plain values only) and of its bulk usage (Arrow tables). A
record cut short or failing its checksum can only be the last one, written by a process
killed before it synced and answered: it and anything after it is dropped. The log
sits beside the database file (`<db>.redo`), readable and writable by its owner only;
only the process that holds DuckDB's lock on the database opens it.
"""

from __future__ import annotations

import os
import pickle
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from credits_core.ledger.changes import Changes
from credits_core.ledger.errors import LedgerDamaged

HEADER = struct.Struct("<IIQ")  # payload length, crc32 of number+payload, batch number
NUMBER = struct.Struct("<Q")
CRC_PIECE_BYTES = 4_096  # zlib lets go of the GIL from 5 KiB up


def log_path(db_path: str) -> str:
    return f"{db_path}.redo"


class RedoLog:
    """The redo log of one database file, opened for appending."""

    def __init__(self, path: str | None) -> None:
        self.path = path  # None: a throwaway (":memory:") ledger, nothing is kept
        self._fd: int | None = None
        self.size_bytes = 0
        if path is not None:
            # O_DSYNC: a write returns once it is on disk, as write + fdatasync would,
            # in one system call (so the writer lets go of the GIL once, not twice).
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DSYNC, 0o600)
            self.size_bytes = os.fstat(self._fd).st_size

    @classmethod
    def for_database(cls, db_path: str) -> RedoLog:
        return cls(None if db_path == ":memory:" else log_path(db_path))

    def records(self) -> Iterator[tuple[int, Changes]]:
        """The whole records in the log, in order; a torn tail is cut off the file."""
        if self._fd is None:
            return
        with open(self._fd, "rb", closefd=False) as log:
            log.seek(0)
            data = log.read()
        offset = 0
        while offset + HEADER.size <= len(data):
            length, crc, number = HEADER.unpack_from(data, offset)
            end = offset + HEADER.size + length
            payload = data[offset + HEADER.size : end]
            if end > len(data) or checksum(payload, checksum(NUMBER.pack(number))) != crc:
                break
            yield number, _changes(pickle.loads(payload))
            offset = end
        if offset < len(data):
            self._cut(offset)

    def append(self, number: int, changes: Changes) -> None:
        """Append one batch's record in one synced write: once this returns, it survives
        a crash. On failure the log is cut back to where it was, so no torn record
        stays."""
        if self._fd is None:
            return
        record = _record(number, changes)
        size = sum(len(part) for part in record)
        try:
            written = os.pwritev(self._fd, record, self.size_bytes)  # synced: O_DSYNC
            if written != size:
                raise OSError(f"wrote {written} of {size} bytes")
        except OSError:
            self._cut(self.size_bytes)
            raise
        self.size_bytes += size

    def empty(self) -> None:
        """Drop every record (all are applied)."""
        self._cut(0)

    def remove(self) -> None:
        """Close and delete the log (every record is applied): a file closed cleanly
        leaves nothing beside it."""
        self.close()
        if self.path is not None:
            Path(self.path).unlink(missing_ok=True)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _cut(self, size_bytes: int) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, size_bytes)
        os.fsync(self._fd)
        self.size_bytes = size_bytes


def _record(number: int, changes: Changes) -> tuple[bytes, bytes]:
    """The record's header and payload (not joined: a bulk record's payload is large)."""
    payload = pickle.dumps((changes.rows, changes.usage), protocol=pickle.HIGHEST_PROTOCOL)
    crc = checksum(payload, checksum(NUMBER.pack(number)))
    return HEADER.pack(len(payload), crc, number), payload


def _changes(payload: object) -> Changes:
    """A record's changes; a log written before bulk usage was logged holds rows only."""
    if isinstance(payload, dict):
        return Changes(payload)
    rows, usage = payload
    return Changes(rows, usage)


def checksum(data: bytes, crc: int = 0) -> int:
    """crc32 of `data` (going on from `crc`), in pieces small enough that zlib keeps the
    GIL: letting it go and taking it back costs the writer up to a switch interval
    (5 ms) when other threads are busy, far more than the sum itself."""
    view = memoryview(data)
    for start in range(0, len(data), CRC_PIECE_BYTES):
        crc = zlib.crc32(view[start : start + CRC_PIECE_BYTES], crc)
    return crc


def check_sequence(path: str, applied: int, numbers: list[int]) -> None:
    """The log's records after `applied` must follow it one by one."""
    later = [n for n in numbers if n > applied]
    expected = list(range(applied + 1, applied + 1 + len(later)))
    if later != expected:
        raise LedgerDamaged(
            path,
            f"its redo log {log_path(path)} holds batches {later[:3]}... but the file has "
            f"applied up to batch {applied}",
        )


def has_records(db_path: str) -> bool:
    return (
        db_path != ":memory:"
        and Path(log_path(db_path)).exists()
        and (Path(log_path(db_path)).stat().st_size > 0)
    )
