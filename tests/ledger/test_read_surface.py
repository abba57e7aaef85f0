"""The ledger's read surface (schema migration 8): what alerts, exports, the simulator and
the SQL console read instead of the ledger's tables. On a real file it gives the answers
the queries on the tables gave, at the instant a grant expires too, an older file gets it
with the same balances, and nothing outside the ledger reads the tables themselves."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from credits_core.export.sql_console import EXAMPLES
from credits_core.ledger import Ledger
from credits_core.ledger.marks import COLUMNS
from credits_core.ledger.schema import ACCOUNT_BALANCES, migrate
from tests.ledger.support import START, FakeClock, funded

EXPIRY = START + timedelta(days=1)
TICK = timedelta(microseconds=1)  # DuckDB's resolution
INSTANTS = (START, EXPIRY - TICK, EXPIRY, EXPIRY + TICK, EXPIRY + timedelta(days=2))

# The queries on the tables that the surface replaced: alerts' grants still spendable
# (remaining > 0, not booked out, expiring after now) and migration 6's balances.
TABLE_SPENDABLE = """
SELECT grant_id, user_id, remaining FROM grants
WHERE remaining > 0 AND expired_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
ORDER BY grant_id
"""
SURFACE_SPENDABLE = "SELECT grant_id, user_id, remaining FROM spendable_grants(?) ORDER BY grant_id"
TABLE_LIVE = "(expires_at IS NULL OR expires_at > ?) AND expired_at IS NULL"  # migration 6
BALANCES_6 = ACCOUNT_BALANCES.statements[0].replace(
    "CREATE MACRO account_balances(", "CREATE OR REPLACE TEMP MACRO balances_6("
)
MIRRORS = {"accounts": "ledger_accounts", "journal": "ledger_journal",
           "grants": "ledger_grants", "holds": "ledger_holds"}  # fmt: skip
# The ledger's own bookkeeping, not data: an account's recent history marks (marks.py).
INTERNAL = {name for pair in COLUMNS for name in pair}


@pytest.fixture
def on_file(db_path: str, clock: FakeClock) -> Iterator[Ledger]:
    with Ledger.open(db_path, clock=clock) as opened:
        yield opened


def lapsing(ledger: Ledger) -> None:
    """u_1: 500 that never expire, a promo of 300 expiring at EXPIRY (burns first, 100
    of it held), a top-up of 200 expiring a day later; u_2: 50 without expiry; u_3: no
    credits at all."""
    funded(ledger, "u_1", credits=500)
    ledger.grant("u_1", 300, kind="promo", expires_at=EXPIRY)
    ledger.grant("u_1", 200, kind="topup", expires_at=EXPIRY + timedelta(days=1))
    ledger.reserve("u_1", 100)
    funded(ledger, "u_2", credits=50)
    ledger.create_account("u_3")


def rows(ledger: Ledger, sql: str, params: list | None = None) -> list[tuple]:
    return ledger.snapshot(lambda cur: cur.execute(sql, params or []).fetchall())


def test_a_grant_is_spendable_until_the_instant_it_expires(on_file):
    lapsing(on_file)
    promo = next(g.grant_id for g in on_file.grants("u_1") if g.kind == "promo")
    for at in INSTANTS:
        spendable = rows(on_file, SURFACE_SPENDABLE, [at])
        assert spendable == rows(on_file, TABLE_SPENDABLE, [at]), at
        by_rule = sorted(
            (g.grant_id, g.user_id, g.remaining)
            for user in ("u_1", "u_2")
            for g in on_file.grants(user)
            if g.remaining > 0 and g.is_live(at)
        )
        assert spendable == by_rule, at
        assert (promo in {grant_id for grant_id, _, _ in spendable}) == (at < EXPIRY), at


def test_a_grant_booked_out_is_never_live_again(on_file, clock):
    lapsing(on_file)
    promo = next(g.grant_id for g in on_file.grants("u_1") if g.kind == "promo")
    clock.now = EXPIRY + timedelta(hours=1)
    assert on_file.expire_grants().count == 1  # the promo
    live = "SELECT grant_id, grant_is_live(expires_at, expired_at, ?) FROM grants ORDER BY 1"
    table = f"SELECT grant_id, {TABLE_LIVE} FROM grants ORDER BY 1"
    for at in (*INSTANTS, EXPIRY - timedelta(hours=1)):  # before the expiry it was booked at
        answers = rows(on_file, live, [at])
        assert answers == rows(on_file, table, [at]), at
        assert dict(answers)[promo] is False, at


def test_balances_are_migration_6s_at_every_instant(on_file, clock):
    lapsing(on_file)
    cur = on_file.cursor()  # the temporary macro lives on this cursor
    try:
        cur.execute(BALANCES_6)
        for at in INSTANTS:
            clock.now = max(clock.now, at)
            if at > EXPIRY:
                on_file.expire_grants()
            by_6 = cur.execute("SELECT * FROM balances_6(?) ORDER BY ALL", [at]).fetchall()
            assert balances(cur, at) == by_6, at
    finally:
        cur.close()


def test_the_promos_credits_leave_available_at_the_instant_it_expires(on_file):
    lapsing(on_file)
    sql = "SELECT available, lapsed FROM account_balances(?) WHERE user_id = 'u_1'"
    assert rows(on_file, sql, [EXPIRY - TICK]) == [(900, 0)]  # 1000 - 100 held
    assert rows(on_file, sql, [EXPIRY]) == [(700, 200)]  # the promo's 200 left lapse


def every_kind_of_entry(ledger: Ledger, clock: FakeClock) -> None:
    """Grants, captures, a release, an expired hold, booked usage, a refund, an
    adjustment and a grant booked out: every table has rows of every kind."""
    lapsing(ledger)
    music = {"model": "Music 1.5", "options": {}}
    captured = ledger.reserve("u_2", 20, metadata=music)
    ledger.confirm(captured.transaction_id, success=True)
    ledger.confirm(ledger.reserve("u_2", 10).transaction_id, success=False)
    ledger.refund(captured.transaction_id, reason="failed output", actor="agent@example.com")
    ledger.adjust("u_2", 7, reason="goodwill", actor="agent@example.com")
    usage = pd.DataFrame({"user_id": ["u_1", "u_2"], "credits": [30, 5],
                          "ts": [pd.Timestamp(START)] * 2, "success": [True, False],
                          "model": ["Music 1.5"] * 2})  # fmt: skip
    ledger.apply_usage(usage)
    clock.now = EXPIRY + timedelta(hours=1)
    ledger.expire_holds()
    ledger.expire_grants()


def test_the_ledger_views_give_the_tables_rows_and_columns(on_file, clock):
    every_kind_of_entry(on_file, clock)
    kinds = {kind for (kind,) in rows(on_file, "SELECT DISTINCT kind::VARCHAR FROM journal")}
    assert kinds >= {"grant", "reserve", "capture", "release", "expire", "grant_expired",
                     "adjust", "refund"}  # fmt: skip
    for table, view in MIRRORS.items():
        columns = [c for c in rows(on_file, f"DESCRIBE {table}") if c[0] not in INTERNAL]
        assert rows(on_file, f"DESCRIBE {view}") == columns
        names = ", ".join(c[0] for c in columns)
        everything = rows(on_file, f"SELECT {names} FROM {table} ORDER BY ALL")
        assert len(everything) >= 3, table
        assert rows(on_file, f"SELECT * FROM {view} ORDER BY ALL") == everything, table


def test_an_older_ledger_gets_the_surface_with_the_same_balances(db_path):
    con = duckdb.connect(db_path)
    try:
        migrate(con, START, target=6)
        con.execute("INSERT INTO accounts VALUES ('u_1', 1, NULL, 'pro', ?, 800, 0, 2)", [START])
        for grant_id, credits, expires_at, seq in (("grant-1-1", 500, None, 1),
                                                   ("grant-1-2", 300, EXPIRY, 2)):  # fmt: skip
            con.execute(
                "INSERT INTO grants (grant_id, user_id, kind, credits, remaining, priority,"
                " expires_at, created_at, grant_seq, transaction_id) "
                "VALUES (?, 'u_1', 'plan', ?, ?, 20, ?, ?, ?, ?)",
                [grant_id, credits, credits, expires_at, START, seq, grant_id],
            )
        before = [balances(con, at) for at in INSTANTS]
    finally:
        con.close()
    with Ledger.open(db_path, clock=FakeClock(START)) as ledger:
        after = [ledger.snapshot(lambda cur, at=at: balances(cur, at)) for at in INSTANTS]
        assert rows(ledger, SURFACE_SPENDABLE, [EXPIRY]) == [("grant-1-1", "u_1", 500)]
    assert after == before
    assert [available for ((*_, available, _lapsed),) in before] == [800, 800, 500, 500, 500]


def balances(cur: duckdb.DuckDBPyConnection, at: datetime) -> list[tuple]:
    return cur.execute("SELECT * FROM account_balances(?) ORDER BY ALL", [at]).fetchall()


# ------------------------------------------------------------------ who reads the tables

READERS = ("alerts", "export", "simulation")
CORE = Path(__file__).resolve().parents[2] / "credits_core"
TABLE_READ = re.compile(r"\b(FROM|JOIN|INTO|UPDATE|TABLE)\s+(accounts|grants|holds|journal)\b")


def test_alerts_exports_and_the_simulator_read_only_the_surface():
    """Their SQL names the read surface, never a ledger table (the SQL console's saved
    examples run on its own snapshot, whose tables are copies made from the surface)."""
    modules = sorted(path for package in READERS for path in (CORE / package).glob("*.py"))
    assert len(modules) > 15
    for path in modules:
        text = path.read_text(encoding="utf-8")
        for example in EXAMPLES.values():
            text = text.replace(example, "")
        assert TABLE_READ.findall(text) == [], path.relative_to(CORE)
