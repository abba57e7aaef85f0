"""The CLI through a running server, API keys made and revoked with `credits keys`, and
who a write is booked to."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import httpx
import pytest

from credits_core.server import runfile
from tests.server.conftest import ROOT, Served, client, make_keys, seed


def credits(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "credits_core", *args],
        cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    database, keys_file = folder / "ledger.duckdb", folder / "keys.toml"
    seed(database)
    keys = make_keys(keys_file)
    served = Served(database, keys_file)
    yield served, keys, keys_file
    served.stop()


def test_cli_commands_go_through_the_running_server(running):
    served, _keys, _ = running
    db = ["--db", str(served.database)]
    assert runfile.find(served.database).pid == served.process.pid
    mode = stat.S_IMODE(runfile.path_for(served.database).stat().st_mode)
    assert mode == 0o600  # the local admin token is readable by its user only

    shown = credits("balance", "u_500", *db)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "u_500: total 500, held 0, available 500"
    granted = credits("grant", "u_500", "70", "--kind", "promo", "--reason", "cli test", *db)
    assert granted.returncode == 0, granted.stderr
    assert "u_500: total 570, held 0, available 570" in granted.stdout
    history = credits("history", "u_500", "--format", "json", *db)
    assert history.returncode == 0, history.stderr
    newest = json.loads(history.stdout)[0]
    assert (newest["reason"], newest["actor"], newest["credits"]) == ("cli test", "local-admin", 70)
    assert credits("check", *db).stdout.strip().endswith("ledger is sound")
    missing = credits("balance", "ghost", *db)
    assert missing.returncode == 2 and "No account for user 'ghost'" in missing.stderr
    assert "Traceback" not in missing.stderr
    # the same answers through the API: the server wrote it
    reply = client(served, _keys["read"]).get("/accounts/u_500/balance")
    assert reply.json() == {"total": 570, "held": 0, "available": 570}


def test_cli_with_credits_url_and_key(running):
    served, keys, _ = running
    env = {"CREDITS_URL": served.url, "CREDITS_API_KEY": keys["read"], "CREDITS_DB": "/nowhere"}
    shown = credits("balance", "u_rich", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "u_rich: total" in shown.stdout
    refused = credits("grant", "u_rich", "5", "--kind", "promo", env=env)
    assert refused.returncode == 2 and "'admin' scope" in refused.stderr


def test_stale_server_file_is_ignored(tmp_path):
    database = tmp_path / "ledger.duckdb"
    seed(database)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    runfile.write(database, "http://127.0.0.1:9", "http://127.0.0.1:9", "local_x")
    text = runfile.path_for(database).read_text().replace(str(os.getpid()), str(dead.pid))
    runfile.path_for(database).write_text(text)
    assert runfile.find(database) is None
    shown = credits("balance", "u_500", "--db", str(database))
    assert shown.returncode == 0, shown.stderr
    assert "available 500" in shown.stdout


def test_keys_cli_prints_the_key_once_and_stores_its_hash(tmp_path):
    keys_file = tmp_path / "keys.toml"
    made = credits(
        "keys", "create", "backend", "--scopes", "reserve,read", "--keys", str(keys_file)
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("ck_") and len(secret) > 40
    stored = keys_file.read_text()
    assert secret not in stored and "sha256:" in stored
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    listed = credits("keys", "list", "--keys", str(keys_file))
    assert "backend\tread,reserve" in listed.stdout and secret not in listed.stdout
    bad = credits("keys", "create", "x", "--scopes", "root", "--keys", str(keys_file))
    assert bad.returncode == 2 and "Unknown scope(s) root" in bad.stderr
    again = credits("keys", "create", "backend", "--scopes", "read", "--keys", str(keys_file))
    assert again.returncode == 2 and "exists already" in again.stderr


def test_new_and_revoked_keys_take_effect_within_a_second(running):
    served, _keys, keys_file = running
    made = credits("keys", "create", "late", "--scopes", "read", "--keys", str(keys_file))
    secret = made.stdout.strip().splitlines()[-1]
    http = client(served, secret)
    made_at = time.monotonic()
    while http.get("/accounts/u_rich/balance").status_code != 200:
        assert time.monotonic() - made_at < 1.0, "a new key did not work after a second"
        time.sleep(0.05)
    revoked = credits("keys", "revoke", "late", "--keys", str(keys_file))
    assert revoked.returncode == 0, revoked.stderr
    gone = time.monotonic()
    while http.get("/accounts/u_rich/balance").status_code == 200:
        assert time.monotonic() - gone < 1.0, "a revoked key still worked after a second"
        time.sleep(0.05)
    answer = http.get("/accounts/u_rich/balance")
    assert answer.status_code == 401 and "revoked" in answer.json()["error"]["message"]


def test_writes_are_booked_to_the_key_and_x_actor(running):
    served, keys, _ = running
    headers = {"X-Actor": "alice@corp"}
    support = client(served, keys["support"])
    made = support.post(
        "/accounts/u_rich/adjustments", json={"credits": 5, "reason": "goodwill"}, headers=headers
    )
    assert made.status_code == 201 and made.json()["actor"] == "alice@corp (via support-key)"
    reserve = client(served, keys["reserve"])
    hold = reserve.post("/reservations", json={"user_id": "u_rich", "credits": 3}, headers=headers)
    entries = client(served, keys["read"]).get("/accounts/u_rich/transactions").json()["entries"]
    mine = next(e for e in entries if e["transaction_id"] == hold.json()["transaction_id"])
    assert mine["actor"] == "reserve-key"  # a reserve key cannot name someone else
    spoof = support.post(
        "/accounts/u_rich/adjustments",
        json={"credits": 5, "reason": "goodwill"},
        headers={"X-Actor": "x" * 300},
    )
    assert spoof.status_code == 400 and spoof.json()["error"]["field"] == "X-Actor"


def test_a_second_server_on_the_same_file_is_refused(running):
    served, _keys, keys_file = running
    refused = credits(
        "serve", "--db", str(served.database), "--port", "0", "--api-port", "0",
        env={"CREDITS_API_KEYS": str(keys_file)},
    )  # fmt: skip
    assert refused.returncode == 2
    assert f"already served by PID {served.process.pid}" in refused.stderr


def test_health_reports_each_jobs_last_run(running):
    served, _keys, _ = running
    jobs = httpx.get(served.url + "/v1/health").json()["jobs"]
    assert jobs["expire_holds"]["every_s"] == 30 and jobs["expire_holds"]["runs"] >= 1
    assert jobs["expire_holds"]["last_ok"] is True
    assert jobs["expire_grants"]["every_s"] == 300
    assert jobs["outbox"]["last_result"].startswith("idle: no destination")


def test_alerts_and_export_commands_go_through_the_running_server(running, tmp_path):
    served, _keys, _ = running
    db = ["--db", str(served.database)]
    evaluated = credits("alerts", "evaluate", *db)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "users evaluated against" in evaluated.stdout
    listed = credits("alerts", "list", *db)
    assert listed.returncode == 0 and "open alerts" in listed.stdout
    out = tmp_path / "usage.csv"
    exported = credits("export", "--out", str(out), "--kinds", "capture,release", *db)
    assert exported.returncode == 0, exported.stderr
    rows = int(exported.stdout.split(": ")[1].split()[0].replace(",", ""))
    assert len(out.read_text().splitlines()) == rows + 1  # written by the server, with header
    bad = credits("export", "--out", str(tmp_path / "x.csv"), "--group-by", "colour", *db)
    assert bad.returncode == 2 and "Cannot group by 'colour'" in bad.stderr
