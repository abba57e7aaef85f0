"""Support log: every adjustment, refund and grant a person booked, across all users."""

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from credits_core.access import Action
from credits_core.ledger.reports import SUPPORT_KINDS, SupportLogFilter
from pages import shell

PAGE_SIZE = 50

shell.page("Support log", Action.READ_HISTORY)
ledger = shell.ledger()

today = ledger.now().date()
agent_col, user_col, kinds_col, dates_col = st.columns([2, 2, 2, 2])
agent = agent_col.text_input("Agent contains", key="agent", bind="query-params")
user = user_col.text_input("User id or email contains", key="log_user", bind="query-params")
kinds = kinds_col.multiselect("Kinds", list(SUPPORT_KINDS), key="log_kinds")
since, until = dates_col.date_input(
    "Between (UTC days, both included)",
    value=(today - timedelta(days=90), today),
    max_value=today,
    key="log_dates",
) or (today, today)
where = SupportLogFilter(
    agent=agent,
    user=user,
    kinds=tuple(kinds),
    since=datetime.combine(since, time.min, UTC),
    until=datetime.combine(until, time.min, UTC) + timedelta(days=1),
)
count = ledger.count_support_log(where)
pages = max(1, -(-count // PAGE_SIZE))
page = st.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, value=1)
st.caption(f"{count:,} support actions match; newest first.")
shell.table(
    ledger.support_log(where, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE),
    key="support_log",
    main=["ts", "agent", "user_id", "kind", "credits", "reason"],
    config={"reason": st.column_config.TextColumn("Reason", width="large")},
)
st.download_button(
    "Download every matching action (CSV)",
    data=lambda: ledger.support_log(where, limit=None).to_csv(index=False),
    file_name=f"support-log-{since}-{until}.csv",
    mime="text/csv",
    on_click="ignore",
)
