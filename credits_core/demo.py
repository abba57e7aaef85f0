"""A realistic, deterministic demo database, built through the ledger's own bulk API.

Users on plans (free, standard, pro, business) get a monthly plan grant on their own
renewal day, which expires at the next one; some buy top-ups (which never expire) or
get a promo. Every day each user makes a number of generations drawn around their own
activity level, with a model mix per plan (mostly images, some video, a little music),
priced by the price book; about 5% fail and are released. The ledger rejects what
does not fit a balance, so some users end near zero. At the end a few refunds, goodwill
adjustments and holds left to expire. The same arguments always give the same data.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from credits_core.alerts import Evaluator
from credits_core.ledger import InsufficientCredits, Ledger
from credits_core.plans import Plans
from credits_core.pricing import PriceBook

PLAN_SHARES = {"free": 0.55, "standard": 0.25, "pro": 0.15, "business": 0.05}
GENERATIONS_PER_DAY = {"free": 0.2, "standard": 1.2, "pro": 3.0, "business": 8.0}
FAILURE_RATE = 0.05
CYCLE_DAYS = 30

# (model, options, weight for free, standard, pro, business)
MIX = [
    ("FLUX.1 [dev]", {}, (40, 15, 8, 5)),
    ("FLUX.1 Kontext [pro]", {}, (20, 25, 20, 15)),
    ("FLUX.1 Kontext [max]", {}, (0, 5, 8, 8)),
    ("FLUX 1.1 [pro] Ultra", {}, (5, 8, 8, 8)),
    ("FLUX.1 [pro]", {}, (10, 10, 8, 6)),
    ("Imagen 4 Fast", {}, (10, 5, 4, 4)),
    ("Imagen 4 Standard", {}, (0, 4, 4, 4)),
    ("MiniMax-Hailuo-02", {"resolution": "768P", "duration": 6}, (5, 8, 8, 8)),
    ("MiniMax-Hailuo-02", {"resolution": "1080P", "duration": 6}, (0, 4, 6, 8)),
    ("MiniMax-Hailuo-02", {"resolution": "512P", "duration": 10}, (3, 2, 1, 1)),
    ("Gen-4 Turbo", {"duration": 5}, (0, 4, 6, 6)),
    ("Gen-4 Turbo", {"duration": 10}, (0, 1, 3, 5)),
    ("Veo 3 Fast", {"duration": 4, "audio": True}, (0, 1, 2, 3)),
    ("Veo 3", {"duration": 8, "audio": True}, (0, 0, 1, 2)),
    ("Music 1.5", {}, (7, 8, 8, 7)),
]
SKU_OPTIONS = np.array(
    [json.dumps(options, sort_keys=True) if options else None for _, options, _ in MIX],
    dtype=object,
)
GRANT_REASONS = {"plan": "Monthly plan credits", "topup": "Top-up pack", "promo": "Promotion"}
FIRST_NAMES = ["ana", "ben", "chen", "dana", "eli", "fatima", "gus", "hana", "ivan", "jo"]
LAST_NAMES = ["garcia", "smith", "kim", "novak", "okafor", "rossi", "sato", "silva", "ng"]


@dataclass(frozen=True)
class DemoSpec:
    users: int = 1_000
    days: int = 90
    seed: int = 7
    end: datetime = datetime(2026, 11, 24, tzinfo=UTC)

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)


@dataclass(frozen=True)
class DemoReport:
    accounts: int
    grants: int
    events: int
    captured: int
    released: int
    rejected: int
    open_alerts: int
    seconds: float


def accounts(spec: DemoSpec) -> pd.DataFrame:
    rng = np.random.default_rng(spec.seed)
    n = spec.users
    ids = np.arange(1, n + 1)
    first = np.array(FIRST_NAMES)[rng.integers(0, len(FIRST_NAMES), n)]
    last = np.array(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), n)]
    plans = rng.choice(list(PLAN_SHARES), size=n, p=list(PLAN_SHARES.values()))
    return pd.DataFrame(
        {
            "user_id": [f"u_{i}" for i in ids],
            "email": [
                f"{given}.{family}{i}@example.com"
                for given, family, i in zip(first, last, ids, strict=True)
            ],
            "plan": plans,
            "renewal_day": rng.integers(0, CYCLE_DAYS, n),
            "activity": rng.lognormal(mean=-0.1, sigma=0.6, size=n),
            "buys_topups": rng.random(n) < 0.25,
            "gets_promo": rng.random(n) < 0.10,
        }
    )


def grants(spec: DemoSpec, people: pd.DataFrame, plans: Plans) -> pd.DataFrame:
    """Every grant of the window with the day it is given (0 = the first day)."""
    rng = np.random.default_rng(spec.seed + 1)
    monthly = people["plan"].map({name: p.monthly_credits for name, p in plans.plans.items()})
    rows = []
    renewal = people["renewal_day"].to_numpy()
    for day in range(spec.days):
        renewing = (renewal == day % CYCLE_DAYS) | ((day == 0) & (renewal != 0))
        if not renewing.any():
            continue
        days_left = np.where(
            renewal > day, renewal - day, CYCLE_DAYS - (day - renewal) % CYCLE_DAYS
        )
        full = monthly.to_numpy()[renewing]
        share = np.where(day == 0, days_left[renewing] / CYCLE_DAYS, 1.0)
        rows.append(
            pd.DataFrame(
                {
                    "day": day,
                    "user_id": people["user_id"].to_numpy()[renewing],
                    "credits": np.maximum(1, (full * share).astype(np.int64)),
                    "kind": "plan",
                    "expires_in_days": days_left[renewing],
                }
            )
        )
    buyers = people[people["buys_topups"]]
    packs = rng.poisson(1.5, len(buyers))
    topups = pd.DataFrame(
        {
            "day": rng.integers(0, spec.days, packs.sum()),
            "user_id": np.repeat(buyers["user_id"].to_numpy(), packs),
            "credits": plans.topup.pack_credits,
            "kind": "topup",
            "expires_in_days": np.nan,
        }
    )
    promoted = people[people["gets_promo"]]
    promos = pd.DataFrame(
        {
            "day": rng.integers(0, spec.days, len(promoted)),
            "user_id": promoted["user_id"].to_numpy(),
            "credits": 1_000,
            "kind": "promo",
            "expires_in_days": 14,
        }
    )
    return pd.concat([*rows, topups, promos], ignore_index=True)


def usage(spec: DemoSpec, people: pd.DataFrame, book: PriceBook) -> pd.DataFrame:
    """Every generation of the window: user, day, time, model, options (JSON text, None
    for a model without options), credits, success."""
    rng = np.random.default_rng(spec.seed + 2)
    rate = people["plan"].map(GENERATIONS_PER_DAY).to_numpy() * people["activity"].to_numpy()
    counts = rng.poisson(rate[:, None], size=(len(people), spec.days))
    user_index, day = np.nonzero(counts)
    repeat = counts[user_index, day]
    user_index, day = np.repeat(user_index, repeat), np.repeat(day, repeat)
    plan = people["plan"].to_numpy()[user_index]
    sku = np.empty(len(user_index), dtype=np.int64)
    for column, name in enumerate(PLAN_SHARES):
        weights = np.array([mix[2][column] for mix in MIX], dtype=float)
        chosen = plan == name
        sku[chosen] = rng.choice(len(MIX), size=chosen.sum(), p=weights / weights.sum())
    seconds = rng.integers(0, 86_400, len(sku))
    plan_index = pd.Categorical(plan, categories=list(PLAN_SHARES)).codes
    prices = _price_table(spec, book)
    events = pd.DataFrame(
        {
            "user_id": people["user_id"].to_numpy()[user_index],
            "day": day,
            "ts": pd.Timestamp(spec.start)
            + pd.to_timedelta(day, unit="D")
            + pd.to_timedelta(seconds, unit="s"),
            "credits": prices[sku, plan_index, day],
            "success": rng.random(len(sku)) >= FAILURE_RATE,
            "model": np.array([m[0] for m in MIX], dtype=object)[sku],
            "options": SKU_OPTIONS[sku],
        }
    )
    offered = events[events["credits"] >= 0]
    return offered.sort_values(["ts", "user_id"], kind="stable", ignore_index=True)


def _price_table(spec: DemoSpec, book: PriceBook) -> np.ndarray:
    """Credits of each (mix entry, plan, day), priced by the book at noon that day;
    -1 where the model was not offered yet (Google's models came in November)."""
    grid = pd.MultiIndex.from_product(
        [range(len(MIX)), list(PLAN_SHARES), range(spec.days)], names=["sku", "plan", "day"]
    ).to_frame(index=False)
    requests = pd.DataFrame(
        {
            "model": [MIX[i][0] for i in grid["sku"]],
            "plan": grid["plan"],
            "at": pd.Timestamp(spec.start) + pd.to_timedelta(grid["day"] + 0.5, unit="D"),
            **{
                option: [MIX[i][1].get(option) for i in grid["sku"]]
                for option in ("resolution", "duration", "audio")
            },
        }
    )
    credits = book.quote_frame(requests)["credits"].fillna(-1).to_numpy(dtype=np.int64)
    return credits.reshape(len(MIX), len(PLAN_SHARES), spec.days)


class SteppedClock:
    """The build's clock: it stands where the build says, so entries carry demo times."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def build(path: str | Path, spec: DemoSpec) -> DemoReport:
    """Write the demo ledger to `path` (which must not exist yet), day by day."""
    started = time.perf_counter()
    book, plans = PriceBook.load(), Plans.load()
    people = accounts(spec)
    given = grants(spec, people, plans)
    events = usage(spec, people, book)
    clock = SteppedClock(spec.start)
    outcomes = []
    with Ledger.open(path, clock=clock) as ledger:
        ledger.create_accounts(people[["user_id", "email", "plan"]])
        for day in range(spec.days):
            day_start = spec.start + timedelta(days=day)
            clock.now = day_start
            ledger.grant_many(_grant_frame(given[given["day"] == day], day_start))
            clock.now = day_start + timedelta(days=1) - timedelta(seconds=1)
            todays = events[events["day"] == day]
            outcomes.append(
                ledger.apply_usage(
                    todays[["user_id", "credits", "ts", "success", "model", "options"]]
                )
            )
            clock.now = day_start + timedelta(days=1)
            ledger.expire_grants()
        booked = pd.concat(outcomes)
        _support_work(ledger, clock, spec, booked, people["user_id"].to_numpy())
        alerts = Evaluator(ledger, plans=plans, book=book).evaluate()
    counts = booked["status"].value_counts()
    return DemoReport(
        accounts=len(people),
        grants=len(given),
        events=len(events),
        captured=int(counts.get("captured", 0)),
        released=int(counts.get("released", 0)),
        rejected=int(counts.get("rejected_insufficient", 0)),
        open_alerts=alerts.open,
        seconds=round(time.perf_counter() - started, 1),
    )


def _grant_frame(todays: pd.DataFrame, day_start: datetime) -> pd.DataFrame:
    expires = pd.Timestamp(day_start) + pd.to_timedelta(todays["expires_in_days"], unit="D")
    return pd.DataFrame(
        {
            "user_id": todays["user_id"].to_numpy(),
            "credits": todays["credits"].to_numpy(),
            "kind": todays["kind"].to_numpy(),
            "expires_at": expires.to_numpy(),
            "reason": todays["kind"].map(GRANT_REASONS).to_numpy(),
        }
    )


def _support_work(
    ledger: Ledger, clock: SteppedClock, spec: DemoSpec, booked: pd.DataFrame, users: np.ndarray
) -> None:
    """Refunds, goodwill adjustments and holds nobody confirms, near the end of the window."""
    rng = np.random.default_rng(spec.seed + 3)
    clock.now = spec.end - timedelta(hours=2)
    captured = booked[booked["status"] == "captured"]
    picks = max(1, spec.users // 200)
    for transaction_id in rng.choice(
        captured["transaction_id"].to_numpy(), size=picks, replace=False
    ):
        ledger.refund(
            transaction_id, reason="Generation came out corrupted", actor="support@corp.example"
        )
    for user_id in rng.choice(users, size=picks, replace=False):
        ledger.adjust(user_id, 500, reason="Goodwill: slow queue", actor="support@corp.example")
    for user_id in rng.choice(users, size=picks, replace=False):
        try:
            ledger.reserve(
                user_id,
                110,
                reason="generation",
                metadata={"model": "FLUX.1 Kontext [pro]"},
                ttl=timedelta(minutes=15),
            )
        except InsufficientCredits:
            continue
