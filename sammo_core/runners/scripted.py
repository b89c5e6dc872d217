"""A scripted runner for tests: queued replies, a regex map, or a function of the prompt.

It ships in the library so users can test their own pipelines without a model. It records every
request it receives, in order, so tests can assert on the exact prompts sent. Like a server, it
cuts each answer before the first of the request's ``stop`` sequences, so a script can play a
base model that would go on writing the next example:

>>> base = ScriptedRunner(default="yes\\n\\nInput: is it raining?\\nOutput: no")
>>> request = LLMRequest.from_prompt("Input: is it sunny?\\nOutput:", mode="completion",
...                                  stop=("\\nInput:",))
>>> asyncio.run(base.generate(request)).text
'yes\\n'

A script can also play a model that scores labels (rank classification): ``label_scores``
gives each label's log-probability, as a mapping or as a function of the request, and the
answer is the most likely label, with every label's score in ``label_logprobs``:

>>> scorer = ScriptedRunner(label_scores={"yes": -0.2, "no": -1.7})
>>> result = asyncio.run(scorer.generate(LLMRequest.from_prompt("Sunny?", labels=("yes", "no"))))
>>> result.text, result.label_logprobs
('yes', (-0.2, -1.7))

>>> import asyncio
>>> from sammo_core.runners import LLMRequest
>>> runner = ScriptedRunner(rules={r"capital of France": "Paris"}, default="I don't know")
>>> asyncio.run(runner.generate(LLMRequest.from_prompt("What is the capital of France?"))).text
'Paris'
>>> runner.prompts
['What is the capital of France?']
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping

from sammo_core.errors import ConfigError, RunnerError
from sammo_core.runners.base import (
    LLMRequest,
    LLMResult,
    Runner,
    best_label,
    label_continuation,
    refuse_soft_prompts,
    scoring_call,
)
from sammo_core.tokens import count_tokens

__all__ = ["ScriptedRunner"]

Reply = str | Callable[[LLMRequest], str]
LabelScores = Mapping[str, float] | Callable[[LLMRequest], Mapping[str, float]]


class ScriptedRunner(Runner):
    """Answers from a script instead of a model.

    Args:
        replies: answers handed out in order, one per call (first source consulted).
        rules: a map from regex (searched in the whole prompt text) to an answer or to a
            function of the request; the first matching rule wins.
        default: the answer when no queued reply or rule applies; if ``None``, such a call
            raises :class:`RunnerError` naming the prompt.
        model: the name reported in results.
        latency: seconds each call sleeps (to exercise concurrency).
        soft_prompts: answer requests that carry soft prompts (reading their placeholders as
            text) instead of refusing them as a text model must: for tests and for recording
            the requests a program makes.
        label_scores: answer requests that list ``labels`` by scoring them, as a runner with
            log-probabilities does: a map from label to log-probability, or a function of the
            request that returns one, with a value for every label of the request. ``None``:
            generate from the script, as a runner that cannot score does.

    Replies are the same in chat and completion mode (``requests`` records the mode); each
    is cut before the earliest occurrence of any of the request's ``stop`` sequences.
    """

    def __init__(
        self,
        replies: Iterable[str] = (),
        rules: Mapping[str, Reply] | None = None,
        default: Reply | None = None,
        model: str = "scripted",
        latency: float = 0.0,
        *,
        soft_prompts: bool = False,
        label_scores: LabelScores | None = None,
    ) -> None:
        if latency < 0:
            raise ConfigError(f"latency must be >= 0 seconds; got {latency}")
        self._queue: deque[str] = deque(replies)
        self._rules: list[tuple[re.Pattern[str], Reply]] = []
        for pattern, reply in (rules or {}).items():
            try:
                self._rules.append((re.compile(pattern, re.DOTALL), reply))
            except re.error as exc:
                raise ConfigError(f"rule pattern {pattern!r} is not a valid regex: {exc}") from exc
        self._default = default
        self.model = model
        self.latency = latency
        self.soft_prompts = soft_prompts
        self.label_scores = label_scores
        self.requests: list[LLMRequest] = []
        # Token counts of answers seen: a script hands out a few answers many times.
        self._answer_tokens: dict[str, int] = {}

    @property
    def prompts(self) -> list[str]:
        """The text of every request received so far, in order."""
        return [r.prompt_text for r in self.requests]

    @property
    def calls(self) -> int:
        return len(self.requests)

    def _answer(self, request: LLMRequest) -> str:
        if self._queue:
            return self._queue.popleft()
        if self._rules:
            text = request.prompt_text
            for pattern, reply in self._rules:
                if pattern.search(text):
                    return reply(request) if callable(reply) else reply
        if self._default is None:
            raise RunnerError(
                f"ScriptedRunner has no reply for this prompt (queue empty, no rule matched; "
                f"pass default=... to answer anything): {request.prompt_text[:200]!r}"
            )
        return self._default(request) if callable(self._default) else self._default

    async def generate(self, request: LLMRequest) -> LLMResult:
        if not self.soft_prompts:
            refuse_soft_prompts(request, self.model)
        self.requests.append(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        if request.labels and self.label_scores is not None:
            return self._score(request)
        text = self._answer(request)
        if request.stop:
            text = _cut_at_stop(text, request.stop)
        completion_tokens = self._answer_tokens.get(text)
        if completion_tokens is None:
            completion_tokens = count_tokens(text)
            if len(self._answer_tokens) < _ANSWER_TOKENS_KEPT:
                self._answer_tokens[text] = completion_tokens
        return LLMResult(
            text=text,
            prompt_tokens=count_tokens(request.prompt_text),
            completion_tokens=completion_tokens,
            model=self.model,
        )

    def planned_calls(self, request: LLMRequest) -> tuple[LLMRequest, ...]:
        """One call; a scored one evaluates every label's tokens (see :func:`scoring_call`)."""
        if request.labels and self.label_scores is not None:
            return (scoring_call(request),)
        return (request,)

    def _score(self, request: LLMRequest) -> LLMResult:
        table = self.label_scores(request) if callable(self.label_scores) else self.label_scores
        assert table is not None
        missing = [label for label in request.labels if label not in table]
        if missing:
            raise RunnerError(
                f"ScriptedRunner's label_scores have no log-probability for {missing} (they "
                f"score {sorted(table)}); give one for each of the labels {list(request.labels)}"
            )
        logprobs = tuple(float(table[label]) for label in request.labels)
        text = request.prompt_text
        continuations = (label_continuation(text, label) for label in request.labels)
        return LLMResult(
            text=best_label(request.labels, logprobs),
            prompt_tokens=count_tokens(text),
            completion_tokens=sum(count_tokens(c) for c in continuations),
            model=self.model,
            label_logprobs=logprobs,
        )


#: How many distinct answers a ScriptedRunner keeps the token counts of (answers made by a
#: function of the prompt may all differ).
_ANSWER_TOKENS_KEPT = 1024


def _cut_at_stop(text: str, stop: Iterable[str]) -> str:
    """``text`` up to the earliest occurrence of any stop sequence (which is dropped).

    >>> _cut_at_stop("no\\n\\nExample 6:", ("Example", "\\n\\n"))
    'no'
    """
    ends = [index for index in (text.find(s) for s in stop) if index >= 0]
    return text[: min(ends)] if ends else text
