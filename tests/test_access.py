"""Roles, identity from login / trusted header / local mode, and the core's refusal."""

from __future__ import annotations

import pytest

from credits_core.access import (
    AccessConfig,
    AccessDenied,
    AccessFileError,
    Action,
    Role,
    identify,
)

CONFIG = AccessConfig.model_validate(
    {
        "trusted_header": {"enabled": True, "name": "X-Forwarded-Email"},
        "roles": {"Sam@Corp.example": ["support"], "ana@corp.example": ["analyst"]},
    }
)


def test_local_mode_has_every_role_when_nothing_is_configured():
    identity = identify(AccessConfig(), login_configured=False, login_email=None, headers={})
    assert identity.mode == "local"
    assert identity.roles == frozenset(Role)
    assert all(identity.can(action) for action in Action)


def test_login_email_maps_to_roles_ignoring_case():
    identity = identify(CONFIG, login_configured=True, login_email="sam@corp.example", headers={})
    assert (identity.mode, identity.roles) == ("login", frozenset({Role.SUPPORT}))
    assert identity.can(Action.REFUND)
    assert not identity.can(Action.EXPORT)


def test_login_takes_precedence_over_the_header():
    identity = identify(
        CONFIG,
        login_configured=True,
        login_email=None,
        headers={"X-Forwarded-Email": "sam@corp.example"},
    )
    assert identity.email is None and identity.roles == frozenset()


def test_trusted_header_when_enabled():
    identity = identify(
        CONFIG,
        login_configured=False,
        login_email=None,
        headers={"x-forwarded-email": "ana@corp.example"},
    )
    assert (identity.mode, identity.email) == ("proxy", "ana@corp.example")
    assert identity.can(Action.QUERY_SQL)


def test_unknown_person_gets_no_role_and_the_core_refuses():
    identity = identify(
        CONFIG, login_configured=False, login_email=None, headers={"X-Forwarded-Email": "eve@x"}
    )
    with pytest.raises(AccessDenied, match="eve@x may not refund: it needs one of the roles"):
        identity.require(Action.REFUND)


def test_admin_may_do_everything():
    config = AccessConfig.model_validate({"roles": {"ada@corp.example": ["admin"]}})
    identity = identify(config, login_configured=True, login_email="ada@corp.example", headers={})
    assert all(identity.can(action) for action in Action)


def test_broken_access_file_is_refused(tmp_path):
    path = tmp_path / "access.toml"
    path.write_text('[roles]\n"x@y" = ["wizard"]\n')
    with pytest.raises(AccessFileError, match="wizard"):
        AccessConfig.load(path)


def test_shipped_access_file_loads():
    config = AccessConfig.load()
    assert config.roles_of("sam@corp.example") == frozenset({Role.SUPPORT})
    assert config.trusted_header.enabled is False
