"""Bulk writes: usage events, grants and accounts by the frame, set-based, one transaction.

- frames.py checks a frame column by column before anything is written: InvalidBatch names
  every bad row and what is valid;
- usage.py books finished generations (`apply_usage`): the greedy fit of each user's
  events, their journal entries and the grants they burn, decided on the file and
  written behind the answer (`decide_usage`, `write_usage`);
- grants.py gives many grants at once (`grant_many`); accounts.py opens many accounts
  (`create_accounts`).

Each write is all of a frame or none: grants and accounts in the writer's transaction
for them, usage in the applier's transaction that puts its logged record in the file.
"""

from credits_core.ledger.bulk.accounts import create_accounts
from credits_core.ledger.bulk.frames import Usage, check_accounts, check_grants, check_usage, tidy
from credits_core.ledger.bulk.grants import grant_many
from credits_core.ledger.bulk.usage import OUTCOMES, Booked
from credits_core.ledger.bulk.usage import decide as decide_usage
from credits_core.ledger.bulk.usage import write as write_usage

__all__ = [
    "OUTCOMES",
    "Booked",
    "Usage",
    "check_accounts",
    "check_grants",
    "check_usage",
    "create_accounts",
    "decide_usage",
    "grant_many",
    "tidy",
    "write_usage",
]
