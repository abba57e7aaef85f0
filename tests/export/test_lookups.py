"""What the relation's lookups must cover beyond the small ledger: usage without a model or
with a model the price book does not know, options the book cannot price, an account
without a plan, a journal entry whose account is missing, and preparing twice."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from credits_core.export import UsageQuery, preview, usage_export, write
from credits_core.ledger import Ledger
from tests.export.test_formats import read_back, relation

START = datetime(2026, 11, 2, tzinfo=UTC)
ODD_USAGE = [  # model, options, credits, success
    (None, None, 50, False),  # a failure without a model: what it reserved is in metadata
    (None, None, 40, True),
    ("Mystery 9000", None, 30, True),  # not in the price book
    ("Mystery 9000", '{"speed":"warp"}', 35, False),
    ("MiniMax-Hailuo-02", '{"resolution":"768P","duration":6}', 612, True),
    ("MiniMax-Hailuo-02", '{"resolution":"4K","duration":6}', 700, True),  # unpriceable
    ("FLUX.1 [dev]", None, 90, True),  # no options: priced by the SKU for its plan
]


@pytest.fixture(scope="module")
def odd_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("export-odd") / "odd.duckdb"
    with Ledger.open(path, clock=lambda: START + timedelta(days=1)) as ledger:
        for user, plan in [("u_odd", None), ("u_std", "standard")]:
            ledger.create_account(user, plan=plan)
            ledger.grant(user, 10_000, kind="topup")
        rows = [
            {"user_id": user, "ts": START + timedelta(minutes=i), "model": model,
             "options": options, "credits": credits, "success": success}
            for user in ("u_odd", "u_std")
            for i, (model, options, credits, success) in enumerate(ODD_USAGE)
        ]  # fmt: skip
        outcome = ledger.apply_usage(pd.DataFrame(rows))
        assert set(outcome["status"]) == {"captured", "released"}
    return path


def text(value: object) -> str | None:
    """A text cell as pandas gives it back, missing as None."""
    return None if pd.isna(value) else value


def events_of(path: Path, book, **query) -> pd.DataFrame:
    with Ledger.open(path, read_only=True) as ledger:
        return preview(ledger, usage_export(UsageQuery(**query), book), limit=1000).rows


def test_usage_without_a_model_or_unknown_to_the_book_is_exported_as_recorded(odd_db, book):
    events = events_of(odd_db, book, kinds=["capture", "release"], users=["u_odd"])
    assert len(events) == len(ODD_USAGE)
    rows = {(text(row.model), row.credits_reserved): row for row in events.itertuples()}
    failed = rows[(None, 50)]
    assert failed.kind == "release" and failed.failed and failed.credits_spent == 0
    assert text(failed.provider) is None
    assert failed.provider_cost_usd != failed.provider_cost_usd  # NaN: no known cost
    assert rows[(None, 40)].kind == "capture" and rows[(None, 40)].credits_spent == 40
    mystery = rows[("Mystery 9000", 30)]
    assert (text(mystery.provider), text(mystery.modality)) == (None, None)
    assert mystery.provider_cost_usd != mystery.provider_cost_usd  # NaN: no known cost
    assert rows[("Mystery 9000", 35)].failed
    hailuo = rows[("MiniMax-Hailuo-02", 612)]
    assert (hailuo.provider, hailuo.modality, hailuo.provider_cost_usd) == (
        "MiniMax", "video", 0.28
    )  # fmt: skip
    unpriceable = rows[("MiniMax-Hailuo-02", 700)]
    assert unpriceable.provider_cost_usd != unpriceable.provider_cost_usd
    assert rows[("FLUX.1 [dev]", 90)].provider_cost_usd == 0.025  # no plan: the plain SKU


def test_the_same_usage_for_a_user_with_a_plan(odd_db, book):
    everyone = events_of(odd_db, book, kinds=["capture", "release"])
    standard = everyone[everyone["user_id"] == "u_std"]
    assert set(standard["plan"]) == {"standard"}
    assert set(everyone.loc[everyone["user_id"] == "u_odd", "plan"].isna()) == {True}
    by_user = events_of(odd_db, book, kinds=["capture", "release"], users=["u_std"])
    columns = ["transaction_id", "model", "provider", "credits_reserved", "provider_cost_usd"]
    assert (
        standard.sort_values("transaction_id")[columns]
        .reset_index(drop=True)
        .equals(by_user.sort_values("transaction_id")[columns].reset_index(drop=True))
    )


@pytest.mark.parametrize("group_by", [(), ("model", "plan"), ("user", "provider")])
def test_odd_usage_round_trips_through_parquet(odd_db, book, tmp_path, group_by):
    with Ledger.open(odd_db, read_only=True) as ledger:
        export = usage_export(UsageQuery(group_by=group_by), book)
        written = write(ledger, export, "parquet", tmp_path / "odd.parquet")
        expected_rows, expected_types = relation(ledger, export)
    rows, types = read_back(written.path, "parquet")
    assert (rows, types) == (expected_rows, expected_types)
    names = [name for name, _ in types]
    if "model" in names:
        models = {row[names.index("model")] for row in rows}
        assert {None, "Mystery 9000", "FLUX.1 [dev]"} <= models


def test_an_entry_whose_account_is_missing_is_still_exported(small_db, book, tmp_path):
    """A sound ledger has an account for every journal entry (check_invariants says so);
    the export keeps such entries all the same, without a plan."""
    broken = tmp_path / "broken.duckdb"
    shutil.copy(small_db, broken)
    with duckdb.connect(str(broken)) as con:
        con.execute("DELETE FROM accounts WHERE user_id = 'u_none'")
    everything = events_of(small_db, book)
    still = events_of(broken, book)
    assert len(still) == len(everything) == 17
    lost = still[still["user_id"] == "u_none"]
    assert len(lost) == 4 and lost["plan"].isna().all()
    kept = everything[everything["user_id"] == "u_none"]
    columns = ["transaction_id", "model", "credits_spent", "provider_cost_usd"]
    assert (
        lost.sort_values("transaction_id")[columns]
        .reset_index(drop=True)
        .equals(kept.sort_values("transaction_id")[columns].reset_index(drop=True))
    )


def test_preparing_twice_on_one_cursor_gives_the_same_relation(small, book):
    export = usage_export(UsageQuery(group_by=["model"]), book)

    def work(cur):
        export.prepare(cur)
        sql, params = export.sql()
        first = cur.execute(sql, params).fetchall()
        export.prepare(cur)
        return first, cur.execute(sql, params).fetchall()

    first, second = small._store.read(work)
    assert first == second and len(first) == 7
