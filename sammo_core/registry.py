"""Registries of the core's extension points, with the core's error type.

See :mod:`renderers.registry` for how a registry finds its entries (entry points, built-ins
declared in sammo-core's ``pyproject.toml`` like any plugin's).

>>> from mutators.groups import OPERATOR_GROUPS
>>> "structure" in OPERATOR_GROUPS and OPERATOR_GROUPS.origin("structure")
'sammo-core'
>>> OPERATOR_GROUPS.pick("magic")
Traceback (most recent call last):
...
sammo_core.errors.ConfigError: unknown operator group 'magic'; use: ape, apo, compression, \
content, examples, format, opro, scoring, structure
"""

from __future__ import annotations

from typing import TypeVar

from renderers.registry import BUILTIN_DISTRIBUTION
from renderers.registry import Registry as _Registry
from sammo_core.errors import ConfigError

__all__ = ["BUILTIN_DISTRIBUTION", "Registry"]

T = TypeVar("T")


class Registry(_Registry[T]):
    """A :class:`renderers.registry.Registry` whose errors are :class:`ConfigError`."""

    def __init__(self, group: str, what: str) -> None:
        super().__init__(group, what, error=ConfigError)
