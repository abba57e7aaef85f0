"""Editing the alert rules: the product team replaces the rule file, and every change
(who, when, the file before and after) is recorded in the ledger file.

`rules_frame` and `rules_from_frame` turn the rules into one table row per rule and
back, for an editable table.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from credits_core.access import Action, Identity
from credits_core.alerts.errors import AlertRulesError
from credits_core.alerts.rules import AlertRules
from credits_core.ledger import Ledger

FIRST_COLUMNS = ["name", "kind", "severity", "enabled"]
PARAMETERS = [
    "below",
    "resolve_at",
    "below_percent",
    "resolve_at_percent",
    "window_days",
    "resolve_at_multiple",
    "below_days",
    "resolve_at_days",
    "burn_window_days",
    "within_days",
    "min_credits",
    "resolve_below_credits",
]
COLUMNS = [*FIRST_COLUMNS, *PARAMETERS, "description"]


@dataclass(frozen=True)
class RuleChange:
    change_id: str
    changed_at: datetime
    actor: str
    summary: str


def rules_frame(rules: AlertRules) -> pd.DataFrame:
    """One row per rule; a parameter the rule's kind does not take is empty."""
    rows = [rule.model_dump() for rule in rules]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in PARAMETERS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Float64")
    return frame


def rules_from_frame(frame: pd.DataFrame) -> AlertRules:
    """The rules an edited table describes (empty cells left out), checked whole."""
    rules = []
    for row in frame.to_dict("records"):
        rule = {}
        for column, value in row.items():
            if column not in COLUMNS or _empty(value):
                continue
            if column in PARAMETERS and float(value).is_integer():
                value = int(value)
            elif column == "enabled":
                value = bool(value)
            rule[column] = value
        if not rule:
            continue  # a blank row added in the editor
        rules.append(rule)
    return AlertRules.from_data({"rules": rules}, source="edited rules")


def _empty(value: object) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value)) or value == ""


def save_rules(
    ledger: Ledger, identity: Identity, rules: AlertRules, path: str | Path | None = None
) -> RuleChange:
    """Replace the rule file with `rules` (atomically) and record the change. Only the
    product role may; rules that do not change are refused."""
    identity.require(Action.EDIT_ALERT_RULES)
    path = Path(path) if path is not None else AlertRules.default_path()
    before_rules = AlertRules.load(path)
    if before_rules == rules:
        raise AlertRulesError("The rules are unchanged: there is nothing to save.")
    before = path.read_text(encoding="utf-8")
    after = rules.to_toml()
    change = RuleChange(
        str(uuid.uuid4()), ledger.now(), identity.actor, _summary(before_rules, rules)
    )

    def work(cur: duckdb.DuckDBPyConnection) -> None:
        cur.execute(
            "INSERT INTO alert_rule_changes VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                change.change_id,
                change.changed_at,
                change.actor,
                str(path),
                before,
                after,
                change.summary,
            ],
        )
        rules.save(path)  # before COMMIT: a file that cannot be written records nothing

    ledger.side_write("save_alert_rules", work)
    return change


def _summary(before: AlertRules, after: AlertRules) -> str:
    old = {rule.name: rule for rule in before}
    new = {rule.name: rule for rule in after}
    parts = [f"added {name}" for name in new if name not in old]
    parts += [f"removed {name}" for name in old if name not in new]
    parts += [f"changed {name}" for name in new if name in old and new[name] != old[name]]
    if not parts and list(old) != list(new):
        parts.append("reordered")
    return "; ".join(parts)


def rule_changes(ledger: Ledger, *, limit: int = 100) -> pd.DataFrame:
    """Recorded rule changes, newest first."""
    return ledger.snapshot(
        lambda cur: cur.execute(
            "SELECT changed_at, actor, summary, path, before, after, change_id "
            "FROM alert_rule_changes ORDER BY changed_at DESC LIMIT ?",
            [limit],
        ).df()
    )
