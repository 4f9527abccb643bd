"""Reading settings from the environment: every problem collected, then named at once."""

import dataclasses
from collections.abc import Mapping

from bot_runtime.phone_numbers import PhoneNumberError, e164


class ConfigError(ValueError):
    """The environment is misconfigured; the message lists every problem, one per line."""


class EnvReader:
    """Reads variables from one environment and collects problems instead of stopping."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: list[str] = []

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name} must be true or false, got {raw!r}")
        return default

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(name, "").strip()
        return value or default

    def seconds(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        """A duration in seconds of at least ``minimum``."""
        return self.number(name, default, minimum=minimum, what="number of seconds")

    def number(
        self,
        name: str,
        default: float,
        *,
        minimum: float = 0.0,
        whole: bool = False,
        what: str | None = None,
    ) -> float:
        """A number (a whole one if ``whole``) of at least ``minimum``."""
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw) if whole else float(raw)
        except ValueError:
            kind = what or ("whole number" if whole else "number")
            self.problems.append(f"{name} must be a {kind}, got {raw!r}")
            return default
        if value < minimum:
            self.problems.append(f"{name} must be at least {minimum:g}, got {raw}")
            return default
        return value

    def phone_number(self, name: str) -> str | None:
        """The number in ``name`` as E.164, written however people write numbers."""
        raw = self.text(name)
        if raw is None:
            return None
        try:
            return e164(raw, what=name)
        except PhoneNumberError as exc:
            self.problems.append(str(exc))
            return None

    def url(self, name: str, schemes: tuple[str, ...], default: str | None = None) -> str | None:
        value = self.text(name, default)
        if value is not None and not value.startswith(schemes):
            choices = " or ".join(f"{s}//" for s in schemes)
            self.problems.append(f"{name} must start with {choices}, got {value!r}")
        return value

    def raise_if_problems(self) -> None:
        if self.problems:
            raise ConfigError("\n".join(self.problems))


def secrets_of(settings: object) -> list[str]:
    """Every value marked SECRET in ``settings`` and the settings inside it (for log redaction).

    A new key added to the settings with ``metadata=SECRET`` is redacted from the
    logs without anyone having to remember a list.
    """
    found = []
    for each in dataclasses.fields(settings):
        value = getattr(settings, each.name)
        for item in value if isinstance(value, list | tuple) else [value]:
            if dataclasses.is_dataclass(item):
                found += secrets_of(item)
            elif each.metadata.get("secret") and item:
                found.append(item)
    return found
