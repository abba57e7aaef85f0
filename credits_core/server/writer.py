"""How the server hands a write to the ledger: `submit` returns a Future of its result.

`Ledger.submit(operation, *args, **kwargs)` queues the write on the ledger's writer
thread, which commits many callers' writes in one transaction; the Future resolves after
that commit. Async handlers `await asyncio.wrap_future(submit(...))`: no thread-pool hop.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from credits_core.ledger import Ledger

WRITES = frozenset(
    {
        "reserve",
        "confirm",
        "extend",
        "create_account",
        "grant",
        "grant_many",
        "adjust",
        "refund",
        "apply_usage",
        "expire_holds",
        "expire_grants",
    }
)


def submit(ledger: Ledger, operation: str, /, *args: Any, **kwargs: Any) -> Future:
    """Queue `ledger.<operation>(*args, **kwargs)`; a Future of its result or error."""
    if operation not in WRITES:
        raise ValueError(f"{operation!r} is not a ledger write; use one of {sorted(WRITES)}.")
    queue = getattr(ledger, "submit", None)
    if queue is not None:
        return queue(operation, *args, **kwargs)
    # Fallback until the ledger's writer thread lands (issue 13): run the write now, in
    # the caller's thread, and hand back a completed Future. Remove it with the writer.
    future: Future = Future()
    try:
        future.set_result(getattr(ledger, operation)(*args, **kwargs))
    except Exception as error:
        future.set_exception(error)
    return future
