"""The support sandbox: a user's credits copied into memory and stepped through."""

from __future__ import annotations

import pytest

from credits_core.ledger import InsufficientCredits
from credits_core.simulation import SandboxError
from credits_core.simulation.sandbox import Sandbox


@pytest.fixture
def box(known):
    sandbox = Sandbox.copy_of(known, "u_1")
    yield sandbox
    sandbox.close()


def balance(step) -> tuple[int, int, int]:
    return step.total, step.held, step.available


def test_copy_starts_from_the_users_credits(box):
    (copied,) = box.steps
    assert copied.message.startswith("Copied u_1: plan standard, 1 live grant(s), 0 pending")
    assert balance(copied) == (550, 0, 550)


def test_validate_shows_the_platforms_message(box):
    step = box.validate(1100)
    assert not step.ok
    assert step.message == str(InsufficientCredits(1100, 550))
    assert step.message == (
        "Insufficient credits. You need 1100 credits but only have 550. You're 550 credits short."
    )
    assert box.validate(550).ok


def test_reserve_then_confirm_or_fail(box):
    assert balance(box.reserve(300)) == (550, 300, 250)
    captured = box.confirm(success=True)
    assert captured.message.startswith("Captured 300 credits of ")
    assert balance(captured) == (250, 0, 250)
    box.reserve(200)
    released = box.confirm(success=False)
    assert "Released 200 credits" in released.message
    assert balance(released) == (250, 0, 250)
    refused = box.reserve(251)
    assert not refused.ok and refused.message == str(InsufficientCredits(251, 250))


def test_a_hold_nobody_confirms_expires(box):
    box.reserve(100, ttl_minutes=15)
    step = box.advance(16)
    assert "1 hold(s) expired (100 credits released)" in step.message
    assert balance(step) == (550, 0, 550)
    with pytest.raises(SandboxError, match="no pending hold"):
        box.confirm()


def test_plan_credits_expire_when_the_clock_passes_their_expiry(box):
    step = box.advance(26 * 24 * 60)  # the plan grant expires 25 days after the copy
    assert "1 grant(s) expired (550 credits lapsed)" in step.message
    assert balance(step) == (0, 0, 0)


def test_the_live_ledger_is_not_touched(box, known):
    box.reserve(300)
    box.confirm(success=True)
    assert known.balance("u_1").total == 550
