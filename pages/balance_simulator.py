"""Balance simulator: a plan and a usage mix over a horizon; the support sandbox; real usage
replayed under a draft price book. Nothing on this page writes the live ledger."""

from datetime import UTC, datetime, time

import altair as alt
import pandas as pd
import streamlit as st

from credits_core.access import Action
from credits_core.alerts.rules import AlertRules
from credits_core.errors import CreditsError
from credits_core.plans import Plans
from credits_core.pricing import PriceBook
from credits_core.pricing.book import catalog_diff
from credits_core.simulation import MixItem, PlanTerms, Scenario, TopUpPolicy, simulate
from credits_core.simulation.links import (
    decode_mix,
    encode_mix,
    mix_from_picked,
    picked_table,
    sku_choices,
)
from credits_core.simulation.replay import MAX_DAYS, replay
from credits_core.simulation.sandbox import Sandbox
from credits_core.simulation.scenario import MAX_HORIZON_DAYS
from credits_core.simulation.sources import current_state_of, usage_mix_of
from credits_core.simulation.variation import MAX_RUNS, vary
from pages import shell
from pages.shell import columns

DEFAULT_MIX = (
    MixItem(model="FLUX.1 Kontext [pro]", per_day=4),
    MixItem(model="MiniMax-Hailuo-02", options={"resolution": "768P", "duration": 6}, per_day=1),
    MixItem(model="Music 1.5", per_day=1),
)
EVENT_COLOURS = alt.Scale(
    domain=["plan grant", "expiry", "top-up", "depleted"],
    range=["#2e7d32", "#f9a825", "#1565c0", "#c62828"],
)

shell.page("Balance simulator", Action.SIMULATE)
book = shell.price_book()
ledger = shell.ledger()
plans = Plans.load()


def csv_button(label: str, frame: pd.DataFrame, name: str) -> None:
    st.download_button(
        f"Download {label} (CSV)",
        data=lambda: frame.to_csv(index=False),
        file_name=f"{name}.csv",
        mime="text/csv",
        on_click="ignore",
        key=f"csv_{name}",
    )


def show(label: str, frame: pd.DataFrame, name: str, **options) -> None:
    st.markdown(f"**{label}**")
    shell.table(frame, key=name, **options)
    csv_button(label.lower(), frame, name)


def balance_chart(daily: pd.DataFrame, events: pd.DataFrame, band: pd.DataFrame | None):
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
        layers.insert(0, area.encode(x="date:T", y="low:Q", y2="high:Q"))
        layers.insert(
            1,
            alt.Chart(band)
            .mark_line(strokeDash=[4, 3], color="#3949ab")
            .encode(x="date:T", y="median:Q"),
        )
    return alt.layer(*layers).properties(height=320)


def draft_book(key: str) -> PriceBook | None:
    upload = st.file_uploader("Draft price book (TOML)", type=["toml"], key=f"{key}_upload")
    if upload is None:
        return None
    return PriceBook.loads(upload.getvalue(), source=upload.name)


scenario_tab, replay_tab = st.tabs(
    ["Scenario", "Price-change replay"], key="tab", bind="query-params"
)

# ---------------------------------------------------------------------------- scenario
with scenario_tab:
    if scenario_tab.open is not False:
        left, middle, right = st.columns(3)
        with left:
            st.markdown("**Plan**")
            plan_name = st.selectbox("Plan", list(plans.plans), key="plan", bind="query-params")
            terms = PlanTerms.from_plans(plan_name, plans)
            monthly = st.number_input(
                "Monthly credits (empty: the plan's)",
                0,
                10_000_000,
                None,
                step=1000,
                key="monthly",
                bind="query-params",
                placeholder=f"{terms.monthly_credits:,}",
            )
            expire = st.number_input(
                "Plan credits expire after (days, 0 = never)",
                0,
                3650,
                30,
                key="expire",
                bind="query-params",
            )
            renewal = st.number_input(
                "First plan renewal (day)",
                0,
                MAX_HORIZON_DAYS,
                0,
                key="renewal",
                bind="query-params",
            )
        with middle:
            st.markdown("**Balance and top-ups**")
            starting = st.number_input(
                "Starting balance (never expires)",
                0,
                100_000_000,
                0,
                step=500,
                key="balance",
                bind="query-params",
            )
            topup_kind = st.radio(
                "Top-ups",
                ["none", "pack_below", "refill_to"],
                key="topup",
                bind="query-params",
                horizontal=True,
            )
            threshold = st.number_input(
                "When available is at or below",
                0,
                10_000_000,
                500,
                key="threshold",
                bind="query-params",
            )
            packs = st.number_input(
                f"Packs of {plans.topup.pack_credits:,} credits",
                1,
                100,
                1,
                key="packs",
                bind="query-params",
            )
            target = st.number_input(
                "Refill up to", 1, 100_000_000, 5_000, key="target", bind="query-params"
            )
        with right:
            st.markdown("**Horizon and variation**")
            start_date = st.date_input(
                "Start", value=datetime.now(UTC).date(), key="start", bind="query-params"
            )
            horizon = st.number_input(
                "Horizon (days)", 1, MAX_HORIZON_DAYS, 90, key="days", bind="query-params"
            )
            runs = st.number_input(
                "Random runs (0 = none)",
                0,
                MAX_RUNS,
                200,
                step=100,
                key="runs",
                bind="query-params",
            )
            seed = st.number_input("Seed", 0, 2**31, 1, key="seed", bind="query-params")
            book_choice = st.radio(
                "Price book", ["current", "draft"], key="book", bind="query-params", horizontal=True
            )

        st.markdown("**Usage mix** (generations per day, each picked from the catalog)")
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
        try:
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
            mix = checked.mix
            st.query_params["mix"] = encode_mix(mix)
            pricing = book
            if book_choice == "draft":
                pricing = draft_book("scenario")
                if pricing is None:
                    st.info("Upload a draft price book to price the mix with it.")
                    st.stop()
            start = datetime.combine(start_date, time.min, UTC)
            fields = {
                "plan": terms.model_copy(
                    update={
                        "monthly_credits": terms.monthly_credits
                        if monthly is None
                        else int(monthly),
                        "credits_expire_after_days": int(expire) or None,
                    }
                ),
                "first_grant_day": int(renewal),
            }
            if from_user and user_id:
                fields = current_state_of(ledger, user_id, start, plans)
            scenario = Scenario.build(
                **fields,
                start=start,
                horizon_days=int(horizon),
                starting_balance=int(starting),
                topup=TopUpPolicy(
                    kind=topup_kind,
                    threshold=int(threshold),
                    packs=int(packs),
                    target=int(target),
                    pack_credits=plans.topup.pack_credits,
                    pack_price_usd=plans.topup.pack_price_usd,
                ),
                mix=mix,
            )
            result = simulate(scenario, pricing, AlertRules.load())
            spread = vary(scenario, pricing, runs=int(runs), seed=int(seed)) if runs else None
        except CreditsError as error:
            st.error(str(error))
            st.stop()
        except ValueError as error:  # pydantic checks of the top-up rule
            st.error(f"Invalid scenario: {error}")
            st.stop()

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
        st.altair_chart(
            balance_chart(result.daily, result.events, None if spread is None else spread.band),
            width="stretch",
        )
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

        # ------------------------------------------------------------------ sandbox
        st.subheader("Sandbox: step through a user's credits")
        st.caption(
            "A copy of the user in memory: validate, reserve, confirm or fail, and "
            "expiry, with the platform's messages. The live ledger is never written."
        )
        box = st.session_state.get("sandbox")
        if st.button("Copy the user into the sandbox", disabled=not user_id):
            try:
                box = st.session_state.sandbox = Sandbox.copy_of(ledger, user_id)
            except CreditsError as error:
                st.error(str(error))
        if box is not None:
            credits = st.number_input("Credits", 1, 100_000_000, 1100, key="sandbox_credits")
            buttons = st.columns(5)
            if buttons[0].button("Validate"):
                box.validate(int(credits))
            if buttons[1].button("Reserve"):
                box.reserve(int(credits))
            for column, label, success in (
                (buttons[2], "Confirm (success)", True),
                (buttons[3], "Fail (release)", False),
            ):
                if column.button(label):
                    try:
                        box.confirm(success=success)
                    except CreditsError as error:
                        st.warning(str(error))
            if buttons[4].button("Advance 20 min (expiry)"):
                box.advance(20)
            last = box.steps[-1]
            (st.success if last.ok else st.error)(last.message)
            cells = st.columns(3)
            cells[0].metric("Total", f"{last.total:,}")
            cells[1].metric("Held", f"{last.held:,}")
            cells[2].metric("Available", f"{last.available:,}")
            show("Sandbox steps", box.log(), "sandbox_steps")

# ---------------------------------------------------------------------------- replay
with replay_tab:
    if replay_tab.open is not False:
        st.caption(
            "The real usage of the last N days priced again under a draft price book; read only."
        )
        days = st.number_input(
            "Days of usage", 1, MAX_DAYS, 30, key="replay_days", bind="query-params"
        )
        source = st.radio(
            "Draft",
            ["upload a TOML draft", "edit prices in a table"],
            key="draft",
            bind="query-params",
            horizontal=True,
        )
        try:
            edited = None
            if source == "upload a TOML draft":
                draft = draft_book("replay")
            else:
                draft = book
                current = book.catalog()[["model", "options", "credits"]]
                edited = st.data_editor(
                    current,
                    disabled=["model", "options"],
                    hide_index=True,
                    key="replay_editor",
                    width="stretch",
                    column_config=columns.configure(current)
                    | {"credits": st.column_config.NumberColumn("Credits", min_value=1)},
                )
                changes = catalog_diff(current, edited)
                st.caption(f"{len(changes)} SKUs edited.")
            inputs = (int(days), source, None if draft is None else draft.source,
                      None if edited is None else changes.to_json())  # fmt: skip
            if draft is not None and st.button("Run the replay", type="primary"):
                st.session_state.replay = (
                    inputs,
                    replay(ledger, draft, days=int(days), current=book, edited=edited),
                )
        except CreditsError as error:
            st.error(str(error))
            st.stop()
        ran_with, done = st.session_state.get("replay", (None, None))
        if done is not None and ran_with != inputs:
            st.info("The inputs changed since the last replay: run it again.")
        elif done is not None:
            st.success(
                f"Replayed {done.generations:,} generations from {done.since:%Y-%m-%d} to "
                f"{done.until:%Y-%m-%d} in {done.seconds:.2f} s (a plain count of the same rows: "
                f"{done.baseline_seconds:.3f} s), priced as at {done.at:%Y-%m-%d}."
            )
            cells = st.columns(4)
            cells[0].metric(
                "Credits burned after",
                f"{done.credits_after:,}",
                delta=f"{done.credits_after - done.credits_before:+,}",
            )
            cells[1].metric(
                "Revenue after",
                shell.usd(done.revenue_after),
                delta=shell.usd(done.revenue_after - done.revenue_before, signed=True),
            )
            cells[2].metric("Users paying more", f"{done.users_paying_more:,}")
            cells[3].metric("Users who run out earlier", f"{done.users_running_out_earlier:,}")
            by_model = done.by_model.melt(
                id_vars="model",
                value_vars=["credits_before", "credits_after"],
                var_name="book",
                value_name="credits",
            )
            st.altair_chart(
                alt.Chart(by_model)
                .mark_bar()
                .encode(
                    x=alt.X("credits:Q"),
                    y=alt.Y("model:N", title=None, axis=alt.Axis(labelLimit=0)),
                    color="book:N",
                    yOffset="book:N",
                    tooltip=["model", "book", "credits"],
                )
                .properties(height=360),
                width="stretch",
            )
            show("Summary", done.summary, "replay_summary")
            show("Per model", done.by_model, "replay_by_model")
            show("Per plan", done.by_plan, "replay_by_plan")
            show("Margin per SKU", done.by_sku, "replay_by_sku")
            show(
                "Users most affected",
                done.users,
                "replay_users",
                config={
                    "history": st.column_config.LinkColumn("History", display_text="open history")
                },
            )
