"""credits_core: the pricing rules engine and the reservation ledger.

The single source of truth for prices and balances. It knows nothing of Streamlit:
the dashboard (`app.py`, `pages/`) and the `credits` command line call into it.
"""

from credits_core.errors import CreditsError
from credits_core.pricing import (
    InvalidOption,
    MissingOption,
    NoPriceBookInForce,
    PriceBook,
    PriceBookError,
    PricingError,
    Quote,
    UnknownModel,
    UnknownPlan,
)

__all__ = [
    "CreditsError",
    "InvalidOption",
    "MissingOption",
    "NoPriceBookInForce",
    "PriceBook",
    "PriceBookError",
    "PricingError",
    "Quote",
    "UnknownModel",
    "UnknownPlan",
]

from credits_core.ledger import (
    Account,
    AccountExists,
    AmountNotInteger,
    Balance,
    Entry,
    Grant,
    HoldExpired,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    InvalidBatch,
    Ledger,
    LedgerBusy,
    LedgerError,
    NotALedger,
    NotRefundable,
    Reservation,
    Sweep,
    TransactionClosed,
    UnknownAccount,
    UnknownTransaction,
)

__all__ += [
    "Account",
    "AccountExists",
    "AmountNotInteger",
    "Balance",
    "Entry",
    "Grant",
    "HoldExpired",
    "IdempotencyConflict",
    "InsufficientCredits",
    "InvalidAmount",
    "InvalidBatch",
    "Ledger",
    "LedgerBusy",
    "LedgerError",
    "NotALedger",
    "NotRefundable",
    "Reservation",
    "Sweep",
    "TransactionClosed",
    "UnknownAccount",
    "UnknownTransaction",
]
