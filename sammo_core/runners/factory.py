"""Building the usual runner stack from a model name: backend, cache, accounting.

``model="local"`` is the embedded SmolLM2-135M-Instruct (llama.cpp), ``"local:gemma3"`` the
embedded Gemma 3 270M base model (prompt it in completion mode), ``"local:PATH"`` any GGUF
file; every other name goes to an OpenAI-compatible endpoint. The stack is
``AccountingRunner(CachedRunner(backend))``: accounting outermost, so cache hits are counted
as tokens saved, not spent.

>>> stack = build_runner("gpt-4o-mini", base_url="http://127.0.0.1:9/v1")
>>> stack.runner.model
'gpt-4o-mini'
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sammo_core.runners.accounting import AccountingRunner, Budget, Usage
from sammo_core.runners.base import Runner
from sammo_core.runners.cache import Cache, CachedRunner, CacheMode

__all__ = ["RunnerStack", "build_runner"]


@dataclasses.dataclass
class RunnerStack:
    """The runner to call (``runner``) and handles on its layers."""

    runner: AccountingRunner
    backend: Runner
    cache: Cache | None

    @property
    def usage(self) -> Usage:
        return self.runner.usage

    async def aclose(self) -> None:
        await self.runner.aclose()
        if self.cache is not None:
            self.cache.close()


def build_runner(
    model: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    cache: str | Path | None = None,
    cache_mode: CacheMode = "readwrite",
    max_concurrency: int = 32,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    budget: Budget | None = None,
    timeout: float = 60.0,
) -> RunnerStack:
    """Build backend + optional persistent cache + accounting for ``model``."""
    backend: Runner
    if model == "local" or model.startswith("local:"):
        from sammo_core.runners.local import GEMMA3_N_CTX, LlamaCppRunner, gemma3_model_path

        name = model.partition(":")[2]
        if name == "gemma3":
            backend = LlamaCppRunner(gemma3_model_path(), n_ctx=GEMMA3_N_CTX)
        else:
            backend = LlamaCppRunner(name or None)
    else:
        from sammo_core.runners.openai_runner import OpenAIRunner

        backend = OpenAIRunner(
            model,
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            max_concurrency=max_concurrency,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
        )
    store = Cache(cache, mode=cache_mode) if cache is not None else None
    inner: Runner = CachedRunner(backend, store) if store is not None else backend
    return RunnerStack(AccountingRunner(inner, budget), backend, store)
