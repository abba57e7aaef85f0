"""The ledger's commands (credits_core/cli/ledger.py), run through `credits`' main."""

from __future__ import annotations

import json

import pytest

from credits_core.cli import main
from credits_core.ledger import Ledger
from tests.ledger.support import sql


@pytest.fixture
def run(db_path, capsys):
    """Run `credits ARGS --db <tmp file>`; return (exit code, stdout, stderr)."""

    def invoke(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--db", db_path])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_a_hold_from_the_command_line(run):
    assert run("account", "u_1", "--email", "a@example.com", "--plan", "pro")[0] == 0
    code, out, _ = run("grant", "u_1", "500", "--kind", "plan", "--expires", "2099-01-01")
    assert code == 0 and "grant-1-1: 500 plan credits to u_1" in out
    assert "u_1: total 500, held 0, available 500" in out
    code, out, _ = run("reserve", "u_1", "300", "--metadata", '{"model": "Music 1.5"}')
    assert code == 0 and out.startswith("hold-1-2: 300 credits held for u_1")
    assert run("balance", "u_1")[1] == "u_1: total 500, held 300, available 200\n"
    code, out, _ = run("confirm", "hold-1-2", "--success", "--credits", "200")
    assert (code, out) == (0, "hold-1-2: captured (200 captured, 100 returned)\n")
    assert run("balance", "u_1")[1] == "u_1: total 300, held 0, available 300\n"


def test_history_prints_the_journal(run):
    run("account", "u_1")
    run("grant", "u_1", "50", "--kind", "promo", "--reason", "welcome")
    run("reserve", "u_1", "20")
    code, out, _ = run("history", "u_1")
    lines = out.splitlines()
    assert code == 0 and "kind" in lines[0] and "reserve" in lines[1] and "welcome" in lines[2]
    code, out, _ = run("history", "u_1", "--format", "json", "--kind", "grant")
    entries = json.loads(out)
    assert [(e["kind"], e["credits"], e["reason"]) for e in entries] == [("grant", 50, "welcome")]
    code, out, _ = run("history", "u_1", "--format", "csv", "--limit", "1")
    assert code == 0 and len(out.splitlines()) == 2


def test_expire_books_lapsed_holds_and_grants(run, db_path):
    run("account", "u_1")
    run("grant", "u_1", "50", "--kind", "promo", "--expires", "2099-01-01T00:00:00")
    run("reserve", "u_1", "20", "--ttl", "60")
    with Ledger.open(db_path) as ledger:  # move the holds' and grants' deadlines back
        sql(ledger, "UPDATE holds SET expires_at = expires_at - INTERVAL 1 DAY")
        sql(ledger, "UPDATE grants SET expires_at = TIMESTAMPTZ '2000-01-01 00:00:00+00'")
    code, out, _ = run("expire")
    assert code == 0
    # the hold's 20 credits went back to a lapsed grant, so they expired on the way
    assert out == "holds: 1 expired, 20 credits returned\ngrants: 1 expired, 30 credits removed\n"
    assert run("balance", "u_1")[1] == "u_1: total 0, held 0, available 0\n"
    assert run("expire", "--holds")[1] == "holds: 0 expired, 0 credits returned\n"


def test_check_exits_non_zero_with_the_violations(run, db_path):
    run("account", "u_1")
    run("grant", "u_1", "50", "--kind", "plan")
    code, out, _ = run("check")
    assert code == 0 and "ledger is sound" in out
    with Ledger.open(db_path) as ledger:
        sql(ledger, "UPDATE accounts SET total = total + 7")
    code, out, err = run("check")
    assert code == 1
    assert "balances equal the sum of their journal entries" in out
    assert "violations" in err


def test_errors_are_one_line_messages_with_exit_code_2(run):
    run("account", "u_1")
    code, out, err = run("reserve", "u_1", "1100")
    assert (code, out) == (2, "")
    assert err == (
        "error: Insufficient credits. You need 1100 credits but only have 0. "
        "You're 1100 credits short.\n"
    )
    code, _, err = run("balance", "nobody")
    assert code == 2 and "No account for user 'nobody'" in err
    code, _, err = run("confirm", "hold-1-9", "--failure")
    assert code == 2 and "No transaction 'hold-1-9'" in err


def test_reads_of_a_missing_file_do_not_create_it(tmp_path, capsys):
    path = tmp_path / "typo.duckdb"
    assert main(["balance", "u_1", "--db", str(path)]) == 2
    assert "No ledger at" in capsys.readouterr().err
    assert not path.exists()


def test_the_database_comes_from_credits_db(monkeypatch, tmp_path, capsys):
    path = tmp_path / "env.duckdb"
    monkeypatch.setenv("CREDITS_DB", str(path))
    assert main(["account", "u_env"]) == 0
    assert main(["balance", "u_env"]) == 0
    assert capsys.readouterr().out.endswith("u_env: total 0, held 0, available 0\n")
    assert path.exists()


def test_a_bad_metadata_argument_is_a_usage_error(run):
    with pytest.raises(SystemExit) as info:
        run("reserve", "u_1", "5", "--metadata", "[1, 2]")
    assert info.value.code == 2
