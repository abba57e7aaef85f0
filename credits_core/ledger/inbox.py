"""The writer's inbox: a bounded queue of commands that takes many at once.

`queue.Queue` takes one item per lock and wakes the writer on each: a request of many
writes (`Ledger.submit_many`, `/v1/batch`) then woke the writer on its first command,
which began deciding a batch of one while the rest were still being queued, and the two
threads passed the interpreter's lock back and forth. Here the caller puts all its
commands in under one lock with one wake-up (`put_many`), so they are decided together,
and the writer takes everything waiting under one lock too (`take`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any


class Full(Exception):
    """No room for the commands within the timeout."""


class Inbox:
    """A bounded FIFO of at most `capacity` items."""

    def __init__(self, capacity: int) -> None:
        assert capacity > 0
        self.capacity = capacity
        self._items: deque[Any] = deque()
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Any, timeout_s: float | None) -> None:
        self.put_many([item], timeout_s)

    def put_many(self, items: Sequence[Any], timeout_s: float | None) -> None:
        """Add every item, in order, or none of them (Full once `timeout_s` passed
        without room for all; None waits as long as it takes)."""
        assert 0 < len(items) <= self.capacity, "split what is larger than the inbox"
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._not_full:
            while self.capacity - len(self._items) < len(items):
                left_s = None if deadline is None else deadline - time.monotonic()
                if left_s is not None and left_s <= 0:
                    raise Full()
                self._not_full.wait(left_s)
            self._items.extend(items)
            self._not_empty.notify()

    def take(self, most: int) -> list[Any]:
        """Wait for the first item, then take it and up to `most` - 1 more."""
        with self._not_empty:
            while not self._items:
                self._not_empty.wait()
            count = min(most, len(self._items))
            taken = [self._items.popleft() for _ in range(count)]
            self._not_full.notify_all()
            return taken
