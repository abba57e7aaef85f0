"""`credits alerts evaluate|deliver|list` for a cron."""

from __future__ import annotations

import json

from credits_core.cli import main
from credits_core.ledger import Ledger
from tests.alerts.conftest import account, rule_set

LOW = {"name": "low", "kind": "available_below", "severity": "critical",
       "below": 200, "resolve_at": 500}  # fmt: skip


def test_evaluate_deliver_and_list(tmp_path, capsys):
    db, rules, target = tmp_path / "c.duckdb", tmp_path / "rules.toml", tmp_path / "out.jsonl"
    rule_set(LOW).save(rules)
    with Ledger.open(db) as ledger:
        account(ledger, "u_1", 100)
        account(ledger, "u_2", 1_000)
    assert main(["alerts", "evaluate", "--db", str(db), "--rules", str(rules)]) == 0
    assert "2 users evaluated against 1 rules" in capsys.readouterr().out
    assert main(["alerts", "deliver", "--db", str(db), "--to", str(target)]) == 0
    assert "1 delivered" in capsys.readouterr().out
    assert json.loads(target.read_text())["message_id"] == "u_1/low/1"
    assert main(["alerts", "list", "--db", str(db)]) == 0
    listing = capsys.readouterr().out
    assert "1 open alerts (1 critical, 0 warning, 0 info)" in listing and "u_1/low/1" in listing


def test_a_bad_destination_or_rule_file_is_an_error_not_a_traceback(tmp_path, capsys):
    db = tmp_path / "c.duckdb"
    Ledger.open(db).close()
    assert main(["alerts", "deliver", "--db", str(db), "--to", "somewhere"]) == 2
    assert "error: Cannot deliver to 'somewhere'" in capsys.readouterr().err
    broken = tmp_path / "rules.toml"
    broken.write_text("[[rules]]\nname = 'x'\n", encoding="utf-8")
    assert main(["alerts", "evaluate", "--db", str(db), "--rules", str(broken)]) == 2
    assert "rules.0" in capsys.readouterr().err


def test_ledger_commands_that_move_a_balance_evaluate_that_user(tmp_path, monkeypatch, capsys):
    db, rules = tmp_path / "c.duckdb", tmp_path / "rules.toml"
    rule_set(LOW).save(rules)
    monkeypatch.setenv("CREDITS_ALERT_RULES", str(rules))
    with Ledger.open(db) as ledger:
        account(ledger, "u_1", 1_000)
    assert main(["reserve", "u_1", "900", "--db", str(db)]) == 0
    assert main(["alerts", "list", "--db", str(db)]) == 0
    assert "u_1/low/1" in capsys.readouterr().out
    assert main(["grant", "u_1", "1000", "--kind", "topup", "--db", str(db)]) == 0
    assert main(["alerts", "list", "--db", str(db)]) == 0
    assert "0 open alerts" in capsys.readouterr().out
