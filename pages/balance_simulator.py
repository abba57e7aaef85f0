"""Balance simulator: a plan and a usage mix over a horizon; the support sandbox; real usage
replayed under a draft price book. Nothing on this page writes the live ledger. Each tab is
a part in pages/simulator/."""

import streamlit as st

from credits_core.access import Action
from pages import shell
from pages.simulator.replay_tab import replay_tab
from pages.simulator.scenario_tab import scenario_tab

shell.page("Balance simulator", Action.SIMULATE)
book = shell.price_book()
ledger = shell.ledger()

scenario, replay = st.tabs(["Scenario", "Price-change replay"], key="tab", bind="query-params")
with scenario:
    if scenario.open is not False:
        scenario_tab(book, ledger, shell.plans())
with replay:
    if replay.open is not False:
        replay_tab(book, ledger)
