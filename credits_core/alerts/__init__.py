"""Low-credit alerts: the rules (rules.py, edited through changes.py), set-based
evaluation (evaluate.py), alerts in force as support works them (state.py), the
notification outbox, its sender and delivery state (outbox.py). The tables live in the
ledger file (migration 5 of the ledger schema)."""

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
    NoOpenAlert,
    UnknownAlert,
)
from credits_core.alerts.evaluate import Evaluation, Evaluator, watch
from credits_core.alerts.outbox import (
    OUTBOX_STATUSES,
    Delivery,
    OutboxState,
    deliver,
    outbox_counts,
    outbox_frame,
    outbox_state,
    retry_failed,
)
from credits_core.alerts.rules import KINDS, SEVERITIES, AlertRule, AlertRules, Snapshot
from credits_core.alerts.state import (
    OpenAlerts,
    acknowledge,
    acknowledge_user,
    alert_history,
    alerts_per_day,
    count_users_in_alert,
    open_alert_counts,
    users_in_alert,
)

__all__ = [
    "KINDS",
    "OUTBOX_STATUSES",
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
    "NoOpenAlert",
    "OpenAlerts",
    "OutboxState",
    "RuleChange",
    "Snapshot",
    "UnknownAlert",
    "acknowledge",
    "acknowledge_user",
    "alert_history",
    "alerts_per_day",
    "count_users_in_alert",
    "deliver",
    "open_alert_counts",
    "outbox_counts",
    "outbox_frame",
    "outbox_state",
    "retry_failed",
    "rule_changes",
    "rules_frame",
    "rules_from_frame",
    "save_rules",
    "users_in_alert",
    "watch",
]
