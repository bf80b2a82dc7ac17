"""What a run is configured by, and the one error a bad configuration raises.

A :class:`ConfigError` names where the value came from (a preset file, a command-line option), the
field and the allowed values; the command line prints it as one line and exits with status 2.
"""

from __future__ import annotations

from collections.abc import Iterable


class ConfigError(ValueError):
    """A configuration value that is not allowed: the message names the field and the choices."""


def choose(value: str, allowed: Iterable[str], field: str, where: str = "") -> str:
    """``value`` if it is one of ``allowed``, else a :class:`ConfigError` naming ``field``."""
    allowed = list(allowed)
    if value not in allowed:
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}{field}: {value!r} is not one of {', '.join(allowed)}")
    return value
