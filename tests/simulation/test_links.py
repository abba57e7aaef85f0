"""A usage mix as URL text and as the page's table, and back."""

from __future__ import annotations

import pandas as pd
import pytest

from credits_core.pricing import PriceBook
from credits_core.simulation import InvalidMixText, MixItem
from credits_core.simulation.links import (
    decode_mix,
    encode_mix,
    mix_from_picked,
    mix_from_table,
    mix_table,
    picked_table,
    sku_choices,
)

MIX = (
    MixItem(model="Music 1.5", per_day=1),
    MixItem(model="MiniMax-Hailuo-02", options={"resolution": "768P", "duration": 6}, per_day=0.5),
    MixItem(model="Veo 3", options={"duration": 8, "audio": False}, per_day=0.25),
)


def test_round_trips_through_text_and_table():
    text = encode_mix(MIX)
    assert text.split(";")[1] == "MiniMax-Hailuo-02~resolution=768P,duration=6~0.5"
    assert decode_mix(text) == MIX
    assert mix_from_table(mix_table(MIX)) == MIX


def test_empty_table_rows_are_ignored():
    table = pd.concat([mix_table(MIX), pd.DataFrame([{"model": None, "per_day": 1.0}])])
    assert mix_from_table(table) == MIX


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Music 1.5~1", "row 1 .* must be model~options~per_day"),
        ("Music 1.5~~lots", "per_day must be a number, not 'lots'"),
        ("Music 1.5~duration~1", "name=value pairs"),
        ("Music 1.5~~-1", "row 1: per_day: Input should be greater than or equal to 0"),
    ],
)
def test_bad_text_says_what_is_wrong(text, message):
    with pytest.raises(InvalidMixText, match=message):
        decode_mix(text)


def test_picked_rows_price_from_the_catalog_and_bad_rows_are_left_out_by_name():
    book = PriceBook.load()
    choices = sku_choices(book)
    assert "MiniMax-Hailuo-02 · resolution=768P, duration=10" in choices
    table = pd.DataFrame(
        {
            "generation": ["Music 1.5", "0", "MiniMax-Hailuo-02 · resolution=1080P, duration=10",
                           "MiniMax-Hailuo-02 · resolution=768P, duration=10", None],
            "per_day": [1.0, 2.0, 3.0, 0.5, 4.0],
        }
    )  # fmt: skip
    checked = mix_from_picked(table, book)
    assert checked.mix == (
        MixItem(model="Music 1.5", per_day=1),
        MixItem(model="MiniMax-Hailuo-02", options={"resolution": "768P", "duration": 10},
                per_day=0.5),
    )  # fmt: skip
    assert len(checked.problems) == 2
    assert checked.problems[0].startswith("Row 2 (0) left out: Unknown model '0'")
    assert "credits catalog" not in checked.problems[0]  # no command line for web users
    assert "valid duration values: 6" in checked.problems[1]
    assert picked_table(checked.mix)["generation"].tolist() == [
        "Music 1.5", "MiniMax-Hailuo-02 · resolution=768P, duration=10"
    ]  # fmt: skip
