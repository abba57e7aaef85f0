"""An alert's state: opened (with its outbox message), kept up to date, resolved, and
acknowledged by support.

Inside an evaluation's side write, on the pairs `judge` left in the temporary table
`evaluation`: `resolve_recovered` resolves open alerts whose user recovered (or whose
rule is gone), `refresh_available` has those still open carry the latest available
credits, and `open_matching` opens an alert (id `user/rule/n`) for each pair that
matches without one, writing its outbox message in the same transaction: one message
per user per evaluation, however many of their rules opened, keyed by the id of the
most severe alert it announces. `acknowledge` and `acknowledge_user` are support's own
writes, one side write each. Every change is also an `alert_events` row.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from credits_core.access import Action, Identity
from credits_core.alerts.errors import AlertNotOpen, InvalidNote, NoOpenAlert, UnknownAlert
from credits_core.ledger import Ledger
from credits_core.plans import TopUp

MAX_NOTE = 2_000


def _note(note: str) -> str:
    note = (note or "").strip()
    if not note:
        raise InvalidNote("Write a note saying what was done (for example: emailed the user).")
    if len(note) > MAX_NOTE:
        raise InvalidNote(f"The note has {len(note):,} characters; keep it under {MAX_NOTE:,}.")
    return note


def acknowledge(ledger: Ledger, identity: Identity, alert_id: str, note: str) -> None:
    """Support acknowledges one open alert with a note (who and when are recorded)."""
    identity.require(Action.ACKNOWLEDGE_ALERT)
    note = _note(note)
    now = ledger.now()

    def work(cur: duckdb.DuckDBPyConnection) -> None:
        row = cur.execute("SELECT status FROM alerts WHERE alert_id = ?", [alert_id]).fetchone()
        if row is None:
            raise UnknownAlert(alert_id)
        if row[0] != "open":
            raise AlertNotOpen(alert_id, row[0])
        _acknowledge(cur, [alert_id], identity.actor, note, now)

    ledger.side_write("acknowledge_alert", work)


def acknowledge_user(ledger: Ledger, identity: Identity, user_id: str, note: str) -> int:
    """Support acknowledges every open alert of one user that nobody acknowledged yet,
    with one note; returns how many. A user without such an alert raises NoOpenAlert."""
    identity.require(Action.ACKNOWLEDGE_ALERT)
    note = _note(note)
    now = ledger.now()

    def work(cur: duckdb.DuckDBPyConnection) -> int:
        rows = cur.execute(
            "SELECT alert_id FROM alerts WHERE user_id = ? AND status = 'open' "
            "AND acknowledged_at IS NULL ORDER BY alert_id",
            [user_id],
        ).fetchall()
        if not rows:
            raise NoOpenAlert(user_id)
        _acknowledge(cur, [alert_id for (alert_id,) in rows], identity.actor, note, now)
        return len(rows)

    return ledger.side_write("acknowledge_alerts", work)


def _acknowledge(cur: duckdb.DuckDBPyConnection, ids: list[str], actor: str, note, now) -> None:
    cur.execute(
        "UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ?, note = ? "
        "WHERE alert_id IN (SELECT unnest(?))",
        [now, actor, note, ids],
    )
    cur.execute(
        "INSERT INTO alert_events (alert_id, ts, event, available, actor, note) "
        "SELECT alert_id, ?, 'acknowledged', available, ?, ? FROM alerts "
        "WHERE alert_id IN (SELECT unnest(?))",
        [now, actor, note, ids],
    )


def resolve_recovered(
    cur: duckdb.DuckDBPyConnection, now: datetime, scope: list[str] | None, rules: list[str]
) -> int:
    """Resolve open alerts whose user recovered, or whose rule is gone or disabled."""
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE resolving AS
        SELECT a.alert_id, e.available, NULL::VARCHAR AS note
        FROM alerts a JOIN evaluation e ON e.open_alert = a.alert_id
        WHERE e.recovered
        UNION ALL
        SELECT a.alert_id, a.available, 'rule removed or disabled'
        FROM alerts a
        WHERE a.status = 'open' AND NOT list_contains($rules, a.rule)
          AND ($everyone OR list_contains($users, a.user_id))
        """,
        {"rules": rules, "everyone": scope is None, "users": scope or [""]},
    )
    cur.execute(
        """
        INSERT INTO alert_events (alert_id, ts, event, available, actor, note)
        SELECT alert_id, $now, 'resolved', available, 'system', note FROM resolving
        """,
        {"now": now},
    )
    (count,) = cur.execute(
        """
        UPDATE alerts SET status = 'resolved', resolved_at = $now, available = r.available
        FROM resolving r WHERE alerts.alert_id = r.alert_id
        """,
        {"now": now},
    ).fetchone()
    cur.execute("DROP TABLE resolving")
    return int(count)


def refresh_available(cur: duckdb.DuckDBPyConnection) -> None:
    """Open alerts that stay open carry the latest available credits."""
    cur.execute(
        """
        UPDATE alerts SET available = e.available
        FROM evaluation e
        WHERE alerts.alert_id = e.open_alert AND NOT e.recovered
          AND alerts.available <> e.available
        """
    ).fetchall()


def open_matching(cur: duckdb.DuckDBPyConnection, now: datetime, pack: TopUp) -> int:
    """Open an alert for each matching pair without one; one outbox message per user
    whose alerts opened (every rule that opened, the most severe first), suggesting
    top-ups of `pack`."""
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE opening AS
        SELECT e.*, e.user_id || '/' || e.rule || '/' || (coalesce(c.n, 0) + 1) AS alert_id
        FROM evaluation e
        LEFT JOIN (
            SELECT user_id, rule, count(*) AS n FROM alerts
            WHERE user_id IN (SELECT user_id FROM evaluation WHERE matches AND open_alert IS NULL)
            GROUP BY ALL
        ) c USING (user_id, rule)
        WHERE e.matches AND e.open_alert IS NULL
        """
    )
    (count,) = cur.execute(
        """
        INSERT INTO alerts (alert_id, user_id, rule, kind, severity, status, opened_at,
                            available_at_open, measure_at_open, available)
        SELECT alert_id, user_id, rule, kind, severity, 'open', $now, available, measure,
               available
        FROM opening
        """,
        {"now": now},
    ).fetchone()
    cur.execute(
        """
        INSERT INTO alert_events (alert_id, ts, event, available, actor, note)
        SELECT alert_id, $now, 'opened', available, 'system', NULL FROM opening
        """,
        {"now": now},
    )
    cur.execute(
        """
        INSERT INTO alert_outbox (message_id, user_id, email, rule, severity, available,
                                  topup_packs, topup_credits, topup_usd, message, created_at,
                                  status, attempts, next_attempt_at)
        WITH ranked AS (
            SELECT *, struct_pack(
                       r := CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,
                       rule := rule) AS rank
            FROM opening
        ),
        per_user AS (
            SELECT user_id, arg_min(alert_id, rank) AS message_id, any_value(email) AS email,
                   string_agg(rule, ', ' ORDER BY rank) AS rules,
                   arg_min(severity, rank) AS severity, any_value(available) AS available,
                   max(topup_packs) AS topup_packs,
                   string_agg(description, ' ' ORDER BY rank) AS descriptions
            FROM ranked GROUP BY user_id
        )
        SELECT message_id, user_id, email, rules, severity, available, topup_packs,
               topup_packs * $pack_credits, topup_packs * $pack_usd,
               concat_ws(' ', descriptions,
                         format('You have {:,} credits available.', available),
                         CASE WHEN topup_packs IS NOT NULL
                              THEN format('Suggested top-up: {} pack(s) of {:,} credits (${}).',
                                          topup_packs, $pack_credits, topup_packs * $pack_usd)
                         END),
               $now, 'pending', 0, $now
        FROM per_user
        """,
        {"now": now, "pack_credits": pack.pack_credits, "pack_usd": pack.pack_price_usd},
    )
    cur.execute("DROP TABLE opening")
    return int(count)
