"""Pricing throughput: `quote_frame` on N requests against plain Python loops, same run.

Baselines, both given the same requests:
  dict loop over frame   a Python loop over the frame's columns: one dict lookup per
                         row in a table of precomputed prices, collecting credits and an
                         error per row (what quote_frame returns, without its checks)
  dict loop over lists   the same loop over ready-made Python lists: the floor of any
                         per-row Python code
Run: python bench/bench_pricing.py [--rows 10000000]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from credits_core.pricing import PriceBook

AT = datetime(2026, 11, 24, tzinfo=UTC)
REQUESTS = [  # (model, resolution, duration), share of the rows
    (("MiniMax-Hailuo-02", "768P", 6.0), 0.15),
    (("MiniMax-Hailuo-02", "1080P", 6.0), 0.10),
    (("MiniMax-Hailuo-02", "512P", 10.0), 0.05),
    (("Gen-4 Turbo", None, 10.0), 0.10),
    (("Gen-3a Turbo", None, 5.0), 0.05),
    (("FLUX.1 Kontext [pro]", None, np.nan), 0.25),
    (("FLUX.1 [dev]", None, np.nan), 0.19),
    (("Music 1.5", None, np.nan), 0.10),
    (("MiniMax-Hailuo-02", "1080P", 10.0), 0.01),  # invalid: 1080P exists only at 6 s
]


def requests(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    shares = np.array([share for _, share in REQUESTS])
    index = rng.choice(len(REQUESTS), size=rows, p=shares / shares.sum())
    models, resolutions, durations = zip(*(request for request, _ in REQUESTS), strict=True)
    return pd.DataFrame(
        {
            "model": np.array(models, dtype=object)[index],
            "resolution": np.array(resolutions, dtype=object)[index],
            "duration": np.array(durations, dtype=float)[index],
        }
    )


def dict_loop(models, resolutions, durations, prices: dict) -> tuple[list, list]:
    credits, errors = [], []
    for model, resolution, duration in zip(models, resolutions, durations, strict=True):
        price = prices.get((model, resolution, None if duration != duration else int(duration)))
        credits.append(price)
        errors.append(None if price is not None else "no such request")
    return credits, errors


def timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    rows = parser.parse_args().rows
    book = PriceBook.load()
    frame = requests(rows)
    priced = book.quote_frame(frame.drop_duplicates(), at=AT).dropna(subset=["credits"])
    prices = {
        (m, r, None if d != d else int(d)): int(c)
        for m, r, d, c in priced[["model", "resolution", "duration", "credits"]].itertuples(
            index=False
        )
    }
    inputs = {
        "object": frame,
        "str (pyarrow)": frame.astype({"model": "str", "resolution": "str"}),
        "category": frame.astype({"model": "category", "resolution": "category"}),
    }
    book.quote_frame(frame.head(1000), at=AT)  # compile the price grid once
    print(f"{rows:,} requests over {len(prices)} SKUs, 1% invalid")
    print(f"{'path':<34}{'seconds':>9}{'M req/s':>10}")
    results = {}
    for label, data in inputs.items():
        seconds, priced = timed(book.quote_frame, data, AT)
        results[label] = seconds
        invalid = int(priced["credits"].isna().sum())
        name = f"quote_frame, {label} columns"
        print(f"{name:<34}{seconds:>9.3f}{rows / seconds / 1e6:>10.1f}   ({invalid:,} invalid)")
    loop_frame, _ = timed(dict_loop, frame["model"], frame["resolution"], frame["duration"], prices)
    lists = (frame["model"].tolist(), frame["resolution"].tolist(), frame["duration"].tolist())
    loop_lists, _ = timed(dict_loop, *lists, prices)
    print(f"{'dict loop over frame':<34}{loop_frame:>9.3f}{rows / loop_frame / 1e6:>10.1f}")
    print(f"{'dict loop over lists':<34}{loop_lists:>9.3f}{rows / loop_lists / 1e6:>10.1f}")
    print("speed-up of quote_frame (target: >= 20M req/s and >= 10x the loop):")
    for label, seconds in results.items():
        print(
            f"  {label:<16} {loop_frame / seconds:5.1f}x the frame loop, "
            f"{loop_lists / seconds:5.1f}x the list loop"
        )


if __name__ == "__main__":
    main()
