"""Errors of the low-credit alerts: a broken rule file, an unknown alert, a bad request."""

from __future__ import annotations

from credits_core.errors import CreditsError


class AlertError(CreditsError):
    """Root of the low-credit alert errors."""


class AlertRulesError(AlertError, ValueError):
    """The alert rules (a file or an edit) are invalid; nothing of them is used or saved."""


class UnknownAlert(AlertError, LookupError):
    """No alert has this id."""

    def __init__(self, alert_id: object) -> None:
        self.alert_id = alert_id
        super().__init__(
            f"There is no alert {alert_id!r}. Pick one from the list of users in alert."
        )


class AlertNotOpen(AlertError, ValueError):
    """Only an open alert can be acknowledged."""

    def __init__(self, alert_id: int, status: str) -> None:
        self.alert_id = alert_id
        self.status = status
        super().__init__(
            f"Alert {alert_id} is {status}, not open: only an open alert can be acknowledged."
        )


class InvalidNote(AlertError, ValueError):
    """An acknowledgement needs a note saying what support did."""


class InvalidDestination(AlertError, ValueError):
    """The outbox destination is neither an http(s) URL nor a .jsonl file path."""


class NoOpenAlert(AlertError, LookupError):
    """The user has no open alert waiting for an acknowledgement."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        super().__init__(
            f"{user_id} has no open alert waiting for an acknowledgement; "
            "the list shows the users who do."
        )
