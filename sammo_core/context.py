"""The state a program sees while it renders and runs: the current inputs and shared caches.

A :class:`RunState` lives for one run of a compiled program over a data table. It holds the
render-once cache for static nodes (keyed by content hash), render counters and the runner.
A :class:`RunContext` is the per-call view: which inputs are being rendered, which data format
applies here, and the LLM results produced so far for this call.

A :class:`RenderCache` outlives runs: given to several runs (say, of the candidates of a
search), static parts whose content hash one run rendered are not rendered again by the next.
While a run compiles its render plan (see :mod:`sammo_core.plan`) its state holds a
:class:`Planning`, which hands out placeholders for the parts that change per input.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import re
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sammo_core.errors import ConfigError
from sammo_core.runners.base import LLMRequest, LLMResult, Runner

if TYPE_CHECKING:
    from renderers import Block, SectionFormat
    from sammo_core.data import Row

__all__ = ["NotPlannable", "Planning", "Render", "RenderCache", "RunContext", "RunState", "Slot"]

T = TypeVar("T")

#: A per-call text of a node that depends on the input: what its ``Text`` block would hold.
Slot = Callable[["RunContext"], str]
#: How a run builds a node's blocks in a context (set by the compiled graph).
Render = Callable[[Any, "RunContext"], Awaitable["tuple[Block, ...]"]]


class NotPlannable(Exception):  # a signal, caught inside the run path
    """Raised while planning when a program part cannot be rendered from a plan."""


class RenderCache:
    """Rendered static parts by (content hash, data format), kept across runs.

    Pass one to :meth:`~sammo_core.graph.FunctionGraph.run` of several programs and a part
    they share is rendered once for all of them: a candidate that differs from its parent in
    one section renders only that section.

    >>> cache = RenderCache()
    >>> cache.put(("abc", "plain"), "text"); cache.get(("abc", "plain")), len(cache)
    ('text', 1)
    """

    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"RenderCache(entries={len(self)})"

    def get(self, key: Hashable) -> Any | None:
        return self._values.get(key)

    def put(self, key: Hashable, value: Any) -> None:
        self._values[key] = value


class Planning:
    """Placeholders for a render plan: one per input-dependent node met while rendering.

    Each placeholder notes the section formats its text passed through, so the plan knows how
    to write the node's text in its place (see :meth:`renderers.SectionFormat.escape_text`).

    >>> planning = Planning()
    >>> mark = planning.placeholder(lambda ctx: "x")
    >>> planning.split(f"a {mark} b")
    ['a ', 0, ' b']
    """

    OPEN, CLOSE = "\ue000", "\ue001"  # private-use characters, kept as is by every format
    _MARK = re.compile("\ue000([0-9]+)\ue001")

    def __init__(self) -> None:
        self.slots: list[Slot] = []
        self.formats: list[list[SectionFormat]] = []
        self.dynamic_ids: list[int] = []  # nodes the plan renders, for the render counters

    def placeholder(self, slot: Slot) -> str:
        self.slots.append(slot)
        self.formats.append([])
        return f"{self.OPEN}{len(self.slots) - 1}{self.CLOSE}"

    def rendered(self, section_format: SectionFormat, text: str) -> None:
        """Note that the placeholders in ``text`` went through ``section_format``."""
        if self.OPEN in text:
            for index in self._MARK.findall(text):
                self.formats[int(index)].append(section_format)

    def split(self, text: str) -> list[str | int]:
        """``text`` as static strings and slot numbers; raises :class:`NotPlannable` if unsure."""
        parts: list[str | int] = []
        for i, piece in enumerate(self._MARK.split(text)):
            if i % 2:
                parts.append(int(piece))
            elif self.OPEN in piece or self.CLOSE in piece:
                raise NotPlannable("the program's own text holds placeholder characters")
            elif piece:
                parts.append(piece)
        return parts


class RunState:
    """Shared by all calls of one run: the runner, render-once caches and counters."""

    def __init__(
        self,
        runner: Runner | None,
        static_ids: frozenset[int],
        hashes: Mapping[int, str],
        cache: RenderCache | None = None,
        *,
        no_share: frozenset[int] = frozenset(),
        render: Render | None = None,
    ) -> None:
        self.runner = runner
        #: How a node's blocks are built in this run (the compiled graph's render-once rule):
        #: components render their children through :meth:`RunContext.render`, never by
        #: importing the graph.
        self.render = render
        self.static_ids = static_ids
        self.hashes = hashes
        self.cache = cache
        self.no_share = no_share  # static nodes kept out of ``cache``: their render makes calls
        self.planning: Planning | None = None
        self.render_counts: collections.Counter[int] = collections.Counter()  # by id(node)
        self._once: dict[Hashable, asyncio.Future[Any]] = {}

    async def once(
        self, key: Hashable, make: Callable[[], Awaitable[T]], *, share: bool = True
    ) -> T:
        """Compute ``make()`` once per key, even when many tasks ask at the same time.

        With a :class:`RenderCache` and ``share``, a key computed by an earlier run is not
        computed again. (A render that makes calls is not shared: each run pays for its own.)
        """
        cache = self.cache if share else None
        future = self._once.get(key)
        if future is None:
            if cache is not None:
                known = cache.get(key)
                if known is not None:
                    return cast(T, known)
            future = asyncio.get_running_loop().create_future()
            self._once[key] = future
            try:
                value = await make()
                future.set_result(value)
            except BaseException as exc:
                del self._once[key]
                future.set_exception(exc)
                # The creator re-raises; waiters get the same exception.
                future.exception()
                raise
            if cache is not None:
                cache.put(key, value)
        return await asyncio.shield(future)


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What one LLM call's rendering sees.

    ``inputs`` are the rows packed into this call (one, unless minibatching). ``data_format`` is
    the format inherited from the nearest enclosing node that sets one.
    """

    state: RunState
    inputs: tuple[Row, ...] = ()
    data_format: str = "plain"
    constants: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    results: list[LLMResult] = dataclasses.field(default_factory=list)

    def with_data_format(self, data_format: str | None) -> RunContext:
        if data_format is None or data_format == self.data_format:
            return self
        return dataclasses.replace(self, data_format=data_format)

    async def render(self, node: Any) -> tuple[Block, ...]:
        """``node``'s blocks in this context, built as the run builds every node (once per run
        for a static node); without a run, by the node itself."""
        if self.state.render is None:
            return tuple(await node.build(self))
        return await self.state.render(node, self)

    async def call(self, request: LLMRequest) -> LLMResult:
        """Send one request through the run's runner and record its result."""
        if self.state.planning is not None:
            raise NotPlannable("a call made while rendering (a nested GenerateText)")
        if self.state.runner is None:
            raise ConfigError(
                "this program makes an LLM call but no runner was given: pass runner=... "
                "(for example sammo_core.ScriptedRunner(...) in tests)"
            )
        result = await self.state.runner.generate(request)
        self.results.append(result)
        return result
