"""Stateful property test of the reservation ledger against a small reference model.

Hypothesis drives random sequences of ledger calls (accounts, grants of every kind,
reservations that fit or not, captures full and partial, releases, repeated
confirmations, extensions, hold and grant expiry under a fake clock, adjustments,
refunds, bulk usage and reused idempotency keys). A deliberately simple pure-Python
model predicts what a user would see; after every step every user's balance must
match the model and `check_invariants()` must report nothing.

The model (the contract of DESIGN.md, "Ledger rules"):

- a user has grants: remaining credits, priority, expiry, creation order;
- a grant is spendable while now < expires_at; from then on its credits are gone
  from the balance (expire_grants only books what has already lapsed);
- credits burn by priority (lower first), then soonest expiry (none last), then
  oldest; a hold remembers the grants it drew from;
- a capture spends the first drawn credits, the rest goes back; a release or an
  expiry gives everything back; credits given back to a lapsed grant expire at once;
- a hold is pending until resolved or swept by expire_holds; at now >= expires_at it
  can no longer be confirmed or extended (HoldExpired), but stays held until swept;
- positive adjustments and refunds are new adjustment grants without expiry;
  negative adjustments burn like a capture and must fit.

Deadlines sit on half-minutes while the clock moves by whole minutes, so no deadline
ever equals "now": the model need not know the boundary rule.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from credits_core import (
    HoldExpired,
    IdempotencyConflict,
    InsufficientCredits,
    Ledger,
    NotRefundable,
    TransactionClosed,
)
from credits_core.ledger import DEFAULT_PRIORITY
from tests.conftest import examples

START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
USERS = ("u_a", "u_b", "u_c")
KINDS = ("plan", "topup", "promo", "adjustment")
HALF = timedelta(seconds=30)
NEVER = datetime.max.replace(tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


# --------------------------------------------------------------------------- model


@dataclass
class MGrant:
    seq: int
    remaining: int
    priority: int
    expires_at: datetime | None
    swept: bool = False

    def live(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


@dataclass
class MHold:
    user: str
    amount: int
    draws: list[tuple[MGrant, int]]
    expires_at: datetime
    status: str = "pending"
    captured: int = 0
    refunded: bool = False


@dataclass
class Model:
    clock: FakeClock
    grants: dict[str, list[MGrant]] = field(default_factory=dict)
    holds: dict[str, MHold] = field(default_factory=dict)
    # transaction id of usage booked by apply_usage -> [user, credits spent, refunded]
    usage: dict[str, list] = field(default_factory=dict)
    seq: int = 0

    @property
    def now(self) -> datetime:
        return self.clock.now

    def add_grant(self, user: str, credits: int, priority: int, expires_at) -> None:
        self.seq += 1
        self.grants[user].append(MGrant(self.seq, credits, priority, expires_at))

    def spendable(self, user: str) -> list[MGrant]:
        live = [g for g in self.grants[user] if g.live(self.now) and g.remaining > 0]
        return sorted(live, key=lambda g: (g.priority, g.expires_at or NEVER, g.seq))

    def available(self, user: str) -> int:
        return sum(g.remaining for g in self.spendable(user))

    def held(self, user: str) -> int:
        mine = (h for h in self.holds.values() if h.user == user)
        return sum(h.amount for h in mine if h.status == "pending")

    def balance(self, user: str) -> tuple[int, int, int]:
        held, available = self.held(user), self.available(user)
        return (available + held, held, available)

    def draw(self, user: str, credits: int) -> list[tuple[MGrant, int]]:
        draws, left = [], credits
        for g in self.spendable(user):
            if left == 0:
                break
            take = min(g.remaining, left)
            g.remaining -= take
            left -= take
            draws.append((g, take))
        assert left == 0
        return draws

    def give_back(self, draws: list[tuple[MGrant, int]]) -> None:
        for g, n in draws:
            if g.live(self.now):
                g.remaining += n
            # else: the grant lapsed meanwhile, so these credits expire at once

    def expire_holds(self) -> tuple[int, int]:
        lapsed = [
            h for h in self.holds.values() if h.status == "pending" and h.expires_at <= self.now
        ]
        for h in lapsed:
            h.status = "expired"
            self.give_back(h.draws)
        return len(lapsed), sum(h.amount for h in lapsed)

    def expire_grants(self) -> tuple[int, int]:
        lapsed = [
            g
            for gs in self.grants.values()
            for g in gs
            if not g.live(self.now) and not g.swept and g.remaining > 0
        ]
        credits = sum(g.remaining for g in lapsed)
        for g in lapsed:
            g.swept, g.remaining = True, 0
        return len(lapsed), credits


# --------------------------------------------------------------------------- helpers


def expect_insufficient(exc: InsufficientCredits, required: int, available: int) -> None:
    shortfall = required - available
    assert (exc.required, exc.available, exc.shortfall) == (required, available, shortfall)
    assert str(exc) == (
        f"Insufficient credits. You need {required} credits but only have {available}. "
        f"You're {shortfall} credits short."
    )


def summary(result) -> object:
    """What a caller compares when the same request returns "the same result"."""
    if isinstance(result, pd.DataFrame):
        return [
            (str(s), int(c), t)
            for s, c, t in zip(
                result["status"], result["credits"], result["transaction_id"], strict=True
            )
        ]
    fields = ("transaction_id", "grant_id", "status", "credits", "kind", "balance_after")
    return {name: getattr(result, name) for name in fields if hasattr(result, name)}


# --------------------------------------------------------------------------- machine

RESERVE_ARGS = {
    "data": st.data(),
    "size": st.sampled_from(["some", "some", "all", "one more"]),
    "ttl_minutes": st.integers(0, 60),
    "keyed": st.booleans(),
}


class LedgerMachine(RuleBasedStateMachine):
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.ledger = Ledger.open(":memory:", clock=self.clock)
        self.model = Model(self.clock)
        self.key_seq = 0
        self.usage_seq = 0
        # (re-issue the same request, its first result, issue a different one) per key
        self.keys: list[tuple] = []

    def teardown(self) -> None:
        self.ledger.close()

    def new_key(self) -> str:
        self.key_seq += 1
        return f"key-{self.key_seq}"

    def users(self) -> list[str]:
        return sorted(self.model.grants)

    def remember_key(self, key, same, first, different) -> None:
        if key is not None:
            self.keys.append((same, first, different))

    # ------------------------------------------------------------ accounts and grants

    @initialize()
    def first_account(self) -> None:
        self.ledger.create_account("u_a", email="a@example.com", plan="pro")
        self.model.grants["u_a"] = []
        # a monthly plan allowance and a promo that lapses sooner: holds usually fit
        for credits, kind, minutes in ((400, "plan", 60), (100, "promo", 20)):
            expires_at = START + timedelta(minutes=minutes) + HALF
            self.ledger.grant("u_a", credits, kind=kind, expires_at=expires_at)
            self.model.add_grant("u_a", credits, DEFAULT_PRIORITY[kind], expires_at)

    @precondition(lambda self: len(self.model.grants) < len(USERS))
    @rule()
    def create_account(self) -> None:
        user = USERS[len(self.model.grants)]
        self.ledger.create_account(user, email=f"{user}@example.com", plan="free")
        self.model.grants[user] = []

    @rule(
        data=st.data(),
        credits=st.integers(1, 300),
        kind=st.sampled_from(KINDS),
        priority=st.one_of(st.none(), st.sampled_from([0, 5, 10, 20, 30])),
        expires_in=st.one_of(st.none(), st.integers(0, 90)),
        keyed=st.booleans(),
    )
    def grant(self, data, credits, kind, priority, expires_in, keyed) -> None:
        user = data.draw(st.sampled_from(self.users()), label="user")
        expires_at = None
        if expires_in is not None:
            expires_at = self.clock.now + timedelta(minutes=expires_in) + HALF
        key = self.new_key() if keyed else None
        args = dict(kind=kind, expires_at=expires_at, priority=priority, idempotency_key=key)
        result = self.ledger.grant(user, credits, **args)
        assert (result.user_id, result.credits, result.kind) == (user, credits, kind)
        effective = DEFAULT_PRIORITY[kind] if priority is None else priority
        self.model.add_grant(user, credits, effective, expires_at)
        self.remember_key(
            key,
            lambda: self.ledger.grant(user, credits, **args),
            result,
            lambda: self.ledger.grant(user, credits + 1, **args),
        )

    # ------------------------------------------------------------ holds

    # Holds are the heart of the ledger: reserve and confirm each appear as two rules so
    # that they run more often than the rest (Hypothesis picks among rules uniformly and
    # switches a random subset of them off in each example).
    @rule(target=holds, **RESERVE_ARGS)
    def reserve(self, data, size, ttl_minutes, keyed):
        return self.place_hold(data, size, ttl_minutes, keyed)

    @rule(target=holds, **RESERVE_ARGS)
    def reserve_another(self, data, size, ttl_minutes, keyed):
        return self.place_hold(data, size, ttl_minutes, keyed)

    @rule(tid=holds, data=st.data())
    def confirm(self, tid, data) -> None:
        self.resolve(tid, data)

    @rule(tid=holds, data=st.data())
    def confirm_another(self, tid, data) -> None:
        self.resolve(tid, data)

    @precondition(lambda self: len(self.model.grants) >= 2)
    @rule(target=holds, data=st.data())
    def reserve_together(self, data):
        """Several users' holds and grants at once, from threads started together: the
        writer batches them, and since each touches another user the model can apply
        them in any order."""
        users = data.draw(
            st.lists(st.sampled_from(self.users()), min_size=2, max_size=4, unique=True),
            label="users",
        )
        calls = [
            (user, data.draw(st.sampled_from(["reserve", "grant"]), label="call"),
             data.draw(st.integers(1, 250), label="credits"))
            for user in users
        ]  # fmt: skip
        start = threading.Barrier(len(calls))

        def call(user: str, what: str, credits: int):
            start.wait()
            try:
                if what == "grant":
                    return self.ledger.grant(user, credits, kind="topup")
                return self.ledger.reserve(user, credits, ttl=timedelta(minutes=30) + HALF)
            except InsufficientCredits as refused:
                return refused

        with ThreadPoolExecutor(len(calls)) as pool:
            results = list(pool.map(lambda c: call(*c), calls))
        placed = []
        for (user, what, credits), result in zip(calls, results, strict=True):
            if what == "grant":
                self.model.add_grant(user, credits, DEFAULT_PRIORITY["topup"], None)
                continue
            available = self.model.available(user)
            if credits > available:
                expect_insufficient(result, credits, available)
                continue
            assert (result.status, result.credits) == ("pending", credits)
            draws = self.model.draw(user, credits)
            expires_at = self.clock.now + timedelta(minutes=30) + HALF
            self.model.holds[result.transaction_id] = MHold(user, credits, draws, expires_at)
            placed.append(result.transaction_id)
        return multiple(*placed)

    def place_hold(self, data, size, ttl_minutes, keyed):
        user = data.draw(st.sampled_from(self.users()), label="user")
        available = self.model.available(user)
        credits = {
            "some": data.draw(st.integers(1, 150), label="credits"),
            "all": max(available, 1),
            "one more": available + 1,
        }[size]
        key = self.new_key() if keyed else None
        args = dict(
            reason="image-generation",
            metadata={"model": "FLUX.1 Kontext [pro]"},
            idempotency_key=key,
            ttl=timedelta(minutes=ttl_minutes) + HALF,
        )
        if credits > available:
            with pytest.raises(InsufficientCredits) as info:
                self.ledger.validate(user, credits)
            expect_insufficient(info.value, credits, available)
            with pytest.raises(InsufficientCredits) as info:
                self.ledger.reserve(user, credits, **args)
            expect_insufficient(info.value, credits, available)
            return multiple()
        self.ledger.validate(user, credits)
        r = self.ledger.reserve(user, credits, **args)
        assert (r.status, r.credits, r.user_id) == ("pending", credits, user)
        draws = self.model.draw(user, credits)
        self.model.holds[r.transaction_id] = MHold(
            user, credits, draws, self.clock.now + args["ttl"]
        )
        self.remember_key(
            key,
            lambda: self.ledger.reserve(user, credits, **args),
            r,
            lambda: self.ledger.reserve(user, credits + 1, **args),
        )
        # a short job is confirmed at once; a long one later, with other steps between
        if data.draw(st.sampled_from(["later", "later", "at once"]), label="confirm") == "at once":
            self.resolve(r.transaction_id, data)
        return r.transaction_id

    def resolve(self, tid, data) -> None:
        h = self.model.holds[tid]
        mode = data.draw(st.sampled_from(["full", "partial", "release"]), label="mode")
        success = mode != "release"
        credits = None
        if mode == "partial":
            credits = data.draw(st.integers(1, h.amount), label="credits")
        outcome = "captured" if success else "released"

        def call():
            return self.ledger.confirm(tid, success=success, credits=credits)

        if h.status == "pending" and h.expires_at <= self.clock.now:
            with pytest.raises(HoldExpired):
                call()
            return
        if h.status != "pending":
            if h.status == outcome and (credits is None or credits == h.captured):
                again = call()
                assert (again.status, again.captured) == (outcome, h.captured)
            else:
                with pytest.raises(TransactionClosed):
                    call()
            return
        result = call()
        taken = (h.amount if credits is None else credits) if success else 0
        assert (result.status, result.captured, result.released) == (
            outcome,
            taken,
            h.amount - taken,
        )
        h.status, h.captured = outcome, taken
        # the first drawn credits are spent; the last drawn go back
        back, rest = [], h.amount - taken
        for g, n in reversed(h.draws):
            if rest == 0:
                break
            back.append((g, min(n, rest)))
            rest -= min(n, rest)
        self.model.give_back(back)
        # the very same confirmation again: a no-op with the same result
        before = self.snapshot()
        again = call()
        assert (again.status, again.captured, again.released) == (
            outcome,
            taken,
            h.amount - taken,
        )
        assert self.snapshot() == before
        # the other outcome now: refused
        with pytest.raises(TransactionClosed):
            self.ledger.confirm(tid, success=not success)

    @rule(tid=holds, minutes=st.integers(1, 60))
    def extend(self, tid, minutes) -> None:
        h = self.model.holds[tid]
        ttl = timedelta(minutes=minutes) + HALF
        if h.status == "pending" and self.clock.now < h.expires_at:
            r = self.ledger.extend(tid, ttl)
            assert r.status == "pending"
            assert r.expires_at == self.clock.now + ttl
            h.expires_at = self.clock.now + ttl
        else:
            with pytest.raises(TransactionClosed):
                self.ledger.extend(tid, ttl)

    # ------------------------------------------------------------ time and expiry

    @rule(minutes=st.integers(1, 45))
    def advance_clock(self, minutes) -> None:
        self.clock.now += timedelta(minutes=minutes)

    @rule(which=st.sampled_from(["holds", "grants", "holds then grants", "grants then holds"]))
    def expire(self, which) -> None:
        for sweep in which.split(" then "):
            if sweep == "holds":
                done = self.ledger.expire_holds()
                assert (done.count, done.credits) == self.model.expire_holds()
                again = self.ledger.expire_holds()
            else:
                done = self.ledger.expire_grants()
                assert (done.count, done.credits) == self.model.expire_grants()
                again = self.ledger.expire_grants()
            assert (again.count, again.credits) == (0, 0)  # a second run books nothing

    # ------------------------------------------------------------ corrections

    @rule(data=st.data(), amount=st.integers(-150, 150).filter(bool), keyed=st.booleans())
    def adjust(self, data, amount, keyed) -> None:
        user = data.draw(st.sampled_from(self.users()), label="user")
        key = self.new_key() if keyed else None
        args = dict(reason="goodwill", actor="support@corp", idempotency_key=key)
        available = self.model.available(user)
        if -amount > available:
            with pytest.raises(InsufficientCredits) as info:
                self.ledger.adjust(user, amount, **args)
            expect_insufficient(info.value, -amount, available)
            return
        result = self.ledger.adjust(user, amount, **args)
        if amount > 0:
            self.model.add_grant(user, amount, DEFAULT_PRIORITY["adjustment"], None)
        else:
            self.model.draw(user, -amount)
        assert (result.user_id, result.credits) == (user, amount)
        self.remember_key(
            key,
            lambda: self.ledger.adjust(user, amount, **args),
            result,
            lambda: self.ledger.adjust(user, amount + 1 if amount != -1 else -2, **args),
        )

    @rule(tid=holds)
    def refund(self, tid) -> None:
        h = self.model.holds[tid]
        if h.status == "captured" and not h.refunded:
            entry = self.ledger.refund(tid, reason="bad output", actor="support@corp")
            assert entry.credits == h.captured
            h.refunded = True
            self.model.add_grant(h.user, h.captured, DEFAULT_PRIORITY["adjustment"], None)
        else:
            with pytest.raises(NotRefundable):
                self.ledger.refund(tid, reason="bad output", actor="support@corp")

    # ------------------------------------------------------------ bulk usage

    @rule(
        data=st.data(),
        events=st.lists(
            st.tuples(st.integers(0, 3), st.integers(1, 120), st.integers(0, 600), st.booleans()),
            min_size=1,
            max_size=8,
        ),
        with_ids=st.booleans(),
        keyed=st.booleans(),
    )
    def apply_usage(self, data, events, with_ids, keyed) -> None:
        # user index 3 has no account: "unknown_account"
        names = [*self.users(), "u_nobody"]
        rows = [(names[min(u, len(names) - 1)], c, s, ok) for u, c, s, ok in events]
        frame = pd.DataFrame(
            {
                "user_id": [r[0] for r in rows],
                "credits": pd.array([r[1] for r in rows], dtype="int64"),
                "ts": [self.clock.now - timedelta(seconds=r[2]) for r in rows],
                "success": [r[3] for r in rows],
            }
        )
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        duplicates = set()
        if with_ids:
            ids = []
            for _ in rows:
                if self.model.usage and data.draw(st.booleans(), label="reuse id"):
                    tid = data.draw(st.sampled_from(sorted(self.model.usage)), label="id")
                    if tid in ids:
                        tid = self.next_usage_id()
                else:
                    tid = self.next_usage_id()
                ids.append(tid)
            duplicates = {tid for tid in ids if tid in self.model.usage}
            frame["transaction_id"] = ids
        # the model: per user in (ts, row) order, each must fit what is left, one by one
        expected = {}
        order = sorted(range(len(rows)), key=lambda i: (frame["ts"].iloc[i], i))
        for i in order:
            user, credits, _, ok = rows[i]
            if user not in self.model.grants:
                expected[i] = ("unknown_account", 0)
            elif with_ids and frame["transaction_id"].iloc[i] in duplicates:
                expected[i] = ("duplicate", 0)
            elif credits > self.model.available(user):
                expected[i] = ("rejected_insufficient", 0)
            elif ok:
                self.model.draw(user, credits)
                expected[i] = ("captured", credits)
            else:
                expected[i] = ("released", 0)
        key = self.new_key() if keyed else None
        out = self.ledger.apply_usage(frame, idempotency_key=key)
        assert len(out) == len(frame)
        got = {
            i: (str(out["status"].iloc[i]), int(out["credits"].iloc[i])) for i in range(len(rows))
        }
        assert got == expected
        for i, (status, credits) in expected.items():
            if status == "captured":
                self.model.usage[out["transaction_id"].iloc[i]] = [rows[i][0], credits, False]
        self.remember_key(
            key,
            lambda: self.ledger.apply_usage(frame, idempotency_key=key),
            out,
            lambda: self.ledger.apply_usage(
                frame.iloc[:-1] if len(frame) > 1 else frame.assign(credits=frame["credits"] + 1),
                idempotency_key=key,
            ),
        )

    def next_usage_id(self) -> str:
        self.usage_seq += 1
        return f"gen-{self.usage_seq}"

    @precondition(lambda self: self.model.usage)
    @rule(data=st.data())
    def refund_usage(self, data) -> None:
        tid = data.draw(st.sampled_from(sorted(self.model.usage)), label="usage")
        user, credits, refunded = self.model.usage[tid]
        if refunded:
            with pytest.raises(NotRefundable):
                self.ledger.refund(tid, reason="bad output", actor="support@corp")
            return
        entry = self.ledger.refund(tid, reason="bad output", actor="support@corp")
        assert (entry.user_id, entry.credits) == (user, credits)
        self.model.usage[tid][2] = True
        self.model.add_grant(user, credits, DEFAULT_PRIORITY["adjustment"], None)

    # ------------------------------------------------------------ idempotency

    @precondition(lambda self: self.keys)
    @rule(data=st.data())
    def reuse_key(self, data) -> None:
        same, first, different = data.draw(st.sampled_from(self.keys), label="key")
        before = self.snapshot()
        assert summary(same()) == summary(first)
        with pytest.raises(IdempotencyConflict):
            different()
        assert self.snapshot() == before

    # ------------------------------------------------------------ checks

    def snapshot(self) -> dict:
        return {
            u: (tuple(self.ledger.balance(u)), len(self.ledger.history(u, limit=None)))
            for u in self.users()
        }

    @invariant()
    def balances_match_model(self) -> None:
        for user in self.users():
            b = self.ledger.balance(user)
            assert (b.total, b.held, b.available) == self.model.balance(user), user

    @invariant()
    def ledger_is_sound(self) -> None:
        assert self.ledger.check_invariants() == []


# make test: a quick sample; make test-long (CREDITS_TEST_PROFILE=long): 10x the examples
LedgerMachine.TestCase.settings = settings(
    max_examples=examples(15),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLedgerStateful = LedgerMachine.TestCase
