"""Booking finished generations in bulk (`apply_usage`), set-based, in one transaction.

Per user, events are taken in (ts, row) order and each must fit the credits left after
the events before it; one that does not is rejected and the next is tried, exactly as
one-by-one reservations would. That greedy rule is computed for every user at once in
rounds (no Python loop per event): each round accepts the prefix that fits, rejects the
first event that does not, and drops the events that can no longer fit (the balance only
falls). Consumption is then allocated across each user's grants in burn order with
cumulative sums.

Each accepted event is one journal entry: `capture` (credits spent) or `release` (a
failed generation, nothing spent). The reserve and its resolution happen at the same
instant, so no pending hold is written for it.

`decide` reads the file (one snapshot) and returns the outcome with what it `Booked`:
the journal rows and the credits taken from each grant, as Arrow tables. The writer logs
that in the redo log, answers, and the applier puts it in the file with `write`, in
one transaction: all of a batch is booked or none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from credits_core.ledger import checks
from credits_core.ledger.bulk.frames import Usage
from credits_core.ledger.errors import InvalidBatch
from credits_core.ledger.grants import BURN_ORDER, LIVE

OUTCOMES = ("captured", "released", "rejected_insufficient", "duplicate", "unknown_account")
GIVEN_COLUMNS = ("transaction_id", "model", "metadata")  # logged only when the events give them
CAPTURED, RELEASED, REJECTED, DUPLICATE, UNKNOWN = range(5)
UNDECIDED = -1


class LiveGrants(NamedTuple):
    """The batch users' spendable grants, each user's together and in burn order."""

    grant_id: pa.ChunkedArray
    remaining: np.ndarray  # credits left in each
    owner: np.ndarray  # the row of its account in the batch's accounts


@dataclass(frozen=True)
class Booked:
    """What one batch booked, for `write`: a journal row per booked event (`rows`, with
    the journal's columns that vary, see `write`) and the credits taken from each grant
    drawn (`burnt`: grant_id, taken)."""

    rows: pa.Table
    burnt: pa.Table
    reason: str
    actor: str

    @property
    def accounts(self) -> int:
        """The accounts the rows move."""
        return pc.count_distinct(self.rows["account_no"]).as_py()

    def count(self) -> int:
        return self.rows.num_rows + self.burnt.num_rows + self.accounts


def decide(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    usage: Usage,
    *,
    reason: str,
    actor: str,
) -> tuple[pd.DataFrame, Booked | None]:
    """The outcome of every event, and what to write (None: nothing was booked). Reads
    the file only: the caller gives a cursor whose snapshot holds every logged write."""
    if not len(usage):
        none = np.zeros(0, np.int64)
        made = pa.chunked_array([], pa.string())
        return _outcome(usage, np.zeros(0, np.int8), none, none, made), None
    users, codes = _factorize(usage.user_id)
    accounts = _accounts(cur, users)
    account_of = accounts.attrs["position"][codes]  # -1 for users without an account
    status = np.full(len(usage), UNDECIDED, dtype=np.int8)
    status[account_of < 0] = UNKNOWN
    if usage.transaction_id is not None:
        status[(status == UNDECIDED) & _booked(cur, usage.transaction_id)] = DUPLICATE
        _refuse_made_ids(usage, status)

    live = _live_grants(cur, users, accounts.attrs["position"], now)
    available = _group_sums(live.owner, live.remaining, len(accounts))

    order = _event_order(usage, account_of, status)
    group = account_of[order]
    fits = _greedy_fit(group, usage.credits[order], usage.success[order], available)
    booked = order[fits]
    succeeded = usage.success[booked]
    status[booked] = np.where(succeeded, CAPTURED, RELEASED)
    status[order[~fits]] = REJECTED

    spent = np.where(succeeded, usage.credits[booked], 0)
    rows = _rows(usage, (users, codes), accounts, account_of, booked, spent)
    made = None if usage.transaction_id is not None else _made_ids(rows)
    outcome = _outcome(usage, status, booked, spent, made)
    if not len(booked):
        return outcome, None
    burnt = _burnt(live, len(accounts), account_of[booked], spent)
    return outcome, Booked(rows, burnt, reason, actor)


def _refuse_made_ids(usage: Usage, status: np.ndarray) -> None:
    """New ids may not have the form of ids the ledger makes (they would collide later)."""
    made = pc.match_substring_regex(usage.transaction_id, checks.LEDGER_MADE_ID.pattern)
    made = pc.fill_null(made, False).to_numpy(zero_copy_only=False) & (status == UNDECIDED)
    if made.any():
        raise InvalidBatch(
            f"apply_usage: {int(made.sum())} new transaction ids have the form of ids the "
            "ledger makes itself (hold-, grant-, adj-, refund-, use-N-N).",
            [(row, "use another transaction_id") for row in usage.index[made]],
        )


def _event_order(usage: Usage, account_of: np.ndarray, status: np.ndarray) -> np.ndarray:
    """Rows still to decide, by account, then ts, then row."""
    rows = np.flatnonzero(status == UNDECIDED)
    ts = pc.cast(usage.ts, pa.int64()).to_numpy()[rows]
    if np.all(ts[1:] >= ts[:-1]):  # already in time order: sort by (account, row)
        shift = len(usage).bit_length()  # both in one int64 key: a plain sort, not a stable one
        return np.sort((account_of[rows] << shift) | rows) & ((1 << shift) - 1)
    return rows[np.lexsort((rows, ts, account_of[rows]))]


def _greedy_fit(
    group: np.ndarray, credits: np.ndarray, success: np.ndarray, available: np.ndarray
) -> np.ndarray:
    """Which events fit, taken one by one per group in order (see the module docstring)."""
    fits = np.zeros(len(group), dtype=bool)
    undecided = np.arange(len(group))
    left = available.copy()
    while len(undecided):
        undecided = undecided[credits[undecided] <= left[group[undecided]]]  # others never fit
        if not len(undecided):
            break
        g, c = group[undecided], credits[undecided]
        spend = np.where(success[undecided], c, 0)
        before = left[g] - _exclusive_group_cumsum(g, spend)
        bad = np.flatnonzero(c > before)
        first_bad = np.full(len(left), len(undecided))
        bad_groups, first = np.unique(g[bad], return_index=True)
        first_bad[bad_groups] = bad[first]
        position = np.arange(len(undecided))
        cut = first_bad[g]
        fits[undecided[position < cut]] = True
        left[bad_groups] = before[bad[first]]
        undecided = undecided[position > cut]
    return fits


def _group_sums(group: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Exact integer sums of `values` per group (rows of a group are adjacent), by group."""
    sums = np.zeros(size, dtype=np.int64)
    if len(values):
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        sums[group[starts]] = np.add.reduceat(values, starts)
    return sums


def _rank_in_group(group: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... along each run of equal `group`."""
    if not len(group):
        return group
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return np.arange(len(group)) - np.repeat(starts, np.diff(np.r_[starts, len(group)]))


def _exclusive_group_cumsum(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per run of equal `group`, the sum of the values before each position."""
    if not len(values):
        return values
    total = np.cumsum(values)
    starts = np.r_[True, group[1:] != group[:-1]]
    run = np.cumsum(starts) - 1
    return total - values - (total - values)[starts][run]


def _rows(
    usage: Usage,
    coded: tuple[pa.Array, np.ndarray],
    accounts: pd.DataFrame,
    account_of: np.ndarray,
    booked: np.ndarray,
    spent: np.ndarray,
) -> pa.Table:
    """One journal row per booked event, by account then time, numbered after each
    account's entries. The rows are logged, so what `write` derives from them and the
    account's row is left out: the credits spent, the ids the ledger makes, the balance
    each leaves (the account's total less what its events before spent) and the held
    credits (unchanged by usage); and so are the columns the events did not give."""
    users, codes = coded
    position = account_of[booked]
    entries_before = accounts["entries"].to_numpy()[position]
    seq = entries_before + _rank_in_group(position) + 1
    account_no = accounts["account_no"].to_numpy()[position]
    spent_before = _exclusive_group_cumsum(position, spent)
    balance_after = accounts["total"].to_numpy()[position] - spent_before - spent
    held_after = accounts["held"].to_numpy()[position]
    # every entry leaves at least the held credits in the balance (the fit kept spending
    # within what live grants hold), so the journal's running balance never goes wrong
    assert np.all(balance_after >= held_after), "a booked event spends held credits"
    given = {"transaction_id": usage.transaction_id, "model": usage.model,
             "metadata": usage.options}  # fmt: skip
    return pa.table(
        {
            "account_no": account_no.astype(np.int32),
            "seq": seq,
            "user_id": pa.DictionaryArray.from_arrays(codes[booked], users),
            "ts": usage.ts.take(booked),
            "success": usage.success[booked],
            "reserved": usage.credits[booked],
            **{name: values.take(booked) for name, values in given.items() if values is not None},
        }
    )


def _made_ids(rows: pa.Table) -> pa.ChunkedArray:
    """The transaction ids of events booked without one, as `write` makes them."""
    account_no, seq = (pc.cast(rows[name], pa.string()) for name in ("account_no", "seq"))
    return pc.binary_join_element_wise("use", account_no, seq, "-")


def _burnt(live: LiveGrants, accounts: int, position: np.ndarray, spent: np.ndarray) -> pa.Table:
    """The credits each user's spending takes from their live grants, in burn order."""
    used = _group_sums(position, spent, accounts)
    owner, remaining = live.owner, live.remaining
    before = _exclusive_group_cumsum(owner, remaining)
    taken = np.clip(used[owner] - before, 0, remaining)
    # the draw covers every spent credit: each user's live grants held what they spent
    assert np.array_equal(_group_sums(owner, taken, accounts), used), "a short draw"
    drawn = taken > 0
    return pa.table({"grant_id": live.grant_id.filter(drawn), "taken": taken[drawn]})


def write(cur: duckdb.DuckDBPyConnection, booked: Booked) -> None:
    """Insert the journal rows, move the balances and take the credits from the grants,
    inside the caller's transaction; each statement changes exactly the rows decided
    (asserted: the file holds what `decide` read, and only the writer writes it)."""
    cur.register("usage_rows", booked.rows)
    given = set(booked.rows.schema.names)
    transaction_id, model, metadata = (
        f"r.{name}" if name in given else "NULL" for name in GIVEN_COLUMNS
    )
    # The balance each row leaves, from the account's row as `decide` read it: the UPDATE
    # below proves it unchanged (its entries are the rows' first seq less one, and every
    # change of a balance adds an entry). (A record logged before these were derived
    # holds balance_after and held_after too: they are the same, and not read.)
    # The rows go in by account, then entry: each row group of the batch then spans a
    # narrow range of accounts, and a history read skips the others by their bounds.
    # (Out of the window's hash partitions, every row group of a million-event batch
    # spanned all accounts, and a heavy user's newest hundred read 2 ms slower.)
    (posted,) = cur.execute(
        f"""
        INSERT INTO journal
        SELECT r.account_no, r.seq, r.user_id, r.ts,
               CASE WHEN r.success THEN 'capture' ELSE 'release' END,
               CASE WHEN r.success THEN -r.reserved ELSE 0 END, 0,
               a.total - sum(CASE WHEN r.success THEN r.reserved ELSE 0 END)
                   OVER (PARTITION BY r.account_no ORDER BY r.seq),
               a.held,
               coalesce({transaction_id}, 'use-' || r.account_no || '-' || r.seq), NULL, ?, ?,
               {model},
               CASE WHEN NOT r.success  -- a failed generation: what it had reserved
                    THEN '{{"reserved":' || r.reserved
                         || coalesce(',"options":' || {metadata}, '') || '}}'
                    WHEN {metadata} IS NOT NULL THEN '{{"options":' || {metadata} || '}}' END
        FROM usage_rows AS r JOIN accounts AS a ON a.account_no = r.account_no
        ORDER BY r.account_no, r.seq
        """,
        [booked.reason, booked.actor],
    ).fetchone()
    assert posted == booked.rows.num_rows, (posted, booked.rows.num_rows)
    (moved,) = cur.execute(
        """
        UPDATE accounts
        SET total = accounts.total - s.spent, entries = s.last_seq
        FROM (SELECT account_no, sum(CASE WHEN success THEN reserved ELSE 0 END) AS spent,
                     min(seq) AS first_seq, max(seq) AS last_seq
              FROM usage_rows GROUP BY account_no) AS s
        WHERE accounts.account_no = s.account_no AND accounts.entries = s.first_seq - 1
        """
    ).fetchone()
    assert moved == booked.accounts, (moved, booked.accounts)
    cur.unregister("usage_rows")
    if not booked.burnt.num_rows:
        return
    cur.register("burnt", booked.burnt)
    (changed,) = cur.execute(
        """
        UPDATE grants SET remaining = grants.remaining - b.taken
        FROM burnt AS b WHERE grants.grant_id = b.grant_id
        """
    ).fetchone()
    assert changed == booked.burnt.num_rows, (changed, booked.burnt.num_rows)  # each once
    cur.unregister("burnt")


def _outcome(
    usage: Usage,
    status: np.ndarray,
    booked: np.ndarray,
    spent: np.ndarray,
    made: pa.ChunkedArray | None,
) -> pd.DataFrame:
    """Each event's status, credits spent and transaction id (given, else `made` for
    the booked events, in their order)."""
    credits = np.zeros(len(usage), dtype=np.int64)
    credits[booked] = spent
    if made is None:
        transaction_id = usage.transaction_id
    else:
        slot = np.full(len(usage), -1)
        slot[booked] = np.arange(len(booked))
        transaction_id = pc.take(made, pa.array(slot, mask=slot < 0))
    return pd.DataFrame(
        {
            "status": pd.Categorical.from_codes(status, categories=list(OUTCOMES)),
            "credits": credits,
            "transaction_id": pd.arrays.ArrowExtensionArray(transaction_id),
        },
        index=usage.index,
    )


def _accounts(cur: duckdb.DuckDBPyConnection, users: pa.Array) -> pd.DataFrame:
    """The batch's known accounts by account number; attrs["position"] maps each distinct
    user (by its code) to its row, or -1 for a user without an account."""
    cur.register("batch_users", pa.table({"user_id": users, "code": np.arange(len(users))}))
    found = cur.execute(
        """
        SELECT b.code, a.account_no, a.total, a.held, a.entries
        FROM batch_users AS b JOIN accounts AS a USING (user_id)
        ORDER BY a.account_no
        """
    ).df()
    position = np.full(len(users), -1)
    position[found["code"].to_numpy()] = np.arange(len(found))
    found.attrs["position"] = position
    return found


def _factorize(user_id: pa.DictionaryArray) -> tuple[pa.Array, np.ndarray]:
    return user_id.dictionary, user_id.indices.to_numpy()


def _booked(cur: duckdb.DuckDBPyConnection, transaction_id: pa.Array) -> np.ndarray:
    """Which of the ids are already in the ledger (a hold or booked usage)."""
    cur.register("batch_ids", pa.table({"transaction_id": transaction_id}))
    known = cur.sql(  # the batch is the small side: hash it, scan the journal once
        """
        SELECT transaction_id FROM journal SEMI JOIN batch_ids USING (transaction_id)
        UNION ALL
        SELECT transaction_id FROM holds SEMI JOIN batch_ids USING (transaction_id)
        """
    ).to_arrow_table()
    return pc.is_in(transaction_id, value_set=known.column(0)).to_numpy(zero_copy_only=False)


def _live_grants(
    cur: duckdb.DuckDBPyConnection, users: pa.Array, position: np.ndarray, now: datetime
) -> LiveGrants:
    """The batch users' spendable grants, each user's together and in burn order."""
    cur.register("grant_users", pa.table({"user_id": users, "code": np.arange(len(users))}))
    live = cur.sql(
        f"""
        SELECT u.code, g.grant_id, g.remaining
        FROM grants AS g JOIN grant_users AS u USING (user_id)
        WHERE g.remaining > 0 AND {LIVE}
        ORDER BY u.code, {BURN_ORDER}
        """,
        params=[now],
    ).to_arrow_table()
    return LiveGrants(
        grant_id=live.column("grant_id"),
        remaining=live.column("remaining").to_numpy(),
        owner=position[live.column("code").to_numpy()],
    )
