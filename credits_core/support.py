"""What support does to a user's credits, attributed and refused to other roles.

Every action takes the signed-in `Identity` (the core checks the role itself, whatever
the page showed), a required reason and an idempotency key, so that a double click
books once; the journal records who did it and why.
"""

from __future__ import annotations

import json

from credits_core.access import Action, Identity
from credits_core.ledger import Ledger
from credits_core.ledger.values import Entry


def goodwill_adjustment(
    ledger: Ledger, identity: Identity, user_id: str, credits: int, reason: str, key: str
) -> Entry:
    """Add (or, negative, remove) credits on a user's balance."""
    identity.require(Action.ADJUST)
    return ledger.adjust(user_id, credits, reason=reason, actor=identity.actor, idempotency_key=key)


def refund_generation(
    ledger: Ledger, identity: Identity, transaction_id: str, reason: str, key: str
) -> Entry:
    """Give back what a captured generation spent, once."""
    identity.require(Action.REFUND)
    return ledger.refund(transaction_id, reason=reason, actor=identity.actor, idempotency_key=key)


def journal_csv(ledger: Ledger, user_id: str, **window: object) -> str:
    """The user's journal (history() with these filters, every entry) as CSV, each
    entry's metadata as a JSON object."""
    frame = ledger.history(user_id, **window, limit=None)
    frame["metadata"] = [
        None if value is None else json.dumps(value, sort_keys=True, default=str)
        for value in frame["metadata"]
    ]
    return frame.to_csv(index=False)
