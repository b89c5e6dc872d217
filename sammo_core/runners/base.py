"""The one runner interface: ``async generate(request) -> result``.

Every LLM backend (scripted, OpenAI-compatible, embedded llama.cpp) and every wrapper around one
(cache, throttle, accounting) implements :class:`Runner`. Requests and results are frozen,
hashable values so they can be cached and compared.

>>> import asyncio
>>> from sammo_core.runners import ScriptedRunner, LLMRequest
>>> runner = ScriptedRunner(replies=["Yes"])
>>> asyncio.run(runner.generate(LLMRequest.from_prompt("Is water wet?"))).text
'Yes'
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from sammo_core.errors import ConfigError, RunnerError

if TYPE_CHECKING:
    from sammo_core.runners.retry import RetryStats
    from sammo_core.soft_tensor import SoftTensor

__all__ = [
    "DEFAULT_MAX_REPLY_BYTES",
    "LABEL_SCORING",
    "MIN_LOGPROB",
    "MODES",
    "LLMRequest",
    "LLMResult",
    "Message",
    "Mode",
    "Runner",
    "WrapperRunner",
    "best_label",
    "label_continuation",
    "refuse_soft_prompts",
    "scoring_call",
]

DEFAULT_MAX_REPLY_BYTES = 256 * 1024
"""The most UTF-8 bytes of reply text a runner returns and a cache stores, unless told otherwise."""

Role = Literal["system", "user", "assistant"]
_ROLES = ("system", "user", "assistant")
#: ``chat``: the messages go through the model's chat template (instruction-tuned models).
#: ``completion``: the messages' text, joined as :attr:`LLMRequest.prompt_text`, is the raw
#: prompt the model continues (base models).
Mode = Literal["chat", "completion"]
MODES: tuple[Mode, ...] = ("chat", "completion")


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """One chat message."""

    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ConfigError(f"message role {self.role!r} is not one of {', '.join(_ROLES)}")

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclasses.dataclass(frozen=True, slots=True)
class LLMRequest:
    """Everything that determines one completion.

    ``sample_index`` tells apart repeated samples of the same prompt at temperature > 0, so a
    cache can hold several of them. ``mode`` is ``"chat"`` (the messages go through the
    model's chat template) or ``"completion"`` (the model continues :attr:`prompt_text` as it
    is: for base models, usually with ``stop`` sequences).

    >>> request = LLMRequest.from_prompt("Input: 2+2\\nOutput:", mode="completion", stop=("\\n",))
    >>> request.to_dict()["mode"], request.prompt_text
    ('completion', 'Input: 2+2\\nOutput:')

    ``labels`` lists the answers to choose from: a runner that can score them returns the one
    most likely after the prompt (rank classification) with every label's log-probability in
    :attr:`LLMResult.label_logprobs`; a runner that cannot generates as usual and leaves them
    empty. ``soft_prompts`` are the learned embeddings of the program's
    :class:`~sammo_core.soft.SoftPrompt` nodes, in the order their placeholders appear in the
    text; only a runner that takes input embeddings can run such a request (see
    :func:`refuse_soft_prompts`). Both are in :meth:`to_dict` (soft prompts by digest), hence
    in cache keys, and only when set.
    """

    messages: tuple[Message, ...]
    temperature: float = 0.0
    max_tokens: int | None = None
    seed: int | None = 0
    stop: tuple[str, ...] = ()
    sample_index: int = 0
    mode: Mode = "chat"
    labels: tuple[str, ...] = ()
    soft_prompts: tuple[SoftTensor, ...] = ()

    def __post_init__(self) -> None:
        if not self.messages:
            raise ConfigError("an LLMRequest needs at least one message")
        if self.mode not in MODES:
            raise ConfigError(f"mode {self.mode!r} is not one of {', '.join(MODES)}")
        if isinstance(self.stop, str) or any(not isinstance(s, str) or not s for s in self.stop):
            raise ConfigError(
                f"stop must be a tuple of non-empty strings, e.g. stop=('\\n',); got {self.stop!r}"
            )
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"temperature must be within [0, 2]; got {self.temperature}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1 or None; got {self.max_tokens}")
        labels = self.labels
        if isinstance(labels, str) or any(not isinstance(x, str) or not x for x in labels):
            raise ConfigError(
                f"labels must be a tuple of non-empty strings, e.g. labels=('yes', 'no'); got "
                f"{self.labels!r}"
            )
        if any(not hasattr(s, "digest") for s in self.soft_prompts):
            raise ConfigError(
                f"soft_prompts must be a tuple of sammo_core.SoftTensor; got {self.soft_prompts!r}"
            )

    @classmethod
    def from_prompt(cls, prompt: str, system: str | None = None, **params: Any) -> LLMRequest:
        """Build a request from a user prompt and an optional system message."""
        messages = [Message("system", system)] if system else []
        messages.append(Message("user", prompt))
        return cls(messages=tuple(messages), **params)

    @property
    def prompt_text(self) -> str:
        """All message contents joined, for token estimates and regex matching."""
        if len(self.messages) == 1:  # the common case, without a generator per call
            return self.messages[0].content
        return "\n\n".join(m.content for m in self.messages)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (used for cache keys and logs; holds no secrets).

        ``mode`` is written only when it is ``"completion"``, so the cache keys of chat
        requests stay what they were before completion mode existed.
        """
        data: dict[str, Any] = {
            "messages": [m.to_dict() for m in self.messages],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "stop": list(self.stop),
            "sample_index": self.sample_index,
        }
        if self.mode != "chat":
            data["mode"] = self.mode
        if self.labels:
            data["labels"] = list(self.labels)
            # Scored answers carry every label's log-probability: entries cached before
            # they did (a label and no scores) must not answer such a request.
            data["scoring"] = LABEL_SCORING
        if self.soft_prompts:
            data["soft_prompts"] = [s.digest for s in self.soft_prompts]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LLMRequest:
        """The request of :meth:`to_dict` output; soft prompts (digests only) cannot return."""
        if data.get("soft_prompts"):
            raise ConfigError(
                "a request with soft prompts cannot be rebuilt from its dict (it holds only "
                "their digests); build it from the program instead"
            )
        return cls(
            messages=tuple(Message(m["role"], m["content"]) for m in data["messages"]),
            temperature=data.get("temperature", 0.0),
            max_tokens=data.get("max_tokens"),
            seed=data.get("seed", 0),
            stop=tuple(data.get("stop", ())),
            sample_index=data.get("sample_index", 0),
            mode=data.get("mode", "chat"),
            labels=tuple(data.get("labels", ())),
        )


#: The lowest log-probability a scored label is given (``-inf`` and below are stored as it).
MIN_LOGPROB = -1e4

#: The version of label scoring in cache keys of requests with ``labels``.
LABEL_SCORING = "logprob-1"


@dataclasses.dataclass(frozen=True, slots=True)
class LLMResult:
    """One completion with its exact accounting.

    ``truncated`` says that ``text`` was cut to a byte cap (see :meth:`capped`); the token
    counts stay what the server reported for the whole reply.

    ``label_logprobs`` holds, for a request with ``labels`` that the runner scored, the
    log-probability (natural log, summed over the label's tokens) of each label continuing
    the prompt, in the request's label order; ``text`` is then the most likely label. It is
    empty when the runner generated instead.

    A log-probability below :data:`MIN_LOGPROB` (``-inf`` included: a label the model rules
    out) is stored as :data:`MIN_LOGPROB`, so scores stay finite numbers in JSON and in the
    cache; a NaN is an error of the runner.

    ``calls`` counts the requests the backend sent to make this result: 1, or more where one
    request takes several (a completions server scores each label in a request of its own).
    Budgets and usage count them (:class:`~sammo_core.runners.accounting.Ledger`); the token
    counts are summed over them. How a scored call's tokens are counted follows what the backend
    evaluates: in-process runners (llama.cpp, transformers, scripted) evaluate the prompt once
    (``prompt_tokens``) and every label's tokens after it (``completion_tokens``); a completions
    server is sent the prompt with each label, one request per label, and reports its own usage
    for each (summed); a chat model answers one token with its top log-probabilities.

    ``overhead`` is ``(calls, prompt tokens, completion tokens)`` the runner spent on its own
    account while answering (say, probing a server's layout once): what the run spent
    (usage, budgets) counts it, the program's cost and the cache do not, so neither depends on
    which request happened to go first.

    ``cut_off`` says that the model stopped because it reached ``max_tokens`` (a server's
    ``finish_reason: "length"``): the reply may end mid-answer. ``usage_estimated`` says that
    the token counts are estimates (:func:`~sammo_core.tokens.count_tokens`), because the
    server reported none, or counts no call can have (negative, fractional, absurdly large).

    >>> scored = LLMResult("yes", label_logprobs=[-0.2, float("-inf")])
    >>> scored.label_logprobs, scored.scored
    ((-0.2, -10000.0), True)
    """

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    cached: bool = False
    cost_usd: float = 0.0
    truncated: bool = False
    label_logprobs: tuple[float, ...] = ()
    calls: int = 1
    overhead: tuple[int, int, int] = (0, 0, 0)
    cut_off: bool = False
    usage_estimated: bool = False

    def __post_init__(self) -> None:
        values = self.label_logprobs
        if values:
            if any(v is not None and math.isnan(v) for v in values):
                raise RunnerError(f"{self.model or 'the model'} scored a label NaN: {values}")
            # None: an -inf written by an older version as JSON null
            values = tuple(MIN_LOGPROB if v is None else max(float(v), MIN_LOGPROB) for v in values)
            object.__setattr__(self, "label_logprobs", values)
        elif not isinstance(values, tuple):  # an empty list, read back from JSON
            object.__setattr__(self, "label_logprobs", ())
        if not isinstance(self.overhead, tuple):
            object.__setattr__(self, "overhead", tuple(self.overhead))

    @property
    def scored(self) -> bool:
        """Whether the runner answered by scoring the request's labels."""
        return bool(self.label_logprobs)

    def capped(self, max_bytes: int | None) -> LLMResult:
        """This result with ``text`` cut to at most ``max_bytes`` UTF-8 bytes (``None``: no cap).

        A cut never splits a character; a cut result has ``truncated=True``.

        >>> LLMResult("añb").capped(2)
        LLMResult(text='a', prompt_tokens=0, completion_tokens=0, model='', cached=False, \
cost_usd=0.0, truncated=True, label_logprobs=(), calls=1, overhead=(0, 0, 0), cut_off=False, \
usage_estimated=False)
        >>> LLMResult("short").capped(100).truncated
        False
        """
        if max_bytes is None or len(self.text) * 4 <= max_bytes:  # UTF-8: <= 4 bytes a char
            return self
        data = self.text.encode("utf-8")
        if len(data) <= max_bytes:
            return self
        text = data[:max_bytes].decode("utf-8", errors="ignore")
        return dataclasses.replace(self, text=text, truncated=True)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of every field.

        >>> LLMResult("yes", label_logprobs=(-0.1, -2.3)).to_dict()["label_logprobs"]
        [-0.1, -2.3]
        """
        data = dataclasses.asdict(self)
        data["label_logprobs"] = list(self.label_logprobs)
        data["overhead"] = list(self.overhead)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LLMResult:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


def label_continuation(text: str, label: str) -> str:
    """How ``label`` continues ``text`` when scored: a space between, unless one is there.

    Every runner that scores labels scores this continuation, so they agree on what is scored.
    How its first token meets the prompt differs where the prompt ends in whitespace: the
    in-process runners tokenize the label on its own after the prompt's tokens, while a
    completions server tokenizes prompt and label together (a token that straddles the
    boundary counts for the label). End prompts with their cue (``Output:``), not a space.

    >>> label_continuation("Answer:", "yes"), label_continuation("Answer: ", "yes")
    (' yes', 'yes')
    """
    if not text or text[-1].isspace() or label[:1].isspace():
        return label
    return f" {label}"


def scoring_call(request: LLMRequest) -> LLMRequest:
    """``request`` as a budget sees it when a runner scores its labels in one call: the
    prompt, then every label's tokens evaluated after it, at most one token per UTF-8 byte
    (its ``max_tokens``), so a reservation always covers what the call reports.

    >>> scoring_call(LLMRequest.from_prompt("Sunny? Answer:", labels=("yes", "no"))).max_tokens
    7
    """
    text = request.prompt_text
    evaluated = sum(len(label_continuation(text, x).encode("utf-8")) for x in request.labels)
    return dataclasses.replace(request, max_tokens=max(evaluated, 1))


def best_label(labels: Sequence[str], logprobs: Sequence[float]) -> str:
    """The label with the highest log-probability; the first of equals wins.

    >>> best_label(["yes", "no"], [-1.5, -0.3]), best_label(["a", "b"], [-1.0, -1.0])
    ('no', 'a')
    """
    if len(labels) != len(logprobs) or not labels:
        raise ValueError(f"{len(labels)} labels but {len(logprobs)} log-probabilities")
    best = max(range(len(labels)), key=lambda i: (logprobs[i], -i))
    return labels[best]


def refuse_soft_prompts(request: LLMRequest, model: str) -> None:
    """Raise :class:`ConfigError` when ``request`` carries soft prompts, naming the runner that can.

    Runners that send text (OpenAI-compatible endpoints, llama.cpp, scripted) call it first.

    >>> from sammo_core.soft_tensor import SoftTensor
    >>> soft = SoftTensor.from_values([[0.0, 1.0]])
    >>> refuse_soft_prompts(LLMRequest.from_prompt("<soft-prompt>", soft_prompts=(soft,)), "gpt")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: model 'gpt' cannot run soft prompts ... --model hf:gemma3 ...
    """
    if request.soft_prompts:
        from sammo_core.soft_tensor import HF_RUNNER_HINT

        shapes = ", ".join(f"{s.shape[0]}x{s.shape[1]}" for s in request.soft_prompts)
        raise ConfigError(
            f"model {model!r} cannot run soft prompts (the program holds a SoftPrompt, {shapes} "
            f"learned embeddings that are not text); run it on an in-process transformers "
            f"model: {HF_RUNNER_HINT}"
        )


class Runner(abc.ABC):
    """Turns an :class:`LLMRequest` into an :class:`LLMResult`.

    Subclasses implement one coroutine, :meth:`generate`. ``model`` names what answers (it goes
    into cache keys and manifests); ``endpoint`` says where it is served (a server's base URL;
    ``None`` for an in-process or scripted model) and goes into cache keys too, so one model
    name at two servers never shares answers. :meth:`aclose` releases connections or memory.
    """

    model: str = "unknown"
    endpoint: str | None = None

    @abc.abstractmethod
    async def generate(self, request: LLMRequest) -> LLMResult:
        """Return one completion for ``request``."""

    def planned_calls(self, request: LLMRequest) -> tuple[LLMRequest, ...]:
        """The calls :meth:`generate` may make to the model for ``request``, each as the
        request it sends: what a budget reserves before ``request`` goes out (see
        :class:`~sammo_core.runners.accounting.AccountingRunner`).

        One call, ``request`` itself, by default. A runner that makes several (a completions
        server scores each label in a request of its own) lists them all; a wrapper asks the
        runner it wraps.

        >>> from sammo_core.runners import ScriptedRunner
        >>> request = LLMRequest.from_prompt("Hi")
        >>> ScriptedRunner(default="ok").planned_calls(request) == (request,)
        True
        """
        return (request,)

    async def generate_many(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        """Run several requests concurrently (wrappers bound the concurrency)."""
        return list(await asyncio.gather(*(self.generate(r) for r in requests)))

    def generate_sync(self, request: LLMRequest) -> LLMResult:
        """Blocking convenience wrapper for scripts and notebooks without an event loop."""
        return asyncio.run(self.generate(request))

    async def aclose(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Release resources; the default does nothing."""

    def will_hit(self, request: LLMRequest) -> bool:
        """Whether :meth:`generate` would answer ``request`` right now without a call to the
        model (a cache that holds it): budgets let such requests through. Default: no."""
        del request
        return False

    @property
    def retry_stats(self) -> RetryStats | None:
        """Requests sent, retries by cause and time waiting, for a runner that retries (an
        endpoint's); ``None`` for one that does not (scripted, embedded)."""
        return None


class WrapperRunner(Runner):
    """A runner that adds something around ``inner`` (a cache, a budget, a throttle, a cap)
    and passes the rest through: ``model`` and ``endpoint`` are the inner runner's, and so are
    :meth:`planned_calls`, :meth:`will_hit`, :attr:`retry_stats` and :meth:`aclose`, unless a
    wrapper changes them. Subclasses implement :meth:`generate`.

    >>> from sammo_core.runners import ScriptedRunner
    >>> class Shouting(WrapperRunner):
    ...     async def generate(self, request):
    ...         result = await self.inner.generate(request)
    ...         return dataclasses.replace(result, text=result.text.upper())
    >>> Shouting(ScriptedRunner(default="ok", model="m")).generate_sync(
    ...     LLMRequest.from_prompt("hi")).text, Shouting(ScriptedRunner(model="m")).model
    ('OK', 'm')
    """

    def __init__(self, inner: Runner) -> None:
        self.inner = inner

    @property
    def model(self) -> str:
        """The inner runner's model name."""
        return self.inner.model

    @model.setter
    def model(self, value: str) -> None:
        raise AttributeError(f"{type(self).__name__}.model follows the inner runner; set it there")

    @property
    def endpoint(self) -> str | None:
        """The inner runner's endpoint."""
        return self.inner.endpoint

    @endpoint.setter
    def endpoint(self, value: str | None) -> None:
        raise AttributeError(f"{type(self).__name__}.endpoint follows the inner runner")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    def planned_calls(self, request: LLMRequest) -> tuple[LLMRequest, ...]:
        return self.inner.planned_calls(request)

    def will_hit(self, request: LLMRequest) -> bool:
        return self.inner.will_hit(request)

    @property
    def retry_stats(self) -> RetryStats | None:
        return self.inner.retry_stats

    async def aclose(self) -> None:
        """Close the inner runner."""
        await self.inner.aclose()
