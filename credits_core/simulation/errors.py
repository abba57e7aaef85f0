"""Errors of the balance simulator and the price-change replay: one class per rule, all
`SimulationError` (a `CreditsError` and a `ValueError`). Messages say what was wrong and
what is valid."""

from __future__ import annotations

from credits_core.errors import CreditsError


class SimulationError(CreditsError, ValueError):
    """Root of the simulator's and the replay's errors."""


class InvalidScenario(SimulationError):
    """A scenario input is out of range or inconsistent (names each field and its rule)."""


class InvalidUsageMix(SimulationError):
    """A usage-mix row names a model or options the price book cannot price."""


class InvalidMixText(SimulationError):
    """A usage mix in the URL (or pasted) cannot be read back."""


class InvalidReplayWindow(SimulationError):
    """The replay's window is not a whole number of days between 1 and the limit."""


class InvalidEditedPrices(SimulationError):
    """Prices edited in the catalog table are not whole credits within the bounds."""


class SandboxError(SimulationError):
    """A sandbox step was asked for in a state where it cannot run."""
