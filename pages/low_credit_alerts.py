"""Low-credit alerts: users in alert by severity, acknowledgement, rules and their editor,
the notification outbox and alert history. The live part refreshes itself."""

from datetime import timedelta

import altair as alt
import streamlit as st

from credits_core import alerts
from credits_core.access import Action
from credits_core.errors import CreditsError
from pages import shell
from pages.shell import columns

REFRESH = timedelta(seconds=5)

identity = shell.page("Low-credit alerts", Action.READ_ALERTS)
ledger = shell.ledger()
try:
    rules = shell.alert_rules()  # read again as soon as the file changes (a saved edit)
except CreditsError as error:
    st.error(str(error))
    st.stop()


PAGE_SIZE = 50


@st.fragment(run_every=REFRESH)
def users_in_alert() -> None:
    counts = alerts.open_alert_counts(ledger)
    cells = st.columns(5)
    cells[0].metric("Users in alert", f"{counts.users:,}")
    cells[1].metric("Open alerts", f"{counts.total:,}", help="One per user and matching rule.")
    for cell, severity in zip(cells[2:5], reversed(alerts.SEVERITIES), strict=True):
        cell.metric(severity.capitalize(), f"{counts.by_severity[severity]:,}")
    left, middle, right = st.columns([2, 2, 2])
    severities = left.multiselect(
        "Most severe alert",
        alerts.SEVERITIES,
        default=list(alerts.SEVERITIES),
        key="severities",
        help="Users whose most severe open alert has one of these severities.",
    )
    chosen_rules = middle.multiselect("Rule", [r.name for r in rules], key="rules")
    search = right.text_input("User id or email contains", key="search")
    unacknowledged = st.checkbox("Only users nobody acknowledged yet", key="unacknowledged")
    where = {
        "severities": severities,
        "rules": chosen_rules,
        "search": search,
        "unacknowledged_only": unacknowledged,
    }
    total = alerts.count_users_in_alert(ledger, **where)
    pages = max(1, -(-total // PAGE_SIZE))
    page = st.number_input(f"Page (of {pages:,})", 1, pages, 1, key="alerts_page")
    frame = alerts.users_in_alert(ledger, **where, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    first = (page - 1) * PAGE_SIZE + 1 if total else 0
    st.caption(
        f"{total:,} users in alert match; {first:,}-{first + len(frame) - 1 if total else 0:,} "
        f"shown, most severe first. Burn and days left at the rate of the last 7 days. "
        f"Refreshes every {REFRESH.seconds} s."
    )
    shell.table(
        frame,
        key="users_in_alert",
        main=[
            "user_id",
            "severity",
            "rules",
            "available",
            "burn_per_day",
            "days_left",
            "opened_at",
            "acknowledged_by",
            "history",
        ],
        config={
            "history": st.column_config.LinkColumn("History", display_text="open history"),
            "opened_at": st.column_config.DatetimeColumn("Opened", format=columns.WHEN),
            "acknowledged_at": st.column_config.DatetimeColumn("Acknowledged", format=columns.WHEN),
            "acknowledged_by": st.column_config.TextColumn("Acknowledged by"),
            "alert_id": st.column_config.TextColumn("Most severe alert"),
        },
    )
    st.markdown("**Alerts opened and resolved per day, last 30 days**")
    daily = alerts.alerts_per_day(ledger, days=30)
    st.altair_chart(
        alt.Chart(daily)
        .mark_bar()
        .encode(
            x=alt.X("day:T", title=None),
            y=alt.Y("alerts:Q", title="alerts"),
            color=alt.Color("event:N", scale=alt.Scale(range=["#d62728", "#2ca02c"])),
            xOffset="event:N",
        ),
        width="stretch",
    )
    if identity.can(Action.ACKNOWLEDGE_ALERT):
        st.subheader("Acknowledge a user's alerts")
        acknowledge_form()


def acknowledge_form() -> None:
    waiting = alerts.users_in_alert(ledger, unacknowledged_only=True, limit=500)
    if waiting.empty:
        st.caption("No user in alert is waiting for an acknowledgement.")
        return
    labels = {row.user_id: f"{row.user_id} · {row.severity} · {row.rules}"
              for row in waiting.itertuples()}  # fmt: skip
    with st.form("acknowledge"):
        user_id = st.selectbox("User", list(labels), format_func=labels.get, key="ack_user")
        note = st.text_input("Note (required): what was done", key="ack_note")
        submitted = st.form_submit_button("Acknowledge")
    if submitted:
        try:
            count = alerts.acknowledge_user(ledger, identity, user_id, note)
        except CreditsError as error:
            st.session_state.acknowledged = None
            st.error(str(error))
        else:  # kept until the next acknowledgement: the list refreshes every few seconds
            st.session_state.acknowledged = f"Acknowledged {count} open alert(s) of {user_id}."
    if st.session_state.get("acknowledged"):
        st.success(st.session_state.acknowledged)


def outbox() -> None:
    state = alerts.outbox_state(ledger)
    cells = st.columns(4)
    cells[0].metric(
        "Pending", f"{state.pending:,}", help=f"{state.retrying:,} of them after a failed attempt."
    )
    cells[1].metric(
        "Sent",
        f"{state.sent:,}",
        help=None
        if state.last_sent_at is None
        else f"Last sent {state.last_sent_at:%Y-%m-%d %H:%M} UTC.",
    )
    cells[2].metric("Failed for good", f"{state.failed:,}")
    cells[3].metric(
        "Last error",
        "none" if state.last_error_at is None else f"{state.last_error_at:%Y-%m-%d %H:%M}",
    )
    if "retried" in st.session_state:
        count = st.session_state.pop("retried")
        st.success(f"{count:,} message(s) are pending again and go out with the next delivery.")
    if state.last_error:
        st.error(f"Last delivery error: {state.last_error}")
    st.caption(
        "The ledger server (`credits serve`) delivers the outbox as a background job, "
        "retrying failures with a growing wait; a message that fails 8 times stays failed "
        "until someone retries it here."
    )
    if state.failed and identity.can(Action.ACKNOWLEDGE_ALERT):
        failed = alerts.outbox_frame(ledger, status="failed", limit=None)
        picked = st.multiselect(
            "Failed messages to retry (none picked: all of them)",
            failed["message_id"].tolist(),
            key="retry_ids",
        )
        if st.button("Retry failed messages", type="primary"):
            st.session_state.retried = alerts.retry_failed(ledger, identity, picked or None)
            st.rerun()
    status = st.selectbox(
        "Status", ["all", *alerts.OUTBOX_STATUSES], key="outbox",
        format_func=lambda s: {"delivered": "sent"}.get(s, s),
    )  # fmt: skip
    shell.table(
        alerts.outbox_frame(ledger, status=None if status == "all" else status),
        key="outbox_table",
        main=[
            "created_at",
            "user_id",
            "severity",
            "rule",
            "status",
            "attempts",
            "delivered_at",
            "last_error",
        ],
        config={"rule": st.column_config.TextColumn("Rules", width="medium")},
    )


def rules_editor() -> None:
    frame = alerts.rules_frame(rules)
    st.caption(f"From {alerts.AlertRules.default_path()}. Empty cells do not apply to the kind.")
    if not identity.can(Action.EDIT_ALERT_RULES):
        shell.table(frame, key="rules_table")
        return
    edited = st.data_editor(
        frame,
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        key="rules_editor",
        column_config=columns.configure(frame)
        | {
            "kind": st.column_config.SelectboxColumn("Kind", options=alerts.KINDS, required=True),
            "severity": st.column_config.SelectboxColumn(
                "Severity", options=alerts.SEVERITIES, required=True
            ),
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
    shell.table(alerts.rule_changes(ledger).drop(columns=["change_id"]), key="rule_changes")


live, rules_tab, outbox_tab, history_tab = st.tabs(["Users in alert", "Rules", "Outbox", "History"])
with live:
    if st.button(
        "Evaluate the rules now",
        help="The ledger server evaluates the users each write touches, and everyone every "
        "5 minutes; this runs a full evaluation at once.",
    ):
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
    outbox()
with history_tab:
    user = st.text_input("User id (empty: everyone)", key="history_user")
    shell.table(alerts.alert_history(ledger, user.strip() or None), key="alert_history")
