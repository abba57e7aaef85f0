"""How `pytest -n 2` shares the tests between its two xdist workers.

xdist's default (`--dist load`) hands out single tests. The tests of the modules listed in
UNITS share something expensive that a worker makes once for all of them (a running
server, a demo build): they go to one worker as one unit, so that it is made once. Units
go out biggest first, then the single tests in collection order. (xdist's own
`--dist loadgroup` would do this with marks, but under pytest 9.2 it silently stops
grouping: pytest-xdist issue #1386.)
"""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

# module -> the unit its tests go in, with what they share
UNITS = {
    "tests/e2e/test_balance_simulator.py": "e2e-simulator",  # demo_server
    "tests/e2e/test_pages.py": "e2e-pages",  # demo_server
    "tests/e2e/test_usage_export.py": "e2e-export",  # its server
    "tests/server/test_bad_input.py": "served",  # the session's server
    "tests/server/test_flow.py": "served",
    "tests/server/test_scopes.py": "served",
    "tests/server/test_cli.py": "served-cli",  # its server
    "tests/test_demo.py": "demo",  # the demo build
    "tests/ledger/test_crash.py": "ledger-crash",  # the reference run
    "tests/alerts/test_crash.py": "alerts-crash",  # the reference run
}


class Units(LoadScopeScheduling):
    """Single tests, except that the tests of the modules in UNITS go in their unit."""

    def _split_scope(self, nodeid: str) -> str:
        return UNITS.get(nodeid.split("::", 1)[0], nodeid)
