"""What every page shares: the cached price book, ledger, plans and alert rules, who is
signed in, the menu.

This folder is a subfolder of `pages/`, so Streamlit does not list it as a page.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from credits_core import alerts
from credits_core.access import Action, Identity, who
from credits_core.ledger import Ledger
from credits_core.plans import DEFAULT_PLANS_FILE, Plans
from credits_core.pricing import PriceBook
from pages.shell import columns


@dataclass(frozen=True)
class PageLink:
    path: str
    label: str
    icon: str
    action: Action | None


MENU = (
    PageLink("app.py", "Home", ":material/home:", None),
    PageLink("pages/cost_calculator.py", "Cost calculator", ":material/calculate:", Action.PRICE),
    PageLink(
        "pages/transaction_history.py",
        "Transaction history",
        ":material/receipt_long:",
        Action.READ_HISTORY,
    ),
    PageLink(
        "pages/support_log.py", "Support log", ":material/manage_history:", Action.READ_HISTORY
    ),
    PageLink("pages/usage_export.py", "Usage export", ":material/download:", Action.EXPORT),
    PageLink(
        "pages/balance_simulator.py", "Balance simulator", ":material/query_stats:", Action.SIMULATE
    ),
    PageLink(
        "pages/low_credit_alerts.py",
        "Low-credit alerts",
        ":material/notifications_active:",
        Action.READ_ALERTS,
    ),
)


def database_path() -> str:
    return os.environ.get("CREDITS_DB", "data/credits.duckdb")


@st.cache_resource
def price_book() -> PriceBook:
    return PriceBook.load()


def plans() -> Plans:
    """data/plans.toml, read again as soon as the file changes."""
    stamp = file_stamp(DEFAULT_PLANS_FILE)
    if stamp is None:  # missing or unreadable: load says what is wrong, nothing is cached
        return Plans.load()
    return _plans(str(DEFAULT_PLANS_FILE), stamp)


def alert_rules() -> alerts.AlertRules:
    """The alert rules file ($CREDITS_ALERT_RULES or data/alert_rules.toml), read again as
    soon as it changes: a rules edit saved from the dashboard shows on the next rerun."""
    path = alerts.AlertRules.default_path()
    stamp = file_stamp(path)
    if stamp is None:  # missing or unreadable: load says what is wrong, nothing is cached
        return alerts.AlertRules.load(path)
    return _alert_rules(str(path), stamp)


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is edited or replaced: its modification time in
    nanoseconds, size and inode (an atomic save renames a new file over the old one)."""
    try:
        found = path.stat()
    except OSError:
        return None
    return (found.st_mtime_ns, found.st_size, found.st_ino)


@st.cache_data(max_entries=8, show_spinner=False)
def _plans(path: str, stamp: tuple[int, int, int]) -> Plans:
    return Plans.load(path)


@st.cache_data(max_entries=8, show_spinner=False)
def _alert_rules(path: str, stamp: tuple[int, int, int]) -> alerts.AlertRules:
    return alerts.AlertRules.load(path)


def ledger() -> Ledger:
    """One ledger (one DuckDB connection) per server process; a cursor per call."""
    return _open_ledger(database_path())


@st.cache_resource
def _open_ledger(path: str) -> Ledger:
    ledger = Ledger.open(path, wait=5)
    alerts.watch(ledger)  # evaluate the alert rules for each user a write touches
    return ledger


def current_identity() -> Identity:
    """Who is using the app, against the access file as it is now."""
    login_configured = "auth" in st.secrets if _has_secrets() else False
    return who(
        login_configured=login_configured,
        login_email=st.user.get("email") if login_configured else None,
        headers=_header_pairs(),
    )


def _header_pairs() -> list[tuple[str, str]]:
    """Every header of the request, a repeated one once per value."""
    headers = st.context.headers
    if not headers:
        return []
    return [(name, value) for name in headers for value in headers.get_all(name)]


def _has_secrets() -> bool:
    try:
        return bool(st.secrets)
    except FileNotFoundError:
        return False


def page(title: str, action: Action | None = None) -> Identity:
    """Set up a page: config, menu, local-mode banner; stop if the role may not see it
    (someone with no role sees only a page saying so and whom to ask)."""
    st.set_page_config(page_title=f"{title} · Credits", layout="wide")
    identity = current_identity()
    if identity.refusal is not None:
        st.title("Credits back office")
        st.error(identity.refusal, icon=":material/block:")
        st.stop()
    if identity.email is None and identity.mode == "login":
        st.button("Log in", on_click=st.login)
        st.stop()
    if not identity.roles:
        no_role(identity)
        st.stop()
    with st.sidebar:
        for link in MENU:
            if link.action is None or identity.can(link.action):
                st.page_link(link.path, label=link.label, icon=link.icon)
        st.divider()
        roles = ", ".join(sorted(identity.roles)) or "no role"
        st.caption(f"Signed in as {identity.email or 'nobody'} ({roles})")
    if identity.mode == "local":
        st.info(
            "Local mode (switched on by the operator, for a demo): everyone has every role.",
            icon=":material/lock_open:",
        )
    if action is not None and not identity.can(action):
        st.error(f"Your roles do not include this page ({title}). Ask an admin for access.")
        st.stop()
    st.title(title)
    return identity


def no_role(identity: Identity) -> None:
    """The only page for someone the access file gives no role."""
    st.title("No access yet")
    ask = ", ".join(identity.admins) or "an administrator of the back office"
    st.warning(
        f"You are signed in as {identity.email or 'an unknown person'}, but you have no role "
        f"in the credits back office. To get one, ask {ask} to add you to the access file.",
        icon=":material/lock:",
    )


def table(
    frame: pd.DataFrame,
    *,
    key: str,
    main: Sequence[str] | None = None,
    flag: str | None = None,
    config: dict | None = None,
    height: int | None = None,
) -> None:
    """A full-width table with human labels, formats and widths (columns.py). Only the
    `main` columns show unless the reader turns on "More columns"; rows where the
    boolean column `flag` is true are tinted red."""
    order = list(frame.columns)
    if main is not None and len(main) < len(order):
        hidden = [name for name in order if name not in main]
        more = st.toggle(
            "More columns",
            key=f"{key}_more",
            help="Also show: " + ", ".join(columns.label_of(name) for name in hidden),
        )
        order = order if more else [name for name in main if name in frame.columns]
    shown: pd.DataFrame | Styler = frame
    if flag is not None:
        tint = "background-color: #fde2e1"
        shown = frame.style.apply(lambda row: [tint if row[flag] else ""] * len(row), axis=1)
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        height=height or "auto",
        column_config=columns.configure(frame, config),
        column_order=order,
    )


def usd(amount: float, places: int = 2, *, signed: bool = False) -> str:
    """Dollars with the sign in front: $1,234.50, -$0.36 (`places` decimals); with
    `signed`, a gain shows its + too (+$1,926.54), as a change does."""
    if amount < 0:
        return f"-${-amount:,.{places}f}"
    return f"{'+' if signed else ''}${amount:,.{places}f}"
