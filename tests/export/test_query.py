"""Filters and group-bys against numbers worked out by hand on the small ledger
(tests/export/conftest.py), and the data dictionary against what DuckDB really returns."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from credits_core.export import (
    EVENT_COLUMNS,
    MEASURE_COLUMNS,
    InvalidTimeRange,
    UnknownEventKind,
    UnknownGrouping,
    UnknownProvider,
    UsageQuery,
    preview,
    usage_export,
)
from tests.export.conftest import at


def day(year: int, month: int, day: int) -> pd.Timestamp:
    """A DATE column's value as pandas gives it back."""
    return pd.Timestamp(year, month, day)


def rows(ledger, book, **query):
    return preview(ledger, usage_export(UsageQuery(**query), book), limit=1000)


def by(frame, key):
    return {
        (None if value != value else value): row for value, row in frame.set_index(key).iterrows()
    }


def test_every_event_once_and_the_totals_by_hand(small, book):
    shown = rows(small, book)
    events = shown.rows
    assert shown.total_rows == len(events) == 17
    assert events["kind"].value_counts().to_dict() == {
        "capture": 7, "release": 4, "grant": 3, "expiry": 1, "refund": 1, "adjustment": 1,
    }  # fmt: skip
    generations = events[events["generation"]]
    assert (
        len(generations) == 11
    )  # 7 in bulk + 4 holds; reserves and the rest of a partial don't count
    assert generations["failed"].sum() == 4
    assert events["credits_spent"].sum() == 81 + 612 + 90 + 620 + 110 + 1008 + 50
    assert events["usd_value"].sum() == pytest.approx(2571 * 0.0005)
    assert events["provider_cost_usd"].sum() == pytest.approx(
        0.025 + 0.28 + 0.03 + 0.25 + 0.04 + 0.5 + 0.04
    )
    assert events["balance_change"].sum() == 17_000 - 2571 + 90 + 250


def test_a_partial_capture_is_one_generation_and_its_rest_is_not(small, book):
    events = rows(small, book, kinds=["release"]).rows
    rest = events[~events["generation"]]
    assert len(events) == 4 and len(rest) == 1
    assert rest.iloc[0]["model"] == "FLUX.1 Kontext [pro]" and not rest.iloc[0]["failed"]
    capture = rows(small, book, kinds=["capture"], models=["FLUX.1 Kontext [pro]"]).rows
    partial = capture[capture["credits_spent"] == 50].iloc[0]
    assert partial["credits_reserved"] == 99 and partial["provider_cost_usd"] == 0.04


def test_a_refund_carries_the_model_of_the_generation_it_refunds(small, book):
    refund = rows(small, book, kinds=["refunds"]).rows.iloc[0]
    assert (refund["transaction_id"], refund["model"], refund["provider"]) == (
        "gen-4", "Music 1.5", "MiniMax"
    )  # fmt: skip
    assert refund["balance_change"] == 90 and not refund["generation"]


def test_group_by_model_matches_the_numbers_worked_out_by_hand(small, book):
    groups = by(rows(small, book, group_by=["model"]).rows, "model")
    expected = {  # events, generations, captures, failures, spent, refunded, cost
        "FLUX.1 Kontext [pro]": (3, 2, 2, 0, 160, 0, 0.08),
        "FLUX.1 [dev]": (1, 1, 1, 0, 81, 0, 0.025),
        "FLUX.1 [pro]": (1, 1, 0, 1, 0, 0, None),
        "Gen-4 Turbo": (2, 2, 2, 0, 1628, 0, 0.75),
        "MiniMax-Hailuo-02": (2, 2, 1, 1, 612, 0, 0.28),
        "Music 1.5": (4, 3, 1, 2, 90, 90, 0.03),
        None: (4, 0, 0, 0, 0, 0, None),  # grants and the adjustment have no model
    }
    assert set(groups) == set(expected)
    for model, (events, gens, captures, failures, spent, refunded, cost) in expected.items():
        row = groups[model]
        assert (row.events, row.generations, row.captures, row.failures) == (
            events, gens, captures, failures
        ), model  # fmt: skip
        assert (row.credits_spent, row.credits_refunded) == (spent, refunded), model
        assert row.usd_value == pytest.approx(spent * 0.0005)
        if cost is None:
            assert row.provider_cost_usd != row.provider_cost_usd  # NaN: no known cost
        else:
            assert row.provider_cost_usd == pytest.approx(cost)
    assert groups["Music 1.5"].failure_rate == pytest.approx(2 / 3)
    assert groups[None].failure_rate != groups[None].failure_rate  # no generations: NULL
    assert (groups[None].credits_granted, groups[None].credits_adjusted) == (17_000, 250)


def test_group_by_plan_and_provider(small, book):
    plans = by(rows(small, book, group_by=["plan"]).rows, "plan")
    figures = {
        k: (r.generations, r.captures, r.failures, r.credits_spent) for k, r in plans.items()
    }
    assert figures == {
        "pro": (5, 4, 1, 81 + 612 + 1008 + 50),
        "free": (4, 1, 3, 90),
        None: (2, 2, 0, 620 + 110),  # u_none has no plan
    }  # fmt: skip
    providers = by(rows(small, book, group_by=["provider"], kinds=["capture"]).rows, "provider")
    assert {k: r.credits_spent for k, r in providers.items()} == {
        "BFL": 81 + 50 + 110, "MiniMax": 612 + 90, "Runway": 1008 + 620,
    }  # fmt: skip


def test_group_by_day_week_and_month_in_utc(small, book):
    weeks = by(
        rows(small, book, group_by=["week"], kinds=["capture", "release", "expiry"]).rows, "week"
    )
    # gen-6 is Sunday 8 November 23:30: still the week of Monday 2 November
    assert {k: (r.generations, r.failures) for k, r in weeks.items()} == {
        day(2026, 11, 2): (9, 3), day(2026, 11, 9): (1, 1), day(2026, 11, 30): (1, 0),
    }  # fmt: skip
    months = by(rows(small, book, group_by=["month"]).rows, "month")
    assert {k: r.credits_spent for k, r in months.items()} == {
        day(2026, 11, 1): 2571 - 110, day(2026, 12, 1): 110,
    }  # fmt: skip
    days = rows(small, book, group_by=["day", "user"], kinds=["capture"]).rows
    assert list(days.columns[:2]) == ["day", "user_id"]
    nov2 = days[days["day"] == day(2026, 11, 2)]
    assert dict(zip(nov2["user_id"], nov2["credits_spent"], strict=True)) == {
        "u_free": 90, "u_pro": 81 + 612,
    }  # fmt: skip


def test_time_range_is_from_inclusive_to_exclusive(small, book):
    nov2 = rows(small, book, since=date(2026, 11, 2), until=date(2026, 11, 3)).rows
    assert sorted(nov2["transaction_id"]) == ["gen-1", "gen-2", "gen-4"]
    before = rows(small, book, until=at(1, month=12), kinds=["capture"]).rows
    after = rows(small, book, since=at(1, month=12), kinds=["capture"]).rows
    assert "gen-7" not in set(before["transaction_id"])
    assert list(after["transaction_id"]) == ["gen-7"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"users": ["u_free"]}, 6),
        ({"users": "u_free, u_none"}, 6 + 4),
        ({"providers": ["minimax"]}, 6),  # Hailuo x2, Music x3 and the Music refund
        ({"models": ["Gen-4 Turbo"]}, 2),
        ({"plans": ["pro"]}, 7),
        ({"kinds": ["refund", "adjustment"]}, 2),
        ({"kinds": ["grants"], "plans": ["free", "pro"]}, 2),
        ({"models": ["Gen-4 Turbo"], "users": ["u_free"]}, 0),
    ],
)
def test_filters_select_the_events_worked_out_by_hand(small, book, query, expected):
    shown = rows(small, book, **query)
    assert shown.total_rows == len(shown.rows) == expected


def test_group_totals_equal_the_sums_of_the_event_rows(demo, book):
    events = rows(demo, book, kinds=["capture", "release", "expiry"])
    grouped = rows(demo, book, kinds=["capture", "release", "expiry"], group_by=["provider", "day"])
    assert events.total_rows > 1000
    frame = preview(
        demo, usage_export(UsageQuery(kinds=["capture", "release", "expiry"]), book), limit=10**7
    ).rows
    assert len(frame) == events.total_rows
    assert grouped.rows["generations"].sum() == frame["generation"].sum()
    assert grouped.rows["credits_spent"].sum() == frame["credits_spent"].sum()
    assert grouped.rows["failures"].sum() == frame["failed"].sum()
    assert (frame["kind"] == "capture").sum() == journal_count(demo, "capture")


def journal_count(ledger, kind: str) -> int:
    """Entries of one kind in the journal, counted with plain SQL."""
    (n,) = ledger._store.query(
        lambda cur: cur.execute("SELECT count(*) FROM journal WHERE kind = ?", [kind]).fetchone()
    )
    return n


@pytest.mark.parametrize(
    "group_by", [(), ("model",), ("month", "provider"), ("user", "day", "plan", "week")]
)
def test_columns_and_types_are_the_data_dictionary(small, book, group_by):
    export = usage_export(UsageQuery(group_by=group_by), book)

    def describe(cur):
        export.prepare(cur)
        sql, params = export.sql()
        return cur.execute(f"DESCRIBE {sql}", params).fetchall()

    described = small._store.read(describe)
    assert [(name, kind) for name, kind, *_ in described] == [
        (column.name, column.type) for column in export.query.columns
    ]
    if group_by:
        assert [c.name for c in export.query.columns][-len(MEASURE_COLUMNS) :] == [
            c.name for c in MEASURE_COLUMNS
        ]
    else:
        assert export.query.columns == EVENT_COLUMNS


@pytest.mark.parametrize(
    ("query", "error", "says"),
    [
        ({"group_by": ["model", "colour"]}, UnknownGrouping, "none, user, model, provider"),
        ({"kinds": ["capture", "reserve"]}, UnknownEventKind, "capture, release, expiry"),
        ({"since": date(2026, 11, 5), "until": date(2026, 11, 5)}, InvalidTimeRange, "not before"),
        ({"since": "yesterday"}, InvalidTimeRange, "must be a date"),
    ],
)
def test_bad_requests_are_refused_saying_what_is_valid(query, error, says):
    with pytest.raises(error, match=says):
        UsageQuery(**query)


def test_unknown_provider_names_the_known_ones(book):
    with pytest.raises(UnknownProvider, match="BFL, Google, MiniMax, Runway"):
        usage_export(UsageQuery(providers=["OpenAI"]), book)


def test_every_journal_entry_of_the_exported_kinds_is_one_row(demo, book):
    exported = rows(demo, book).total_rows
    kinds = ("capture", "release", "expire", "grant", "refund", "adjust")
    assert exported == sum(journal_count(demo, kind) for kind in kinds) > 10_000


def test_the_file_name_says_which_days_filters_and_grouping():
    from credits_core.export import UsageQuery

    query = UsageQuery(since=date(2026, 11, 1), until=date(2026, 12, 1), providers="Google",
                       kinds="capture,release", group_by="model,day",
                       users="u_1,u_2,u_3,u_4")  # fmt: skip
    assert query.file_stem() == (
        "usage-2026-11-01-to-2026-11-30-users-u-1-u-2-u-3-and-1-more-providers-google"
        "-kinds-capture-release-by-model-day"
    )
    assert UsageQuery().file_stem() == "usage-events"
