"""Low-credit alerts: users in alert by severity, acknowledgement, rules and their editor,
the notification outbox and alert history. The live part refreshes itself."""

from datetime import timedelta

import altair as alt
import streamlit as st

from credits_core import alerts
from credits_core.access import Action
from credits_core.errors import CreditsError
from pages import shell

REFRESH = timedelta(seconds=5)

identity = shell.page("Low-credit alerts", Action.READ_ALERTS)
ledger = shell.ledger()
try:
    rules = alerts.AlertRules.load()
except CreditsError as error:
    st.error(str(error))
    st.stop()


@st.fragment(run_every=REFRESH)
def users_in_alert() -> None:
    counts = alerts.open_alert_counts(ledger)
    outbox = alerts.outbox_counts(ledger)
    cells = st.columns(5)
    cells[0].metric("Open alerts", f"{counts.total:,}")
    for cell, severity in zip(cells[1:4], reversed(alerts.SEVERITIES), strict=True):
        cell.metric(severity.capitalize(), f"{counts.by_severity[severity]:,}")
    cells[4].metric(
        "Outbox pending",
        f"{outbox['pending']:,}",
        help=f"{outbox['delivered']:,} delivered, {outbox['failed']:,} failed for good.",
    )
    left, middle, right = st.columns([2, 2, 2])
    severities = left.multiselect(
        "Severity", alerts.SEVERITIES, default=list(alerts.SEVERITIES), key="severities"
    )
    chosen_rules = middle.multiselect("Rule", [r.name for r in rules], key="rules")
    search = right.text_input("User id or email contains", key="search")
    unacknowledged = st.checkbox("Only alerts nobody acknowledged yet", key="unacknowledged")
    frame = alerts.users_in_alert(
        ledger,
        severities=severities,
        rules=chosen_rules,
        search=search,
        unacknowledged_only=unacknowledged,
    )
    st.caption(
        f"{len(frame):,} open alerts shown, most severe first; burn and days left at the "
        f"rate of the last 7 days. Refreshes every {REFRESH.seconds} s."
    )
    st.dataframe(
        frame.drop(columns=["alert_id"]),
        hide_index=True,
        width="stretch",
        column_config={
            "user_id": "User",
            "email": "Email",
            "plan": "Plan",
            "rule": "Rule",
            "severity": "Severity",
            "available": st.column_config.NumberColumn("Available", format="%d"),
            "burn_per_day": st.column_config.NumberColumn("Burn per day", format="%.1f"),
            "days_left": st.column_config.NumberColumn("Days left", format="%.1f"),
            "opened_at": st.column_config.DatetimeColumn("Opened", format="YYYY-MM-DD HH:mm"),
            "acknowledged_at": st.column_config.DatetimeColumn(
                "Acknowledged", format="YYYY-MM-DD HH:mm"
            ),
            "acknowledged_by": "By",
            "note": "Note",
            "history": st.column_config.LinkColumn("History", display_text="open history"),
        },
    )
    st.markdown("**Alerts opened and resolved per day, last 30 days**")
    daily = alerts.alerts_per_day(ledger, days=30)
    st.altair_chart(
        alt.Chart(daily)
        .mark_bar()
        .encode(
            x="day:T",
            y="alerts:Q",
            color=alt.Color("event:N", scale=alt.Scale(range=["#d62728", "#2ca02c"])),
            xOffset="event:N",
        ),
        width="stretch",
    )
    if identity.can(Action.ACKNOWLEDGE_ALERT):
        st.subheader("Acknowledge an alert")
        acknowledge_form()


def acknowledge_form() -> None:
    open_alerts = alerts.users_in_alert(ledger, unacknowledged_only=True)
    if open_alerts.empty:
        st.caption("No open alert is waiting for an acknowledgement.")
        return
    with st.form("acknowledge"):
        alert_id = st.selectbox("Alert", open_alerts["alert_id"].tolist())
        note = st.text_input("Note (required): what was done", key="ack_note")
        if st.form_submit_button("Acknowledge"):
            try:
                alerts.acknowledge(ledger, identity, alert_id, note)
            except CreditsError as error:
                st.error(str(error))
            else:
                st.toast(f"Acknowledged {alert_id}.")


def rules_editor() -> None:
    frame = alerts.rules_frame(rules)
    st.caption(f"From {alerts.AlertRules.default_path()}. Empty cells do not apply to the kind.")
    if not identity.can(Action.EDIT_ALERT_RULES):
        st.dataframe(frame, hide_index=True, width="stretch")
        return
    edited = st.data_editor(
        frame,
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        key="rules_editor",
        column_config={
            "kind": st.column_config.SelectboxColumn(options=alerts.KINDS, required=True),
            "severity": st.column_config.SelectboxColumn(options=alerts.SEVERITIES, required=True),
        },
    )
    if st.button("Save rules", type="primary"):
        try:
            change = alerts.save_rules(ledger, identity, alerts.rules_from_frame(edited))
        except CreditsError as error:
            st.error(str(error))
        else:
            st.toast(f"Rules saved: {change.summary}.")
            st.rerun()
    st.markdown("**Changes to the rules**")
    st.dataframe(
        alerts.rule_changes(ledger).drop(columns=["change_id"]), hide_index=True, width="stretch"
    )


live, rules_tab, outbox_tab, history_tab = st.tabs(["Users in alert", "Rules", "Outbox", "History"])
with live:
    if st.button("Evaluate the rules now", help="A cron runs `credits alerts evaluate` too."):
        try:
            result = alerts.Evaluator(ledger, rules).evaluate()
        except CreditsError as error:
            st.error(str(error))
        else:
            st.toast(
                f"{result.users:,} users in {result.seconds:.2f} s: {result.opened:,} opened, "
                f"{result.resolved:,} resolved."
            )
    users_in_alert()
with rules_tab:
    rules_editor()
with outbox_tab:
    status = st.selectbox("Status", ["all", "pending", "delivered", "failed"], key="outbox")
    st.dataframe(
        alerts.outbox_frame(ledger, status=None if status == "all" else status),
        hide_index=True,
        width="stretch",
    )
with history_tab:
    user = st.text_input("User id (empty: everyone)", key="history_user")
    st.dataframe(
        alerts.alert_history(ledger, user.strip() or None), hide_index=True, width="stretch"
    )
