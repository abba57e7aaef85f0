"""Schema migrations (schema.py): numbered, recorded, applied whole or not at all."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from credits_core.ledger import Ledger, SchemaOutdated, SchemaTooNew
from credits_core.ledger.schema import (
    LATEST,
    MIGRATIONS,
    ONE_RULE_PER_CHECK,
    Migration,
    applied_version,
    migrate,
)
from tests.ledger.support import funded, sql

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def versions(path: str) -> list[int]:
    con = duckdb.connect(path, read_only=True)
    try:
        return [
            v for (v,) in con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        ]
    finally:
        con.close()


def old_ledger(path: str, version: int) -> None:
    """A file as an older credits_core left it: migrated up to `version` only."""
    con = duckdb.connect(path)
    try:
        migrate(con, NOW, target=version)
        con.execute(
            "INSERT INTO accounts (user_id, account_no, created_at) VALUES ('u_old', 1, ?)", [NOW]
        )
    finally:
        con.close()


ALL = [m.version for m in MIGRATIONS]


def test_a_new_ledger_records_every_migration(db_path):
    Ledger.open(db_path).close()
    assert versions(db_path) == ALL == sorted(set(ALL))  # numbered once each, in order
    assert ALL[-1] == LATEST


def test_opening_an_older_ledger_upgrades_it_and_keeps_its_data(db_path):
    old_ledger(db_path, 1)
    assert versions(db_path) == [1]
    with Ledger.open(db_path) as ledger:
        ledger.grant("u_old", 70, kind="topup", idempotency_key="needs-migration-2")
        assert tuple(ledger.balance("u_old")) == (70, 0, 70)
        assert ledger.check_invariants() == []
    assert versions(db_path) == ALL


def test_a_failing_upgrade_leaves_the_old_schema_whole(db_path):
    old_ledger(db_path, 1)
    broken = (*MIGRATIONS, Migration(LATEST + 1, "broken", ("CREATE TABLE x (a INT)", "SELEC 1")))
    con = duckdb.connect(db_path)
    try:
        with pytest.raises(duckdb.ParserException):
            migrate(con, NOW, broken)
        assert applied_version(con) == 1
        tables = {
            name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        assert "idempotency_keys" not in tables and "x" not in tables
    finally:
        con.close()


def test_migrating_twice_applies_nothing_new(db_path):
    Ledger.open(db_path).close()
    con = duckdb.connect(db_path)
    try:
        assert migrate(con, NOW) == []
    finally:
        con.close()


def test_a_ledger_from_a_newer_version_is_refused(db_path):
    Ledger.open(db_path).close()
    con = duckdb.connect(db_path)
    con.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', ?)", [LATEST + 1, NOW])
    con.close()
    with pytest.raises(SchemaTooNew, match="Upgrade credits_core"):
        Ledger.open(db_path)


def test_a_read_only_open_cannot_upgrade(db_path):
    old_ledger(db_path, 2)
    with pytest.raises(SchemaOutdated, match="read-write"):
        Ledger.open(db_path, read_only=True)
    Ledger.open(db_path).close()
    with Ledger.open(db_path, read_only=True) as ledger:
        assert ledger.balance("u_old").total == 0


def test_data_written_survives_reopening(db_path, clock):
    with Ledger.open(db_path, clock=clock) as ledger:
        funded(ledger, credits=300)
        hold = ledger.reserve("u_1", 100)
    with Ledger.open(db_path, clock=clock) as ledger:
        assert tuple(ledger.balance("u_1")) == (300, 100, 200)
        assert ledger.confirm(hold.transaction_id, success=True).captured == 100


def test_a_pending_hold_written_before_an_upgrade_can_be_confirmed_after_it(db_path, clock):
    con = duckdb.connect(db_path)
    migrate(con, NOW, target=3)  # before holds kept the quote's provider cost
    for statement in (
        "INSERT INTO accounts VALUES ('u_1', 1, NULL, NULL, ?, 100, 30, 2)",
        "INSERT INTO grants (grant_id, user_id, kind, credits, remaining, priority, created_at,"
        " grant_seq, transaction_id) VALUES ('grant-1-1', 'u_1', 'plan', 100, 70, 20, ?, 1,"
        " 'grant-1-1')",
        "INSERT INTO journal VALUES (1, 1, 'u_1', ?, 'grant', 100, 0, 100, 0, 'grant-1-1',"
        " 'grant-1-1', NULL, 'system', NULL, NULL)",
        "INSERT INTO journal VALUES (1, 2, 'u_1', ?, 'reserve', 0, 30, 100, 30, 'hold-1-2',"
        " NULL, NULL, 'system', NULL, NULL)",
        "INSERT INTO holds (transaction_id, user_id, credits, status, created_at, expires_at,"
        " drawn) VALUES ('hold-1-2', 'u_1', 30, 'pending', ?, ? + INTERVAL 1 HOUR,"
        " [{'grant_id': 'grant-1-1', 'credits': 30}])",
    ):
        con.execute(statement, [NOW] * statement.count("?"))
    con.close()
    with Ledger.open(db_path, clock=lambda: NOW) as ledger:
        assert ledger.check_invariants() == []
        assert ledger.reservation("hold-1-2").provider_cost_usd is None
        assert ledger.confirm("hold-1-2", success=True, credits=10).released == 20
        assert tuple(ledger.balance("u_1")) == (90, 0, 90)
        assert ledger.check_invariants() == []


def test_a_migration_numbered_below_the_files_newest_is_applied_when_it_arrives(db_path):
    """Numbers are reserved for other branches: a file that recorded a later migration
    before a reserved one existed gets the reserved one when it arrives."""
    later = Migration(LATEST + 2, "later", ("CREATE TABLE later (a INT)",))
    reserved = Migration(LATEST + 1, "reserved", ("CREATE TABLE reserved (a INT)",))
    con = duckdb.connect(db_path)
    try:
        assert migrate(con, NOW, (*MIGRATIONS, later))[-1] == LATEST + 2
        arrived = (*MIGRATIONS, reserved, later)
        assert applied_version(con, arrived) == LATEST  # complete up to the gap
        assert migrate(con, NOW, arrived) == [LATEST + 1]
        assert applied_version(con, arrived) == LATEST + 2
        assert con.execute("SELECT count(*) FROM reserved").fetchone() == (0,)
    finally:
        con.close()


def test_every_index_a_migration_makes_outlives_the_later_ones(db_path):
    """A migration that copies a table and swaps it in makes its indexes again."""
    Ledger.open(db_path).close()
    made = {
        re.search(r"CREATE INDEX (\w+)", statement).group(1)
        for migration in MIGRATIONS
        for statement in migration.statements
        if "CREATE INDEX" in statement
    }
    con = duckdb.connect(db_path, read_only=True)
    try:
        found = {
            name for (name,) in con.execute("SELECT index_name FROM duckdb_indexes()").fetchall()
        }
    finally:
        con.close()
    assert made and made <= found


COPIED = ("accounts", "grants", "holds", "journal", "idempotency_keys")


def test_one_rule_per_check_keeps_every_row_of_an_older_ledger(db_path, tmp_path, clock):
    source = str(tmp_path / "source.duckdb")
    with Ledger.open(source, clock=clock) as ledger:  # every kind of hold and grant
        funded(ledger, "u_1", 500)
        funded(ledger, "u_2", 300, kind="promo", expires_at=clock.now + timedelta(minutes=30))
        captured = ledger.reserve("u_1", 100, idempotency_key="k-1")
        ledger.confirm(captured.transaction_id, success=True, credits=70)
        ledger.confirm(ledger.reserve("u_2", 50).transaction_id, success=False)
        pending = ledger.reserve("u_1", 30, ttl=timedelta(hours=2))
        clock.advance(hours=1)
        ledger.expire_grants()
    con = duckdb.connect(db_path)  # the same rows in a file from before the split
    try:
        migrate(con, NOW, target=ONE_RULE_PER_CHECK.version - 1)
        con.execute(f"ATTACH '{source}' AS source (READ_ONLY)")
        for table in COPIED:
            con.execute(f"INSERT INTO {table} SELECT * FROM source.{table}")
        before = {table: rows(con, table) for table in COPIED}
        compound = con.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE constraint_text LIKE '% AND %'"
        ).fetchone()
        assert compound == (3,)  # accounts, grants and holds: one CHECK of several rules each
    finally:
        con.close()
    with Ledger.open(db_path, clock=clock) as ledger:
        assert {t: sql(ledger, f"SELECT * FROM {t} ORDER BY ALL") for t in COPIED} == before
        assert ledger.check_invariants() == []
        assert ledger.confirm(pending.transaction_id, success=True).captured == 30
        with pytest.raises(duckdb.ConstraintException, match=r"CHECK\(\(remaining >= 0\)\)$"):
            sql(ledger, "UPDATE grants SET remaining = -1")
    assert versions(db_path)[-1] == LATEST


def rows(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
