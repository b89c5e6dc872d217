"""A model served by several Ray workers: one search's calls spread over a cluster.

``sammo-core optimize --ray [ADDRESS] --ray-workers N`` gives the search a :class:`RayPool`
as its backend: N Ray actors (a local cluster without ADDRESS), each holding its own backend
for the model (:func:`~sammo_core.runners.backends.build_backend`: an embedded model loads in
each worker), and each call goes to the actor with the fewest calls in flight. Everything
else stays in the driver: the cache (so a rerun and a resume make the same calls, and no call
is paid twice), the accounting and the budget, the concurrency and rate limits, the search
and its checkpoints. What pays: models that compute in the worker (the embedded llama.cpp or
transformers models) on several cores or machines; an HTTP endpoint gains nothing, one process
already keeps many of its requests in flight.

Ray is the ``[ray]`` extra, imported only when a pool is built.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sammo_core.errors import ConfigError
from sammo_core.runners.base import LLMRequest, LLMResult, Runner

__all__ = ["LOCAL", "RayPool"]

#: ``--ray`` with no address: start a local cluster.
LOCAL = "local"


class _Worker:
    """One Ray actor: a backend for the model, built in the worker's process."""

    def __init__(self, model: str, options: Any) -> None:
        from sammo_core.runners.backends import build_backend

        self.backend = build_backend(model, options)
        self.calls = 0

    def identity(self) -> tuple[str, str | None, bool]:
        """The backend's model and endpoint (what cache keys hold), and whether it plans
        several calls for one request (a completions server scoring labels)."""
        several = type(self.backend).planned_calls is not Runner.planned_calls
        return self.backend.model, self.backend.endpoint, several

    def planned_calls(self, request: LLMRequest) -> tuple[LLMRequest, ...]:
        return self.backend.planned_calls(request)

    async def generate(self, request: LLMRequest) -> LLMResult:
        self.calls += 1
        return await self.backend.generate(request)

    def served(self) -> int:
        return self.calls

    async def close(self) -> None:
        await self.backend.aclose()


class RayPool(Runner):
    """``model`` (built with ``options``) on ``workers`` Ray actors; see the module docstring.

    ``address`` is a cluster's (``HOST:PORT``, ``auto``) or :data:`LOCAL` (a local cluster of
    ``workers`` CPUs, shut down by :meth:`aclose`). Without Ray: one :class:`ConfigError`.
    """

    def __init__(self, model: str, options: Any, *, workers: int, address: str = LOCAL) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"--ray-workers must be an int >= 1; got {workers!r}")
        try:
            import ray
        except ImportError:
            raise ConfigError("--ray needs Ray: pip install 'sammo-core[ray]'") from None
        self._ray: Any = ray
        self._owns_cluster = False
        if not ray.is_initialized():
            options_ray: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            try:
                if address == LOCAL:
                    ray.init(address="local", num_cpus=workers, **options_ray)
                else:
                    ray.init(address=address, **options_ray)
            except ConnectionError as exc:
                raise ConfigError(
                    f"--ray {address}: no Ray cluster answers there ({exc}); start one with "
                    "`ray start --head` and pass the address it prints"
                ) from None
            self._owns_cluster = True
        actor: Any = ray.remote(num_cpus=1)(_Worker)
        self._actors: list[Any] = [actor.remote(model, options) for _ in range(workers)]
        self._load = [0] * workers
        self.model, self.endpoint, self._several = ray.get(self._actors[0].identity.remote())

    def __repr__(self) -> str:
        return f"RayPool(model={self.model!r}, workers={len(self._actors)})"

    @property
    def workers(self) -> int:
        return len(self._actors)

    def planned_calls(self, request: LLMRequest) -> tuple[LLMRequest, ...]:
        if not self._several:
            return (request,)
        return tuple(self._ray.get(self._actors[0].planned_calls.remote(request)))

    async def generate(self, request: LLMRequest) -> LLMResult:
        i = min(range(len(self._actors)), key=self._load.__getitem__)
        self._load[i] += 1
        try:
            result: LLMResult = await self._actors[i].generate.remote(request)
            return result
        finally:
            self._load[i] -= 1

    async def served(self) -> list[int]:
        """The calls each worker answered so far."""
        return list(await asyncio.gather(*(a.served.remote() for a in self._actors)))

    async def aclose(self) -> None:
        """Close every worker's backend; shut down the local cluster this pool started."""
        if self._actors and self._ray.is_initialized():  # another pool may have shut it down
            await asyncio.gather(*(a.close.remote() for a in self._actors))
            for a in self._actors:
                self._ray.kill(a)
            self._actors = []
        if self._owns_cluster:
            self._ray.shutdown()
            self._owns_cluster = False
