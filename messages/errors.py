"""The one base of the service's typed errors: what is wrong (`field`) and why (`problem`).

Every package may import it (it imports nothing): the core's booking, pricing, valuation and
drawdown errors, the folds' `StateNotCarried`, the config's `ConfigError` (also what the
settings' own checks raise), the actors' `SetupError`, the codec's errors and Kraken's
`FieldError` are its subclasses, so `except ServiceFieldError` catches any of them and
`error.field` names the culprit: a dotted config key (`prices.interval_seconds`), an event's
field (`fee`), an asset (`XBT.quantity`).
"""

from __future__ import annotations


class ServiceFieldError(Exception):
    """`field` is what is wrong, `problem` why; the text is `field: problem`. A subclass also
    derives from ValueError or RuntimeError, as the error it replaces did, so every existing
    `except` still catches it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(self._text(field, problem))
        self.field = field
        self.problem = problem

    @staticmethod
    def _text(field: str, problem: str) -> str:
        return f"{field}: {problem}"


class ConfigError(ServiceFieldError, ValueError):
    """A setting is missing, unknown, of the wrong type or out of range; `key` (= `field`) is
    its dotted path. A settings dataclass raises it naming the setting within its section
    (`interval_seconds`); the loader names the whole dotted key (`prices.interval_seconds`)."""

    @staticmethod
    def _text(field: str, problem: str) -> str:
        return f"{field}: {problem}" if field else problem  # a whole-file problem has no key

    @property
    def key(self) -> str:
        return self.field


class SetupError(ServiceFieldError, RuntimeError):
    """An actor cannot start as configured (`field` names the setting or what it needs: a
    dotted key, `exchange`, `exchange credentials`); raised in the actor's start, so the
    host reports it as that actor's failure to start."""


def require(condition: bool, field: str, problem: str) -> None:
    """Raise ConfigError(field, problem) unless `condition` holds (a setting's own check)."""
    if not condition:
        raise ConfigError(field, problem)


def require_positive(field: str, value: float) -> None:
    """Raise ConfigError unless `value` > 0."""
    require(value > 0, field, f"must be > 0, got {value}")
