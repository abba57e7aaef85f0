"""Transaction history: one user's balance, grants, journal and holds; support actions."""

import uuid
from datetime import UTC, datetime, time, timedelta

import streamlit as st

from credits_core import support
from credits_core.access import Action
from credits_core.errors import CreditsError
from credits_core.ledger.values import ENTRY_KINDS
from pages import shell

identity = shell.page("Transaction history", Action.READ_HISTORY)
ledger = shell.ledger()

query = st.text_input("Find a user by id or email", key="user", bind="query-params")
if not query.strip():
    st.caption("Type a user id (u_123) or part of an email.")
    st.stop()
matches = ledger.find_accounts(query, limit=20)
if matches.empty:
    st.warning(f"No user id or email contains {query!r}.")
    st.stop()
exact = matches[matches["user_id"] == query.strip()]
if exact.empty:
    st.dataframe(matches, hide_index=True, width="stretch")
    user_id = st.selectbox("Pick a user", matches["user_id"].tolist())
else:
    user_id = query.strip()

account = ledger.account(user_id)
balance = ledger.balance(user_id)
st.subheader(f"{user_id} · {account.email or 'no email'} · plan {account.plan or 'none'}")
total, held, available = st.columns(3)
total.metric("Total", f"{balance.total:,}")
held.metric("Held", f"{balance.held:,}")
available.metric("Available", f"{balance.available:,}")

st.markdown("**Grants** (in burn order)")
st.dataframe(ledger.grants_frame(user_id), hide_index=True, width="stretch")

st.markdown("**Journal**")
today = ledger.now().date()
left, middle, right = st.columns([2, 2, 1])
since, until = left.date_input(
    "Between", value=(today - timedelta(days=90), today), max_value=today, key="journal_dates"
) or (today, today)
kinds = middle.multiselect("Kinds", ENTRY_KINDS, key="journal_kinds")
page_size = right.selectbox("Rows per page", [25, 50, 100], index=1)
window = {
    "since": datetime.combine(since, time.min, UTC),
    "until": datetime.combine(until, time.min, UTC) + timedelta(days=1),
    "kinds": kinds or None,
}
count = ledger.count_history(user_id, **window)
pages = max(1, -(-count // page_size))
page = st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1)
journal = ledger.history(user_id, **window, limit=page_size, offset=(page - 1) * page_size)
st.caption(f"{count:,} entries match; newest first; balance_after is the running balance.")
st.dataframe(journal, hide_index=True, width="stretch")
st.download_button(
    "Download these entries (CSV)",
    data=lambda: ledger.history(user_id, **window, limit=None).to_csv(index=False),
    file_name=f"{user_id}-journal.csv",
    mime="text/csv",
    on_click="ignore",
)

st.markdown("**Holds** (each generation on one row)")
holds = ledger.holds_life(user_id)
stuck = int(holds["stuck"].sum())
if stuck:
    st.error(f"{stuck} hold(s) are still pending past their expiry.")
shell.table(holds, flag="stuck")

if not identity.can(Action.ADJUST):
    st.stop()
st.subheader("Support actions")
pending = st.session_state.setdefault("pending_action", None)
adjust_tab, refund_tab = st.tabs(["Goodwill adjustment", "Refund a generation"])
with adjust_tab, st.form("adjust"):
    credits = st.number_input("Credits (negative to remove)", value=500, step=50)
    reason = st.text_input("Reason (required)", key="adjust_reason")
    if st.form_submit_button("Review adjustment"):
        st.session_state.pending_action = {
            "kind": "adjust", "user_id": user_id, "credits": int(credits),
            "reason": reason, "key": str(uuid.uuid4()),
        }  # fmt: skip
with refund_tab, st.form("refund"):
    captured = holds[(holds["status"] == "captured") & holds["refunded_at"].isna()]
    transaction = st.selectbox("Captured generation", captured["transaction_id"].tolist())
    reason = st.text_input("Reason (required)", key="refund_reason")
    if st.form_submit_button("Review refund") and transaction:
        st.session_state.pending_action = {
            "kind": "refund", "user_id": user_id, "transaction_id": transaction,
            "reason": reason, "key": str(uuid.uuid4()),
        }  # fmt: skip

action = st.session_state.pending_action
if action and action["user_id"] == user_id:
    what = (
        f"add {action['credits']:+,} credits to {user_id}"
        if action["kind"] == "adjust"
        else f"refund {action['transaction_id']} to {user_id}"
    )
    st.warning(f"Confirm: {what}, reason {action['reason']!r}, booked as {identity.actor}.")
    confirm, cancel = st.columns(2)
    if confirm.button("Confirm", type="primary"):
        try:
            if action["kind"] == "adjust":
                support.goodwill_adjustment(
                    ledger, identity, user_id, action["credits"], action["reason"], action["key"]
                )
            else:
                support.refund_generation(
                    ledger, identity, action["transaction_id"], action["reason"], action["key"]
                )
        except CreditsError as error:
            st.error(str(error))
        else:
            st.session_state.pending_action = None
            st.toast("Booked.")
            st.rerun()
    if cancel.button("Cancel"):
        st.session_state.pending_action = None
        st.rerun()
