"""The suites registry, light enough for the command line's start-up.

``sammo-core bench run SUITE`` offers the names of group ``sammo_core.suites``; reading them
loads nothing. The built-in suites are the constants of :mod:`benchmarks.suites`, declared in
sammo-core's ``pyproject.toml``; a plugin package declares its own :class:`~benchmarks.suites.Suite`
the same way, and ``bench run`` and ``bench list`` show it.

>>> "base-model" in SUITES and SUITES.origin("base-model")
'sammo-core'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sammo_core.registry import Registry

if TYPE_CHECKING:
    from benchmarks.suites import Suite

__all__ = ["SUITES"]

#: Suite name -> :class:`~benchmarks.suites.Suite`: the entry points of ``sammo_core.suites``.
SUITES: Registry[Suite] = Registry("sammo_core.suites", "suite")
