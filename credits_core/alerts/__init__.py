"""Low-credit alerts: the rules (rules.py, edited through changes.py); set-based
evaluation (evaluate.py), which judges every (user, rule) pair in SQL (judge.py) and
moves each alert's state (state.py: open, resolve, acknowledge); the watcher hook that
evaluates after each write (watch.py); alerts in force as support works them (reports.py);
the notification outbox, its sender and delivery state (outbox.py). The tables live in
the ledger file (migration 5 of the ledger schema); the ledger's own are read through its
read surface (migration 8)."""

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
from credits_core.alerts.evaluate import Evaluation, Evaluator
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
from credits_core.alerts.reports import (
    OpenAlerts,
    alert_history,
    alerts_per_day,
    count_users_in_alert,
    open_alert_counts,
    users_in_alert,
)
from credits_core.alerts.rules import KINDS, SEVERITIES, AlertRule, AlertRules, Snapshot
from credits_core.alerts.state import acknowledge, acknowledge_user
from credits_core.alerts.watch import watch

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
