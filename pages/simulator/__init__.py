"""The parts of the balance simulator page (pages/balance_simulator.py): widgets and layout
only; every rule and number comes from credits_core.simulation.

- tables.py: a titled table with its CSV download, and the draft price book upload;
- scenario_tab.py: the scenario's form, its balance curve and its tables;
- sandbox.py: a real user's credits copied into memory and stepped through;
- replay_tab.py: real usage replayed under a draft price book.

This folder is a subfolder of `pages/`, so Streamlit does not list it as a page.
"""
