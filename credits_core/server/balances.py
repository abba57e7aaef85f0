"""Balance reads of concurrent requests, answered together.

Every reserve and confirm answer carries the user's balance. One balance read costs one
pass of the ledger's `account_balances` (what "available" means, written once in the
ledger's schema) over the grants, so reading it once per request would cap the API at
what that pass costs. `Balances.get` queues the user instead; one task answers every
user queued meanwhile with one read of `account_balances` in one snapshot, in a worker
thread, then the next group. A read starts after the write it follows has committed,
so it always sees that write.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import duckdb

from credits_core.ledger import Balance, Ledger, UnknownAccount

QUERY = """
SELECT user_id, total, held, available
FROM account_balances(?)
WHERE user_id IN (SELECT unnest(?::VARCHAR[]))
"""


class Balances:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._waiting: defaultdict[str, list[asyncio.Future]] = defaultdict(list)
        self._reader: asyncio.Task | None = None

    async def get(self, user_id: str) -> Balance:
        """The user's balance now (UnknownAccount when there is no such account)."""
        answer = asyncio.get_running_loop().create_future()
        self._waiting[user_id].append(answer)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read())
        return await answer

    async def many(self, user_ids: list[str]) -> dict[str, Balance]:
        found = await asyncio.gather(*(self.get(user) for user in user_ids))
        return dict(zip(user_ids, found, strict=True))

    async def _read(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, defaultdict(list)
            try:
                rows = await asyncio.to_thread(self._query, sorted(group))
            except Exception as error:
                for answers in group.values():
                    for answer in answers:
                        if not answer.done():
                            answer.set_exception(error)
                continue
            for user, answers in group.items():
                row = rows.get(user)
                for answer in answers:
                    if answer.done():
                        continue
                    if row is None:
                        answer.set_exception(UnknownAccount(user))
                    else:
                        answer.set_result(row)

    def _query(self, users: list[str]) -> dict[str, Balance]:
        now = self.ledger.now()

        def work(cur: duckdb.DuckDBPyConnection) -> dict[str, Balance]:
            found = cur.execute(QUERY, [now, users]).fetchall()
            return {user: Balance(total, held, available) for user, total, held, available in found}

        return self.ledger.snapshot(work)
