"""A usage export as one parameterised SQL relation over the ledger's read surface
(schema migration 8), with the price book's provider, modality and costs joined in.

`relation_sql` gives the SELECT with the data dictionary's types, `coded_sql` the same
rows with the text columns as ENUM codes (what `COPY ... TO` writes, see below): filters
are bound parameters (lists as `IN (SELECT unnest($list))`), identifiers come only from
the fixed tables below. `prepare` makes the temporary types and lookups on a cursor, so
that the relation can be previewed, counted or copied to a file by DuckDB in one read
snapshot.

Usage events are journal entries. A generation counts once, by its outcome: a capture,
a release that captured nothing, or an expiry (a reserve entry is not counted; the
release of the rest of a partial capture is not a generation).
"""

from __future__ import annotations

import duckdb

from credits_core.export import lookups
from credits_core.export.request import EVENT_KINDS, UsageQuery
from credits_core.pricing import PriceBook

# The UTC wall clock of `ts` is make_timestamp(epoch_us(ts)): the same TIMESTAMP as
# `ts AT TIME ZONE 'UTC'`, by arithmetic instead of a time zone lookup (10x faster).
UTC_SQL = "make_timestamp(epoch_us(ts))"
KEY_SQL = {
    "month": f"date_trunc('month', {UTC_SQL})::DATE AS month",
    "week": f"date_trunc('week', {UTC_SQL})::DATE AS week",
    "day": f"{UTC_SQL}::DATE AS day",
    "user_id": "user_id",
    "plan": "plan",
    "provider": "provider",
    "model": "model",
}
MONTH_SQL = KEY_SQL["month"]

# Where the time goes in a big export is mostly the Parquet writer, and in it the text
# columns: for a VARCHAR column it hashes every row's string into a dictionary (or gives
# up and writes it plainly). So the *coded* relation gives the text columns as ENUMs of
# temporary types that `prepare` makes on the cursor from the snapshot's own values
# (kinds, plans, models, providers, modalities, and users: one code per account, taken
# from the account the entry belongs to, which is the entry's own user in a sound ledger).
# An ENUM is written as the same dictionary-encoded string column straight from its codes
# and reads back as VARCHAR; joins and GROUP BY hash small integers instead of text. The
# public relation (`relation_sql`: preview, XLSX, the SQL console, DESCRIBE) casts them
# back to VARCHAR, the documented types. And nothing is parsed per row: `prepare` reads
# each distinct (model, metadata) of the journal once, and usage booked in bulk (nearly
# every row) takes its model's codes and what its metadata says from that one lookup
# (`export_metadata`); the accounts are joined by an inner join that DuckDB runs as a
# direct lookup by account number. The joins that only entries of holds need (holds,
# refunds, priced hold options) are made in their own, small, branch.

KINDS_SQL = "'capture', 'release', 'expiry', 'grant', 'refund', 'adjustment'"
TEXT_COLUMNS = ("kind", "user_id", "plan", "model", "provider", "modality")  # ENUM when coded

RECORDED_SQL = """
CREATE OR REPLACE TEMP TABLE export_recorded AS  -- each distinct metadata, read once
SELECT model, metadata, captured, metadata ->> 'reserved' AS reserved,
       (metadata -> 'options')::VARCHAR AS options
FROM (SELECT model, metadata, bool_or(kind = 'capture') AS captured
      FROM ledger_journal WHERE kind IN ('capture', 'release') AND metadata IS NOT NULL
      GROUP BY model, metadata)
"""
OPTIONS_RECORDED_SQL = """
SELECT DISTINCT model, options FROM export_recorded WHERE captured AND options IS NOT NULL
UNION
SELECT DISTINCT coalesce(model, metadata ->> 'model'), options::VARCHAR
FROM ledger_holds
WHERE options IS NOT NULL AND provider_cost_usd IS NULL
"""
# Every account, and for journal entries whose account is missing (none in a sound
# ledger) one row each without a plan, so that the events can be joined to accounts by
# an inner join and keep every entry: DuckDB then looks the dense account numbers up
# directly (a perfect hash join) instead of probing a hash table per entry.
ACCOUNTS_SQL = (
    "CREATE OR REPLACE TEMP TABLE export_account_rows AS "
    "SELECT account_no, user_id, plan FROM ledger_accounts"
)
MISSING_ACCOUNTS_SQL = (
    "SELECT (SELECT count(*) FROM ledger_journal) "
    "- (SELECT count(*) FROM ledger_journal JOIN ledger_accounts USING (account_no))"
)
MISSING_ACCOUNT_ROWS_SQL = (
    "INSERT INTO export_account_rows "
    "SELECT account_no, min(user_id), NULL FROM ledger_journal "
    "WHERE account_no NOT IN (SELECT account_no FROM ledger_accounts) GROUP BY account_no"
)
TYPES_SQL = (  # after export_book_models, export_sku_frame, export_account_rows exist
    f"CREATE OR REPLACE TEMP TYPE export_kind AS ENUM ({KINDS_SQL})",
    "CREATE OR REPLACE TEMP TYPE export_user AS ENUM ("
    "SELECT DISTINCT user_id FROM export_account_rows ORDER BY ALL)",
    "CREATE OR REPLACE TEMP TYPE export_plan AS ENUM ("
    "SELECT DISTINCT plan FROM (SELECT plan FROM export_account_rows UNION ALL "
    "SELECT plan FROM export_sku_frame WHERE plan <> '') WHERE plan IS NOT NULL ORDER BY ALL)",
    "CREATE OR REPLACE TEMP TYPE export_model AS ENUM ("
    "SELECT DISTINCT model FROM (SELECT model FROM export_book_models "
    "UNION ALL SELECT DISTINCT model FROM ledger_journal "
    "UNION ALL SELECT model FROM ledger_holds "
    "UNION ALL SELECT metadata ->> 'model' FROM ledger_holds) "
    "WHERE model IS NOT NULL ORDER BY ALL)",
    "CREATE OR REPLACE TEMP TYPE export_provider AS ENUM ("
    "SELECT DISTINCT provider FROM export_book_models WHERE provider IS NOT NULL ORDER BY ALL)",
    "CREATE OR REPLACE TEMP TYPE export_modality AS ENUM ("
    "SELECT DISTINCT modality FROM export_book_models WHERE modality IS NOT NULL ORDER BY ALL)",
)
LOOKUPS_SQL = (  # after TYPES_SQL, and export_recorded and export_option_costs exist
    "CREATE OR REPLACE TEMP TABLE export_accounts AS "
    "SELECT account_no, user_id::export_user AS user_id, plan::export_plan AS plan, "
    "       nullif(plan, '')::export_plan AS sku_plan "
    "FROM export_account_rows",
    "CREATE OR REPLACE TEMP TABLE export_models AS "
    "SELECT n.model, n.model::export_model AS code, b.provider::export_provider AS provider, "
    "       b.modality::export_modality AS modality "
    "FROM (SELECT unnest(enum_range(NULL::export_model))::VARCHAR AS model) AS n "
    "LEFT JOIN export_book_models AS b USING (model)",
    "CREATE OR REPLACE TEMP TABLE export_sku_costs AS "
    "SELECT model::export_model AS model, nullif(plan, '')::export_plan AS plan, credits, "
    "       provider_cost_usd "
    "FROM export_sku_frame",
    # every (model, metadata) of a usage entry: those recorded, and each model without any
    "CREATE OR REPLACE TEMP TABLE export_metadata AS "
    "SELECT r.model, r.metadata, m.code, m.provider, m.modality, r.reserved::BIGINT AS reserved, "
    "       oc.provider_cost_usd AS options_cost "
    "FROM export_recorded AS r "
    "LEFT JOIN export_models AS m USING (model) "
    "LEFT JOIN export_option_costs AS oc ON oc.model = r.model AND oc.options = r.options "
    "UNION ALL SELECT model, NULL, code, provider, modality, NULL, NULL FROM export_models "
    "UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL",
)

EVENTS_SQL = """
WITH bulk AS (  -- usage booked in bulk (apply_usage): one entry per generation, no hold
    SELECT j.account_no, j.ts, j.kind, j.user_id, j.transaction_id, j.credits, j.model,
           md.code, md.provider, md.modality,  -- of its model
           true AS generation,
           CASE WHEN j.kind = 'capture' THEN -j.credits  -- a failure reserved what its
                ELSE md.reserved END AS credits_reserved,  -- metadata says
           md.options_cost AS quoted_cost  -- its options, priced
    FROM (SELECT * FROM ledger_journal
          WHERE kind IN ('capture', 'release') AND held = 0 AND {entry_conditions}) AS j
    LEFT JOIN export_metadata AS md  -- one row per (model, metadata) the journal has
        ON md.model IS NOT DISTINCT FROM j.model AND md.metadata IS NOT DISTINCT FROM j.metadata
),
{refunded},
other AS (  -- the entries of holds, grants, refunds, adjustments: few, so join them
    SELECT j.account_no, j.ts, j.kind, j.user_id, j.transaction_id, j.credits, m.model,
           m.code, m.provider, m.modality,
           j.kind IN ('capture', 'expire')
               OR (j.kind = 'release' AND coalesce(h.captured, 0) = 0) AS generation,
           CASE WHEN j.kind IN ('capture', 'expire')
                  OR (j.kind = 'release' AND coalesce(h.captured, 0) = 0) THEN h.credits
           END AS credits_reserved,
           coalesce(h.provider_cost_usd, oc.provider_cost_usd) AS quoted_cost
    FROM (SELECT * FROM ledger_journal
          WHERE NOT (kind IN ('capture', 'release') AND held = 0)
            AND {entry_conditions}) AS j
    LEFT JOIN ledger_holds AS h USING (transaction_id)
    LEFT JOIN refunded AS r USING (transaction_id)
    LEFT JOIN export_models AS m
        ON m.model = coalesce(j.model, h.model, h.metadata ->> 'model', r.model)
    LEFT JOIN export_option_costs AS oc  -- the hold's options, priced
        ON oc.model = m.model AND oc.options = h.options::VARCHAR
),
events AS (
    SELECT * FROM bulk UNION ALL SELECT * FROM other
)
SELECT ev.ts,
       CASE ev.kind WHEN 'capture' THEN 'capture'::export_kind
                    WHEN 'release' THEN 'release'::export_kind
                    WHEN 'expire' THEN 'expiry'::export_kind
                    WHEN 'grant' THEN 'grant'::export_kind
                    WHEN 'refund' THEN 'refund'::export_kind
                    WHEN 'adjust' THEN 'adjustment'::export_kind END AS kind,
       {user_id} AS user_id, a.plan, ev.transaction_id, ev.code AS model, ev.provider,
       ev.modality,
       ev.generation,
       ev.generation AND ev.kind <> 'capture' AS failed,
       ev.credits_reserved,
       CASE WHEN ev.kind = 'capture' THEN -ev.credits ELSE 0 END AS credits_spent,
       ev.credits AS balance_change,
       CASE WHEN ev.kind = 'capture' THEN -ev.credits ELSE 0 END * $credit_usd AS usd_value,
       CASE WHEN ev.kind = 'capture'
            THEN coalesce(ev.quoted_cost, sc.provider_cost_usd)
       END AS provider_cost_usd
FROM events AS ev
JOIN export_accounts AS a ON a.account_no = ev.account_no
LEFT JOIN export_sku_costs AS sc
    ON sc.model = ev.code AND sc.plan IS NOT DISTINCT FROM a.sku_plan
   AND sc.credits = ev.credits_reserved
WHERE {event_conditions}
"""
REFUNDED_SQL = """refunded AS (  -- refund entries carry no model: the refunded capture has it
    SELECT transaction_id, any_value(model) AS model
    FROM ledger_journal
    WHERE kind = 'capture' AND transaction_id IN (
        SELECT transaction_id FROM ledger_journal WHERE kind = 'refund' AND {entry_conditions})
    GROUP BY transaction_id
)"""
NO_REFUNDS_SQL = """refunded AS (  -- refunds are not exported
    SELECT NULL::VARCHAR AS transaction_id, NULL::VARCHAR AS model WHERE false
)"""

MEASURES_SQL = """
    count(*) AS events,
    count(*) FILTER (WHERE generation) AS generations,
    count(*) FILTER (WHERE kind = 'capture') AS captures,
    count(*) FILTER (WHERE failed) AS failures,
    count(*) FILTER (WHERE failed) / nullif(count(*) FILTER (WHERE generation), 0)
        AS failure_rate,
    sum(credits_spent)::BIGINT AS credits_spent,
    coalesce(sum(balance_change) FILTER (WHERE kind = 'grant'), 0)::BIGINT AS credits_granted,
    coalesce(sum(balance_change) FILTER (WHERE kind = 'refund'), 0)::BIGINT AS credits_refunded,
    coalesce(sum(balance_change) FILTER (WHERE kind = 'adjustment'), 0)::BIGINT
        AS credits_adjusted,
    sum(balance_change)::BIGINT AS balance_change,
    sum(credits_spent) * $credit_usd AS usd_value,  -- sums of exact numbers: the same
    sum(provider_cost_usd::DECIMAL(18, 12))::DOUBLE AS provider_cost_usd,  -- in any order
    count(provider_cost_usd) AS costed_captures
"""

ENTRY_FILTERS = {  # UsageQuery field -> condition on journal entries
    "since": "ts >= $since",
    "until": "ts < $until",
    "users": "user_id IN (SELECT unnest($users::VARCHAR[]))",
}
EVENT_FILTERS = {  # UsageQuery field -> condition on the joined events
    "models": "ev.model IN (SELECT unnest($models::VARCHAR[]))",
    "providers": "ev.provider::VARCHAR IN (SELECT unnest($providers::VARCHAR[]))",
    "plans": "a.plan::VARCHAR IN (SELECT unnest($plans::VARCHAR[]))",
}


def coded_sql(query: UsageQuery, credit_usd: float) -> tuple[str, dict[str, object]]:
    """The export's SELECT with its text key columns as ENUM codes, and its parameters
    (the lookups must be prepared). The columns and rows are the export's; only the types
    of TEXT_COLUMNS differ from the data dictionary."""
    kinds = [EVENT_KINDS[k] for k in query.kinds or EVENT_KINDS]
    params: dict[str, object] = {"credit_usd": credit_usd, "kinds": kinds}
    entries = " AND ".join(["list_contains($kinds, kind::VARCHAR)",
                            *_conditions(query, ENTRY_FILTERS, params)])  # fmt: skip
    refunded = REFUNDED_SQL if "refund" in (query.kinds or EVENT_KINDS) else NO_REFUNDS_SQL
    events = EVENTS_SQL.format(
        entry_conditions=entries,
        refunded=refunded.format(entry_conditions=entries),
        event_conditions=" AND ".join(["true", *_conditions(query, EVENT_FILTERS, params)]),
        # the account's user (one ENUM code per account), which is the entry's in a sound
        # ledger; the entry's own text when only some users are exported
        user_id="ev.user_id" if query.users else "a.user_id",
    )
    return (_grouped(events, query.key_columns) if query.group_by else events), params


def _conditions(query: UsageQuery, filters: dict[str, str], params: dict) -> list[str]:
    """The conditions of the filters the query sets; their values go into `params`."""
    conditions = []
    for name, condition in filters.items():
        value = getattr(query, name)
        if value:
            conditions.append(condition)
            params[name] = list(value) if isinstance(value, tuple) else value
    return conditions


def _grouped(events: str, keys: tuple[str, ...]) -> str:
    """The events grouped by `keys`, text keys as VARCHAR, in key order."""
    texts = [key for key in keys if key in TEXT_COLUMNS]
    outer = f"* REPLACE ({', '.join(f'{k}::VARCHAR AS {k}' for k in texts)})" if texts else "*"
    return (
        f"SELECT {outer} FROM (\n"
        f"SELECT {', '.join(KEY_SQL[k] for k in keys)},{MEASURES_SQL}"
        f"FROM ({events}) AS usage\nGROUP BY ALL\n) AS groups\nORDER BY {', '.join(keys)}"
    )


def relation_sql(query: UsageQuery, credit_usd: float) -> tuple[str, dict[str, object]]:
    """The export's SELECT, with the data dictionary's types, and its parameters (the
    lookups must be prepared)."""
    sql, params = coded_sql(query, credit_usd)
    if query.group_by:  # the keys are VARCHAR already
        return sql, params
    columns = ", ".join(
        f"{c.name}::VARCHAR AS {c.name}" if c.name in TEXT_COLUMNS else c.name
        for c in query.columns
    )
    return f"SELECT {columns} FROM ({sql}) AS coded", params


def prepare(cur: duckdb.DuckDBPyConnection, book: PriceBook) -> None:
    """Make the temporary types and lookups the relation joins, from the snapshot's own
    values and the price book, on this cursor only (they go with it). Run it in the
    snapshot the relation is read in."""
    cur.register("export_book_models", lookups.models_table(book))
    cur.register("export_sku_frame", lookups.sku_costs_table(book))
    cur.execute(RECORDED_SQL)
    recorded = [tuple(row) for row in cur.execute(OPTIONS_RECORDED_SQL).fetchall()]
    cur.register("export_option_costs", lookups.option_costs_table(book, recorded))
    cur.execute(ACCOUNTS_SQL)
    (missing,) = cur.execute(MISSING_ACCOUNTS_SQL).fetchone()
    if missing:
        cur.execute(MISSING_ACCOUNT_ROWS_SQL)
    for statement in (*TYPES_SQL, *LOOKUPS_SQL):
        cur.execute(statement)
