"""The back office's reads of the ledger as `Ledger` methods: finding accounts, each
hold's life, a user's grants with their status, the platform overview, consumption and
the support log. The SQL is in reports.py and reads.py; `Ledger` (ledger.py) supplies
the clock, the store and the account lookup.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from credits_core.ledger import checks, reads, reports
from credits_core.ledger.store import Store


class LedgerReports:
    """The dashboard's reads; a base of `Ledger`, which defines the three hooks below."""

    def now(self) -> datetime:
        raise NotImplementedError

    def _open_store(self) -> Store:
        raise NotImplementedError

    def _account_no(self, user_id: str) -> int:
        raise NotImplementedError

    def holds_life(self, user_id: str) -> pd.DataFrame:
        """Each generation of the user on one row, newest first (see reports.holds_life)."""
        self._account_no(user_id)
        now = self.now()
        return self._open_store().read(lambda cur: reports.holds_life(cur, user_id, now))

    def grants_frame(self, user_id: str) -> pd.DataFrame:
        """grants() as a DataFrame, with each grant's status now (active, spent, lapsed,
        expired)."""
        self._account_no(user_id)
        now = self.now()
        return self._open_store().query(lambda cur: reads.grants_frame(cur, user_id, now))

    def find_accounts(self, text: str, *, limit: int = 20) -> pd.DataFrame:
        """Accounts whose user id or email contains `text` (any case), exact id first."""
        text = checks.text(text.strip() if isinstance(text, str) else text, "text", required=True)
        count, now = checks.limit(limit), self.now()
        return self._open_store().query(lambda cur: reports.find_accounts(cur, text, count, now))

    def overview(self) -> reports.Overview:
        """The platform now: accounts, credits outstanding and held, consumption."""
        now = self.now()
        return self._open_store().read(lambda cur: reports.overview(cur, now))

    def consumption_by_day(self, *, days: int = 30) -> pd.DataFrame:
        """Credits captured per day over the last `days` days."""
        now = self.now()
        return self._open_store().query(lambda cur: reports.consumption_by_day(cur, now, days))

    def top_models(self, *, days: int = 7, limit: int = 8) -> pd.DataFrame:
        """The models that consumed the most credits over the last `days` days."""
        now = self.now()
        return self._open_store().query(lambda cur: reports.top_models(cur, now, days, limit))

    def count_accounts(self, text: str) -> int:
        """How many accounts find_accounts(text) would list without a limit."""
        text = checks.text(text.strip() if isinstance(text, str) else text, "text", required=True)
        now = self.now()
        return self._open_store().read(lambda cur: reports.count_accounts(cur, text, now))

    def support_log(
        self,
        where: reports.SupportLogFilter | None = None,
        *,
        limit: int | None = 100,
        offset: int = 0,
    ) -> pd.DataFrame:
        """Adjustments, refunds and grants people booked, across every user, newest first
        (see reports.support_log); limit=None for all."""
        where = where or reports.SupportLogFilter()
        count, skip = checks.limit(limit), checks.offset(offset)
        return self._open_store().query(lambda cur: reports.support_log(cur, where, count, skip))

    def count_support_log(self, where: reports.SupportLogFilter | None = None) -> int:
        """How many support actions support_log(where) would list without a limit."""
        where = where or reports.SupportLogFilter()
        return self._open_store().read(lambda cur: reports.count_support_log(cur, where))
