"""The accounts a `Ledger` has looked up, as last read: each one's number, its entries
and its recent history marks (reads.AccountSize).

An account's number never changes, and its entries and marks only grow, so a copy read
earlier is still a right hint for history (reads.history): a stale one only makes a
read scan more rows, and a read that finds many newer entries than the copy knows
drops it, to be read again. The long histories (over reads.LONG_HISTORY entries, the
ones read from their marks) are all read in one statement the first time any history
is read, so that even a heavy user's first read is one statement, not two. Bounded:
the least recently used account goes first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from credits_core.ledger.reads import AccountSize

CAPACITY_ACCOUNTS = 100_000
STALE_ENTRIES = 100  # newer entries than the copy knows, before it is read again


class Directory:
    """Account sizes by user id, as last read (see the module's docstring)."""

    def __init__(self, capacity: int = CAPACITY_ACCOUNTS) -> None:
        self._known: OrderedDict[str, AccountSize] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()
        self._long_read = False

    def get(self, user_id: str) -> AccountSize | None:
        with self._lock:
            found = self._known.get(user_id)
            if found is not None:
                self._known.move_to_end(user_id)
            return found

    def put(self, user_id: str, size: AccountSize) -> None:
        with self._lock:
            self._keep(user_id, size)

    def saw(self, user_id: str, entries: int) -> None:
        """The account has at least `entries` entries: past STALE_ENTRIES more than the
        copy knows, forget the copy."""
        with self._lock:
            found = self._known.get(user_id)
            if found is not None and entries > found.entries + STALE_ENTRIES:
                del self._known[user_id]

    def read_long_once(self, read: Callable[[], dict[str, AccountSize]]) -> None:
        """Keep the long histories `read()` gives, the first time only."""
        if self._long_read:
            return
        long = read()
        with self._lock:
            if self._long_read:
                return
            self._long_read = True
            for user_id, size in long.items():
                if user_id not in self._known:
                    self._keep(user_id, size)

    def _keep(self, user_id: str, size: AccountSize) -> None:
        self._known[user_id] = size
        self._known.move_to_end(user_id)
        while len(self._known) > self._capacity:
            self._known.popitem(last=False)
