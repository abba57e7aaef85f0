"""The balance simulator and the price-change replay; nothing here writes the live ledger.

- scenario.py: a scenario's inputs and its deterministic day-by-day simulation;
- engine.py: many runs of one scenario at once (numpy, one step per day);
- variation.py: seeded Monte Carlo runs, summarised as a median with a band;
- alerts.py: the day each low-credit alert rule would fire on a simulated series;
- sources.py: a real user's usage mix and credits, read from the ledger;
- sandbox.py: a user's state copied into an in-memory ledger, stepped by support;
- replay.py: the real usage of the last N days priced again under a draft price book,
  as a report: repricing in reprice.py, who runs out earlier in run_out.py.
"""

from credits_core.simulation.errors import (
    InvalidEditedPrices,
    InvalidMixText,
    InvalidReplayWindow,
    InvalidScenario,
    InvalidUsageMix,
    SandboxError,
    SimulationError,
)
from credits_core.simulation.scenario import (
    Lot,
    MixItem,
    PlanTerms,
    Scenario,
    Simulation,
    TopUpPolicy,
    simulate,
)

__all__ = [
    "InvalidEditedPrices",
    "InvalidMixText",
    "InvalidReplayWindow",
    "InvalidScenario",
    "InvalidUsageMix",
    "Lot",
    "MixItem",
    "PlanTerms",
    "SandboxError",
    "Scenario",
    "Simulation",
    "SimulationError",
    "TopUpPolicy",
    "simulate",
]
