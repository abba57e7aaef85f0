"""Bulk writes (ledger/bulk/): apply_usage, grant_many and create_accounts."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from credits_core.ledger import InvalidBatch, Ledger, TransactionClosed, WriteFailed, bulk
from credits_core.ledger.bulk import OUTCOMES, frames
from tests.ledger.support import START, FakeClock, funded, journal, sql, unchanged


def events(rows: list[tuple], **extra) -> pd.DataFrame:
    """(user_id, credits, minutes after START, success) rows as a usage frame."""
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "credits": np.array([r[1] for r in rows], dtype=np.int64),
            "ts": pd.to_datetime([START + timedelta(minutes=r[2]) for r in rows], utc=True),
            "success": [r[3] for r in rows],
            **extra,
        }
    )


def outcome(frame: pd.DataFrame) -> list[tuple[str, int]]:
    return [(str(s), int(c)) for s, c in zip(frame["status"], frame["credits"], strict=True)]


# --------------------------------------------------------------------------- apply_usage


def test_apply_usage_books_each_event_and_reports_it(ledger, clock):
    funded(ledger, "u_1", 100)
    clock.advance(hours=1)
    out = ledger.apply_usage(
        events(
            [
                ("u_1", 60, 1, True),
                ("u_1", 50, 2, True),  # 40 left: does not fit
                ("u_1", 30, 3, False),  # a failed generation still had to fit
                ("u_nobody", 5, 4, True),
                ("u_1", 40, 5, True),
            ]
        )
    )
    assert outcome(out) == [
        ("captured", 60),
        ("rejected_insufficient", 0),
        ("released", 0),
        ("unknown_account", 0),
        ("captured", 40),
    ]
    assert list(out["status"].cat.categories) == list(OUTCOMES)
    booked = out["transaction_id"].dropna().tolist()
    assert len(booked) == 3 and all(tx.startswith("use-1-") for tx in booked)
    assert out["transaction_id"].isna().tolist() == [False, True, False, True, False]
    assert tuple(ledger.balance("u_1")) == (0, 0, 0)
    assert ledger.check_invariants() == []


def test_events_are_taken_in_time_order_not_row_order(ledger):
    funded(ledger, "u_1", 100)
    out = ledger.apply_usage(events([("u_1", 80, 9, True), ("u_1", 30, 1, True)]))
    assert outcome(out) == [("rejected_insufficient", 0), ("captured", 30)]


def test_a_rejected_event_does_not_block_smaller_ones_after_it(ledger):
    funded(ledger, "u_1", 100)
    out = ledger.apply_usage(
        events(
            [("u_1", 70, 1, True), ("u_1", 50, 2, True), ("u_1", 20, 3, True), ("u_1", 20, 4, True)]
        )
    )
    assert outcome(out) == [
        ("captured", 70),
        ("rejected_insufficient", 0),
        ("captured", 20),
        ("rejected_insufficient", 0),
    ]


def test_the_outcome_keeps_the_frames_index(ledger):
    funded(ledger, "u_1", 100)
    frame = events([("u_1", 10, 1, True), ("u_1", 10, 2, True)]).set_axis(["job-a", "job-b"])
    assert list(ledger.apply_usage(frame).index) == ["job-a", "job-b"]


def test_bulk_spends_grants_in_burn_order_and_skips_lapsed_ones(ledger, clock):
    ledger.create_account("u_1")
    lapsing = ledger.grant("u_1", 100, kind="promo", expires_at=clock.now + timedelta(minutes=5))
    plan = ledger.grant("u_1", 100, kind="plan")
    topup = ledger.grant("u_1", 100, kind="topup")
    clock.advance(minutes=10)
    out = ledger.apply_usage(events([("u_1", 150, 1, True), ("u_1", 60, 2, True)]))
    assert outcome(out) == [("captured", 150), ("rejected_insufficient", 0)]
    left = {g.grant_id: g.remaining for g in ledger.grants("u_1")}
    assert left == {lapsing.grant_id: 100, plan.grant_id: 0, topup.grant_id: 50}
    assert tuple(ledger.balance("u_1")) == (50, 0, 50)
    ledger.expire_grants()
    assert ledger.check_invariants() == []


def build(seed: int) -> tuple[Ledger, Ledger, pd.DataFrame, FakeClock]:
    """Two identical ledgers with a few users and grants, and a random usage frame."""
    rng = np.random.default_rng(seed)
    clock = FakeClock()
    ledgers = [Ledger.open(":memory:", clock=clock) for _ in range(2)]
    users = [f"u_{i}" for i in range(5)]
    for ledger in ledgers:
        for user in users:
            ledger.create_account(user)
        for user in users:
            for kind in ("promo", "plan", "topup"):
                expiry = [None, START + timedelta(days=int(rng.integers(1, 9)))][
                    int(rng.integers(0, 2))
                ]
                ledger.grant(user, int(rng.integers(1, 300)), kind=kind, expires_at=expiry)
        rng = np.random.default_rng(seed)  # the same grants for the second ledger
    n = 120
    frame = pd.DataFrame(
        {
            "user_id": np.array([*users, "u_x"], dtype=object)[rng.integers(0, 6, n)],
            "credits": rng.integers(1, 90, n),
            "ts": pd.Timestamp(START) + pd.to_timedelta(rng.integers(0, 50, n), unit="s"),
            "success": rng.random(n) < 0.8,
        }
    )
    clock.advance(days=4)  # some grants have lapsed
    return ledgers[0], ledgers[1], frame, clock


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bulk_matches_booking_the_events_one_by_one(seed):
    bulk, single, frame, _ = build(seed)
    out = bulk.apply_usage(frame)
    expected = []
    for i in sorted(range(len(frame)), key=lambda i: (frame["ts"].iloc[i], i)):
        user, credits, ok = (
            frame["user_id"].iloc[i],
            int(frame["credits"].iloc[i]),
            frame["success"].iloc[i],
        )
        if user == "u_x":
            expected.append((i, "unknown_account", 0))
            continue
        try:
            hold = single.reserve(user, credits)
        except Exception:
            expected.append((i, "rejected_insufficient", 0))
            continue
        single.confirm(hold.transaction_id, success=bool(ok))
        expected.append((i, "captured" if ok else "released", credits if ok else 0))
    assert sorted(expected) == [(i, *row) for i, row in enumerate(outcome(out))]
    for user in (f"u_{i}" for i in range(5)):
        assert bulk.balance(user) == single.balance(user)
        assert [g.remaining for g in bulk.grants(user)] == [
            g.remaining for g in single.grants(user)
        ]
    assert bulk.check_invariants() == []


def test_reimporting_with_transaction_ids_books_nothing_twice(ledger):
    funded(ledger, "u_1", 100)
    frame = events([("u_1", 10, 1, True), ("u_1", 20, 2, False)], transaction_id=["gen-1", "gen-2"])
    first = ledger.apply_usage(frame)
    assert outcome(first) == [("captured", 10), ("released", 0)]
    assert list(first["transaction_id"]) == ["gen-1", "gen-2"]
    with unchanged(ledger):
        again = ledger.apply_usage(frame)
    assert outcome(again) == [("duplicate", 0), ("duplicate", 0)]
    mixed = events([("u_1", 10, 1, True), ("u_1", 5, 3, True)], transaction_id=["gen-1", "gen-3"])
    assert outcome(ledger.apply_usage(mixed)) == [("duplicate", 0), ("captured", 5)]
    assert ledger.balance("u_1").total == 85


def test_generated_ids_can_be_reimported_and_refunded(ledger):
    funded(ledger, "u_1", 100)
    booked = ledger.apply_usage(events([("u_1", 30, 1, True)]))["transaction_id"].iloc[0]
    again = events([("u_1", 30, 1, True)], transaction_id=[booked])
    assert outcome(ledger.apply_usage(again)) == [("duplicate", 0)]
    with pytest.raises(TransactionClosed, match="apply_usage"):
        ledger.confirm(booked, success=True)
    assert ledger.refund(booked, reason="bad render", actor="support@corp").credits == 30
    assert ledger.balance("u_1").total == 100


def test_new_ids_in_the_ledgers_own_form_are_refused(ledger):
    funded(ledger, "u_1", 100)
    with unchanged(ledger), pytest.raises(InvalidBatch, match="form of ids the ledger makes"):
        ledger.apply_usage(events([("u_1", 5, 1, True)], transaction_id=["use-1-99"]))


def test_model_and_options_are_journaled(ledger):
    funded(ledger, "u_1", 100)
    ledger.apply_usage(
        events(
            [("u_1", 5, 1, True), ("u_1", 6, 2, True)],
            model=["Gen-4 Turbo", None],
            options=[{"duration": 10}, '{"count": 2}'],
        )
    )
    entries = ledger.history("u_1", kinds=["capture"])
    assert entries["model"].iloc[1] == "Gen-4 Turbo"
    assert list(entries["metadata"]) == [{"options": {"count": 2}}, {"options": {"duration": 10}}]


def with_columns(table: pa.Table, columns: dict[str, pa.Array]) -> pa.Table:
    """The table with these columns set: replaced where it has them, else added."""
    for name, values in columns.items():
        at = table.schema.get_field_index(name)
        table = table.append_column(name, values) if at < 0 else table.set_column(at, name, values)
    return table


def test_a_usage_record_logged_with_its_balances_writes_the_same_journal(tmp_path, clock):
    """A usage record logged before the applier derived the balances held each row's
    balance_after and held_after, and every optional column even when empty. Replayed,
    such a record writes the same journal: the balances come from the account's row,
    not from the record (made wrong here, they are not read)."""
    frame = events([("u_1", 30, 1, True), ("u_1", 20, 2, False), ("u_2", 10, 3, True)])
    written = []
    for old in (False, True):
        with Ledger.open(str(tmp_path / f"{old}.duckdb"), clock=clock) as ledger:
            funded(ledger, "u_1", 100)
            funded(ledger, "u_2", 100)
            ledger.reserve("u_1", 5)  # held credits: each row's held_after
            usage = bulk.check_usage(frame, clock())
            cur = ledger.cursor()
            try:
                cur.execute("BEGIN")
                _, booked = bulk.decide_usage(cur, clock(), usage, reason="usage", actor="ops")
                if old:
                    count = booked.rows.num_rows
                    rows = with_columns(booked.rows, {
                        "balance_after": pa.array([-1] * count, pa.int64()),
                        "held_after": pa.array([-1] * count, pa.int64()),
                        **{name: pa.nulls(count, pa.string())
                           for name in ("transaction_id", "model", "metadata")},
                    })  # fmt: skip
                    booked = dataclasses.replace(booked, rows=rows)
                bulk.write_usage(cur, booked)
                cur.execute("COMMIT")
            finally:
                cur.close()
            written.append(journal(ledger))
            assert ledger.check_invariants() == []
    assert written[0] == written[1]
    booked = [row for row in written[1] if row[2] == "u_1"][-2:]  # 100 held 5, spent 30
    assert [(row[4], row[7], row[8]) for row in booked] == [("capture", 70, 5), ("release", 70, 5)]


def test_repeated_json_options_are_normalised_and_each_bad_row_is_named(ledger):
    funded(ledger, "u_1", 100)
    sku = '{"resolution": "768P", "duration": 6}'
    rows = [("u_1", 1, second, True) for second in range(5)]
    with unchanged(ledger), pytest.raises(InvalidBatch) as info:
        ledger.apply_usage(events(rows, options=[sku, "[1]", None, sku, "not json"]))
    assert [row for row, _ in info.value.problems] == [1, 4]
    ledger.apply_usage(events(rows, options=[sku, sku, None, sku, sku]))
    metadata = ledger.history("u_1", kinds=["capture"])["metadata"]
    assert (
        metadata.tolist()
        == [{"options": {"duration": 6, "resolution": "768P"}}] * 2
        + [None]
        + [{"options": {"duration": 6, "resolution": "768P"}}] * 2
    )


def test_an_arrow_table_is_accepted(ledger):
    funded(ledger, "u_1", 100)
    out = ledger.apply_usage(pa.Table.from_pandas(events([("u_1", 5, 1, True)])))
    assert outcome(out) == [("captured", 5)]


def test_an_empty_frame_books_nothing(ledger):
    funded(ledger, "u_1", 100)
    with unchanged(ledger):
        assert ledger.apply_usage(events([])).empty


BAD_FRAMES = {
    "missing column": (lambda f: f.drop(columns="success"), "missing ['success']"),
    "unknown column": (lambda f: f.assign(provider="x"), "unknown ['provider']"),
    "float credits": (lambda f: f.assign(credits=f["credits"] * 1.0), "integer column"),
    "zero credits": (lambda f: f.assign(credits=[5, 0]), "row 1: credits must be from 1"),
    "naive times": (lambda f: f.assign(ts=f["ts"].dt.tz_localize(None)), "timezone-aware"),
    "missing user": (lambda f: f.assign(user_id=["u_1", None]), "row 1: user_id"),
    "text success": (lambda f: f.assign(success=["yes", "no"]), "bool column"),
    "repeated id": (lambda f: f.assign(transaction_id=["a", "a"]), "more than once"),
    "bad options": (lambda f: f.assign(options=[{"a": {1, 2}}, None]), "row 0"),
}


@pytest.mark.parametrize("case", BAD_FRAMES)
def test_a_bad_frame_is_refused_whole_naming_its_rows(ledger, case):
    funded(ledger, "u_1", 100)
    change, message = BAD_FRAMES[case]
    frame = change(events([("u_1", 5, 1, True), ("u_1", 6, 2, True)]))
    with unchanged(ledger), pytest.raises(InvalidBatch, match="Nothing was written") as info:
        ledger.apply_usage(frame)
    assert message in str(info.value)


def test_a_frame_over_the_most_events_per_call_is_refused_whole(ledger, monkeypatch):
    funded(ledger, "u_1", 100)
    monkeypatch.setattr(frames, "MAX_USAGE_EVENTS", 2)  # the rule, without 10M rows
    frame = events([("u_1", 5, 1, True), ("u_1", 6, 2, True), ("u_1", 7, 3, True)])
    with unchanged(ledger), pytest.raises(InvalidBatch, match="at most 2 events per call, not 3"):
        ledger.apply_usage(frame)
    assert outcome(ledger.apply_usage(frame[:2])) == [("captured", 5), ("captured", 6)]


def test_apply_usage_needs_a_frame(ledger):
    with pytest.raises(InvalidBatch, match="takes a pandas DataFrame"):
        ledger.apply_usage([("u_1", 5)])


# --------------------------------------------------------------------------- grant_many


def test_grant_many_writes_every_grant(ledger, clock):
    for user in ("u_1", "u_2"):
        ledger.create_account(user)
    out = ledger.grant_many(
        pd.DataFrame(
            {
                "user_id": ["u_1", "u_2", "u_1"],
                "credits": [100, 200, 5],
                "kind": ["plan", "topup", "promo"],
                "expires_at": [clock.now + timedelta(days=30), None, None],
                "reason": ["monthly plan", None, "welcome"],
            }
        )
    )
    assert list(out["grant_id"]) == ["grant-1-1", "grant-2-1", "grant-1-2"]
    assert list(out["priority"]) == [20, 30, 10]
    assert tuple(ledger.balance("u_1")) == (105, 0, 105)
    assert tuple(ledger.balance("u_2")) == (200, 0, 200)
    plan = ledger.grants("u_1")[1]
    assert (plan.kind, plan.expires_at, plan.reason) == (
        "plan",
        clock.now + timedelta(days=30),
        "monthly plan",
    )
    assert ledger.check_invariants() == []


def test_grant_many_writes_nothing_when_any_row_is_bad(ledger, clock):
    ledger.create_account("u_1")
    frame = pd.DataFrame(
        {
            "user_id": ["u_1", "u_404", "u_1", "u_1"],
            "credits": [100, 5, 0, 7],
            "kind": ["plan", "plan", "plan", "gift"],
        }
    )
    with unchanged(ledger), pytest.raises(InvalidBatch) as info:
        ledger.grant_many(frame)
    message = str(info.value)
    assert "row 2: credits must be from 1" in message and "row 3: kind must be one of" in message
    with unchanged(ledger), pytest.raises(InvalidBatch, match="row 1: no account for user 'u_404'"):
        ledger.grant_many(frame.iloc[:2])


def test_grant_many_refuses_bad_priorities_and_past_expiries(ledger, clock):
    ledger.create_account("u_1")
    frame = pd.DataFrame(
        {
            "user_id": ["u_1", "u_1"],
            "credits": [1, 1],
            "kind": ["plan", "plan"],
            "expires_at": [clock.now, clock.now + timedelta(days=1)],
            "priority": [1, -3],
        }
    )
    with unchanged(ledger), pytest.raises(InvalidBatch, match="row 1: priority must be an int"):
        ledger.grant_many(frame)
    with unchanged(ledger), pytest.raises(InvalidBatch, match="row 0: expires_at is not in the"):
        ledger.grant_many(frame.assign(priority=[1, 3]))


# --------------------------------------------------------------------------- accounts


def test_create_accounts_opens_all_or_none(ledger):
    assert ledger.create_accounts(pd.DataFrame({"user_id": ["a", "b"], "plan": ["pro", None]})) == 2
    assert ledger.account("a").plan == "pro"
    with unchanged(ledger), pytest.raises(InvalidBatch, match="row 1: an account with this"):
        ledger.create_accounts(pd.DataFrame({"user_id": ["c", "a"]}))
    with unchanged(ledger), pytest.raises(InvalidBatch, match="more than once"):
        ledger.create_accounts(pd.DataFrame({"user_id": ["d", "d"]}))


def test_usage_that_would_leave_less_than_the_held_credits_writes_nothing(ledger, clock):
    """A balance row that disagrees with the grants (tampered: 480 held, but the grants
    still hold 500 free) would make entries whose balance is below what is held: the
    ledger's own assertion refuses the whole batch."""
    funded(ledger, "u_1", 500)
    sql(ledger, "UPDATE accounts SET held = 480 WHERE user_id = 'u_1'")
    clock.advance(hours=1)
    with unchanged(ledger), pytest.raises(WriteFailed, match="spends held credits"):
        ledger.apply_usage(events([("u_1", 100, 5, True)]))
