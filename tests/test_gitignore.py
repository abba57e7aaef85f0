"""Every file the project writes at run time is git-ignored, so none is committed by
accident (DuckDB's default temp folder `.tmp/` once held a dump of every table)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_FILES = [
    ".tmp/accounts.csv",  # DuckDB's default temp directory, relative to the working dir
    "data/credits.duckdb",
    "data/credits.duckdb.wal",
    "data/credits.duckdb.server.json",  # the server's URL, PID and admin token
    "data/api_keys.toml",  # API key hashes
    "data/.alert_rules.toml.x1y2z3",  # the rules editor's atomic replace
    "data/bench-100k.duckdb",
    "test-artifacts/screenshots/home.png",
    ".hypothesis/examples/x",
]


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout"
)
def test_runtime_files_are_git_ignored():
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *RUNTIME_FILES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert sorted(result.stdout.split()) == sorted(RUNTIME_FILES)
