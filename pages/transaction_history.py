"""Transaction history: one user's balance, grants, journal and holds; support actions."""

import uuid
from datetime import UTC, datetime, time, timedelta

import streamlit as st

from credits_core import support
from credits_core.access import Action
from credits_core.errors import CreditsError
from credits_core.ledger.values import ENTRY_KINDS
from credits_core.support_review import (
    SupportInputError,
    refundable,
    review_adjustment,
    review_refund,
)
from pages import shell
from pages.shell import columns

SHOWN_MATCHES = 20

identity = shell.page("Transaction history", Action.READ_HISTORY)
ledger = shell.ledger()


def pick_user() -> None:
    """The agent picked a user from the matches: search for exactly that user."""
    st.session_state.user = st.session_state.picked_user


query = st.text_input("Find a user by id or email", key="user", bind="query-params").strip()
if not query:
    st.caption("Type a user id (u_123) or part of an email.")
    st.stop()
matches = ledger.find_accounts(query, limit=SHOWN_MATCHES)
count = ledger.count_accounts(query)
exact = matches[(matches["user_id"] == query) | (matches["email"].str.lower() == query.lower())]
if count == 0:
    st.warning(f"No user id or email contains {query!r}.")
    st.stop()
if len(exact) == 1 or count == 1:
    user_id = (exact if len(exact) == 1 else matches)["user_id"].iloc[0]
else:
    listed = f"the first {len(matches):,} are listed" if count > len(matches) else "all listed"
    st.markdown(f"**{count:,} users match {query!r}** ({listed}). Pick one to open it.")
    shell.table(
        matches,
        key="matches",
        main=["user_id", "email", "plan", "available"],
        height=min(36 * (len(matches) + 1) + 3, 400),
    )
    st.selectbox(
        "Pick a user",
        matches["user_id"].tolist(),
        index=None,
        placeholder="Choose the user to open",
        format_func=lambda u: f"{u} · {matches.set_index('user_id').at[u, 'email'] or 'no email'}",
        key="picked_user",
        on_change=pick_user,
    )
    if count > len(matches):
        st.caption("Not in the list? Type more of the id or email.")
    st.stop()

account = ledger.account(user_id)
balance = ledger.balance(user_id)
st.subheader(f"{user_id} · {account.email or 'no email'} · plan {account.plan or 'none'}")
total, held, available = st.columns(3)
total.metric("Total", f"{balance.total:,}")
held.metric("Held", f"{balance.held:,}")
available.metric(
    "Available", f"{balance.available:,}", help="What the user can spend now: total - held."
)

st.markdown("**Grants** (in burn order)")
shell.table(
    ledger.grants_frame(user_id),
    key="grants",
    main=["kind", "credits", "remaining", "expires_at", "status", "reason"],
)

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
entries = ledger.count_history(user_id, **window)
pages = max(1, -(-entries // page_size))
page = st.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, value=1)
journal = ledger.history(user_id, **window, limit=page_size, offset=(page - 1) * page_size)
st.caption(f"{entries:,} entries match; newest first; balance after is the running balance.")
shell.table(
    journal,
    key="journal",
    main=["ts", "kind", "credits", "balance_after", "model", "actor", "reason"],
    config={"credits": st.column_config.NumberColumn("Credits", format=columns.SIGNED, width=75)},
)
st.download_button(
    "Download these entries (CSV)",
    data=lambda: support.journal_csv(ledger, user_id, **window),
    file_name=f"{user_id}-journal.csv",
    mime="text/csv",
    on_click="ignore",
)

st.markdown("**Holds** (each generation on one row)")
holds = ledger.holds_life(user_id)
stuck = int(holds["stuck"].sum())
if stuck:
    st.error(f"{stuck} hold(s) are still pending past their expiry.")
shell.table(
    holds,
    key="holds",
    flag="stuck",
    main=["reserved_at", "model", "credits", "status", "captured", "refunded_at", "stuck"],
)

if not identity.can(Action.ADJUST):
    st.stop()


def show_problems(error: SupportInputError) -> None:
    st.error("Not booked. Fix this first:\n" + "\n".join(f"- {p}" for p in error.problems))


def review(kind: str, check) -> None:
    """Check the action; keep it for confirmation when it passes, else say why."""
    st.session_state.booked = None
    try:
        proposal = check()
    except SupportInputError as error:
        st.session_state.pending_action = None
        show_problems(error)
    else:
        st.session_state.pending_action = {"kind": kind, "proposal": proposal,
                                            "key": str(uuid.uuid4())}  # fmt: skip


def confirm_area(kind: str) -> None:
    """Below the form that made it: the checked action with Confirm and Cancel, or what
    the last confirmation booked."""
    action = st.session_state.get("pending_action")
    booked = st.session_state.get("booked")
    if booked and booked[0] == kind and booked[1] == user_id:
        st.success(booked[2])
    if not action or action["kind"] != kind or action["proposal"].user_id != user_id:
        return
    proposal = action["proposal"]
    st.warning(
        f"Confirm: {proposal.describe()} Reason: {proposal.reason!r}. Booked as {identity.actor}."
    )
    confirm, cancel = st.columns(2)
    if confirm.button("Confirm", type="primary", key=f"confirm_{kind}"):
        try:
            if kind == "adjust":
                support.goodwill_adjustment(
                    ledger, identity, user_id, proposal.credits, proposal.reason, action["key"]
                )
            else:
                support.refund_generation(
                    ledger, identity, proposal.transaction_id, proposal.reason, action["key"]
                )
        except CreditsError as error:
            st.error(f"Not booked: {error}")
        else:
            st.session_state.pending_action = None
            st.session_state.booked = (kind, user_id, f"Booked: {proposal.describe()}")
            st.rerun()
    if cancel.button("Cancel", key=f"cancel_{kind}"):
        st.session_state.pending_action = None
        st.rerun()


st.subheader("Support actions")
st.caption(f"For {user_id} ({account.email or 'no email'}), booked as {identity.actor}.")
adjust_tab, refund_tab = st.tabs(["Goodwill adjustment", "Refund a generation"])
with adjust_tab:
    with st.form("adjust"):
        credits = st.text_input(
            "Credits (negative to remove)", placeholder="500 or -200", key="adjust_credits"
        )
        reason = st.text_input("Reason (required)", key="adjust_reason")
        submitted = st.form_submit_button("Review adjustment")
    if submitted:
        review("adjust", lambda: review_adjustment(ledger, identity, user_id, credits, reason))
    confirm_area("adjust")
with refund_tab:
    with st.form("refund"):
        transaction = st.selectbox(
            "Captured generation",
            refundable(holds)["transaction_id"].tolist(),
            index=None,
            placeholder="Pick a captured generation",
        )
        reason = st.text_input("Reason (required)", key="refund_reason")
        submitted = st.form_submit_button("Review refund")
    if submitted:
        review("refund", lambda: review_refund(ledger, identity, user_id, transaction, reason))
    confirm_area("refund")
