"""A broken or missing price book does not block ledger writes that price nothing: the
write stands and a warning says why the alerts were not evaluated; evaluating the alerts
explicitly fails with the price book's own error."""

from __future__ import annotations

import logging

import pytest

from credits_core.cli import main
from credits_core.pricing import book as book_module


@pytest.fixture(params=["missing", "broken", "not utf-8"])
def no_price_book(request, tmp_path, monkeypatch):
    path = tmp_path / "pricing.toml"
    if request.param == "broken":
        path.write_text('version = "v1"\n[models\n', encoding="utf-8")
    elif request.param == "not utf-8":
        path.write_bytes(b'version = "\xff"\n')
    monkeypatch.setattr(book_module, "DEFAULT_PATH", path)
    return path


def test_cli_writes_work_without_a_price_book_and_say_alerts_were_skipped(
    no_price_book, tmp_path, capsys, caplog
):
    db = str(tmp_path / "credits.duckdb")
    with caplog.at_level(logging.WARNING):
        assert main(["account", "u_1", "--db", db]) == 0
        assert main(["grant", "u_1", "500", "--kind", "plan", "--db", db]) == 0
    out, err = capsys.readouterr()
    assert "u_1: total 500, held 0, available 500" in out and "Traceback" not in err
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "Low-credit alerts were not evaluated" in m and str(no_price_book) in m for m in warnings
    )
    assert main(["alerts", "evaluate", "--db", db]) == 2
    assert str(no_price_book) in capsys.readouterr().err
