"""Roles, identity from login / trusted header / local mode, and the core's refusal;
spoofed and odd identities; the access file missing, broken or changed."""

from __future__ import annotations

import pytest

from credits_core.access import (
    LOCAL,
    AccessConfig,
    AccessDenied,
    AccessFileError,
    Action,
    Role,
    identify,
    who,
)

CONFIG = AccessConfig.model_validate(
    {
        "trusted_header": {"enabled": True, "name": "X-Forwarded-Email"},
        "roles": {"Sam@Corp.example": ["support"], "ana@corp.example": ["analyst"]},
    }
)


def test_local_mode_has_every_role_when_the_operator_asks_for_it():
    for identity in (
        identify(AccessConfig(), login_configured=False, login_email=None, headers={}, local=True),
        identify(AccessConfig(mode="local"), login_configured=False, login_email=None, headers={}),
    ):
        assert identity.mode == "local"
        assert identity.roles == frozenset(Role)
        assert all(identity.can(action) for action in Action)


def test_nothing_configured_and_no_local_mode_lets_nobody_in_and_says_why():
    identity = identify(AccessConfig(), login_configured=False, login_email=None, headers={})
    assert identity.mode == "none" and identity.roles == frozenset()
    assert "CREDITS_LOCAL=1" in identity.refusal and 'mode = "local"' in identity.refusal
    assert not any(identity.can(action) for action in Action)


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


# ---------------------------------------------------------------- the access file


def write_access(path, roles: str, extra: str = "") -> None:
    path.write_text(f"{extra}\n[roles]\n{roles}\n", encoding="utf-8")


@pytest.fixture
def no_local_mode(monkeypatch):
    monkeypatch.delenv("CREDITS_LOCAL", raising=False)


def test_a_missing_access_file_gives_nobody_a_role_and_says_why(tmp_path, no_local_mode):
    missing = tmp_path / "missing.toml"
    for login in (False, True):
        identity = who(
            login_configured=login, login_email="ada@corp.example", headers={}, path=missing
        )
        assert identity.roles == frozenset() and not identity.can(Action.PRICE)
        assert f"no access file at {missing}" in identity.refusal


def test_a_missing_access_file_with_local_mode_asked_for_is_the_demo(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDITS_LOCAL", "1")
    missing = tmp_path / "missing.toml"
    assert who(login_configured=False, login_email=None, headers={}, path=missing) == LOCAL
    # a configured login still needs the file: local mode never overrides a login
    signed_in = who(login_configured=True, login_email="ada@corp.example", headers={}, path=missing)
    assert signed_in.roles == frozenset() and "no access file" in signed_in.refusal


@pytest.mark.parametrize(
    "text",
    [
        '[roles]\n"x@y" = ["wizard"]\n',  # an unknown role
        "[roles\n",  # not TOML
        'mode = "open"\n',  # not a mode
        '[roles]\n"Sam@corp.example" = ["support"]\n"sam@corp.example " = ["admin"]\n',
    ],
)
def test_a_broken_access_file_gives_nobody_a_role_and_says_why(tmp_path, no_local_mode, text):
    path = tmp_path / "access.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AccessFileError, match="broken"):
        AccessConfig.load(path)
    identity = who(login_configured=True, login_email="sam@corp.example", headers={}, path=path)
    assert identity.roles == frozenset() and "is broken" in identity.refusal


def test_an_access_file_that_is_not_utf8_is_refused(tmp_path, no_local_mode):
    path = tmp_path / "access.toml"
    path.write_bytes(b'[roles]\n"sam@corp.example" = ["support"] # \xff\n')
    identity = who(login_configured=True, login_email="sam@corp.example", headers={}, path=path)
    assert identity.roles == frozenset() and "cannot be read" in identity.refusal


def test_a_changed_access_file_takes_effect_without_a_restart(tmp_path, no_local_mode):
    path = tmp_path / "access.toml"
    write_access(path, '"sam@corp.example" = ["support"]')

    def roles() -> frozenset[Role]:
        return who(
            login_configured=True, login_email="sam@corp.example", headers={}, path=path
        ).roles

    assert roles() == frozenset({Role.SUPPORT})
    write_access(path, '"sam@corp.example" = ["analyst"]')  # same size: only the text moved
    assert roles() == frozenset({Role.ANALYST})
    write_access(path, '"pat@corp.example" = ["product"]')  # sam's role revoked
    assert roles() == frozenset()


# ---------------------------------------------------------------- odd and spoofed identities


@pytest.mark.parametrize(
    "email",
    [
        "ſam@corp.example",  # LATIN SMALL LETTER LONG S: casefold() makes it "sam@..."
        "SAM@corp.exampLe\u200b",  # a zero-width space
        "sam@corp.example\u00a0",  # a no-break space (not ASCII white space)
        "ｓam@corp.example",  # FULLWIDTH s
        "sam@corp.examplé",
    ],
)
def test_emails_that_only_look_like_a_listed_one_get_no_role(email):
    identity = identify(CONFIG, login_configured=True, login_email=email, headers={})
    assert identity.roles == frozenset()
    with pytest.raises(AccessDenied):
        identity.require(Action.REFUND)


@pytest.mark.parametrize("email", ["sam@corp.example", " SAM@Corp.Example\t", "sAm@CORP.example\n"])
def test_ascii_case_and_surrounding_spaces_do_not_matter(email):
    identity = identify(CONFIG, login_configured=True, login_email=email, headers={})
    assert identity.roles == frozenset({Role.SUPPORT})
    assert identity.email == "sam@corp.example"  # the name written into the journal


def test_a_non_ascii_email_gets_its_roles_only_when_listed_exactly():
    config = AccessConfig.model_validate({"roles": {"josé@corp.example": ["analyst"]}})

    def roles(email: str) -> frozenset[Role]:
        return identify(config, login_configured=True, login_email=email, headers={}).roles

    assert roles("josé@corp.example") == frozenset({Role.ANALYST})
    assert roles("JOSÉ@corp.example") == frozenset()
    assert roles("jose\u0301@corp.example") == frozenset()  # the same letters, decomposed


def test_a_repeated_trusted_header_is_refused():
    spoofed = [
        ("X-Forwarded-Email", "ada@corp.example"),  # sent by the browser
        ("x-forwarded-email", "eve@corp.example"),  # appended by the proxy
    ]
    identity = identify(CONFIG, login_configured=False, login_email=None, headers=spoofed)
    assert identity.roles == frozenset() and identity.email is None
    assert "2 times" in identity.refusal
    single = identify(CONFIG, login_configured=False, login_email=None, headers=spoofed[1:])
    assert single.email == "eve@corp.example" and single.refusal is None


def test_whom_to_ask_for_a_role_comes_from_the_access_file():
    config = AccessConfig.load()
    identity = identify(config, login_configured=True, login_email="eve@corp.example", headers={})
    assert identity.roles == frozenset() and identity.admins == ("ada@corp.example",)
