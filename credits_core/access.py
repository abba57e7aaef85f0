"""Who may do what in the back office: roles, the pages and actions each may use, and
who someone is.

Identity comes, in this order, from Streamlit's login when an identity provider is
configured, from a trusted header set by an authenticating proxy when that is switched on
in the access file (a request carrying it more than once is refused), or from local mode
(every role, and a banner saying so) when the operator asks for it: `mode = "local"` in
the access file or CREDITS_LOCAL=1 (`make run` sets it for the demo). Otherwise nobody
gets in, and the page says why. The role map (email to roles) lives in
`data/access.toml` (or the file named by `CREDITS_ACCESS`); a missing or broken file
gives nobody a role (local mode needs no file). `who` reads the file again when it
changes, so a revoked role is gone within RELOAD_S seconds, without a restart.

Emails are compared after trimming ASCII white space and lowercasing ASCII letters only;
an email with other characters gets roles only if the file lists it exactly (Unicode
case folding would make `ſam@...` sam). Pages hide what a role may not use; `require`
makes the core refuse it too.
"""

from __future__ import annotations

import os
import threading
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from credits_core.errors import CreditsError

DEFAULT_ACCESS_FILE = Path(__file__).resolve().parents[1] / "data" / "access.toml"
LOCAL_VARIABLE = "CREDITS_LOCAL"
RELOAD_S = 2.0  # a cached access file is read again after this long even if unchanged
ASCII_SPACE = " \t\n\r\f\v"


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


def normalise_email(email: str) -> str:
    """Trimmed of ASCII white space; lowercased if it is all ASCII, else left exactly as
    given (only an exact entry in the access file matches it)."""
    trimmed = email.strip(ASCII_SPACE)
    return trimmed.lower() if trimmed.isascii() else trimmed


class AccessConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["roles", "local"] = "roles"
    trusted_header: TrustedHeader = TrustedHeader()
    roles: dict[str, tuple[Role, ...]] = {}

    @field_validator("roles")
    @classmethod
    def _one_entry_per_person(
        cls, roles: dict[str, tuple[Role, ...]]
    ) -> dict[str, tuple[Role, ...]]:
        normalised: dict[str, tuple[Role, ...]] = {}
        for email, granted in roles.items():
            key = normalise_email(email)
            if not key:
                raise ValueError("an empty email")
            if key in normalised:
                raise ValueError(f"{email!r} is listed twice (as {key!r}); list each person once")
            normalised[key] = granted
        return normalised

    @classmethod
    def load(cls, path: str | Path | None = None) -> AccessConfig:
        """The access file; AccessFileError says why it cannot be used."""
        path = access_path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise AccessFileError(
                f"There is no access file at {path}, so nobody has a role. Create it (see "
                "data/access.toml in the repository), point CREDITS_ACCESS at it, or for a "
                f'local demo set mode = "local" in it or {LOCAL_VARIABLE}=1.'
            ) from None
        except (OSError, UnicodeDecodeError) as error:
            raise AccessFileError(
                f"The access file {path} cannot be read ({error}), so nobody has a role."
            ) from None
        try:
            return cls.model_validate(tomllib.loads(text))
        except (tomllib.TOMLDecodeError, ValidationError) as error:
            raise AccessFileError(
                f"The access file {path} is broken, so nobody has a role until it is fixed: {error}"
            ) from None

    def roles_of(self, email: str) -> frozenset[Role]:
        return frozenset(self.roles.get(normalise_email(email), ()))

    def admins(self) -> tuple[str, ...]:
        """Whom to ask for a role."""
        return tuple(sorted(e for e, roles in self.roles.items() if Role.ADMIN in roles))


def access_path(path: str | Path | None = None) -> Path:
    return Path(path or os.environ.get("CREDITS_ACCESS") or DEFAULT_ACCESS_FILE)


def local_requested() -> bool:
    """Whether the operator switched local mode on by CREDITS_LOCAL=1."""
    return os.environ.get(LOCAL_VARIABLE, "").strip() == "1"


@dataclass(frozen=True)
class Identity:
    """The person using the back office, how we know who they are, and their roles."""

    email: str | None
    roles: frozenset[Role]
    mode: Literal["login", "proxy", "local", "none"]
    refusal: str | None = None  # why nobody gets in, when the set-up itself refuses
    admins: tuple[str, ...] = ()  # whom to ask for a role

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
Headers = Mapping[str, str] | Iterable[tuple[str, str]]


def identify(
    config: AccessConfig,
    *,
    login_configured: bool,
    login_email: str | None,
    headers: Headers,
    local: bool = False,
) -> Identity:
    """Who is using the app: from the login, the trusted header, or local mode when asked
    for (`local`, or mode = "local" in the file); else nobody, saying why."""
    admins = config.admins()
    if login_configured:
        email = login_email
        mode: Literal["login", "proxy"] = "login"
    elif config.trusted_header.enabled:
        name = config.trusted_header.name
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        values = [value for key, value in pairs if key.casefold() == name.casefold()]
        if len(values) > 1:
            return Identity(
                None,
                frozenset(),
                "proxy",
                f"The request carries the {name} header {len(values)} times, so who you are "
                "is unclear and access is refused. The proxy must set the header once, "
                "replacing any the browser sent.",
                admins,
            )
        email, mode = (values[0] if values else None), "proxy"
    elif local or config.mode == "local":
        return LOCAL
    else:
        return Identity(
            None,
            frozenset(),
            "none",
            "No login ([auth] in .streamlit/secrets.toml) or trusted proxy header is "
            "configured, so nobody can be identified. Configure one, or for a local demo "
            f'set mode = "local" in the access file or {LOCAL_VARIABLE}=1.',
            admins,
        )
    email = normalise_email(email) if email else None
    if not email:
        return Identity(None, frozenset(), mode, admins=admins)
    return Identity(email, config.roles_of(email), mode, admins=admins)


class _Cached:
    """The access file as last read, and what it was read from."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[Path, tuple[tuple[int, int, int], float, AccessConfig]] = {}

    def load(self, path: Path) -> AccessConfig:
        try:
            info = path.stat()
        except OSError:
            return AccessConfig.load(path)  # says why
        key = (info.st_mtime_ns, info.st_size, info.st_ino)
        with self.lock:
            cached = self.entries.get(path)
            if cached and cached[0] == key and time.monotonic() - cached[1] < RELOAD_S:
                return cached[2]
        config = AccessConfig.load(path)
        with self.lock:
            self.entries[path] = (key, time.monotonic(), config)
        return config


_CACHE = _Cached()


def who(
    *,
    login_configured: bool,
    login_email: str | None,
    headers: Headers,
    path: str | Path | None = None,
) -> Identity:
    """`identify` against the access file as it is now (read again when it changes).
    A missing or broken file lets nobody in and says why, except in local mode asked
    for by CREDITS_LOCAL=1 with no login configured (the demo needs no file)."""
    local = local_requested()
    try:
        config = _CACHE.load(access_path(path))
    except AccessFileError as error:
        if local and not login_configured:
            return LOCAL
        return Identity(None, frozenset(), "none", str(error))
    return identify(
        config,
        login_configured=login_configured,
        login_email=login_email,
        headers=headers,
        local=local,
    )
