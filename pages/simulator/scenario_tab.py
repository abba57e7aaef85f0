"""The scenario tab of the balance simulator: the form (every input bound to the URL), the
usage mix picked from the catalog, the balance curve with its events and random-run band,
the tables, then the sandbox. The form's rules are ScenarioForm's (simulation/scenario.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import altair as alt
import pandas as pd
import streamlit as st

from credits_core.errors import CreditsError
from credits_core.ledger import Ledger
from credits_core.plans import Plans
from credits_core.pricing import PriceBook
from credits_core.simulation import MixItem, Simulation, simulate
from credits_core.simulation.links import (
    decode_mix,
    encode_mix,
    mix_from_picked,
    picked_table,
    sku_choices,
)
from credits_core.simulation.scenario import MAX_HORIZON_DAYS, ScenarioForm
from credits_core.simulation.sources import current_state_of, usage_mix_of
from credits_core.simulation.variation import MAX_RUNS, Variation, vary
from pages import shell
from pages.simulator.sandbox import sandbox
from pages.simulator.tables import csv_button, draft_book, show

DEFAULT_MIX = (
    MixItem(model="FLUX.1 Kontext [pro]", per_day=4),
    MixItem(model="MiniMax-Hailuo-02", options={"resolution": "768P", "duration": 6}, per_day=1),
    MixItem(model="Music 1.5", per_day=1),
)
EVENT_COLOURS = alt.Scale(
    domain=["plan grant", "expiry", "top-up", "depleted"],
    range=["#2e7d32", "#f9a825", "#1565c0", "#c62828"],
)


def scenario_tab(book: PriceBook, ledger: Ledger, plans: Plans) -> None:
    left, middle, right = st.columns(3)
    with left:
        plan_fields = plan_inputs(plans)
    with middle:
        topup_fields = topup_inputs(plans)
    with right:
        horizon_fields = horizon_inputs()
        runs = st.number_input("Random runs (0 = none)", 0, MAX_RUNS, 200, step=100, key="runs",
                               bind="query-params")  # fmt: skip
        seed = st.number_input("Seed", 0, 2**31, 1, key="seed", bind="query-params")
        book_choice = st.radio(
            "Price book", ["current", "draft"], key="book", bind="query-params", horizontal=True
        )
    st.markdown("**Usage mix** (generations per day, each picked from the catalog)")
    user_fields = user_inputs()
    try:
        mix = usage_mix(book, ledger, user_fields["user_id"])
        pricing = book
        if book_choice == "draft":
            pricing = draft_book("scenario")
            if pricing is None:
                st.info("Upload a draft price book to price the mix with it.")
                st.stop()
        form = ScenarioForm(**plan_fields, **topup_fields, **horizon_fields, **user_fields, mix=mix)
        user = form.starting_user
        state = None if user is None else current_state_of(ledger, user, form.start, plans)
        scenario = form.scenario(plans, state)
        result = simulate(scenario, pricing, shell.alert_rules())
        spread = vary(scenario, pricing, runs=int(runs), seed=int(seed)) if runs else None
    except CreditsError as error:
        st.error(str(error))
        st.stop()
    results(result, spread)
    sandbox(ledger, user_fields["user_id"])


def plan_inputs(plans: Plans) -> dict:
    st.markdown("**Plan**")
    plan = st.selectbox("Plan", list(plans.plans), key="plan", bind="query-params")
    monthly = st.number_input(
        "Monthly credits (empty: the plan's)",
        0,
        10_000_000,
        None,
        step=1000,
        key="monthly",
        bind="query-params",
        placeholder=f"{plans.plans[plan].monthly_credits:,}",
    )
    expire = st.number_input("Plan credits expire after (days, 0 = never)", 0, 3650, 30,
                             key="expire", bind="query-params")  # fmt: skip
    renewal = st.number_input("First plan renewal (day)", 0, MAX_HORIZON_DAYS, 0,
                              key="renewal", bind="query-params")  # fmt: skip
    return {
        "plan": plan,
        "monthly_credits": None if monthly is None else int(monthly),
        "expire_after_days": int(expire),
        "first_grant_day": int(renewal),
    }


def topup_inputs(plans: Plans) -> dict:
    st.markdown("**Balance and top-ups**")
    starting = st.number_input("Starting balance (never expires)", 0, 100_000_000, 0, step=500,
                               key="balance", bind="query-params")  # fmt: skip
    kind = st.radio("Top-ups", ["none", "pack_below", "refill_to"], key="topup",
                    bind="query-params", horizontal=True)  # fmt: skip
    threshold = st.number_input("When available is at or below", 0, 10_000_000, 500,
                                key="threshold", bind="query-params")  # fmt: skip
    packs = st.number_input(f"Packs of {plans.topup.pack_credits:,} credits", 1, 100, 1,
                            key="packs", bind="query-params")  # fmt: skip
    target = st.number_input("Refill up to", 1, 100_000_000, 5_000, key="target",
                             bind="query-params")  # fmt: skip
    return {
        "starting_balance": int(starting),
        "topup_kind": kind,
        "threshold": int(threshold),
        "packs": int(packs),
        "target": int(target),
    }


def horizon_inputs() -> dict:
    st.markdown("**Horizon and variation**")
    start = st.date_input("Start", value=datetime.now(UTC).date(), key="start",
                          bind="query-params")  # fmt: skip
    horizon = st.number_input("Horizon (days)", 1, MAX_HORIZON_DAYS, 90, key="days",
                              bind="query-params")  # fmt: skip
    return {"start_day": start, "horizon_days": int(horizon)}


def user_inputs() -> dict:
    user_id = st.text_input(
        "A real user (for their usage, credits and the sandbox)",
        key="user",
        bind="query-params",
        placeholder="u_123",
    ).strip()
    from_user = st.checkbox(
        "Start from this user's plan and credits now",
        key="from_user",
        bind="query-params",
        disabled=not user_id,
    )
    return {"user_id": user_id, "from_user": from_user}


def usage_mix(book: PriceBook, ledger: Ledger, user_id: str) -> tuple[MixItem, ...]:
    """The mix editor: rows picked from the catalog, kept in the URL; a row that does not
    price is flagged and left out."""
    if "mix_base" not in st.session_state:
        text = st.query_params.get("mix")
        st.session_state.mix_base = decode_mix(text) if text else DEFAULT_MIX
    if st.button("Load this user's last 30 days of usage", disabled=not user_id):
        st.session_state.mix_base = usage_mix_of(ledger, user_id, book=book)
        st.session_state.pop("mix_editor", None)
    edited = st.data_editor(
        picked_table(st.session_state.mix_base),
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        key="mix_editor",
        column_config={
            "generation": st.column_config.SelectboxColumn(
                "Generation (model · options)",
                options=sku_choices(book, st.session_state.mix_base),
                width="large",
                required=True,
            ),
            "per_day": st.column_config.NumberColumn(
                "Per day", min_value=0.0, max_value=10_000.0, format="%.2f"
            ),
        },
    )
    checked = mix_from_picked(edited, book)
    for problem in checked.problems:
        st.warning(problem)
    st.query_params["mix"] = encode_mix(checked.mix)
    return checked.mix


def results(result: Simulation, spread: Variation | None) -> None:
    money = result.money.set_index("item")["usd"]
    cells = st.columns(4)
    depleted = result.depletion_date
    cells[0].metric(
        "Runs dry on",
        "never" if depleted is None else f"{depleted:%Y-%m-%d}",
        help="The first day a generation of the mix does not fit.",
    )
    cells[1].metric("User pays", shell.usd(money["paid by the user"]))
    cells[2].metric("Providers cost us", shell.usd(money["provider cost"]))
    cells[3].metric("Margin", shell.usd(money["margin"]))
    band = None if spread is None else spread.band
    st.altair_chart(balance_chart(result.daily, result.events, band), width="stretch")
    if spread is not None:
        st.caption(
            f"Dashed line and band: median and 10th-90th percentile of {spread.runs} runs "
            f"with usage drawn per day around the mix (seed {spread.seed})."
        )
    left, right = st.columns(2)
    with left:
        show("Alerts", result.alerts, "alerts")
        show("Events", result.events, "events")
    with right:
        show("Credits burned per model", result.burn_by_model, "burn_by_model")
        show("Paid and cost", result.money, "money")
    if spread is not None:
        left, right = st.columns(2)
        with left:
            show("Random runs summary", spread.summary, "variation_summary")
        with right:
            show("Balance band per day", spread.band, "variation_band")
        csv_button("every random run", spread.per_run, "variation_runs")
    show("Day by day", result.daily, "daily")


def balance_chart(
    daily: pd.DataFrame, events: pd.DataFrame, band: pd.DataFrame | None
) -> alt.LayerChart:
    """The available credits per day, the events as markers and, with random runs, their
    median and 10th-90th percentile band."""
    line = (
        alt.Chart(daily)
        .mark_line(color="#37474f")
        .encode(x=alt.X("date:T", title=None), y=alt.Y("available:Q", title="available credits"))
    )
    marks = (
        alt.Chart(events)
        .mark_point(size=90, filled=True)
        .encode(
            x="date:T",
            y="available:Q",
            color=alt.Color("event:N", scale=EVENT_COLOURS),
            shape="event:N",
            tooltip=["date:T", "event:N", "credits:Q", "available:Q"],
        )
    )
    layers = [line, marks]
    if band is not None:
        area = alt.Chart(band).mark_area(opacity=0.2, color="#5c6bc0")
        median = alt.Chart(band).mark_line(strokeDash=[4, 3], color="#3949ab")
        layers = [
            area.encode(x="date:T", y="low:Q", y2="high:Q"),
            median.encode(x="date:T", y="median:Q"),
            *layers,
        ]
    return alt.layer(*layers).properties(height=320)
