"""Nothing here writes the live ledger: the file is byte-for-byte the same after a replay,
the sources and a sandbox run, in a process that opened it as the dashboard does
(read-write, `Ledger.open(path, wait=5)`, as pages/shell does)."""

from __future__ import annotations

import hashlib
import shutil

from credits_core.ledger import Ledger
from credits_core.simulation.replay import replay
from credits_core.simulation.sandbox import Sandbox
from credits_core.simulation.sources import current_state_of, usage_mix_of
from tests.simulation.conftest import END


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_live_file_is_unchanged_after_a_replay_and_a_sandbox_run(known_db, tmp_path, draft, book):
    live = tmp_path / "credits.duckdb"
    shutil.copy(known_db, live)
    before = digest(live)
    with Ledger.open(live, wait=5) as ledger:
        result = replay(ledger, draft, days=10, current=book, until=END)
        assert result.users_running_out_earlier == 1
        usage_mix_of(ledger, "u_1", days=10, book=book)
        current_state_of(ledger, "u_1", END)
        box = Sandbox.copy_of(ledger, "u_1")
        box.reserve(300)
        box.confirm(success=True)
        box.advance(60 * 24 * 40)
        box.close()
        assert digest(live) == before
    assert digest(live) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credits.duckdb"]  # no WAL left
