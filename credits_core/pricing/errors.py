"""Errors of the pricing rules engine: one class per rule, each message says what to do."""

from __future__ import annotations

from collections.abc import Sequence

from credits_core.errors import CreditsError


class PricingError(CreditsError, ValueError):
    """Root of every pricing error."""


class UnknownModel(PricingError):
    """The model name matches no model of the price book."""

    def __init__(self, model: str | None, closest: Sequence[str]) -> None:
        self.model = model
        self.closest = tuple(closest)
        hint = f" Closest: {', '.join(self.closest)}." if self.closest else ""
        what = "No model given." if model is None else f"Unknown model {model!r}.{hint}"
        super().__init__(f"{what} Run `credits catalog` to list every model.")


class InvalidOption(PricingError):
    """An option (or the provider) has a value the model does not offer."""

    def __init__(self, model: str, option: str, value: object, message: str) -> None:
        self.model = model
        self.option = option
        self.value = value
        super().__init__(message)


class UnknownProvider(InvalidOption):
    """The provider name matches no provider of the price book."""

    def __init__(self, provider: object, valid: Sequence[str]) -> None:
        self.valid = tuple(valid)
        super().__init__(
            "",
            "provider",
            provider,
            f"Unknown provider {provider!r}. Valid providers: {', '.join(self.valid)}.",
        )


class UnknownPlan(InvalidOption):
    """The plan name matches no plan of the price book version in force."""

    def __init__(self, plan: object, valid: Sequence[str]) -> None:
        self.valid = tuple(valid)
        super().__init__(
            "", "plan", plan, f"Unknown plan {plan!r}. Valid plans: {', '.join(self.valid)}."
        )


class MissingOption(PricingError):
    """An option that changes the price was left out and has no default."""

    def __init__(self, model: str, option: str, valid: Sequence[object]) -> None:
        self.model = model
        self.option = option
        self.valid = tuple(valid)
        values = ", ".join(str(v) for v in self.valid)
        super().__init__(
            f"{model} needs {option} (one of: {values}). It has no default because "
            f"leaving it out would charge an arbitrary price; pass {option}=..."
        )


class NoPriceBookInForce(PricingError):
    """No version of the price book was in force at the requested time."""

    def __init__(self, at: object, earliest: object) -> None:
        self.at = at
        super().__init__(
            f"No price book version was in force at {at}: the earliest takes effect "
            f"at {earliest}. Quote at or after that time."
        )


class PriceBookError(PricingError):
    """A price book file is broken; nothing of it was loaded."""

    def __init__(self, path: str, problems: Sequence[tuple[str, str]]) -> None:
        self.path = path
        self.problems = tuple(problems)
        lines = [f"{path}: {key}: {reason}" for key, reason in self.problems]
        super().__init__("Price book not loaded; fix these and load again:\n" + "\n".join(lines))
