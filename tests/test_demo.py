"""The demo database: realistic, deterministic, built through the ledger's bulk API."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb
import pandas as pd
import pytest

from credits_core.demo import DemoSpec, build
from credits_core.ledger import Ledger
from credits_core.plans import Plans
from credits_core.pricing import PriceBook

SPEC = DemoSpec(users=300, days=40, seed=11, end=datetime(2026, 11, 24, tzinfo=UTC))


@pytest.fixture(scope="module")
def demo(demo_databases):
    """The demo ledger, built once per run (tests/conftest.py), and what build reported."""
    return demo_databases.pristine(SPEC), demo_databases.report(SPEC)


def journal_summary(path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "SELECT kind::VARCHAR, count(*), sum(credits), sum(balance_after) "
            "FROM journal GROUP BY ALL ORDER BY 1"
        ).fetchall()


def test_demo_ledger_is_sound_and_has_every_kind_of_activity(demo):
    path, report = demo
    with Ledger.open(path, read_only=True) as ledger:
        assert ledger.check_invariants() == []
    kinds = {kind for kind, *_ in journal_summary(path)}
    assert {"grant", "capture", "release", "grant_expired", "adjust", "refund", "reserve"} <= kinds
    assert report.accounts == 300
    assert 0.02 < report.released / report.events < 0.08  # about 5% failed generations
    assert report.open_alerts > 0  # users near zero are in alert, as on a live platform


def test_demo_has_plans_and_users_near_zero(demo):
    path, _ = demo
    with duckdb.connect(str(path), read_only=True) as con:
        plans = {plan for (plan,) in con.execute("SELECT DISTINCT plan FROM accounts").fetchall()}
        (near_zero,) = con.execute(
            "SELECT count(*) FROM accounts WHERE total - held < 100"
        ).fetchone()
        (expiries,) = con.execute(
            "SELECT count(*) FROM grants WHERE kind = 'plan' AND expires_at IS NOT NULL"
        ).fetchone()
        (topups,) = con.execute(
            "SELECT count(*) FROM grants WHERE kind = 'topup' AND expires_at IS NULL"
        ).fetchone()
    assert plans == {"free", "standard", "pro", "business"}
    assert near_zero > 0 and expiries > 0 and topups > 0


def test_demo_is_deterministic(demo, tmp_path):
    path, report = demo
    again = tmp_path / "again.duckdb"
    second = build(again, SPEC)
    assert (second.events, second.captured, second.rejected) == (
        report.events,
        report.captured,
        report.rejected,
    )
    assert journal_summary(again) == journal_summary(path)


def test_plans_are_priced_by_the_price_book():
    assert set(Plans.load().plans) == set(PriceBook.load().plans())


def test_each_generation_keeps_options_that_reprice_to_what_it_cost(demo):
    path, _ = demo
    with duckdb.connect(str(path), read_only=True) as con:
        usage = con.execute(
            """
            SELECT j.model, j.metadata ->> '$.options' AS options, a.plan, j.ts,
                   -j.credits AS credits
            FROM journal AS j JOIN accounts AS a USING (user_id)
            WHERE j.kind = 'capture' AND j.transaction_id LIKE 'use-%'
            """
        ).df()
    hailuo = usage[usage["model"] == "MiniMax-Hailuo-02"]
    assert hailuo["options"].notna().all() and hailuo["options"].nunique() == 3
    options = usage["options"].map(lambda text: json.loads(text) if isinstance(text, str) else {})
    requests = pd.concat(
        [usage[["model", "plan"]], pd.DataFrame(options.tolist(), index=usage.index)], axis=1
    ).assign(at=usage["ts"])
    priced = PriceBook.load().quote_frame(requests)
    assert priced["error"].isna().all()
    assert (priced["credits"] == usage["credits"]).all()
