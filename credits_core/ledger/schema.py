"""The ledger's schema as numbered migrations, recorded in `schema_migrations`.

`migrate()` applies every migration the file lacks in one transaction: an older
ledger is upgraded whole or not at all. Ledger tables have no foreign keys (DuckDB
refuses to alter a table that has one); hard changes copy and swap a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


CORE_TABLES = Migration(
    1,
    "core tables: accounts, grants, holds, journal",
    (
        """
        CREATE TYPE entry_kind AS ENUM (
            'grant', 'reserve', 'capture', 'release', 'expire', 'extend',
            'grant_expired', 'adjust', 'refund'
        )
        """,
        """
        CREATE TABLE accounts (
            user_id     VARCHAR PRIMARY KEY,
            account_no  INTEGER NOT NULL UNIQUE,
            email       VARCHAR,
            plan        VARCHAR,
            created_at  TIMESTAMPTZ NOT NULL,
            total       BIGINT NOT NULL DEFAULT 0,   -- sum of journal credits
            held        BIGINT NOT NULL DEFAULT 0,   -- sum of journal held
            entries     BIGINT NOT NULL DEFAULT 0,   -- journal entries so far (last seq)
            CHECK (held >= 0 AND total >= held)
        )
        """,
        """
        CREATE TABLE grants (
            grant_id        VARCHAR PRIMARY KEY,
            user_id         VARCHAR NOT NULL,
            kind            VARCHAR NOT NULL,
            credits         BIGINT NOT NULL,
            remaining       BIGINT NOT NULL,
            priority        INTEGER NOT NULL,
            expires_at      TIMESTAMPTZ,
            created_at      TIMESTAMPTZ NOT NULL,
            grant_seq       BIGINT NOT NULL,          -- the account entry that granted it
            transaction_id  VARCHAR NOT NULL,
            reason          VARCHAR,
            actor           VARCHAR,
            expired_at      TIMESTAMPTZ,              -- when expire_grants booked its expiry
            CHECK (credits > 0 AND remaining >= 0 AND remaining <= credits)
        )
        """,
        """
        CREATE TABLE holds (
            transaction_id      VARCHAR PRIMARY KEY,
            user_id             VARCHAR NOT NULL,
            credits             BIGINT NOT NULL,
            status              VARCHAR NOT NULL,     -- pending captured released expired
            reason              VARCHAR,
            actor               VARCHAR,
            model               VARCHAR,
            metadata            JSON,
            options             JSON,
            price_book_version  VARCHAR,
            created_at          TIMESTAMPTZ NOT NULL,
            expires_at          TIMESTAMPTZ NOT NULL,
            resolved_at         TIMESTAMPTZ,
            captured            BIGINT NOT NULL DEFAULT 0,
            released            BIGINT NOT NULL DEFAULT 0,
            refunded_at         TIMESTAMPTZ,
            drawn               STRUCT(grant_id VARCHAR, credits BIGINT)[] NOT NULL,
            CHECK (credits > 0 AND captured >= 0 AND released >= 0
                   AND captured + released <= credits)
        )
        """,
        """
        CREATE TABLE journal (
            account_no      INTEGER NOT NULL,
            seq             BIGINT NOT NULL,          -- 1, 2, ... within the account
            user_id         VARCHAR NOT NULL,
            ts              TIMESTAMPTZ NOT NULL,
            kind            entry_kind NOT NULL,
            credits         BIGINT NOT NULL,          -- change of the total balance
            held            BIGINT NOT NULL,          -- change of the held credits
            balance_after   BIGINT NOT NULL,          -- total after this entry
            held_after      BIGINT NOT NULL,          -- held after this entry
            transaction_id  VARCHAR NOT NULL USING COMPRESSION uncompressed,
            grant_id        VARCHAR,
            reason          VARCHAR,
            actor           VARCHAR,
            model           VARCHAR,
            metadata        JSON USING COMPRESSION uncompressed
        )
        """,
    ),
)

IDEMPOTENCY_KEYS = Migration(
    2,
    "idempotency keys: the first result of every keyed write",
    (
        """
        CREATE TABLE idempotency_keys (
            key          VARCHAR PRIMARY KEY,
            operation    VARCHAR NOT NULL,
            fingerprint  VARCHAR NOT NULL,
            result       JSON,
            frame        BLOB,                        -- bulk results, as Parquet
            created_at   TIMESTAMPTZ NOT NULL
        )
        """,
    ),
)

LOOKUP_INDEXES = Migration(
    3,
    "lookup indexes: journal by account, grants and holds by user",
    (
        "CREATE INDEX journal_by_account ON journal (account_no)",
        "CREATE INDEX grants_by_user ON grants (user_id)",
        "CREATE INDEX holds_by_user ON holds (user_id)",
    ),
)

QUOTE_COST = Migration(
    4,
    "holds keep the quote's provider cost",
    ("ALTER TABLE holds ADD COLUMN provider_cost_usd DOUBLE",),
)

LOW_CREDIT_ALERTS = Migration(
    5,
    "low-credit alerts: alerts, their events, the notification outbox, rule changes",
    (
        """
        CREATE TABLE alerts (
            alert_id          VARCHAR PRIMARY KEY,    -- user/rule/n: the n-th alert of the pair
            user_id           VARCHAR NOT NULL,
            rule              VARCHAR NOT NULL,
            kind              VARCHAR NOT NULL,
            severity          VARCHAR NOT NULL,
            status            VARCHAR NOT NULL,       -- open, resolved
            opened_at         TIMESTAMPTZ NOT NULL,
            resolved_at       TIMESTAMPTZ,
            available_at_open BIGINT NOT NULL,
            measure_at_open   DOUBLE,                 -- the rule's figure when it opened
            available         BIGINT NOT NULL,        -- at the latest evaluation
            acknowledged_at   TIMESTAMPTZ,
            acknowledged_by   VARCHAR,
            note              VARCHAR
        )
        """,
        "CREATE INDEX alerts_by_user ON alerts (user_id)",
        """
        CREATE TABLE alert_events (
            alert_id   VARCHAR NOT NULL,
            ts         TIMESTAMPTZ NOT NULL,
            event      VARCHAR NOT NULL,             -- opened, resolved, acknowledged
            available  BIGINT,
            actor      VARCHAR,
            note       VARCHAR
        )
        """,
        """
        CREATE TABLE alert_outbox (
            message_id       VARCHAR PRIMARY KEY,    -- the alert it announces: written once
            user_id          VARCHAR NOT NULL,
            email            VARCHAR,
            rule             VARCHAR NOT NULL,
            severity         VARCHAR NOT NULL,
            available        BIGINT NOT NULL,
            topup_packs      INTEGER,
            topup_credits    BIGINT,
            topup_usd        BIGINT,
            message          VARCHAR NOT NULL,
            created_at       TIMESTAMPTZ NOT NULL,
            status           VARCHAR NOT NULL,       -- pending, delivered, failed
            attempts         INTEGER NOT NULL DEFAULT 0,
            next_attempt_at  TIMESTAMPTZ NOT NULL,
            delivered_at     TIMESTAMPTZ,
            destination      VARCHAR,
            last_error       VARCHAR
        )
        """,
        """
        CREATE TABLE alert_rule_changes (
            change_id   VARCHAR PRIMARY KEY,
            changed_at  TIMESTAMPTZ NOT NULL,
            actor       VARCHAR NOT NULL,
            path        VARCHAR NOT NULL,
            before      VARCHAR NOT NULL,             -- the rules file before (TOML)
            after       VARCHAR NOT NULL,             -- and after
            summary     VARCHAR NOT NULL
        )
        """,
    ),
)

# What "available" means, written once: what a user can spend at `as_of`, that is the
# credits left in grants still live then, minus what is held. Grants that lapsed but
# that `expire_grants` has not booked out yet are left out of `total` and `available`.
# Balance reads, account search, the home figures, alerts and exports all read it.
ACCOUNT_BALANCES = Migration(
    6,
    "account_balances(as_of): total, held and available as of a moment, one row per account",
    (
        """
        CREATE MACRO account_balances(as_of) AS TABLE
        SELECT a.user_id, a.account_no, a.email, a.plan, a.created_at,
               a.total - coalesce(l.credits, 0) AS total,
               a.held,
               a.total - a.held - coalesce(l.credits, 0) AS available,
               coalesce(l.credits, 0) AS lapsed
        FROM accounts AS a
        LEFT JOIN (
            SELECT user_id, CAST(sum(remaining) AS BIGINT) AS credits
            FROM grants
            WHERE remaining > 0
              AND NOT ((expires_at IS NULL OR expires_at > as_of) AND expired_at IS NULL)
            GROUP BY user_id
        ) AS l USING (user_id)
        """,
    ),
)

# An account's six newest history marks, oldest first: (mark_seq_1, mark_row_1), ...
_MARK_COLUMNS = [f"mark_{kind}_{n}" for n in range(1, 7) for kind in ("seq", "row")]
_SET_MARKS = ", ".join(
    f"mark_seq_{n} = m.marks[{n}].seq, mark_row_{n} = m.marks[{n}].row_floor" for n in range(1, 7)
)

# The writer answers once a batch is in its redo log (redo.py); the applier records here,
# in the transaction that writes them, the last logged batch the file holds. An account's
# history marks (marks.py) say from which journal row its later entries all lie.
REDO_AND_MARKS = Migration(
    7,
    "redo_position: the last logged batch the file holds; the accounts' history marks",
    (
        """
        CREATE TABLE redo_position (
            applied BIGINT NOT NULL CHECK (applied >= 0)  -- number of the last batch
        )
        """,
        "INSERT INTO redo_position (applied) VALUES (0)",
        *(f"ALTER TABLE accounts ADD COLUMN {column} BIGINT" for column in _MARK_COLUMNS),
        f"""
        UPDATE accounts SET {_SET_MARKS}
        FROM (
            SELECT account_no,
                   list_slice(list({{'seq': seq, 'row_floor': rowid}} ORDER BY seq), -6, -1)
                       AS marks
            FROM journal WHERE seq % 20 = 0 GROUP BY account_no
        ) AS m
        WHERE accounts.account_no = m.account_no
        """,
    ),
)

# The ledger's read surface: what alerts, exports, the simulator and the SQL console read,
# never the tables themselves, so that a change to a table touches the ledger alone.
# - grant_is_live(expires_at, expired_at, as_of): the one rule of a live grant (as
#   GrantState.live): spendable until the instant it expires (as_of < expires_at), and
#   never once expire_grants booked it out. account_balances is made again with it (the
#   same columns and answers as migration 6).
# - spendable_grants(as_of): the grants live at `as_of` with credits left.
# - ledger_accounts, ledger_journal, ledger_grants, ledger_holds: the tables' columns by
#   name (not the accounts' mark_* columns, the ledger's own bookkeeping: marks.py).
#   ledger_accounts' total and held are as booked: what a user can spend is
#   account_balances' available.
READ_SURFACE = Migration(
    8,
    "read surface: grant_is_live, spendable_grants(as_of), the ledger_* views",
    (
        """
        CREATE MACRO grant_is_live(expires_at, expired_at, as_of) AS
            expired_at IS NULL AND (expires_at IS NULL OR as_of < expires_at)
        """,
        """
        CREATE OR REPLACE MACRO account_balances(as_of) AS TABLE
        SELECT a.user_id, a.account_no, a.email, a.plan, a.created_at,
               a.total - coalesce(l.credits, 0) AS total,
               a.held,
               a.total - a.held - coalesce(l.credits, 0) AS available,
               coalesce(l.credits, 0) AS lapsed
        FROM accounts AS a
        LEFT JOIN (
            SELECT user_id, CAST(sum(remaining) AS BIGINT) AS credits
            FROM grants
            WHERE remaining > 0 AND NOT grant_is_live(expires_at, expired_at, as_of)
            GROUP BY user_id
        ) AS l USING (user_id)
        """,
        """
        CREATE MACRO spendable_grants(as_of) AS TABLE
        SELECT grant_id, user_id, kind, remaining, priority, expires_at, created_at
        FROM grants
        WHERE remaining > 0 AND grant_is_live(expires_at, expired_at, as_of)
        """,
        """
        CREATE VIEW ledger_accounts AS
        SELECT user_id, account_no, email, plan, created_at, total, held, entries
        FROM accounts
        """,
        """
        CREATE VIEW ledger_journal AS
        SELECT account_no, seq, user_id, ts, kind, credits, held, balance_after, held_after,
               transaction_id, grant_id, reason, actor, model, metadata
        FROM journal
        """,
        """
        CREATE VIEW ledger_grants AS
        SELECT grant_id, user_id, kind, credits, remaining, priority, expires_at, created_at,
               grant_seq, transaction_id, reason, actor, expired_at
        FROM grants
        """,
        """
        CREATE VIEW ledger_holds AS
        SELECT transaction_id, user_id, credits, status, reason, actor, model, metadata,
               options, price_book_version, created_at, expires_at, resolved_at, captured,
               released, refunded_at, drawn, provider_cost_usd
        FROM holds
        """,
    ),
)


def _swap(table: str, columns: str, create: str) -> tuple[str, ...]:
    """Statements that copy `table` into its new form (`create` makes `{table}_new`) and
    put the copy in its place."""
    return (
        create,
        f"INSERT INTO {table}_new ({columns}) SELECT {columns} FROM {table}",
        f"DROP TABLE {table}",
        f"ALTER TABLE {table}_new RENAME TO {table}",
    )


# The balance rows, grants and holds again, each rule of their compound CHECK constraints
# on its own, so that a violation names the rule it breaks (DuckDB's error quotes the
# failing CHECK's expression, e.g. `CHECK((remaining <= credits))`). DuckDB cannot alter a
# CHECK: each table is copied into its new form and swapped in (the journal, the large
# table, has no CHECK and is not copied); its index is made again.
ONE_RULE_PER_CHECK = Migration(
    9,
    "one rule per CHECK constraint: accounts, grants and holds",
    (
        *_swap(
            "accounts",
            "user_id, account_no, email, plan, created_at, total, held, entries, "
            + ", ".join(_MARK_COLUMNS),
            f"""
            CREATE TABLE accounts_new (
                user_id     VARCHAR PRIMARY KEY,
                account_no  INTEGER NOT NULL UNIQUE,
                email       VARCHAR,
                plan        VARCHAR,
                created_at  TIMESTAMPTZ NOT NULL,
                total       BIGINT NOT NULL DEFAULT 0,   -- sum of journal credits
                held        BIGINT NOT NULL DEFAULT 0,   -- sum of journal held
                entries     BIGINT NOT NULL DEFAULT 0,   -- journal entries so far (last seq)
                {", ".join(f"{column} BIGINT" for column in _MARK_COLUMNS)},  -- marks.py
                CHECK (held >= 0),
                CHECK (total >= held)
            )
            """,
        ),
        *_swap(
            "grants",
            "grant_id, user_id, kind, credits, remaining, priority, expires_at, created_at, "
            "grant_seq, transaction_id, reason, actor, expired_at",
            """
            CREATE TABLE grants_new (
                grant_id        VARCHAR PRIMARY KEY,
                user_id         VARCHAR NOT NULL,
                kind            VARCHAR NOT NULL,
                credits         BIGINT NOT NULL,
                remaining       BIGINT NOT NULL,
                priority        INTEGER NOT NULL,
                expires_at      TIMESTAMPTZ,
                created_at      TIMESTAMPTZ NOT NULL,
                grant_seq       BIGINT NOT NULL,      -- the account entry that granted it
                transaction_id  VARCHAR NOT NULL,
                reason          VARCHAR,
                actor           VARCHAR,
                expired_at      TIMESTAMPTZ,          -- when expire_grants booked its expiry
                CHECK (credits > 0),
                CHECK (remaining >= 0),
                CHECK (remaining <= credits)
            )
            """,
        ),
        "CREATE INDEX grants_by_user ON grants (user_id)",
        *_swap(
            "holds",
            "transaction_id, user_id, credits, status, reason, actor, model, metadata, options, "
            "price_book_version, created_at, expires_at, resolved_at, captured, released, "
            "refunded_at, drawn, provider_cost_usd",
            """
            CREATE TABLE holds_new (
                transaction_id      VARCHAR PRIMARY KEY,
                user_id             VARCHAR NOT NULL,
                credits             BIGINT NOT NULL,
                status              VARCHAR NOT NULL, -- pending captured released expired
                reason              VARCHAR,
                actor               VARCHAR,
                model               VARCHAR,
                metadata            JSON,
                options             JSON,
                price_book_version  VARCHAR,
                created_at          TIMESTAMPTZ NOT NULL,
                expires_at          TIMESTAMPTZ NOT NULL,
                resolved_at         TIMESTAMPTZ,
                captured            BIGINT NOT NULL DEFAULT 0,
                released            BIGINT NOT NULL DEFAULT 0,
                refunded_at         TIMESTAMPTZ,
                drawn               STRUCT(grant_id VARCHAR, credits BIGINT)[] NOT NULL,
                provider_cost_usd   DOUBLE,
                CHECK (credits > 0),
                CHECK (captured >= 0),
                CHECK (released >= 0),
                CHECK (captured + released <= credits)
            )
            """,
        ),
        "CREATE INDEX holds_by_user ON holds (user_id)",
    ),
)

MIGRATIONS = (
    CORE_TABLES,
    IDEMPOTENCY_KEYS,
    LOOKUP_INDEXES,
    QUOTE_COST,
    LOW_CREDIT_ALERTS,
    ACCOUNT_BALANCES,
    REDO_AND_MARKS,
    READ_SURFACE,
    ONE_RULE_PER_CHECK,
)
LATEST = max(migration.version for migration in MIGRATIONS)


def applied_version(
    cur: duckdb.DuckDBPyConnection, migrations: tuple[Migration, ...] = MIGRATIONS
) -> int | None:
    """The version the file is complete up to: its newest recorded migration, or, when one
    of `migrations` numbered below that is missing (a reserved number filled in later),
    the version just before the first missing one. None when it has no ledger schema."""
    if not _has_table(cur, "schema_migrations"):
        return None
    recorded = _recorded(cur)
    newest = max(recorded, default=0)
    missing = [m.version for m in migrations if m.version < newest and m.version not in recorded]
    return min(missing) - 1 if missing else newest


def other_tables(cur: duckdb.DuckDBPyConnection) -> list[str]:
    rows = cur.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() ORDER BY table_name"
    ).fetchall()
    return [name for (name,) in rows]


def migrate(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    migrations: tuple[Migration, ...] = MIGRATIONS,
    target: int | None = None,
) -> list[int]:
    """Apply the migrations the file has not recorded, up to `target`, in version order and
    in one transaction; return their versions."""
    cur.execute("BEGIN")
    try:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
        )
        recorded = _recorded(cur)
        applied = []
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version in recorded or (target is not None and migration.version > target):
                continue
            for statement in migration.statements:
                cur.execute(statement)
            cur.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                [migration.version, migration.name, now],
            )
            applied.append(migration.version)
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    return applied


def _recorded(cur: duckdb.DuckDBPyConnection) -> set[int]:
    return {int(v) for (v,) in cur.execute("SELECT version FROM schema_migrations").fetchall()}


def _has_table(cur: duckdb.DuckDBPyConnection, name: str) -> bool:
    return name in other_tables(cur)
