"""One program, several models: the call settings (mode, stop sequences) that differ per model.

A program holds one call setting (:class:`~sammo_core.components.GenerateText`'s ``mode`` and
``stop``). Scored on several models at once, a chat model and a base model want different ones:
the base model is prompted in completion mode, with a stop sequence that ends its answer.
:func:`call_settings_for` says what a model needs for a program (``None``: the program's own),
and :class:`CallSettings` sends every request of one model with them, under its cache (so the
cache keys hold what was sent) and above nothing else; the program stays one program, and the
settings live beside it in the run (``run.json``) and the export manifest (``models``).

>>> from sammo_core.runners import LLMRequest, ScriptedRunner
>>> inner = ScriptedRunner(default="yes")
>>> runner = CallSettings(inner, mode="completion", stop=("\\n",))
>>> _ = runner.generate_sync(LLMRequest.from_prompt("Is it? Answer:"))
>>> inner.requests[0].mode, inner.requests[0].stop
('completion', ('\\n',))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sammo_core.errors import ConfigError
from sammo_core.runners.base import LLMRequest, LLMResult, Runner, WrapperRunner

__all__ = ["CallSettings", "call_settings_for"]

#: The stop sequence a base model gets when a chat program names none: one line answers.
BASE_MODEL_STOP = ("\n",)


def call_settings_for(base_model: bool, mode: str, stop: Sequence[str]) -> dict[str, Any] | None:
    """The call settings a model needs for a program whose call has ``mode`` and ``stop``:
    a base model and a chat program get completion mode (and a newline stop if the program
    names none); otherwise ``None``, the program's own.

    >>> call_settings_for(True, "chat", ()), call_settings_for(False, "chat", ())
    ({'mode': 'completion', 'stop': ['\\n']}, None)
    >>> call_settings_for(True, "completion", ("\\n\\n",)) is None
    True
    """
    if not base_model or mode == "completion":
        return None
    return {"mode": "completion", "stop": list(stop) or list(BASE_MODEL_STOP)}


class CallSettings(WrapperRunner):
    """Send every request through ``inner`` with ``mode`` and ``stop`` (``None``: as it is)."""

    def __init__(
        self, inner: Runner, *, mode: str | None = None, stop: Sequence[str] | None = None
    ) -> None:
        if mode not in (None, "chat", "completion"):
            raise ConfigError(f"mode must be 'chat' or 'completion'; got {mode!r}")
        if stop is not None and (
            isinstance(stop, str) or not all(isinstance(s, str) and s for s in stop)
        ):
            raise ConfigError(f"stop must be a list of non-empty strings; got {stop!r}")
        super().__init__(inner)
        self.mode = mode
        self.stop = None if stop is None else tuple(stop)

    def __repr__(self) -> str:
        return f"CallSettings({self.inner!r}, mode={self.mode!r}, stop={self.stop!r})"

    def settings(self) -> dict[str, Any]:
        """The settings as they are recorded beside the program (``run.json``, manifests)."""
        return {"mode": self.mode, "stop": None if self.stop is None else list(self.stop)}

    def _apply(self, request: LLMRequest) -> LLMRequest:
        changes: dict[str, Any] = {}
        if self.mode is not None:
            changes["mode"] = self.mode
        if self.stop is not None:
            changes["stop"] = self.stop
        return dataclasses.replace(request, **changes) if changes else request

    async def generate(self, request: LLMRequest) -> LLMResult:
        return await self.inner.generate(self._apply(request))

    def planned_calls(self, request: LLMRequest) -> tuple[LLMRequest, ...]:
        return self.inner.planned_calls(self._apply(request))

    def will_hit(self, request: LLMRequest) -> bool:
        return self.inner.will_hit(self._apply(request))
