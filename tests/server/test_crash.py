"""`credits serve` killed (SIGKILL) or stopped (SIGTERM) while 64 clients reserve and
confirm: every request that got a 2xx is in the journal, the ledger is sound, and a
retry with the same Idempotency-Key returns the first answer without writing again.

The kill moments are seeded; the `long` variants spread more of them over the run.
"""

from __future__ import annotations

import random
import signal
import time

import httpx
import pytest

from credits_core.ledger import Ledger
from credits_core.server import runfile
from tests.server import load
from tests.server.conftest import Served, make_keys


def _serve_under_load(tmp_path, seed: int):
    database, keys_file = tmp_path / "ledger.duckdb", tmp_path / "keys.toml"
    load.fund(database)
    keys = make_keys(keys_file)
    served = Served(database, keys_file)
    thread, acked = load.start(served.url, keys["reserve"])
    assert acked.started.wait(30), "no reservation was acknowledged"
    time.sleep(random.Random(seed).uniform(0.3, 2.0))
    return database, keys_file, keys, served, thread, acked


def _kill_and_check(tmp_path, seed: int) -> None:
    database, keys_file, keys, served, thread, acked = _serve_under_load(tmp_path, seed)
    try:
        assert served.signal(signal.SIGKILL) == -9
    finally:
        served.stop()
    thread.join(60)
    assert acked.reserves, "the clients got no answer before the kill"
    assert runfile.read_any(database) is not None and runfile.find(database) is None  # stale
    load.check_file(database, acked)
    with Ledger.open(database) as ledger:
        entries = len(ledger.history(load.USERS[0], limit=None))

    again = Served(database, keys_file)  # a restart ignores the stale server file
    try:
        http = httpx.Client(
            base_url=again.url + "/v1", headers={"Authorization": f"Bearer {keys['reserve']}"}
        )
        chosen = random.Random(seed).sample(sorted(acked.reserves), min(20, len(acked.reserves)))
        for key in chosen:
            body, answer = acked.reserves[key]
            retried = http.post("/reservations", json=body, headers={"Idempotency-Key": key})
            assert retried.status_code == 201
            assert retried.json()["transaction_id"] == answer["transaction_id"]
        for key in sorted(acked.confirms)[:20]:
            hold, outcome, answer = acked.confirms[key]
            path = f"/reservations/{hold}/confirm"
            retried = http.post(path, json=outcome, headers={"Idempotency-Key": key})
            assert retried.status_code == 200 and retried.json()["status"] == answer["status"]
    finally:
        again.stop()
    with Ledger.open(database) as ledger:
        assert len(ledger.history(load.USERS[0], limit=None)) == entries  # nothing written
        assert ledger.check_invariants() == []


def test_sigkill_under_load_loses_no_acknowledged_write(tmp_path):
    _kill_and_check(tmp_path, seed=14)


@pytest.mark.long
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_sigkill_under_load_at_many_moments(tmp_path, seed):
    _kill_and_check(tmp_path, seed)


def test_sigterm_under_load_commits_and_closes_clean(tmp_path):
    database, _keys_file, _keys, served, thread, acked = _serve_under_load(tmp_path, seed=15)
    try:
        code = served.signal(signal.SIGTERM)
        out = served.out_path.read_text()
    finally:
        served.stop()
    thread.join(60)
    assert code in (0, -signal.SIGTERM), code
    assert "closed." in out  # the lifespan's end ran: queued writes committed, file closed
    assert runfile.read_any(database) is None  # the server file is removed
    assert not database.with_name(database.name + ".wal").exists()  # checkpointed on close
    load.check_file(database, acked)


def test_ctrl_c_stops_cleanly_without_a_traceback(tmp_path):
    database, keys_file = tmp_path / "ledger.duckdb", tmp_path / "keys.toml"
    load.fund(database)
    served = Served(database, keys_file)
    try:
        code = served.signal(signal.SIGINT)
        out, err = served.out_path.read_text(), served.err_path.read_text()
    finally:
        served.stop()
    assert code == 130
    assert "closed." in out and "Traceback" not in err
    assert runfile.read_any(database) is None
    with Ledger.open(database) as ledger:
        assert ledger.check_invariants() == []
