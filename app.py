"""Home: the platform at a glance, and the way to every page."""

import altair as alt
import pandas as pd
import streamlit as st

from credits_core import alerts
from credits_core.server.jobs import job_table
from pages import shell

NOTHING_CONSUMED = "No credits were consumed in the last {days} days."


def consumption_chart(frame: pd.DataFrame, days: int, chart: alt.Chart) -> None:
    """The chart of what was consumed, or a line saying nothing was."""
    if frame.empty:
        st.caption(NOTHING_CONSUMED.format(days=days))
    else:
        st.altair_chart(chart, width="stretch")


shell.page("Credits back office")
ledger = shell.ledger()
now = ledger.now()
overview = ledger.overview()

top, bottom = st.columns(3), st.columns(3)
top[0].metric("Accounts", f"{overview.accounts:,}")
top[1].metric("Credits outstanding", f"{overview.outstanding:,}")
top[2].metric("Held now", f"{overview.held:,}")
bottom[0].metric("Consumed today", f"{overview.consumed_today:,}")
bottom[1].metric("Consumed, last 7 days", f"{overview.consumed_7d:,}")
open_alerts = alerts.open_alert_counts(ledger)
bottom[2].metric(
    "Open alerts",
    f"{open_alerts.total:,}",
    help="Low-credit alerts open now; the Low-credit alerts page lists them.",
)
bottom[2].caption(open_alerts.describe())

left, right = st.columns(2)
with left:
    st.markdown("**Credits consumed per day, last 30 days**")
    daily = ledger.consumption_by_day(days=30)
    consumption_chart(
        daily,
        30,
        alt.Chart(daily)
        .mark_bar()
        .encode(x=alt.X("day:T", title=None), y=alt.Y("credits:Q", title="credits")),
    )
with right:
    st.markdown("**Top models by credits, last 7 days**")
    models = ledger.top_models(days=7, limit=8)
    consumption_chart(
        models,
        7,
        alt.Chart(models)
        .mark_bar()
        .encode(
            x=alt.X("credits:Q", title="credits"),
            y=alt.Y("model:N", sort="-x", title=None, axis=alt.Axis(labelLimit=0)),
            tooltip=[alt.Tooltip("model:N"), alt.Tooltip("credits:Q", format=",")],
        ),
    )
jobs = job_table()
if jobs is None:
    st.caption("Background jobs (expiry, alerts, outbox) run in `credits serve`, not here.")
else:
    st.markdown("**Background jobs**")
    st.dataframe(
        jobs,
        hide_index=True,
        width="stretch",
        column_config={
            "last_run_at": st.column_config.DatetimeColumn("last run", format="HH:mm:ss"),
            "ok": st.column_config.CheckboxColumn("ok"),
        },
    )
version = shell.price_book().version_at(now)
st.caption(f"Price book {version.version}, in force since {version.effective_from:%Y-%m-%d}.")
