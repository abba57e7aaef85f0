"""Hot accounts: what this ledger last wrote to an account, so that its next reserve or
confirm need not read it back.

After each committed reserve or confirm the ledger keeps the account's balance row
(total, held, entries), its spendable grants while they are known, and the holds it
placed there and has not resolved. The next reserve or confirm of that account starts
from this state instead of reading the database, and the guarded UPDATE of the balance
row (`entries = <as kept here>`) checks it in the same transaction: if anything else
wrote the account since (another thread, ledger or process), that UPDATE matches no
row and the transaction runs again from the database.

A state is taken out when a write starts and put back only after its COMMIT, so a
failed or retried write never starts from it again. What a kept state would refuse
(too few credits, a hold past its expiry) is decided again from the database, so a
stale state can cost a retry but never refuses or allows anything.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from types import MappingProxyType

from credits_core.ledger.grants import Source
from credits_core.ledger.journal import Book
from credits_core.ledger.values import Reservation

CAPACITY = 10_000  # accounts kept, least recently written dropped first


@dataclass(frozen=True)
class Hot:
    """An account as this ledger left it: the balance row after its last write, its
    spendable grants in burn order (None once unknown), its unresolved holds."""

    user_id: str
    account_no: int
    total: int
    held: int
    entries: int
    sources: tuple[Source, ...] | None
    pending: MappingProxyType[str, Reservation]

    @classmethod
    def after(
        cls,
        book: Book,
        sources: tuple[Source, ...] | None,
        pending: dict[str, Reservation],
    ) -> Hot:
        """The state a committed write leaves: `book` with its entries posted."""
        return cls(
            book.user_id,
            book.account_no,
            book.balance_total,
            book.balance_held,
            book.seq,
            sources,
            MappingProxyType(pending),
        )

    def book(self) -> Book:
        return Book(self.user_id, self.account_no, self.total, self.held, self.entries)


class HotAccounts:
    """The kept states, by account number; safe to share between threads."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._states: OrderedDict[int, Hot] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity = capacity

    def take(self, account_no: int | None) -> Hot | None:
        """Remove and return the account's state: a write that starts from it owns it."""
        if account_no is None:
            return None
        with self._lock:
            return self._states.pop(account_no, None)

    def put(self, hot: Hot) -> None:
        with self._lock:
            self._states[hot.account_no] = hot
            self._states.move_to_end(hot.account_no)
            while len(self._states) > self._capacity:
                self._states.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._states.clear()
