"""The one errors module of sammo-core.

Every error the library raises on purpose derives from :class:`SammoError`, so callers can catch
the family with one ``except``. Messages name the bad value and say how to fix it.

Hierarchy::

    SammoError
    ├── ConfigError (also ValueError)     a bad option, argument or program field
    ├── DataError (also ValueError)       a malformed data file or table operation
    ├── TemplateError                     a jinja2 template that fails to compile or render
    ├── SerializationError (also ValueError)  program JSON that cannot be loaded safely
    ├── RunnerError                       an LLM call that failed after its retries
    │   └── CacheMissError                a replay-only cache had no entry for a request
    └── BudgetExceededError               a call, token or dollar budget ran out
"""

from __future__ import annotations

__all__ = [
    "BudgetExceededError",
    "CacheMissError",
    "ConfigError",
    "DataError",
    "RunnerError",
    "SammoError",
    "SerializationError",
    "TemplateError",
]


class SammoError(Exception):
    """Base class of every error sammo-core raises on purpose."""


class ConfigError(SammoError, ValueError):
    """A bad option, argument or program field.

    >>> raise ConfigError("unknown section format 'yaml'; use one of: json, markdown")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: unknown section format 'yaml'; use one of: json, markdown
    """


class DataError(SammoError, ValueError):
    """A malformed data file, or an impossible operation on a data table."""


class TemplateError(SammoError):
    """A jinja2 template that does not compile, or names a variable that is not defined."""


class SerializationError(SammoError, ValueError):
    """Program JSON that is malformed or names a type outside the registered components."""


class RunnerError(SammoError):
    """An LLM call that failed for good (after retries), naming the endpoint and model."""


class CacheMissError(RunnerError):
    """A replay-only cache was asked for a request it has never stored."""


class BudgetExceededError(SammoError):
    """A budget (calls, tokens or dollars) ran out; work done so far is kept."""
