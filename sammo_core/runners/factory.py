"""Building the usual runner stack from a model name: backend, cache, accounting.

``model="local"`` is the embedded SmolLM2-135M-Instruct (llama.cpp), ``"local:gemma3"`` the
embedded Gemma 3 270M base model (prompt it in completion mode), ``"local:PATH"`` any GGUF
file; ``"hf:gemma3"``, ``"hf:smollm2"``, ``"hf:PATH"`` (a GGUF file or a Hugging Face folder)
run in-process on transformers (the ``soft`` extra: soft prompts, rank classification by
label likelihood); every other name goes to an OpenAI-compatible endpoint. Schemes are a
registry (:mod:`sammo_core.runners.backends`): a plugin package adds its own. The stack is
``AccountingRunner(CachedRunner(backend))``: accounting outermost, so cache hits are counted
as tokens saved, not spent. :func:`build_runner_from_args` builds it from the command-line
options every model-calling command shares (``run``, ``optimize`` for task and proposer,
``bench``), so no command can drop one. :func:`runner_stats` reads the retry statistics under
any stack.

>>> stack = build_runner("gpt-4o-mini", base_url="http://127.0.0.1:9/v1", timeout=5)
>>> stack.runner.model, stack.backend.timeout
('gpt-4o-mini', 5.0)
>>> runner_stats(stack).to_dict()["attempts"]
0

With no endpoint at all (no ``base_url``, no key, none of ``OPENAI_API_KEY``,
``OPENAI_BASE_URL``, ``AZURE_OPENAI_ENDPOINT`` set), a name that is not ``local`` cannot be
reached, most often a typo; the error names it and the choices.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
from pathlib import Path

from sammo_core.errors import ConfigError
from sammo_core.runners.accounting import AccountingRunner, Budget, Usage
from sammo_core.runners.backends import BackendOptions, build_backend, scheme_of
from sammo_core.runners.base import DEFAULT_MAX_REPLY_BYTES, Runner
from sammo_core.runners.cache import CachedRunner
from sammo_core.runners.cache_open import open_cache
from sammo_core.runners.cache_store import CacheMode, CacheStore
from sammo_core.runners.http_transport import DEFAULT_MAX_BODY_BYTES
from sammo_core.runners.retry import RetryPolicy, RetryStats

__all__ = [
    "BASE_MODELS",
    "EMBEDDED_MODELS",
    "RunnerStack",
    "build_runner",
    "build_runner_from_args",
    "is_base_model",
    "runner_stats",
]

#: The model names that run in-process, with no server and no key.
EMBEDDED_MODELS = ("local", "local:PATH.gguf", "hf:gemma3", "hf:PATH")
#: The models this library knows to be *base* models (no instruction tuning, no chat template):
#: they are prompted in completion mode.
BASE_MODELS = frozenset({"local:gemma3", "hf:gemma3"})


def is_base_model(model: str) -> bool:
    """Whether ``model`` is known to be a base model, to be prompted in completion mode.

    >>> is_base_model("local:gemma3"), is_base_model("local"), is_base_model("gpt-4o-mini")
    (True, False, False)
    """
    return model in BASE_MODELS


_ENDPOINT_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT")


@dataclasses.dataclass
class RunnerStack:
    """The runner to call (``runner``) and handles on its layers."""

    runner: AccountingRunner
    backend: Runner
    cache: CacheStore | None

    @property
    def usage(self) -> Usage:
        return self.runner.usage

    @property
    def retry_stats(self) -> RetryStats:
        """Requests sent, retries by cause and time spent waiting (see :func:`runner_stats`)."""
        return runner_stats(self.backend)

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
    retry: RetryPolicy | None = None,
    cache_endpoint: str | None = None,
    max_reply_bytes: int | None = DEFAULT_MAX_REPLY_BYTES,
    max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES,
    ray: str | None = None,
    ray_workers: int | None = None,
) -> RunnerStack:
    """Build backend + optional persistent cache + accounting for ``model``.

    ``timeout`` is the deadline for one whole request (then it is retried); ``retry`` is the
    endpoint's retry policy (default ``RetryPolicy()``); the embedded model does not retry.
    ``max_reply_bytes`` caps the reply text returned and stored (``None``: no cap);
    ``max_body_bytes`` the bytes of an endpoint's reply body read, decoded. Cache keys
    hold the model name and the endpoint (the base URL), so one model name at two servers
    never shares answers. ``cache`` is a SQLite file, or a ``postgresql://`` URL for a cache
    many processes and machines share (the ``postgres`` extra). ``cache_endpoint`` replaces
    the endpoint in the keys with a label: give it to equivalent servers (replicas of the
    same weights) to share one cache.
    """
    options = BackendOptions(
        base_url=base_url,
        api_key=api_key,
        timeout=timeout,
        max_concurrency=max_concurrency,
        requests_per_minute=requests_per_minute,
        tokens_per_minute=tokens_per_minute,
        retry=retry,
        max_reply_bytes=max_reply_bytes,
        max_body_bytes=max_body_bytes,
    )
    if scheme_of(model) is None:
        _check_reachable(model, base_url, api_key)
    # The cache opens first: a database that cannot be reached fails before a backend
    # (an HTTP client, a loaded model) exists to be closed.
    store = open_cache(cache, mode=cache_mode) if cache is not None else None
    try:
        if ray is None:
            backend = build_backend(model, options)
        else:  # the model on Ray workers; cache, accounting and limits stay here
            from sammo_core.runners.ray_pool import RayPool

            workers = ray_workers or os.cpu_count() or 1
            backend = RayPool(model, options, workers=workers, address=ray)
    except BaseException:
        if store is not None:
            store.close()
        raise
    inner: Runner = (
        CachedRunner(backend, store, max_reply_bytes, endpoint=cache_endpoint)
        if store is not None
        else backend
    )
    return RunnerStack(AccountingRunner(inner, budget), backend, store)


def build_runner_from_args(
    args: argparse.Namespace, model: str | None = None, *, budget: Budget | None = None
) -> RunnerStack:
    """The runner stack for the options of ``sammo_core.cli_run.add_runner_arguments``.

    ``model`` overrides ``--model`` (e.g. ``optimize --proposer-model``); every other option
    (endpoint, cache, ``--replay``, ``--concurrency``, ``--timeout``, ``--max-attempts``,
    ``--rpm``, ``--tpm``, ``--max-reply-bytes``, ``--max-body-bytes``) applies alike.

    >>> import argparse
    >>> from sammo_core.cli_run import add_runner_arguments
    >>> parser = argparse.ArgumentParser()
    >>> add_runner_arguments(parser)
    >>> args = parser.parse_args(
    ...     ["--model", "task", "--base-url", "http://127.0.0.1:9/v1", "--timeout", "2"]
    ... )
    >>> proposer = build_runner_from_args(args, model="proposer").backend
    >>> proposer.model, proposer.timeout, proposer.max_concurrency
    ('proposer', 2.0, 32)
    """
    models = getattr(args, "models", None) or []
    if model is None and len(models) > 1:
        raise ConfigError(
            f"--model is given {len(models)} times ({', '.join(models)}); this command uses one "
            "model: pass one --model (sammo-core optimize scores a program on several)"
        )
    if args.max_reply_bytes < 0:
        raise ConfigError(
            f"--max-reply-bytes must be >= 0 (0 keeps every byte); got {args.max_reply_bytes}"
        )
    max_body_bytes = getattr(args, "max_body_bytes", DEFAULT_MAX_BODY_BYTES)
    if max_body_bytes < 0:
        raise ConfigError(
            f"--max-body-bytes must be >= 0 (0 reads every byte); got {max_body_bytes}"
        )
    return build_runner(
        model or args.model,
        base_url=args.base_url,
        cache=args.cache,
        cache_mode="replay" if args.replay else "readwrite",
        max_concurrency=args.concurrency,
        requests_per_minute=args.rpm,
        tokens_per_minute=args.tpm,
        budget=budget,
        timeout=args.timeout,
        retry=RetryPolicy(max_attempts=args.max_attempts),
        max_reply_bytes=args.max_reply_bytes or None,
        max_body_bytes=max_body_bytes or None,
        ray=getattr(args, "ray_pool", None),
        ray_workers=getattr(args, "ray_pool_workers", None),
    )


def runner_stats(runner: Runner | RunnerStack) -> RetryStats:
    """The retry statistics of the backend under ``runner``'s wrappers.

    Wrappers pass their inner runner's through (``WrapperRunner.retry_stats``); a backend
    without retries (scripted, embedded) reports zeros.

    >>> from sammo_core.runners import ScriptedRunner
    >>> runner_stats(ScriptedRunner(default="x")).attempts
    0
    """
    current = runner.backend if isinstance(runner, RunnerStack) else runner
    return current.retry_stats or RetryStats()


def _check_reachable(model: str, base_url: str | None, api_key: str | None) -> None:
    """Refuse a model name that no endpoint could serve, before asking a default one."""
    if base_url or api_key or any(os.environ.get(name) for name in _ENDPOINT_ENV):
        return
    close = difflib.get_close_matches(model, ["local"], n=1, cutoff=0.6)
    guess = "did you mean 'local'? " if close or model.startswith("local") else ""
    raise ConfigError(
        f"unknown model {model!r}: {guess}the embedded choices are "
        f"{', '.join(repr(m) for m in EMBEDDED_MODELS)} (SmolLM2-135M or any GGUF file on "
        "llama.cpp; Gemma 3 270M or a model folder on transformers; no key, no server). "
        "For a hosted model set OPENAI_API_KEY (Azure: "
        "AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY); for a local server (vLLM, Ollama, "
        "llama.cpp) pass --base-url http://HOST:PORT/v1 (Python: base_url=...)"
    )
