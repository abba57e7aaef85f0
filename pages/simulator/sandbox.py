"""The sandbox part of the balance simulator: a real user's credits copied into memory and
stepped through (validate, reserve, confirm or fail, expiry) with the platform's messages.
The live ledger is never written."""

from __future__ import annotations

import streamlit as st

from credits_core.errors import CreditsError
from credits_core.ledger import Ledger
from credits_core.simulation.sandbox import Sandbox
from pages.simulator.tables import show


def sandbox(ledger: Ledger, user_id: str) -> None:
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
        steps(box)


def steps(box: Sandbox) -> None:
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
