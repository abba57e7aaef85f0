"""The support sandbox: one user's credits copied into an in-memory ledger, to step through
validate, reserve, confirm or fail, and expiry, and watch total, held and available.

The live ledger is only read (account, live grants, pending holds); every step runs on a
`Ledger.open(":memory:")` with its own clock, which starts at the live ledger's time and
moves only when asked. Each step records the platform's own message (the text of
`InsufficientCredits`, `HoldExpired`, ... or what the call returned) and the balance
after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from credits_core.ledger import Ledger, LedgerError, Reservation
from credits_core.pricing import Quote
from credits_core.simulation.errors import SandboxError

ACTOR = "sandbox"


@dataclass(frozen=True)
class Step:
    number: int
    at: datetime
    action: str
    ok: bool
    message: str
    total: int
    held: int
    available: int


class SandboxClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Sandbox:
    """A user's copy in memory. Never touches the ledger it was copied from again."""

    def __init__(self, user_id: str, ledger: Ledger, clock: SandboxClock) -> None:
        self.user_id = user_id
        self._ledger = ledger
        self._clock = clock
        self.steps: list[Step] = []

    @classmethod
    def copy_of(cls, live: Ledger, user_id: str) -> Sandbox:
        """Copy the user's plan, live grants (remaining credits, kind, priority, expiry)
        and pending holds from `live` (read only) into a new in-memory ledger."""
        account = live.account(user_id)
        now = live.now()
        grants = [g for g in live.grants(user_id) if g.remaining > 0 and g.is_live(now)]
        holds = live.holds_life(user_id)
        pending = holds[(holds["status"] == "pending") & (holds["expires_at"] > now)]
        clock = SandboxClock(now)
        sandbox = cls(user_id, Ledger.open(":memory:", clock=clock), clock)
        copy = sandbox._ledger
        copy.create_account(user_id, email=account.email, plan=account.plan)
        for grant in grants:
            copy.grant(user_id, grant.remaining, kind=grant.kind, expires_at=grant.expires_at,
                       priority=grant.priority, reason=grant.reason, actor=ACTOR)  # fmt: skip
        for hold in pending.itertuples():
            copy.reserve(user_id, int(hold.credits), reason="copied hold",
                         metadata={"model": hold.model} if hold.model else None,
                         ttl=hold.expires_at.to_pydatetime() - now)  # fmt: skip
        sandbox._record(
            "copy",
            True,
            f"Copied {user_id}: plan {account.plan or 'none'}, {len(grants)} live grant(s), "
            f"{len(pending)} pending hold(s). Nothing here writes the live ledger.",
        )
        return sandbox

    # ------------------------------------------------------------------ steps

    def validate(self, credits: int) -> Step:
        return self._try(
            "validate",
            lambda: self._ledger.validate(self.user_id, credits),
            lambda b: f"OK: {credits:,} credits fit ({b.available:,} available).",
        )

    def reserve(
        self, credits: int | None = None, *, quote: Quote | None = None, ttl_minutes: int = 15
    ) -> Step:
        return self._try(
            "reserve",
            lambda: self._ledger.reserve(
                self.user_id, credits, quote=quote, ttl=timedelta(minutes=ttl_minutes), actor=ACTOR
            ),
            lambda r: (
                f"Reserved {r.credits:,} credits as {r.transaction_id}; held until "
                f"{r.expires_at:%Y-%m-%d %H:%M} UTC."
            ),
        )

    def confirm(self, transaction_id: str | None = None, *, success: bool = True) -> Step:
        hold = transaction_id or self._latest_pending()
        return self._try(
            "confirm" if success else "fail",
            lambda: self._ledger.confirm(hold, success=success, actor=ACTOR),
            lambda r: (
                f"Captured {r.captured:,} credits of {r.transaction_id}."
                if success
                else f"Released {r.released:,} credits of {r.transaction_id}: the "
                "generation failed, nothing is charged."
            ),
        )

    def advance(self, minutes: int) -> Step:
        """Move the sandbox clock on, then run both expiry sweeps as the platform does."""
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
            raise SandboxError(f"Advance the clock by a positive whole number of minutes, "
                               f"not {minutes!r}.")  # fmt: skip
        self._clock.now += timedelta(minutes=minutes)
        holds = self._ledger.expire_holds()
        grants = self._ledger.expire_grants()
        return self._record(
            "expiry",
            True,
            f"Clock moved {minutes:,} min to {self._clock.now:%Y-%m-%d %H:%M} UTC: "
            f"{holds.count} hold(s) expired ({holds.credits:,} credits released), "
            f"{grants.count} grant(s) expired ({grants.credits:,} credits lapsed).",
        )

    # ------------------------------------------------------------------ reading

    @property
    def now(self) -> datetime:
        return self._clock.now

    def pending(self) -> list[Reservation]:
        life = self._ledger.holds_life(self.user_id)
        ids = life.loc[life["status"] == "pending", "transaction_id"]
        return [self._ledger.reservation(i) for i in ids]

    def grants(self) -> pd.DataFrame:
        return self._ledger.grants_frame(self.user_id)

    def log(self) -> pd.DataFrame:
        return pd.DataFrame([vars(step) for step in self.steps],
                            columns=list(Step.__dataclass_fields__))  # fmt: skip

    def close(self) -> None:
        self._ledger.close()

    # ------------------------------------------------------------------ machinery

    def _latest_pending(self) -> str:
        pending = self.pending()
        if not pending:
            raise SandboxError("There is no pending hold to confirm: reserve first.")
        return max(pending, key=lambda r: r.created_at).transaction_id

    def _try(self, action: str, call: Callable, describe: Callable) -> Step:
        try:
            result = call()
        except LedgerError as error:
            return self._record(action, False, str(error))
        return self._record(action, True, describe(result))

    def _record(self, action: str, ok: bool, message: str) -> Step:
        balance = self._ledger.balance(self.user_id)
        step = Step(len(self.steps) + 1, self._clock.now, action, ok, message, *balance)
        self.steps.append(step)
        return step
