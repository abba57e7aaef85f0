"""The writer's inbox: bounded, in order, many in at once or none."""

import threading
import time

import pytest

from credits_core.ledger.inbox import Full, Inbox


def test_items_come_out_in_the_order_they_went_in():
    inbox = Inbox(10)
    inbox.put("a", timeout_s=1)
    inbox.put_many(["b", "c", "d"], timeout_s=1)
    assert inbox.take(2) == ["a", "b"]
    assert inbox.take(10) == ["c", "d"]
    assert len(inbox) == 0


def test_put_many_adds_all_or_none():
    inbox = Inbox(4)
    inbox.put_many([1, 2, 3], timeout_s=1)
    started = time.monotonic()
    with pytest.raises(Full):
        inbox.put_many([4, 5], timeout_s=0.05)
    assert time.monotonic() - started >= 0.05  # it waited for room first
    assert len(inbox) == 3
    inbox.put_many([4], timeout_s=1)
    assert inbox.take(10) == [1, 2, 3, 4]


def test_more_than_the_inbox_holds_is_a_bug_of_the_caller():
    with pytest.raises(AssertionError, match="split"):
        Inbox(2).put_many([1, 2, 3], timeout_s=1)


def test_a_waiting_put_goes_in_once_the_writer_takes():
    inbox = Inbox(2)
    inbox.put_many(["x", "y"], timeout_s=1)
    done = threading.Event()

    def put() -> None:
        inbox.put_many(["z", "w"], timeout_s=10)
        done.set()

    thread = threading.Thread(target=put)
    thread.start()
    assert not done.wait(0.05)  # no room yet
    assert inbox.take(1) == ["x"]
    assert not done.wait(0.05)  # room for one is not room for both
    assert inbox.take(1) == ["y"]
    assert done.wait(10)
    thread.join(10)
    assert inbox.take(10) == ["z", "w"]


def test_take_waits_for_the_first_item():
    inbox = Inbox(4)
    taken = []
    thread = threading.Thread(target=lambda: taken.append(inbox.take(4)))
    thread.start()
    time.sleep(0.05)
    assert taken == []
    inbox.put_many(["a", "b"], timeout_s=1)
    thread.join(10)
    assert taken == [["a", "b"]]
