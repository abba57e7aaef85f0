"""Who may do what in the back office: roles, the pages and actions each may use, and
who someone is.

Identity comes, in this order, from Streamlit's login when an identity provider is
configured, from a trusted header set by an authenticating proxy when that is switched on
in the access file, or else from local mode: every role, and a banner saying so. The
role map (email to roles) lives in `data/access.toml` (or the file named by
`CREDITS_ACCESS`). Pages hide what a role may not use; `require` makes the core refuse it
too.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from credits_core.errors import CreditsError

DEFAULT_ACCESS_FILE = Path(__file__).resolve().parents[1] / "data" / "access.toml"


class Role(StrEnum):
    PRODUCT = "product"
    SUPPORT = "support"
    ANALYST = "analyst"
    ADMIN = "admin"


class Action(StrEnum):
    PRICE = "price"
    READ_HISTORY = "read_history"
    ADJUST = "adjust"
    REFUND = "refund"
    SIMULATE = "simulate"
    READ_ALERTS = "read_alerts"
    ACKNOWLEDGE_ALERT = "acknowledge_alert"
    EDIT_ALERT_RULES = "edit_alert_rules"
    EXPORT = "export"
    QUERY_SQL = "query_sql"


ALLOWED: dict[Action, frozenset[Role]] = {
    Action.PRICE: frozenset({Role.PRODUCT, Role.SUPPORT}),
    Action.READ_HISTORY: frozenset({Role.SUPPORT, Role.PRODUCT}),
    Action.ADJUST: frozenset({Role.SUPPORT}),
    Action.REFUND: frozenset({Role.SUPPORT}),
    Action.SIMULATE: frozenset({Role.PRODUCT}),
    Action.READ_ALERTS: frozenset({Role.SUPPORT, Role.PRODUCT}),
    Action.ACKNOWLEDGE_ALERT: frozenset({Role.SUPPORT}),
    Action.EDIT_ALERT_RULES: frozenset({Role.PRODUCT}),
    Action.EXPORT: frozenset({Role.ANALYST}),
    Action.QUERY_SQL: frozenset({Role.ANALYST}),
}


class AccessDenied(CreditsError, PermissionError):
    """The signed-in person's roles do not allow the action."""

    def __init__(self, who: str | None, action: Action) -> None:
        self.who = who
        self.action = action
        roles = ", ".join(sorted(ALLOWED[action] | {Role.ADMIN}))
        super().__init__(
            f"{who or 'Nobody signed in'} may not {action.value.replace('_', ' ')}: "
            f"it needs one of the roles {roles}. Ask an admin to add the role in the access file."
        )


class AccessFileError(CreditsError, ValueError):
    """The access file is broken; nobody gets roles from it until it is fixed."""


class TrustedHeader(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    name: str = "X-Forwarded-Email"


class AccessConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    trusted_header: TrustedHeader = TrustedHeader()
    roles: dict[str, tuple[Role, ...]] = {}

    @classmethod
    def load(cls, path: str | Path | None = None) -> AccessConfig:
        path = Path(path or os.environ.get("CREDITS_ACCESS") or DEFAULT_ACCESS_FILE)
        if not path.exists():
            return cls()
        try:
            return cls.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, ValidationError) as error:
            raise AccessFileError(f"{path}: {error}") from None

    def roles_of(self, email: str) -> frozenset[Role]:
        wanted = email.strip().casefold()
        for known, roles in self.roles.items():
            if known.casefold() == wanted:
                return frozenset(roles)
        return frozenset()


@dataclass(frozen=True)
class Identity:
    """The person using the back office, how we know who they are, and their roles."""

    email: str | None
    roles: frozenset[Role]
    mode: Literal["login", "proxy", "local"]

    @property
    def actor(self) -> str:
        """The name written into the journal for what this person does."""
        return self.email or "anonymous"

    def can(self, action: Action) -> bool:
        return Role.ADMIN in self.roles or bool(self.roles & ALLOWED[action])

    def require(self, action: Action) -> None:
        if not self.can(action):
            raise AccessDenied(self.email, action)


LOCAL = Identity("local-admin", frozenset(Role), "local")


def identify(
    config: AccessConfig,
    *,
    login_configured: bool,
    login_email: str | None,
    headers: Mapping[str, str],
) -> Identity:
    """Who is using the app: from the login, the trusted header, or local mode."""
    if login_configured:
        email = login_email
        mode: Literal["login", "proxy"] = "login"
    elif config.trusted_header.enabled:
        email = next(
            (
                v
                for k, v in headers.items()
                if k.casefold() == config.trusted_header.name.casefold()
            ),
            None,
        )
        mode = "proxy"
    else:
        return LOCAL
    if not email:
        return Identity(None, frozenset(), mode)
    return Identity(email, config.roles_of(email), mode)
