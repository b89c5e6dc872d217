"""Model backends by scheme: the entry points of group ``sammo_core.runners``.

A model name ``SCHEME:NAME`` (or just ``SCHEME``) whose scheme is registered is built by that
scheme's :class:`BackendFactory` from ``NAME`` and the endpoint options every backend is offered
(:class:`BackendOptions`); any other name goes to an OpenAI-compatible endpoint as it is
(``gpt-4o-mini``, ``openai:my-model`` at ``--base-url``). sammo-core registers ``local``
(llama.cpp) and ``hf`` (transformers); a plugin package adds a scheme without touching this
repository::

    # a plugin's pyproject.toml
    [project.entry-points."sammo_core.runners"]
    echo = "sammo_echo:factory"        # --model echo:loud

>>> sorted(RUNNERS)[:2]
['hf', 'local']
>>> scheme_of("local"), scheme_of("local:gemma3"), scheme_of("gpt-4o"), scheme_of("openai:x")
('local', 'local', None, None)
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from sammo_core.registry import Registry
from sammo_core.runners.base import DEFAULT_MAX_REPLY_BYTES, Runner
from sammo_core.runners.http_transport import DEFAULT_MAX_BODY_BYTES
from sammo_core.runners.retry import RetryPolicy

__all__ = [
    "RUNNERS",
    "BackendFactory",
    "BackendOptions",
    "build_backend",
    "hf",
    "local",
    "openai_compatible",
    "scheme_of",
]


@dataclasses.dataclass(frozen=True)
class BackendOptions:
    """What the command line or a caller set for the endpoint; a backend takes what applies
    to it (the embedded ones ignore endpoint, key, rates and retries)."""

    base_url: str | None = None
    api_key: str | None = None
    timeout: float = 60.0
    max_concurrency: int = 32
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    retry: RetryPolicy | None = None
    max_reply_bytes: int | None = DEFAULT_MAX_REPLY_BYTES
    max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES


class BackendFactory(Protocol):
    """Builds the backend for ``name`` (the model name after ``SCHEME:``; empty for a bare
    scheme)."""

    def __call__(self, name: str, options: BackendOptions) -> Runner: ...


def local(name: str, options: BackendOptions) -> Runner:
    """``local`` (SmolLM2-135M-Instruct), ``local:gemma3`` (Gemma 3 270M base), ``local:PATH``
    (a GGUF file), on llama.cpp."""
    from sammo_core.runners.local import GEMMA3_N_CTX, LlamaCppRunner, gemma3_model_path

    if name == "gemma3":
        return LlamaCppRunner(gemma3_model_path(), n_ctx=GEMMA3_N_CTX)
    return LlamaCppRunner(name or None)


def hf(name: str, options: BackendOptions) -> Runner:
    """``hf:gemma3``, ``hf:smollm2``, ``hf:PATH`` (a GGUF file or a model folder), in-process on
    transformers."""
    from sammo_core.runners.hf import TransformersRunner, load_hf_model

    return TransformersRunner(load_hf_model(name))


def openai_compatible(model: str, options: BackendOptions) -> Runner:
    """Any other model name, at an OpenAI-compatible endpoint (or Azure)."""
    from sammo_core.runners.openai_runner import OpenAIRunner

    return OpenAIRunner(
        model,
        base_url=options.base_url,
        api_key=options.api_key,
        timeout=options.timeout,
        max_concurrency=options.max_concurrency,
        requests_per_minute=options.requests_per_minute,
        tokens_per_minute=options.tokens_per_minute,
        retry=options.retry,
        max_reply_bytes=options.max_reply_bytes,
        max_body_bytes=options.max_body_bytes,
    )


#: Scheme -> backend factory: the entry points of group ``sammo_core.runners``.
RUNNERS: Registry[BackendFactory] = Registry("sammo_core.runners", "model scheme")


def scheme_of(model: str) -> str | None:
    """The registered scheme that ``model`` names, or ``None`` (an endpoint's model)."""
    scheme = model.partition(":")[0]
    return scheme if scheme in RUNNERS else None


def build_backend(model: str, options: BackendOptions) -> Runner:
    """The backend for ``model``: its scheme's, or an OpenAI-compatible endpoint's."""
    scheme = scheme_of(model)
    if scheme is None:
        return openai_compatible(model, options)
    return RUNNERS[scheme](model.partition(":")[2], options)
