"""`quote_frame` prices a DataFrame at once, exactly as `quote` prices each row."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credits_core.pricing import InvalidOption, PricingError
from tests.conftest import examples

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def test_mixed_models_with_nan_for_unused_options(book):
    frame = pd.DataFrame(
        {
            "model": ["MiniMax-Hailuo-02", "Gen-4 Turbo", "FLUX.1 Kontext [pro]", "Music 1.5"],
            "resolution": ["1080P", None, None, None],
            "duration": [6.0, 10.0, np.nan, np.nan],
            "count": [np.nan, np.nan, 3.0, np.nan],
        }
    )
    priced = book.quote_frame(frame, at=NOW)
    assert priced["credits"].tolist() == [1100, 1120, 330, 90]
    assert priced["error"].tolist() == [None, None, None, None]
    assert priced["provider_cost_usd"].tolist() == pytest.approx([0.49, 0.5, 0.12, 0.03])
    assert set(priced["price_book_version"]) == {"2026.11"}


def test_invalid_rows_carry_their_reason_and_do_not_fail_the_frame(book):
    frame = pd.DataFrame(
        {
            "model": ["MiniMax-Hailuo-02", "Sora", "MiniMax-Hailuo-02", "MiniMax-Hailuo-02"],
            "resolution": ["1080P", None, "1080P", "8K"],
            "duration": [10, 5, 6, 6],
        }
    )
    priced = book.quote_frame(frame, at=NOW)
    assert priced["credits"].isna().tolist() == [True, True, False, True]
    assert priced.loc[0, "error"].startswith("MiniMax-Hailuo-02 has no duration=10")
    assert priced.loc[1, "error"].startswith("Unknown model 'Sora'")
    assert priced.loc[3, "error"].startswith("MiniMax-Hailuo-02 has no resolution='8K'")
    assert pd.isna(priced.loc[3, "price_book_version"])


def test_input_frame_is_left_unchanged(book):
    frame = pd.DataFrame({"model": ["Music 1.5"], "user_id": ["u_1"]})
    priced = book.quote_frame(frame, at=NOW)
    assert list(frame.columns) == ["model", "user_id"]
    assert list(priced.columns) == [
        "model",
        "user_id",
        "credits",
        "provider_cost_usd",
        "price_book_version",
        "error",
    ]


def test_per_row_time_picks_version_and_promotion(book):
    frame = pd.DataFrame(
        {
            "model": ["Veo 3 Fast", "Veo 3 Fast", "Veo 3 Fast", "FLUX.1 [pro]"],
            "duration": [4, 4, 4, None],
            "audio": [True, True, True, None],
            "at": pd.to_datetime(
                ["2026-10-15", "2026-11-15", "2027-02-01", "2026-10-15"], utc=True
            ),
        }
    )
    priced = book.quote_frame(frame)
    assert priced["credits"].tolist()[1:] == [1056, 1320, 130]
    assert priced.loc[0, "error"].startswith("Unknown model 'Veo 3 Fast'")
    assert priced["price_book_version"].tolist()[1:] == ["2026.11", "2026.11", "2026.06"]


def test_plan_and_provider_columns(book):
    frame = pd.DataFrame(
        {
            "model": ["FLUX.1 [dev]", "FLUX.1 [dev]", "FLUX.1 [dev]", "FLUX.1 [dev]"],
            "plan": ["business", None, "PRO", "gold"],
            "provider": ["bfl", "BFL", None, None],
        }
    )
    priced = book.quote_frame(frame, at=NOW)
    assert priced["credits"].tolist()[:3] == [80, 90, 81]
    assert "Unknown plan 'gold'" in priced.loc[3, "error"]
    wrong = book.quote_frame(pd.DataFrame({"model": ["Veo 2"], "provider": ["Runway"]}), at=NOW)
    assert "Veo 2 is a Google model, not Runway" in wrong.loc[0, "error"]


def test_categorical_and_arrow_string_columns(book):
    models = ["MiniMax-Hailuo-02", "MiniMax-Hailuo-02", "Gen-4 Turbo"]
    for dtype in ("category", "str"):
        frame = pd.DataFrame(
            {
                "model": pd.Series(models, dtype=dtype),
                "resolution": pd.Series(["768P", "1080p", None], dtype=dtype),
                "duration": pd.array([10, 6, 5], dtype="Int64"),
            }
        )
        assert book.quote_frame(frame, at=NOW)["credits"].tolist() == [1240, 1100, 620]


def test_frame_without_a_model_column_is_refused(book):
    with pytest.raises(InvalidOption, match="needs a 'model' column"):
        book.quote_frame(pd.DataFrame({"duration": [6]}))


def test_empty_frame(book):
    priced = book.quote_frame(pd.DataFrame({"model": pd.Series([], dtype=object)}), at=NOW)
    assert priced.empty and "credits" in priced.columns


# ---- property: quote_frame equals quote, row by row -------------------------------

MISSING = st.sampled_from([None, np.nan])
MODELS = st.one_of(
    st.sampled_from(
        [
            "MiniMax-Hailuo-02",
            "minimax-hailuo-02",
            "Gen-4 Turbo",
            "Gen-4 Aleph",
            "S2V-01",
            "FLUX.1 Kontext [pro]",
            "FLUX.1 [dev]",
            "Music 1.5",
            "Veo 3",
            "Veo 3 Fast",
            "Veo 2",
            "Imagen 4 Standard",
            "Imagen 4 Fast",
            "Sora",
        ]
    ),
    MISSING,
)
COLUMNS = {
    "model": MODELS,
    "resolution": st.one_of(st.sampled_from(["512P", "768p", "1080P", "720P", "4K"]), MISSING),
    "duration": st.one_of(st.sampled_from([4, 5, 6, 8, 10, 6.0, "6", 6.5, "x"]), MISSING),
    "count": st.one_of(st.sampled_from([1, 2, 4, 5, "3", 0]), MISSING),
    "audio": st.one_of(st.sampled_from([True, False, "yes", "maybe"]), MISSING),
    "aspect_ratio": st.one_of(st.sampled_from(["16:9", "1:1", "21:9", "5:4"]), MISSING),
    "plan": st.one_of(st.sampled_from(["pro", "business", "free", "gold"]), MISSING),
    "provider": st.one_of(st.sampled_from(["MiniMax", "google", "BFL", "OpenAI"]), MISSING),
    "at": st.one_of(
        st.sampled_from(
            [
                datetime(2026, 5, 1, tzinfo=UTC),
                datetime(2026, 10, 31, 23, 59, tzinfo=UTC),
                datetime(2026, 11, 1, tzinfo=UTC),
                datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
                datetime(2027, 1, 1, tzinfo=UTC),
            ]
        ),
        st.none(),
    ),
}


@st.composite
def request_frames(draw):
    names = draw(st.sets(st.sampled_from(sorted(set(COLUMNS) - {"model"}))))
    rows = draw(
        st.lists(
            st.fixed_dictionaries({name: COLUMNS[name] for name in ["model", *sorted(names)]}),
            min_size=1,
            max_size=25,
        )
    )
    frame = pd.DataFrame(rows, dtype=object)
    if "at" in frame.columns:
        frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def scalar(book, row: dict):
    options = {k: v for k, v in row.items() if k not in ("model", "provider", "plan", "at")}
    at = row.get("at")
    at = NOW if at is None or pd.isna(at) else at
    try:
        quote = book.quote(row["model"], row.get("provider"), row.get("plan"), at=at, **options)
    except PricingError as error:
        return (None, None, None, str(error))
    return (quote.credits, quote.provider_cost_usd, quote.price_book_version, None)


def vectorised(row: pd.Series):
    cost = None if pd.isna(row["provider_cost_usd"]) else float(row["provider_cost_usd"])
    credits = None if pd.isna(row["credits"]) else int(row["credits"])
    version = None if pd.isna(row["price_book_version"]) else row["price_book_version"]
    return (credits, cost, version, row["error"])


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=request_frames())
def test_quote_frame_equals_quote_row_by_row(book, frame):
    priced = book.quote_frame(frame, at=NOW)
    assert len(priced) == len(frame)
    for index, row in frame.iterrows():
        expected = scalar(book, row.to_dict())
        got = vectorised(priced.loc[index])
        assert got[0] == expected[0] and got[2:] == expected[2:], (row.to_dict(), got, expected)
        assert (got[1] is None and expected[1] is None) or math.isclose(got[1], expected[1])
