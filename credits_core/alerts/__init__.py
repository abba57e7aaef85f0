"""Low-credit alerts: the rules (rules.py, edited through changes.py), set-based
evaluation and alert state (evaluate.py), the notification outbox and its sender
(outbox.py). The tables live in the ledger file (migration 5 of the ledger schema)."""

from credits_core.alerts.changes import (
    RuleChange,
    rule_changes,
    rules_frame,
    rules_from_frame,
    save_rules,
)
from credits_core.alerts.errors import (
    AlertError,
    AlertNotOpen,
    AlertRulesError,
    InvalidDestination,
    InvalidNote,
    UnknownAlert,
)
from credits_core.alerts.evaluate import (
    Evaluation,
    Evaluator,
    OpenAlerts,
    acknowledge,
    alert_history,
    alerts_per_day,
    open_alert_counts,
    users_in_alert,
    watch,
)
from credits_core.alerts.outbox import Delivery, deliver, outbox_counts, outbox_frame
from credits_core.alerts.rules import KINDS, SEVERITIES, AlertRule, AlertRules, Snapshot

__all__ = [
    "KINDS",
    "SEVERITIES",
    "AlertError",
    "AlertNotOpen",
    "AlertRule",
    "AlertRules",
    "AlertRulesError",
    "Delivery",
    "Evaluation",
    "Evaluator",
    "InvalidDestination",
    "InvalidNote",
    "OpenAlerts",
    "RuleChange",
    "Snapshot",
    "UnknownAlert",
    "acknowledge",
    "alert_history",
    "alerts_per_day",
    "deliver",
    "open_alert_counts",
    "outbox_counts",
    "outbox_frame",
    "rule_changes",
    "rules_frame",
    "rules_from_frame",
    "save_rules",
    "users_in_alert",
    "watch",
]
