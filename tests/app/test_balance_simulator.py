"""Balance simulator page (AppTest): inputs from the URL, results from credits_core, the
sandbox, the replay tab, roles, and a live ledger that stays byte-for-byte the same."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from credits_core.alerts.rules import AlertRules
from credits_core.ledger import InsufficientCredits, Ledger
from credits_core.plans import Plans
from credits_core.pricing import PriceBook
from credits_core.simulation import PlanTerms, Scenario, TopUpPolicy, simulate
from credits_core.simulation.links import decode_mix

PAGE = "pages/balance_simulator.py"
PRODUCT = "pat@corp.example"
MIX = "FLUX.1 Kontext [pro]~~1;Music 1.5~~0.5"
QUERY = {"mix": MIX, "balance": "1000", "monthly": "0", "days": "20", "runs": "0",
         "start": "2026-12-01", "plan": "standard"}  # fmt: skip


def metric(app, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def button(app, label: str):
    return next(b for b in app.button if b.label == label)


def test_scenario_from_the_url_matches_the_core(open_page):
    app = open_page(PAGE, email=PRODUCT, **QUERY)
    plans = Plans.load()
    scenario = Scenario.build(
        plan=PlanTerms.from_plans("standard").model_copy(update={"monthly_credits": 0}),
        start=datetime(2026, 12, 1, tzinfo=UTC), horizon_days=20, starting_balance=1000,
        topup=TopUpPolicy(pack_credits=plans.topup.pack_credits, threshold=500, target=5000),
        mix=decode_mix(MIX),
    )  # fmt: skip
    expected = simulate(scenario, PriceBook.load(), AlertRules.load())
    assert app.number_input(key="days").value == 20
    assert metric(app, "Runs dry on") == f"{expected.depletion_date:%Y-%m-%d}"
    assert metric(app, "Providers cost us") == f"${expected.money['usd'].iloc[3]:,.2f}"
    daily = next(d.value for d in app.dataframe if "available" in d.value.columns
                 and "refused" in d.value.columns)  # fmt: skip
    assert daily["available"].tolist() == expected.daily["available"].tolist()
    alerts = next(d.value for d in app.dataframe if "first_day" in d.value.columns)
    assert alerts["rule"].tolist() == expected.alerts["rule"].tolist()


def test_balance_chart_marks_grants_and_depletion(open_page):
    app = open_page(PAGE, email=PRODUCT, **{**QUERY, "monthly": "3000", "days": "40"})
    spec = json.loads(app.get("vega_lite_chart")[0].proto.spec)
    assert len(spec["layer"]) == 2  # the balance line and the event markers
    events = next(d.value for d in app.dataframe if "event" in d.value.columns)
    assert {"plan grant", "depleted"} <= set(events["event"])


def test_random_runs_draw_a_median_band(open_page):
    app = open_page(PAGE, email=PRODUCT, **{**QUERY, "runs": "100", "seed": "4"})
    spec = json.loads(app.get("vega_lite_chart")[0].proto.spec)
    assert len(spec["layer"]) == 4  # band, median, balance, markers
    summary = next(d.value for d in app.dataframe if "measure" in d.value.columns)
    assert summary.set_index("measure").loc["runs", "value"] == "100"


def test_support_is_refused(open_page):
    app = open_page(PAGE, email="sam@corp.example")
    assert "Your roles do not include this page (Balance simulator)" in app.error[0].value
    assert not app.metric


def test_a_broken_mix_in_the_url_says_what_is_wrong(open_page):
    app = open_page(PAGE, email=PRODUCT, **{**QUERY, "mix": "Music 1.5~~often"})
    assert "per_day must be a number, not 'often'" in app.error[0].value


def test_a_mix_row_that_does_not_price_is_flagged_and_the_rest_still_runs(open_page):
    mix = "Gen-9~~1;Music 1.5~~2;MiniMax-Hailuo-02~resolution=1080P,duration=10~1"
    app = open_page(PAGE, email=PRODUCT, **{**QUERY, "mix": mix})
    warnings = [w.value for w in app.warning]
    assert warnings[0].startswith("Row 1 (Gen-9) left out: Unknown model 'Gen-9'")
    assert "credits catalog" not in warnings[0]
    assert "Row 3 (MiniMax-Hailuo-02 · resolution=1080P, duration=10) left out" in warnings[1]
    assert not app.error
    picked = app.dataframe[0].value  # the mix editor, every row still in place
    assert len(picked) == 3
    burned = app.dataframe[3].value  # then alerts, events, credits burned per model
    assert burned["model"].tolist() == ["Music 1.5"]
    assert app.query_params["mix"] == "Music 1.5~~2"


def test_sandbox_steps_show_the_platforms_messages(open_page, demo_db):
    with Ledger.open(demo_db) as ledger:  # as the page's shell opens it, in this process
        available = ledger.balance("u_12").available
    app = open_page(PAGE, email=PRODUCT, user="u_12", **QUERY)
    button(app, "Copy the user into the sandbox").click().run()
    assert metric(app, "Available") == f"{available:,}"
    app.number_input(key="sandbox_credits").set_value(available + 1).run()
    button(app, "Validate").click().run()
    assert app.error[0].value == str(InsufficientCredits(available + 1, available))
    app.number_input(key="sandbox_credits").set_value(available).run()
    button(app, "Reserve").click().run()
    assert metric(app, "Held") == f"{available:,}"
    assert metric(app, "Available") == "0"
    button(app, "Fail (release)").click().run()
    assert "Released" in app.success[0].value
    assert metric(app, "Held") == "0"


def test_replay_tab_reports_the_time_and_changes_nothing(open_page, demo_db):
    digest = hashlib.sha256(demo_db.read_bytes()).hexdigest()
    app = open_page(PAGE, email=PRODUCT, tab="Price-change replay",
                    draft="edit prices in a table", replay_days="30")  # fmt: skip
    button(app, "Run the replay").click().run()
    assert not app.exception
    message = app.success[0].value
    assert message.startswith("Replayed ") and " s (a plain count of the same rows: " in message
    assert metric(app, "Users paying more") == "0"  # the table was not edited
    users = next(d.value for d in app.dataframe if "days_earlier" in d.value.columns)
    assert users.empty
    sandbox = open_page(PAGE, email=PRODUCT, user="u_12", **QUERY)
    button(sandbox, "Copy the user into the sandbox").click().run()
    button(sandbox, "Reserve").click().run()
    assert hashlib.sha256(demo_db.read_bytes()).hexdigest() == digest
