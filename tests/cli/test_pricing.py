"""`credits quote` and `credits catalog` from the command line."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pandas as pd

from credits_core.cli import main


def test_quote_prints_credits_and_breakdown(capsys):
    code = main(["quote", "MiniMax-Hailuo-02", "--resolution", "1080P", "--duration", "6"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("1100 credits  MiniMax-Hailuo-02 (resolution=1080P, duration=6)")
    assert "table: MiniMax-Hailuo-02 at resolution=1080P, duration=6 -> 1100 credits" in out


def test_quote_with_plan(capsys):
    assert (
        main(
            [
                "quote",
                "MiniMax-Hailuo-02",
                "--resolution",
                "1080P",
                "--duration",
                "6",
                "--plan",
                "pro",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("990 credits")
    assert "plan pro x0.9" in out


def test_quote_with_generic_option(capsys):
    assert (
        main(["quote", "Veo 3", "--duration", "8", "--option", "audio=true", "--at", "2026-11-24"])
        == 0
    )
    assert capsys.readouterr().out.startswith("6520 credits")


def test_bad_request_exits_2_with_the_message_and_no_traceback(capsys):
    code = main(["quote", "MiniMax-Hailuo-02", "--resolution", "1080P", "--duration", "10"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("error: MiniMax-Hailuo-02 has no duration=10")
    assert "Traceback" not in captured.err


def test_catalog_as_csv_and_json(capsys):
    assert main(["catalog", "--format", "csv", "--at", "2026-11-24"]) == 0
    csv = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(csv) == 38
    assert main(["catalog", "--format", "json", "--at", "2026-11-24"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"model", "credits", "margin_usd", "derived"} <= set(rows[0])


def test_python_dash_m_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "credits_core", "quote", "Music 1.5"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("90 credits  Music 1.5")
