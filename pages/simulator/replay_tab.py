"""The price-change replay tab of the balance simulator: the real usage of the last N days
priced again under a draft price book (uploaded, or the catalog edited in a table); read
only. The replay runs on a button and is kept until its inputs change."""

from __future__ import annotations

import altair as alt
import streamlit as st

from credits_core.errors import CreditsError
from credits_core.ledger import Ledger
from credits_core.pricing import PriceBook
from credits_core.pricing.book import catalog_diff
from credits_core.simulation.replay import MAX_DAYS, Replay, replay
from pages import shell
from pages.shell import columns
from pages.simulator.tables import draft_book, show


def replay_tab(book: PriceBook, ledger: Ledger) -> None:
    st.caption(
        "The real usage of the last N days priced again under a draft price book; read only."
    )
    days = st.number_input("Days of usage", 1, MAX_DAYS, 30, key="replay_days", bind="query-params")
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
        results(done)


def results(done: Replay) -> None:
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
    st.altair_chart(credits_by_model_chart(done), width="stretch")
    show("Summary", done.summary, "replay_summary")
    show("Per model", done.by_model, "replay_by_model")
    show("Per plan", done.by_plan, "replay_by_plan")
    show("Margin per SKU", done.by_sku, "replay_by_sku")
    show(
        "Users most affected",
        done.users,
        "replay_users",
        config={"history": st.column_config.LinkColumn("History", display_text="open history")},
    )


def credits_by_model_chart(done: Replay) -> alt.Chart:
    """Credits burned per model under the current and the draft book, side by side."""
    by_model = done.by_model.melt(
        id_vars="model",
        value_vars=["credits_before", "credits_after"],
        var_name="book",
        value_name="credits",
    )
    return (
        alt.Chart(by_model)
        .mark_bar()
        .encode(
            x=alt.X("credits:Q"),
            y=alt.Y("model:N", title=None, axis=alt.Axis(labelLimit=0)),
            color="book:N",
            yOffset="book:N",
            tooltip=["model", "book", "credits"],
        )
        .properties(height=360)
    )
