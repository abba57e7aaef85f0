"""Settings for the whole test suite.

- Two sizes of run. `make test` runs every test at its default size (under ~3 minutes
  on 2 cores); `make test-long` sets CREDITS_TEST_PROFILE=long and runs the tests marked
  `long` (and every hypothesis test) at full strength: the hypothesis profile "long"
  (many more examples, no deadline) and, in the crash tests, many more kill points.
  A test asks `long_run()` what size it is; a hypothesis test that sets its own number
  of examples takes it from `examples(n)`: n, or LONG_FACTOR times n in a long run.
- The dashboard runs in local mode, as `make run` runs it (CREDITS_LOCAL=1): tests of
  access control set up their own identities or remove it.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

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


def long_run() -> bool:
    """Whether this run is `make test-long` (CREDITS_TEST_PROFILE=long)."""
    return os.environ.get(PROFILE_VARIABLE) == "long"


def examples(default: int) -> int:
    """A hypothesis test's max_examples: `default`, or LONG_FACTOR times it in a long run."""
    return default * LONG_FACTOR if long_run() else default
