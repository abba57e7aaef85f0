"""Bulk writes: usage events, grants and accounts by the frame, set-based, one transaction.

- frames.py checks a frame column by column before anything is written: InvalidBatch names
  every bad row and what is valid;
- usage.py books finished generations (`apply_usage`): the greedy fit of each user's
  events, their journal entries and the grants they burn;
- grants.py gives many grants at once (`grant_many`); accounts.py opens many accounts
  (`create_accounts`).

Each write runs in the writer's transaction for it: all of a frame is written or none.
"""

from credits_core.ledger.bulk.accounts import create_accounts
from credits_core.ledger.bulk.frames import Usage, check_accounts, check_grants, check_usage, tidy
from credits_core.ledger.bulk.grants import grant_many
from credits_core.ledger.bulk.usage import OUTCOMES, apply_usage

__all__ = [
    "OUTCOMES",
    "Usage",
    "apply_usage",
    "check_accounts",
    "check_grants",
    "check_usage",
    "create_accounts",
    "grant_many",
    "tidy",
]
