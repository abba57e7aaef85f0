"""`credits export` from the command line, and the README's data dictionary."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from credits_core.cli import main
from credits_core.export.columns import EVENT_COLUMNS, KEY_COLUMNS, MEASURE_COLUMNS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_export_grouped_by_model_and_day_to_parquet(small_db, tmp_path, capsys):
    out = tmp_path / "usage.parquet"
    code = main([
        "export", "--db", str(small_db), "--from", "2026-11-01", "--to", "2026-12-01",
        "--group-by", "model,day", "--kinds", "capture,release,expiry",
        "--format", "parquet", "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    rows = duckdb.sql(f"SELECT model, sum(generations), sum(credits_spent) FROM '{out}' GROUP BY 1")
    totals = {model: (int(g), int(c)) for model, g, c in rows.fetchall()}
    assert totals["Music 1.5"] == (3, 90) and "FLUX.1 Kontext [pro]" in totals
    assert sum(g for g, _ in totals.values()) == 10  # gen-7 is on 1 December: excluded
    assert f"{out}: " in capsys.readouterr().out


def test_export_partitioned_by_month(small_db, tmp_path):
    out = tmp_path / "by-month"
    code = main([
        "export", "--db", str(small_db), "--format", "parquet", "--out", str(out),
        "--partition-by-month",
    ])  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["month=2026-11-01", "month=2026-12-01"]


def test_bad_arguments_end_with_a_message_and_exit_2(small_db, tmp_path, capsys):
    out = tmp_path / "x.csv"
    code = main(["export", "--db", str(small_db), "--group-by", "colour", "--out", str(out)])
    assert code == 2
    assert "Cannot group by 'colour'" in capsys.readouterr().err
    assert main(["export", "--db", str(small_db), "--format", "pdf", "--out", str(out)]) == 2
    assert "Formats: csv, parquet, jsonl, xlsx" in capsys.readouterr().err
    assert not out.exists()


def test_the_readme_documents_every_column_with_its_type():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Usage export") :]
    documented = set(re.findall(r"^\| `(\w+)` \| ([A-Z ]+?) \|", section, flags=re.MULTILINE))
    for column in (*EVENT_COLUMNS, *KEY_COLUMNS, *MEASURE_COLUMNS):
        assert (column.name, column.type) in documented, column.name
