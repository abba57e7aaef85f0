"""One rule set for every entry point: a value refused by a single call is refused by the
bulk calls and the command line too, with a typed error saying what is valid, nothing
written; files the ledger cannot use give typed errors, never a raw DuckDB or OS error
(#15 part 4)."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from credits_core.cli import main
from credits_core.ledger import (
    InvalidArgument,
    InvalidBatch,
    InvalidMetadata,
    InvalidUserId,
    Ledger,
    LedgerDamaged,
    LedgerError,
    LedgerFileUnavailable,
)
from tests.ledger.support import START, funded, sql, unchanged

SURROGATE = "\ud800"  # not text: cannot be stored as UTF-8
BAD_USER_IDS = {
    "NUL": "u\x001",
    "zero-width space": "u_\u200b1",
    "newline": "u_1\nu_2",
    "lone surrogate": f"u_{SURROGATE}",
    "argv byte 0xff": "\udcff",  # what Python makes of `credits account $'\xff'`
}


def frame(**columns) -> pd.DataFrame:
    """Text columns as Python objects (pandas' Arrow strings cannot hold a surrogate)."""
    return pd.DataFrame(
        {
            name: pd.Series(values, dtype=object)
            if isinstance(values, list) and isinstance(values[0], str)
            else values
            for name, values in columns.items()
        }
    )


def usage(user: str = "u_1", ts: datetime = START - timedelta(hours=1)) -> pd.DataFrame:
    return frame(user_id=[user], credits=[5], ts=[pd.Timestamp(ts)], success=[True])


def with_column(events: pd.DataFrame, name: str, value: object) -> pd.DataFrame:
    events[name] = pd.Series([value], dtype=object)
    return events


# ---------------------------------------------------------------- the same rule everywhere

ENTRY_POINTS = {
    "create_account": lambda lg, user: lg.create_account(user),
    "create_accounts": lambda lg, user: lg.create_accounts(frame(user_id=[user])),
    "grant": lambda lg, user: lg.grant(user, 5, kind="plan"),
    "grant_many": lambda lg, user: lg.grant_many(frame(user_id=[user], credits=[5], kind="plan")),
    "reserve": lambda lg, user: lg.reserve(user, 5),
    "apply_usage": lambda lg, user: lg.apply_usage(usage(user)),
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("user", list(BAD_USER_IDS.values()), ids=list(BAD_USER_IDS))
def test_a_user_id_with_invisible_or_invalid_characters_is_refused_everywhere(ledger, entry, user):
    funded(ledger)
    with unchanged(ledger), pytest.raises((InvalidUserId, InvalidBatch)) as refused:
        ENTRY_POINTS[entry](ledger, user)
    assert "user_id" in str(refused.value).replace("User id", "user_id")
    assert "U+" in str(refused.value)  # names the character


TEXT_FIELDS = {
    "email": lambda lg, text: lg.create_account("u_2", email=text),
    "reason of grant": lambda lg, text: lg.grant("u_1", 5, kind="plan", reason=text),
    "reason of grant_many": lambda lg, text: lg.grant_many(
        frame(user_id=["u_1"], credits=[5], kind="plan", reason=[text])
    ),
    "actor of adjust": lambda lg, text: lg.adjust("u_1", 5, reason="r", actor=text),
    "actor of grant_many": lambda lg, text: lg.grant_many(
        frame(user_id=["u_1"], credits=[5], kind="plan", actor=[text])
    ),
    "reason of apply_usage": lambda lg, text: lg.apply_usage(usage(), reason=text),
    "model of apply_usage": lambda lg, text: lg.apply_usage(with_column(usage(), "model", text)),
    "idempotency key": lambda lg, text: lg.reserve("u_1", 5, idempotency_key=text),
    "metadata value": lambda lg, text: lg.reserve("u_1", 5, metadata={"model": text}),
    "metadata key": lambda lg, text: lg.reserve("u_1", 5, metadata={text: 1}),
    "options of apply_usage": lambda lg, text: lg.apply_usage(
        with_column(usage(), "options", {"a": text})
    ),
}


@pytest.mark.parametrize("field", list(TEXT_FIELDS))
def test_a_lone_surrogate_in_any_text_field_is_a_typed_error(ledger, field):
    funded(ledger)
    with unchanged(ledger), pytest.raises((InvalidArgument, InvalidBatch)) as refused:
        TEXT_FIELDS[field](ledger, f"a{SURROGATE}b")
    assert "U+D800" in str(refused.value)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("reason", "r" * 10_000, "at most 500 characters"),
        ("actor", "", "must not be empty"),
        ("actor", "   ", "must not be empty"),
        ("actor", "ada@corp.example\nmallory", r"U\+000A"),
    ],
)
def test_grant_many_refuses_what_grant_refuses(ledger, field, value, problem):
    funded(ledger)
    with pytest.raises(InvalidArgument, match=problem):
        ledger.grant("u_1", 5, kind="plan", **{field: value})
    with unchanged(ledger), pytest.raises(InvalidBatch, match=problem):
        ledger.grant_many(frame(user_id=["u_1"], credits=[5], kind="plan", **{field: [value]}))


def test_actors_are_stored_trimmed_and_lowercased_by_every_entry_point(ledger):
    funded(ledger)
    ledger.adjust("u_1", 5, reason="goodwill", actor=" SAM@corp.example ")
    ledger.grant("u_1", 5, kind="promo", actor="ada@corp.example\n")
    ledger.grant_many(
        frame(user_id=["u_1"], credits=[5], kind="topup", actor=["\tPat@Corp.example"])
    )
    hold = ledger.reserve("u_1", 5, actor="ANA@corp.example ")
    ledger.confirm(hold.transaction_id, success=True, actor=" Ana@corp.example")
    actors = {actor for (actor,) in sql(ledger, "SELECT DISTINCT actor FROM journal")}
    assert actors == {
        "system",
        "sam@corp.example",
        "ada@corp.example",
        "pat@corp.example",
        "ana@corp.example",
    }


def test_metadata_nested_5000_deep_is_a_typed_error(ledger):
    funded(ledger)
    deep: dict = {}
    for _ in range(5_000):
        deep = {"d": deep}
    with unchanged(ledger), pytest.raises(InvalidMetadata, match="nested more than 32 levels"):
        ledger.reserve("u_1", 5, metadata=deep)
    with unchanged(ledger), pytest.raises(InvalidBatch, match="nested more than 32 levels"):
        ledger.apply_usage(with_column(usage(), "options", deep))


@pytest.mark.parametrize(
    ("when", "problem"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), "from 2000-01-01"),
        (datetime(1999, 12, 31, 23, 59, tzinfo=UTC), "from 2000-01-01"),
        (START + timedelta(days=400), "to now"),
        (START + timedelta(hours=2), "to now"),
    ],
)
def test_usage_stamped_in_year_1_or_in_the_future_is_refused(ledger, when, problem):
    funded(ledger)
    with unchanged(ledger), pytest.raises(InvalidBatch, match=problem):
        ledger.apply_usage(usage(ts=when))
    assert ledger.apply_usage(usage(ts=START))["status"].tolist() == ["captured"]


# ---------------------------------------------------------------- the command line


@pytest.fixture
def run(db_path, capsys):
    def invoke(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--db", db_path])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.mark.parametrize("ttl", ["nan", "inf", "-inf", "1e308", "0", "-5"])
def test_a_ttl_that_is_not_a_number_of_seconds_is_a_typed_error(run, ttl):
    assert run("account", "u1")[0] == 0
    assert run("grant", "u1", "50", "--kind", "plan")[0] == 0
    code, out, err = run("reserve", "u1", "5", f"--ttl={ttl}")
    assert code == 2 and out == ""
    assert err.startswith("error: ttl must be a number of seconds from 1 to 604,800")
    assert "Traceback" not in err
    assert run("balance", "u1")[1].strip() == "u1: total 50, held 0, available 50"


def test_a_user_id_that_is_not_utf8_on_the_command_line_is_a_typed_error(run):
    code, _, err = run("account", "\udcff")  # argv b"\xff" decoded by Python
    assert code == 2 and "U+DCFF" in err and "Traceback" not in err


# ---------------------------------------------------------------- files the ledger cannot use


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.01])
def test_a_truncated_ledger_file_is_reported_damaged_and_left_alone(tmp_path, fraction):
    path = tmp_path / "credits.duckdb"
    users = [f"u_{i}" for i in range(2_000)]
    with Ledger.open(path) as ledger:
        ledger.create_accounts(frame(user_id=users))
        ledger.grant_many(frame(user_id=users, credits=5, kind="plan"))
    whole = path.read_bytes()
    path.write_bytes(whole[: int(len(whole) * fraction)])
    before = digest(path)
    with pytest.raises(LedgerDamaged, match="damaged") as refused:
        Ledger.open(path)
    assert "Restore it from a backup" in str(refused.value)
    assert digest(path) == before


def test_a_ledger_file_that_duckdb_shortened_opens(tmp_path):
    """DuckDB trims free blocks off the end of a file but still counts them: the file is
    healthy, not truncated."""
    path = tmp_path / "credits.duckdb"
    with Ledger.open(path) as ledger:
        ledger.create_accounts(frame(user_id=[f"u_{i}" for i in range(2_000)]))
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE scratch AS SELECT range AS n FROM range(3000000)")
    con.execute("CHECKPOINT")
    longest = path.stat().st_size
    con.execute("DROP TABLE scratch")
    con.execute("CHECKPOINT")
    con.close()
    assert path.stat().st_size < longest  # DuckDB did shorten it
    with Ledger.open(path) as ledger:
        assert ledger.account("u_1999").user_id == "u_1999"
        assert ledger.check_invariants() == []


def test_a_path_the_system_refuses_is_not_called_a_foreign_file(tmp_path):
    refused = Path("/sys/credits-test.duckdb")  # sysfs: no new files, root included
    with pytest.raises(LedgerFileUnavailable) as caught:
        Ledger.open(refused)
    assert "Permission denied" in str(caught.value)
    assert "not a credits ledger" not in str(caught.value)
    assert isinstance(caught.value, LedgerError) and isinstance(caught.value, OSError)


def test_a_folder_that_cannot_be_created_is_a_typed_error():
    with pytest.raises(LedgerFileUnavailable, match="cannot be opened"):
        Ledger.open("/proc/credits-test/credits.duckdb")  # procfs: no new folders


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write any file")
def test_a_valid_ledger_in_a_folder_this_user_cannot_write(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    with Ledger.open(folder / "credits.duckdb") as ledger:
        funded(ledger)
    (folder / "credits.duckdb").chmod(0o444)
    folder.chmod(0o555)
    try:
        with pytest.raises(LedgerFileUnavailable, match="Permission denied"):
            Ledger.open(folder / "credits.duckdb")
    finally:
        folder.chmod(0o755)
