"""The rule file: the shipped rules cover every kind; bad rules are refused whole with a
message naming what is wrong; saving replaces the file atomically and records who."""

from __future__ import annotations

import pandas as pd
import pytest

from credits_core.access import AccessDenied, Identity, Role
from credits_core.alerts import (
    KINDS,
    AlertRules,
    AlertRulesError,
    rule_changes,
    rules_frame,
    rules_from_frame,
    save_rules,
)
from tests.alerts.conftest import DEFAULT_RULES, rule_set

PRODUCT = Identity("pia@corp.example", frozenset({Role.PRODUCT}), "login")
SUPPORT = Identity("sam@corp.example", frozenset({Role.SUPPORT}), "login")
LOW = {"name": "low", "kind": "available_below", "severity": "critical",
       "below": 200, "resolve_at": 500}  # fmt: skip


def test_the_shipped_rules_cover_every_kind_and_severity():
    rules = AlertRules.load(DEFAULT_RULES)
    assert {rule.kind for rule in rules} == set(KINDS)
    assert {rule.severity for rule in rules} == {"info", "warning", "critical"}


def test_load_reads_the_file_named_by_the_environment(rules_file):
    rules_file.write_text(rule_set(LOW).to_toml(), encoding="utf-8")
    assert [rule.name for rule in AlertRules.load()] == ["low"]


def test_rules_round_trip_through_toml():
    rules = AlertRules.load(DEFAULT_RULES)
    assert AlertRules.loads(rules.to_toml()) == rules


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"resolve_at": 100}, "resolve_at (100) must be at least below (200)"),
        ({"kind": "balance_below"}, "does not match any of the expected tags"),
        ({"severity": "urgent"}, "'info', 'warning' or 'critical'"),
        ({"below": -5}, "rules.0.available_below.below"),
        ({"name": "Has Spaces"}, "rules.0.available_below.name"),
        ({"percent": 10}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_rule_is_refused_with_what_is_wrong(change, message):
    with pytest.raises(AlertRulesError, match="edited") as raised:
        AlertRules.from_data({"rules": [{**LOW, **change}]}, source="edited")
    assert message in str(raised.value)


def test_rule_names_are_unique():
    with pytest.raises(AlertRulesError, match="two rules are named 'low'"):
        rule_set(LOW, LOW)


def test_a_broken_file_says_which_file(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text("[[rules]\nname = ", encoding="utf-8")
    with pytest.raises(AlertRulesError, match=r"rules\.toml: not valid TOML"):
        AlertRules.load(path)
    with pytest.raises(AlertRulesError, match="cannot be read"):
        AlertRules.load(tmp_path / "missing.toml")


def test_the_editor_table_round_trips_the_rules():
    rules = AlertRules.load(DEFAULT_RULES)
    frame = rules_frame(rules)
    assert len(frame) == len(rules)
    assert frame.loc[frame["kind"] == "available_below", "within_days"].isna().all()
    assert rules_from_frame(frame) == rules


def test_an_edited_table_with_a_blank_row_and_a_change(ledger):
    frame = rules_frame(AlertRules.load(DEFAULT_RULES))
    frame.loc[0, "below"] = 300
    frame = pd.concat([frame, pd.DataFrame([{}])], ignore_index=True)  # the editor's new row
    rules = rules_from_frame(frame)
    assert rules.get("nearly-empty").below == 300 and len(rules) == len(frame) - 1


def test_saving_replaces_the_file_and_records_the_change(ledger, rules_file):
    before = rules_file.read_text(encoding="utf-8")
    edited = rules_frame(AlertRules.load())
    edited.loc[edited["name"] == "nearly-empty", "below"] = 250
    change = save_rules(ledger, PRODUCT, rules_from_frame(edited))
    assert AlertRules.load().get("nearly-empty").below == 250
    assert change.summary == "changed nearly-empty"
    recorded = rule_changes(ledger).iloc[0]
    assert (recorded["actor"], recorded["summary"]) == ("pia@corp.example", "changed nearly-empty")
    assert recorded["before"] == before
    assert recorded["after"] == rules_file.read_text(encoding="utf-8")
    assert [p.name for p in rules_file.parent.iterdir() if p.name.startswith(".")] == []


def test_only_product_saves_rules_and_nothing_unchanged_is_recorded(ledger, rules_file):
    rules = AlertRules.load()
    before = rules_file.read_text(encoding="utf-8")
    with pytest.raises(AccessDenied, match="edit alert rules"):
        save_rules(ledger, SUPPORT, rule_set(LOW))
    with pytest.raises(AlertRulesError, match="unchanged"):
        save_rules(ledger, PRODUCT, rules)
    assert rules_file.read_text(encoding="utf-8") == before
    assert rule_changes(ledger).empty
