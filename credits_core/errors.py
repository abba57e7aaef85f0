"""The root of every error the credits core raises.

Each rule has its own class; pricing errors live in `credits_core.pricing.errors`,
ledger errors in `credits_core.ledger.errors`. Every message tells the reader what
was wrong and what to do instead.
"""


class CreditsError(Exception):
    """Root of all credits_core errors."""
