"""A write the ledger could not commit answers 503 with Retry-After, and the client
raises the ledger's own error again, with its message."""

from __future__ import annotations

from credits_core.ledger import WriteFailed, WriterBusy
from credits_core.server.errors import from_exception, to_exception


def test_a_failed_batch_is_503_and_comes_back_as_write_failed():
    failed = WriteFailed(12, "IOException: No space left on device")
    answer = from_exception(failed)
    assert (answer.status, answer.type) == (503, "ledger_unavailable")
    assert answer.headers["Retry-After"]
    again = to_exception(answer.status, answer.body())
    assert isinstance(again, WriteFailed)
    assert str(again) == str(failed)


def test_a_full_write_queue_is_503_and_comes_back_as_writer_busy():
    busy = WriterBusy("data/credits.duckdb", 16_384, 5.0)
    answer = from_exception(busy)
    assert (answer.status, answer.type) == (503, "ledger_unavailable")
    again = to_exception(answer.status, answer.body())
    assert isinstance(again, WriterBusy) and "overloaded" in str(again)
