"""The ledger's invariants, each checked by one SQL query over the whole file.

`check()` returns one line per violation (at most a few examples per rule) and an
empty list when the ledger is sound. The rules are what make the materialised
balances trustworthy: they always equal what the journal says.
"""

from __future__ import annotations

import duckdb

from credits_core.ledger import marks

EXAMPLES = 5

RULES: tuple[tuple[str, str], ...] = (
    (
        "account balances equal the sum of their journal entries",
        """
        SELECT a.user_id, a.total, a.held, a.entries,
               coalesce(j.total, 0), coalesce(j.held, 0), coalesce(j.n, 0)
        FROM accounts AS a
        LEFT JOIN (SELECT account_no, sum(credits) AS total, sum(held) AS held,
                          count(*) AS n
                   FROM journal GROUP BY account_no) AS j USING (account_no)
        WHERE a.total <> coalesce(j.total, 0) OR a.held <> coalesce(j.held, 0)
           OR a.entries <> coalesce(j.n, 0)
        """,
    ),
    (
        "journal entries belong to an account and are numbered 1..n without gaps",
        """
        SELECT j.account_no, j.user_id, count(*) AS n, min(j.seq), max(j.seq),
               count(DISTINCT j.seq)
        FROM journal AS j LEFT JOIN accounts AS a USING (account_no)
        GROUP BY j.account_no, j.user_id
        HAVING min(j.seq) <> 1 OR max(j.seq) <> count(*) OR count(DISTINCT j.seq) <> count(*)
            OR any_value(a.user_id) IS DISTINCT FROM j.user_id
        """,
    ),
    (
        "each entry's balance_after and held_after follow from the entries before it",
        """
        SELECT user_id, seq, balance_after, running_total, held_after, running_held
        FROM (
            SELECT user_id, seq, balance_after, held_after,
                   sum(credits) OVER w AS running_total, sum(held) OVER w AS running_held
            FROM journal
            WINDOW w AS (PARTITION BY account_no ORDER BY seq ROWS UNBOUNDED PRECEDING)
        )
        WHERE balance_after <> running_total OR held_after <> running_held
        """,
    ),
    (
        "no entry leaves held credits negative or above the total",
        """
        SELECT user_id, seq, kind, balance_after, held_after FROM journal
        WHERE held_after < 0 OR held_after > balance_after
        """,
    ),
    (
        "grants keep 0 <= remaining <= credits",
        """
        SELECT grant_id, credits, remaining FROM grants
        WHERE remaining < 0 OR remaining > credits
        """,
    ),
    (
        "available credits (total - held) equal the credits left in grants",
        """
        SELECT a.user_id, a.total - a.held, coalesce(g.remaining, 0)
        FROM accounts AS a
        LEFT JOIN (SELECT user_id, sum(remaining) AS remaining FROM grants GROUP BY user_id)
            AS g USING (user_id)
        WHERE a.total - a.held <> coalesce(g.remaining, 0)
        """,
    ),
    (
        "held credits equal the credits of pending holds",
        """
        SELECT a.user_id, a.held, coalesce(h.credits, 0)
        FROM accounts AS a
        LEFT JOIN (SELECT user_id, sum(credits) AS credits FROM holds
                   WHERE status = 'pending' GROUP BY user_id) AS h USING (user_id)
        WHERE a.held <> coalesce(h.credits, 0)
        """,
    ),
    (
        "each hold's drawn credits sum to its credits",
        """
        SELECT transaction_id, credits, list_sum(list_transform(drawn, lambda d: d.credits))
        FROM holds
        WHERE credits IS DISTINCT FROM list_sum(list_transform(drawn, lambda d: d.credits))
        """,
    ),
    (
        "each hold has a known status, and captured + released match it",
        """
        SELECT transaction_id, status, credits, captured, released FROM holds
        WHERE NOT (
            (status = 'pending' AND captured = 0 AND released = 0 AND resolved_at IS NULL)
            OR (status = 'captured' AND captured > 0 AND captured + released = credits
                AND resolved_at IS NOT NULL)
            OR (status IN ('released', 'expired') AND captured = 0 AND released = credits
                AND resolved_at IS NOT NULL)
        )
        """,
    ),
    (
        "each hold is reserved once, resolved at most once, and its entries match it",
        """
        SELECT h.transaction_id, h.status, j.reserves, j.captures, j.releases, j.expiries,
               j.held, j.captured
        FROM holds AS h
        LEFT JOIN (
            SELECT transaction_id,
                   count(*) FILTER (WHERE kind = 'reserve') AS reserves,
                   count(*) FILTER (WHERE kind = 'capture') AS captures,
                   count(*) FILTER (WHERE kind = 'release') AS releases,
                   count(*) FILTER (WHERE kind = 'expire') AS expiries,
                   sum(held) AS held,
                   coalesce(-sum(credits) FILTER (WHERE kind = 'capture'), 0) AS captured
            FROM journal
            WHERE transaction_id IN (SELECT transaction_id FROM holds)
            GROUP BY transaction_id
        ) AS j USING (transaction_id)
        WHERE j.reserves IS DISTINCT FROM 1
           OR j.captures > 1 OR j.releases > 1 OR j.expiries > 1
           OR (j.expiries = 1 AND j.captures + j.releases > 0)
           OR j.held <> CASE WHEN h.status = 'pending' THEN h.credits ELSE 0 END
           OR j.captured <> h.captured
        """,
    ),
    (
        "each grant was booked by one entry of its credits",
        """
        SELECT g.grant_id, g.credits, j.credits, j.n
        FROM grants AS g
        LEFT JOIN (SELECT grant_id, sum(credits) AS credits, count(*) AS n FROM journal
                   WHERE kind IN ('grant', 'adjust', 'refund') AND grant_id IS NOT NULL
                   GROUP BY grant_id) AS j USING (grant_id)
        WHERE j.n IS DISTINCT FROM 1 OR j.credits <> g.credits
        """,
    ),
    (
        "grants booked out by expire_grants have nothing left",
        """
        SELECT grant_id, remaining, expired_at FROM grants
        WHERE expired_at IS NOT NULL AND remaining <> 0
        """,
    ),
    (
        "a history mark's entry lies at or after the mark's row (marks.py)",
        """
        SELECT m.account_no, m.mark.seq, m.mark.row_floor, j.row
        FROM (SELECT account_no, unnest([MARKS]) AS mark FROM accounts) AS m
        LEFT JOIN (SELECT account_no, seq, rowid AS row FROM journal) AS j
               ON j.account_no = m.account_no AND j.seq = m.mark.seq
        WHERE m.mark.seq IS NOT NULL AND (j.row IS NULL OR j.row < m.mark.row_floor)
        """.replace("MARKS", marks.AS_STRUCTS),
    ),
)


def check(cur: duckdb.DuckDBPyConnection) -> list[str]:
    violations = []
    for rule, query in RULES:
        rows = cur.execute(f"SELECT * FROM ({query}) LIMIT {EXAMPLES + 1}").fetchall()
        for row in rows[:EXAMPLES]:
            violations.append(f"{rule}: violated by {row}")
        if len(rows) > EXAMPLES:
            violations.append(f"{rule}: ... and more")
    return violations
