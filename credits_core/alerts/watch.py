"""The watcher hook: the alerts of the users each committed balance-changing write of a
ledger touched, evaluated right after it (on the ledger's listener thread). A write
always stands, whatever becomes of its evaluation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from credits_core.alerts.evaluate import Evaluator
from credits_core.alerts.rules import AlertRules
from credits_core.errors import CreditsError
from credits_core.ledger import Ledger
from credits_core.plans import Plans
from credits_core.pricing import PriceBook

logger = logging.getLogger(__name__)


def watch(ledger: Ledger, rules_path: str | Path | None = None) -> Callable[[], None]:
    """Evaluate the users each committed balance-changing write of `ledger` touched,
    right after it. The plans, the price book and the rules are
    loaded on the first write (the rules again when their file changes); when one of
    them cannot be loaded, the write stands and a warning says why the alerts were not
    evaluated. A failing evaluation is logged by the ledger and never undoes the write.
    Returns a function that stops watching."""
    path = Path(rules_path) if rules_path is not None else AlertRules.default_path()
    loaded: dict[tuple[int, int], AlertRules] = {}
    inputs: list[tuple[Plans, PriceBook]] = []

    def listener(user_ids: frozenset[str] | None) -> None:
        try:
            if not inputs:
                inputs.append((Plans.load(), PriceBook.load()))
            stat = path.stat()
            version = (stat.st_mtime_ns, stat.st_size)
            if version not in loaded:
                loaded.clear()
                loaded[version] = AlertRules.load(path)
        except (CreditsError, OSError) as error:
            logger.warning("Low-credit alerts were not evaluated after this write: %s", error)
            return
        plans, book = inputs[0]
        Evaluator(ledger, loaded[version], plans=plans, book=book).evaluate(user_ids)

    return ledger.on_balance_change(listener)
