"""Registries of extension points: one entry-point group per concept.

A registry maps names to objects that packages declare as entry points of one group, the
built-ins included (sammo-core declares its own in ``pyproject.toml``, in the same groups a
third-party package uses), so a plugin adds, say, an operator group without touching this
repository::

    # a plugin's pyproject.toml
    [project.entry-points."sammo_core.operators"]
    polite = "sammo_polite:operators"   # a callable returning a list of Mutator

and ``sammo-core optimize --operators structure,polite`` uses it. The registry is the single
source of the command line's choices and help. Built-ins come first, then other packages'
entries in the order Python finds them; a plugin cannot replace a built-in (its entry is
skipped with a warning), and one that fails to load is reported with the group and the entry.

Groups: ``sammo_core.commands`` (CLI subcommands, see :mod:`sammo_core.cli`),
``sammo_core.operators`` (operator groups, :mod:`mutators.groups`),
``sammo_core.section_formats`` and ``sammo_core.data_formats`` (:mod:`renderers`). The class
lives on the ground floor so that every package can hold a registry; ``sammo_core.registry``
gives it the core's error type.

>>> from renderers import SECTION_FORMATS
>>> "markdown" in SECTION_FORMATS and SECTION_FORMATS.origin("markdown")
'sammo-core'
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Generic, TypeVar

from renderers.errors import RenderError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["BUILTIN_DISTRIBUTION", "Registry"]

T = TypeVar("T")

#: The distribution whose entries are the built-ins.
BUILTIN_DISTRIBUTION = "sammo-core"


def _dist_name(ep: EntryPoint) -> str:
    dist = ep.dist
    return "" if dist is None else str(dist.metadata["Name"] or "")


class Registry(Mapping[str, T], Generic[T]):
    """The entries of entry-point ``group``, loaded when first asked for.

    Args:
        group: the entry-point group, e.g. ``"sammo_core.operators"``.
        what: what an entry is, for messages (``"operator group"``).
        error: the exception type of an unknown name (:meth:`pick`) or an entry that fails
            to load: the error type of the package that owns the group.
    """

    def __init__(
        self, group: str, what: str, *, error: Callable[[str], Exception] = RenderError
    ) -> None:
        self.group = group
        self.what = what
        self._error = error
        self._loaded: dict[str, T] = {}
        self._warned: set[str] = set()

    @functools.cached_property
    def _entries(self) -> dict[str, EntryPoint]:
        # Read on first use, not at import: importing packages costs no metadata scan.
        from importlib.metadata import entry_points

        found = list(entry_points(group=self.group))
        if not found:
            raise self._error(
                f"no {self.what} is registered (entry-point group {self.group!r}): sammo-core "
                "is not installed as a package here; install it with: pip install -e ."
            )
        # Built-ins first; then the rest in the order Python found them.
        found.sort(key=lambda ep: _dist_name(ep) != BUILTIN_DISTRIBUTION)
        entries: dict[str, EntryPoint] = {}
        for ep in found:
            if ep.name in entries:
                first = entries[ep.name]
                if (_dist_name(first), first.value) != (_dist_name(ep), ep.value):
                    print(
                        f"warning: {self.what} {ep.name!r} of {_dist_name(ep) or ep.value} is "
                        f"skipped: {_dist_name(first) or first.value} registers that name",
                        file=sys.stderr,
                    )
                continue
            entries[ep.name] = ep
        return entries

    def __getitem__(self, name: str) -> T:
        if name not in self._loaded:
            ep = self._entries[name]  # KeyError for an unknown name, as a Mapping does
            try:
                self._loaded[name] = ep.load()
            except Exception as exc:
                raise self._error(
                    f"{self.what} {name!r} ({ep.value}, from "
                    f"{_dist_name(ep) or 'an unknown package'}) failed to load: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def loadable(self) -> list[tuple[str, T]]:
        """Every entry that loads, in order; one that fails is reported on stderr and left
        out (for listings and help, which a broken plugin must not take down)."""
        found: list[tuple[str, T]] = []
        for name in self:
            try:
                found.append((name, self[name]))
            except Exception as exc:  # the owner's error type, from __getitem__
                if name not in self._warned:
                    self._warned.add(name)
                    print(f"warning: {exc}; it is skipped", file=sys.stderr)
        return found

    def pick(self, name: str) -> T:
        """The entry ``name``, or the owner's error listing the names there are."""
        if name not in self:
            raise self._error(f"unknown {self.what} {name!r}; use: {', '.join(self)}")
        return self[name]

    def origin(self, name: str) -> str:
        """The distribution that registers ``name`` (``'sammo-core'`` for a built-in)."""
        return _dist_name(self._entries[name])

    def __repr__(self) -> str:
        return f"Registry({self.group!r}, {self.what!r})"
