"""Can this user afford this generation? Priced for the user's own plan.

The cost calculator asks it for any user: the price is the pricing engine's quote on
the plan the user is on (not the plan picked in the calculator), and the answer is the
ledger's check against what the user has available, with the platform's exact message
when it does not fit.
"""

from __future__ import annotations

from dataclasses import dataclass

from credits_core.ledger import InsufficientCredits, Ledger
from credits_core.pricing import PriceBook


@dataclass(frozen=True)
class Affordability:
    user_id: str
    plan: str | None  # the plan the price was computed for (None: no plan pricing)
    credits: int  # what the generation costs this user
    available: int
    ok: bool
    message: str


def can_afford(
    ledger: Ledger,
    book: PriceBook,
    user_id: str,
    model: str,
    *,
    provider: str | None = None,
    **options: object,
) -> Affordability:
    """Price `model` with `options` for the user's plan and check it against what the
    user can spend now. Unknown users, models and options raise the ledger's and the
    pricing engine's typed errors."""
    account = ledger.account(user_id)
    plan = account.plan if account.plan in book.plans() else None
    quote = book.quote(model, provider=provider, plan=plan, **options)
    on = f"the {plan} plan" if plan else "no plan"
    try:
        balance = ledger.validate(user_id, quote.credits)
    except InsufficientCredits as error:
        return Affordability(user_id, plan, quote.credits, error.available, False, str(error))
    return Affordability(
        user_id,
        plan,
        quote.credits,
        balance.available,
        True,
        f"Yes: on {on} this costs {user_id} {quote.credits:,} credits, and "
        f"{balance.available:,} are available.",
    )
