"""Building the usual runner stack from a model name: backend, cache, accounting.

``model="local"`` is the embedded SmolLM2-135M-Instruct (llama.cpp), ``"local:PATH"`` any GGUF
file; every other name goes to an OpenAI-compatible endpoint. The stack is
``AccountingRunner(CachedRunner(backend))``: accounting outermost, so cache hits are counted
as tokens saved, not spent.

>>> stack = build_runner("gpt-4o-mini", base_url="http://127.0.0.1:9/v1")
>>> stack.runner.model
'gpt-4o-mini'

With no endpoint at all (no ``base_url``, no key, none of ``OPENAI_API_KEY``,
``OPENAI_BASE_URL``, ``AZURE_OPENAI_ENDPOINT`` set), a name that is not ``local`` cannot be
reached, most often a typo; the error names it and the choices.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from pathlib import Path

from sammo_core.errors import ConfigError
from sammo_core.runners.accounting import AccountingRunner, Budget, Usage
from sammo_core.runners.base import Runner
from sammo_core.runners.cache import Cache, CachedRunner, CacheMode

__all__ = ["EMBEDDED_MODELS", "RunnerStack", "build_runner"]

#: The model names that run in-process, with no server and no key.
EMBEDDED_MODELS = ("local", "local:PATH.gguf")
_ENDPOINT_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT")


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
        from sammo_core.runners.local import LlamaCppRunner

        backend = LlamaCppRunner(model.partition(":")[2] or None)
    else:
        _check_reachable(model, base_url, api_key)
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


def _check_reachable(model: str, base_url: str | None, api_key: str | None) -> None:
    """Refuse a model name that no endpoint could serve, before asking a default one."""
    if base_url or api_key or any(os.environ.get(name) for name in _ENDPOINT_ENV):
        return
    close = difflib.get_close_matches(model, ["local"], n=1, cutoff=0.6)
    guess = "did you mean 'local'? " if close or model.startswith("local") else ""
    raise ConfigError(
        f"unknown model {model!r}: {guess}the embedded choices are "
        f"{', '.join(repr(m) for m in EMBEDDED_MODELS)} (SmolLM2-135M, or any GGUF file; "
        "no key, no server). For a hosted model set OPENAI_API_KEY (Azure: "
        "AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY); for a local server (vLLM, Ollama, "
        "llama.cpp) pass --base-url http://HOST:PORT/v1 (Python: base_url=...)"
    )
