"""Balance listeners: told once per logged batch, with the users it touched (a sweep's
too), on a thread of their own, so that a slow listener (the alert evaluation)
never delays a write or a caller.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

logger = logging.getLogger(__name__)

NOTIFY_BACKLOG_BATCHES = 1_000  # listener calls waiting before they are merged
Touched = frozenset[str] | None
BalanceListener = Callable[[Touched], None]


class Notifier:
    """Calls the balance listeners on a thread of its own, once per committed batch;
    when they fall behind by NOTIFY_BACKLOG_BATCHES, waiting calls are merged."""

    def __init__(self) -> None:
        self.listeners: list[BalanceListener] = []
        self._backlog: deque[Touched] = deque()
        self._busy = False
        self._stopping = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="ledger-listeners", daemon=True)
        self._thread.start()

    def publish(self, touched: Touched) -> None:
        if not self.listeners:
            return
        with self._changed:
            if len(self._backlog) >= NOTIFY_BACKLOG_BATCHES:
                last = self._backlog.pop()
                touched = None if last is None or touched is None else last | touched
            self._backlog.append(touched)
            self._changed.notify_all()

    def drain(self, timeout_s: float) -> bool:
        """Wait until every published change has been heard; False on timeout."""
        with self._changed:
            return self._changed.wait_for(
                lambda: not self._backlog and not self._busy, timeout=timeout_s
            )

    def stop(self, timeout_s: float) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._backlog or self._stopping)
                if not self._backlog:
                    return
                touched = self._backlog.popleft()
                self._busy = True
            for listener in tuple(self.listeners):
                try:
                    listener(touched)
                except Exception:
                    logger.exception("a balance-change listener failed; the write stands")
            with self._changed:
                self._busy = False
                self._changed.notify_all()
