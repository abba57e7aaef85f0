"""Checking a support action before anyone is asked to confirm it.

The transaction history page offers "Confirm" only for an action these functions
accepted: an adjustment's credits as typed (a whole number, not zero, within bounds,
never removing more than the user has available) and its reason; a refund's generation
(this user's, captured, not refunded yet) and its reason. Every problem is named at
once, in words for a support agent: what is wrong and what is allowed. Nothing is
rounded. The ledger checks everything again when the action is booked
(credits_core.support).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from credits_core.access import Action, Identity
from credits_core.errors import CreditsError
from credits_core.ledger import Ledger

MAX_ADJUSTMENT = 1_000_000  # credits added in one adjustment
MAX_REASON = 500  # characters
WHOLE_NUMBER = re.compile(r"[+-]?\d+")


class SupportInputError(CreditsError, ValueError):
    """A support action's input is not acceptable; `problems` lists each problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(" ".join(problems))


@dataclass(frozen=True)
class ProposedAdjustment:
    """An adjustment that passed every check, waiting for the agent's confirmation."""

    user_id: str
    credits: int
    reason: str
    available: int  # the user's available credits when it was checked

    def describe(self) -> str:
        verb = "Add" if self.credits > 0 else "Remove"
        after = self.available + self.credits
        return (
            f"{verb} {abs(self.credits):,} credits {'to' if self.credits > 0 else 'from'} "
            f"{self.user_id}: available {self.available:,} -> {after:,}."
        )


@dataclass(frozen=True)
class ProposedRefund:
    """A refund that passed every check, waiting for the agent's confirmation."""

    user_id: str
    transaction_id: str
    credits: int
    model: str | None
    reason: str

    def describe(self) -> str:
        what = f"the {self.model} generation" if self.model else "the generation"
        return (
            f"Refund {self.credits:,} credits to {self.user_id} for {what} {self.transaction_id}."
        )


def credits_problem(text: str) -> tuple[int | None, str | None]:
    """The credits an agent typed, or what is wrong with them. Thousands separators
    (1,000 or 1 000) are allowed; fractions and words are not."""
    cleaned = (text or "").strip().replace(",", "").replace(" ", "").replace("_", "")
    if not cleaned:
        return None, ("Type the credits to add (for example 500) or to remove (for example -200).")
    if not WHOLE_NUMBER.fullmatch(cleaned):
        try:
            float(cleaned)
        except ValueError:
            return None, f"Credits must be a whole number; {text.strip()!r} is not a number."
        return None, (
            f"Credits must be a whole number; {text.strip()} has a fraction. "
            "Credits are never rounded: type the exact whole number."
        )
    credits = int(cleaned)
    if credits == 0:
        return None, (
            "0 credits changes nothing: type a positive number to add credits "
            "or a negative one to remove them."
        )
    return credits, None


def reason_problem(reason: str) -> str | None:
    reason = (reason or "").strip()
    if not reason:
        return (
            "Write a reason: what happened and why the credits change. The user's journal keeps it."
        )
    if len(reason) > MAX_REASON:
        return f"The reason has {len(reason):,} characters; keep it to {MAX_REASON:,}."
    return None


def review_adjustment(
    ledger: Ledger, identity: Identity, user_id: str, credits_text: str, reason: str
) -> ProposedAdjustment:
    """Check a goodwill adjustment as typed; raise SupportInputError naming every
    problem, else return it ready to confirm."""
    identity.require(Action.ADJUST)
    credits, problem = credits_problem(credits_text)
    problems = [problem] if problem else []
    available = ledger.balance(user_id).available
    if credits is not None and credits > MAX_ADJUSTMENT:
        problems.append(
            f"At most {MAX_ADJUSTMENT:,} credits can be added in one adjustment; "
            f"{credits:,} is more. Ask a product owner about a grant that large."
        )
    if credits is not None and credits < 0 and -credits > available:
        problems.append(
            f"{user_id} has {available:,} credits available, so at most {available:,} "
            f"can be removed, not {-credits:,}."
        )
    if problem := reason_problem(reason):
        problems.append(problem)
    if problems:
        raise SupportInputError(problems)
    return ProposedAdjustment(user_id, credits, reason.strip(), available)


def refundable(holds: pd.DataFrame) -> pd.DataFrame:
    """The generations of holds_life() that can be refunded: captured, not refunded."""
    return holds[(holds["status"] == "captured") & holds["refunded_at"].isna()]


def review_refund(
    ledger: Ledger, identity: Identity, user_id: str, transaction_id: str | None, reason: str
) -> ProposedRefund:
    """Check a refund of one of the user's generations; raise SupportInputError naming
    every problem, else return it ready to confirm."""
    identity.require(Action.REFUND)
    problems = []
    row = None
    if not transaction_id:
        problems.append("Pick the captured generation to refund.")
    else:
        holds = ledger.holds_life(user_id)
        mine = holds[holds["transaction_id"] == transaction_id]
        if mine.empty:
            problems.append(f"{transaction_id} is not a generation of {user_id}.")
        elif refundable(mine).empty:
            status = mine.iloc[0]["status"]
            problems.append(
                f"{transaction_id} cannot be refunded: it was already refunded."
                if status == "captured"
                else f"{transaction_id} cannot be refunded: it was {status}, not captured, "
                "so it cost the user nothing."
            )
        else:
            row = mine.iloc[0]
    if problem := reason_problem(reason):
        problems.append(problem)
    if problems:
        raise SupportInputError(problems)
    model = None if pd.isna(row["model"]) else str(row["model"])
    return ProposedRefund(user_id, transaction_id, int(row["captured"]), model, reason.strip())
