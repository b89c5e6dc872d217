"""The state a program sees while it renders and runs: the current inputs and shared caches.

A :class:`RunState` lives for one run of a compiled program over a data table. It holds the
render-once cache for static nodes (keyed by content hash), render counters and the runner.
A :class:`RunContext` is the per-call view: which inputs are being rendered, which data format
applies here, and the LLM results produced so far for this call.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from sammo_core.errors import ConfigError
from sammo_core.runners.base import LLMRequest, LLMResult, Runner

if TYPE_CHECKING:
    from sammo_core.data import Row

__all__ = ["RunContext", "RunState"]

T = TypeVar("T")


class RunState:
    """Shared by all calls of one run: the runner, render-once caches and counters."""

    def __init__(
        self, runner: Runner | None, static_ids: frozenset[int], hashes: Mapping[int, str]
    ) -> None:
        self.runner = runner
        self.static_ids = static_ids
        self.hashes = hashes
        self.render_counts: collections.Counter[int] = collections.Counter()  # by id(node)
        self._once: dict[Hashable, asyncio.Future[Any]] = {}

    async def once(self, key: Hashable, make: Callable[[], Awaitable[T]]) -> T:
        """Compute ``make()`` once per key, even when many tasks ask at the same time."""
        future = self._once.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._once[key] = future
            try:
                future.set_result(await make())
            except BaseException as exc:
                del self._once[key]
                future.set_exception(exc)
                # The creator re-raises; waiters get the same exception.
                future.exception()
                raise
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

    async def call(self, request: LLMRequest) -> LLMResult:
        """Send one request through the run's runner and record its result."""
        if self.state.runner is None:
            raise ConfigError(
                "this program makes an LLM call but no runner was given: pass runner=... "
                "(for example sammo_core.ScriptedRunner(...) in tests)"
            )
        result = await self.state.runner.generate(request)
        self.results.append(result)
        return result
