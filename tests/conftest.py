"""Settings for the whole test suite.

- Two sizes of run. `make test` runs every test at its default size (under ~3 minutes
  on 2 cores); `make test-long` sets CREDITS_TEST_PROFILE=long and runs the tests marked
  `long` (and every hypothesis test) at full strength: the hypothesis profile "long"
  (many more examples, no deadline) and, in the crash tests, many more kill points.
  A test asks `long_run()` what size it is; a hypothesis test that sets its own number
  of examples takes it from `examples(n)`: n, or LONG_FACTOR times n in a long run.
- The dashboard runs in local mode, as `make run` runs it (CREDITS_LOCAL=1): tests of
  access control set up their own identities or remove it.
- A demo database takes seconds to build and several modules use the same one:
  `demo_databases` builds each DemoSpec once per run, whichever xdist worker asks first
  (the others wait for it), in the run's shared temporary folder.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from credits_core.demo import DemoReport, DemoSpec, build

PROFILE_VARIABLE = "CREDITS_TEST_PROFILE"
LONG_FACTOR = 10

settings.register_profile(
    "long",
    max_examples=1_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get(PROFILE_VARIABLE) or "default")

os.environ.setdefault("CREDITS_LOCAL", "1")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`-n 2` sends the tests of some modules to one worker (tests/scheduling.py)."""
    if config.getvalue("dist") != "load":
        return None  # another --dist asked for: xdist's own
    from tests.scheduling import Units

    return Units(config, log)


def long_run() -> bool:
    """Whether this run is `make test-long` (CREDITS_TEST_PROFILE=long)."""
    return os.environ.get(PROFILE_VARIABLE) == "long"


def examples(default: int) -> int:
    """A hypothesis test's max_examples: `default`, or LONG_FACTOR times it in a long run."""
    return default * LONG_FACTOR if long_run() else default


@dataclass(frozen=True)
class DemoDatabases:
    """Demo databases built once per test run, in `folder` (shared by the xdist workers)."""

    folder: Path

    def pristine(self, spec: DemoSpec) -> Path:
        """The built file, to open read only: other workers may be reading it too."""
        return self._built(spec)[0]

    def report(self, spec: DemoSpec) -> DemoReport:
        """What `build` reported when it made the file."""
        return self._built(spec)[1]

    def copy(self, spec: DemoSpec, folder: Path, name: str = "credits.duckdb") -> Path:
        """A copy of the built file in `folder`, for a test (or a server) that writes."""
        path = folder / name
        shutil.copy(self.pristine(spec), path)
        return path

    def _built(self, spec: DemoSpec) -> tuple[Path, DemoReport]:
        name = f"demo-{spec.users}-{spec.days}-{spec.seed}-{spec.end:%Y%m%dT%H%M%S%z}"
        path, report = self.folder / f"{name}.duckdb", self.folder / f"{name}.json"
        with open(self.folder / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one worker builds, the others wait for it
            if not path.exists():
                partial = self.folder / f"{name}.building"
                for left in [partial, *self.folder.glob(f"{partial.name}.*")]:
                    left.unlink(missing_ok=True)  # of a build that failed
                made = build(partial, spec)
                leftovers = list(self.folder.glob(f"{partial.name}.*"))
                assert not leftovers, f"the demo build left {leftovers} beside its file"
                report.write_text(json.dumps(asdict(made)))
                os.replace(partial, path)
        return path, DemoReport(**json.loads(report.read_text()))


@pytest.fixture(scope="session")
def demo_databases(tmp_path_factory) -> DemoDatabases:
    here = tmp_path_factory.getbasetemp()
    shared = here.parent if os.environ.get("PYTEST_XDIST_WORKER") else here
    folder = shared / "demo-databases"
    folder.mkdir(exist_ok=True)
    return DemoDatabases(folder)
