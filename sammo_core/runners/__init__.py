"""LLM runners: the one interface, its implementations and the wrappers around them.

Backends: :class:`ScriptedRunner` (tests), :class:`OpenAIRunner` (any OpenAI-compatible
endpoint), :class:`LlamaCppRunner` (embedded model) and :class:`TransformersRunner` (an
in-process transformers model: soft prompts, rank classification; the ``soft`` extra).
Wrappers: :class:`CachedRunner` (over a :class:`CacheStore`: the SQLite :class:`Cache` or a
shared :class:`PostgresCache`), :class:`ThrottledRunner`, :class:`AccountingRunner`.
:func:`build_runner` assembles the usual stack from a model name. Importing this package loads
neither openai, llama_cpp, torch nor psycopg.
"""

from sammo_core.runners.accounting import AccountingRunner, Budget, CallBudget, Ledger, Usage
from sammo_core.runners.base import (
    DEFAULT_MAX_REPLY_BYTES,
    LLMRequest,
    LLMResult,
    Message,
    Runner,
    WrapperRunner,
)
from sammo_core.runners.cache import Cache, CachedRunner, CacheMode, cache_key
from sammo_core.runners.cache_open import open_cache
from sammo_core.runners.cache_postgres import PostgresCache
from sammo_core.runners.cache_store import CacheStore
from sammo_core.runners.factory import (
    RunnerStack,
    build_runner,
    build_runner_from_args,
    runner_stats,
)
from sammo_core.runners.hf import TransformersRunner
from sammo_core.runners.local import LlamaCppRunner
from sammo_core.runners.openai_runner import OpenAIRunner, OpenAIRunnerStats
from sammo_core.runners.pricing import estimate_cost
from sammo_core.runners.retry import (
    RetryableError,
    RetryEvent,
    RetryPolicy,
    RetryStats,
    with_retries,
)
from sammo_core.runners.scripted import ScriptedRunner
from sammo_core.runners.throttle import (
    Limiter,
    ThrottledRunner,
    ThrottleStats,
    TokenBucket,
    estimate_tokens,
)

__all__ = [
    "DEFAULT_MAX_REPLY_BYTES",
    "AccountingRunner",
    "Budget",
    "Cache",
    "CacheMode",
    "CacheStore",
    "CachedRunner",
    "CallBudget",
    "LLMRequest",
    "LLMResult",
    "Ledger",
    "Limiter",
    "LlamaCppRunner",
    "Message",
    "OpenAIRunner",
    "OpenAIRunnerStats",
    "PostgresCache",
    "RetryEvent",
    "RetryPolicy",
    "RetryStats",
    "RetryableError",
    "Runner",
    "RunnerStack",
    "ScriptedRunner",
    "ThrottleStats",
    "ThrottledRunner",
    "TokenBucket",
    "TransformersRunner",
    "Usage",
    "WrapperRunner",
    "build_runner",
    "build_runner_from_args",
    "cache_key",
    "estimate_cost",
    "estimate_tokens",
    "open_cache",
    "runner_stats",
    "with_retries",
]
