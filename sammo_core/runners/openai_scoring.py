"""Reading label log-probabilities out of OpenAI-compatible answers (rank classification).

:class:`~sammo_core.runners.openai_runner.OpenAIRunner` scores a request's ``labels`` in one of
two ways; this module holds the reading, the runner the calls.

**Completion mode** (``POST /completions``: vLLM, llama-cpp-python's server, OpenAI's legacy
models): one request per label sends the prompt followed by the label's continuation
(:func:`~sammo_core.runners.base.label_continuation`) with ``echo=true``, ``logprobs=N`` and
``max_tokens=1`` (not 0: llama-cpp-python reads ``max_tokens <= 0`` as "until the context is
full"), and the label's score is the sum of its tokens' log-probabilities in the echo
(:func:`continuation_logprob`). The label's tokens are found by text offsets: every token that
ends after the prompt and starts before the label's end. A token that straddles the prompt's end
(a prompt ending in ``"Answer: "`` and the label ``"yes"`` give the token ``" yes"``) is the
label's: it holds the label's first characters, and every label is scored alike.

Servers list echoed log-probabilities in one of two layouts (:data:`ECHO_LAYOUTS`):
``"aligned"`` (OpenAI, vLLM, llama-cpp-python with a model that adds a BOS token): entry *i* is
token *i*'s log-probability given the text before it; ``"shifted"`` (llama-cpp-python 0.3.x with
a model that adds no BOS token): entry *i* holds the distribution after token *i*, so token
*i*'s log-probability is read from the ``top_logprobs`` of entry *i - 1*, by its token string.
:func:`detect_layout` tells them apart from one probe of :data:`PROBE_PROMPT`.

**Chat mode** (``POST /chat/completions``): one request with ``logprobs=true``,
``top_logprobs=N`` and ``max_tokens=1``; each label scores the first answer token that begins
its first word (:func:`chat_label_logprobs`). Labels whose first words are equal, or one a
prefix of another, cannot be told apart so: :func:`check_chat_labels` refuses them.

A token a label needs but the server did not list (outside the top ``N``) gets a floor: the
lowest log-probability listed at that place minus ``log(2)`` (:data:`UNLISTED_PENALTY`): no
more than the truth allows (an unlisted token is at most as likely as the least likely listed
one), below every listed token, and finite, so labels left unlisted still compare by their
other tokens.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

from sammo_core.errors import ConfigError

__all__ = [
    "ECHO_LAYOUTS",
    "PROBE_PROMPT",
    "UNLISTED_PENALTY",
    "EchoLayout",
    "Echoed",
    "chat_label_logprobs",
    "check_chat_labels",
    "continuation_logprob",
    "detect_layout",
    "first_word",
    "read_chat_listing",
]

#: How a server lists echoed prompt log-probabilities; ``"auto"`` probes it once.
EchoLayout = Literal["auto", "aligned", "shifted"]
ECHO_LAYOUTS: tuple[EchoLayout, ...] = get_args(EchoLayout)

#: The probe's prompt: any model goes on with a token (" 7"), so the reply shows whether the
#: generated token is listed, which is what tells the layouts apart (see detect_layout).
PROBE_PROMPT = "1, 2, 3, 4, 5, 6,"

#: A token outside the listed top ``N`` scores the lowest listed log-probability minus this.
UNLISTED_PENALTY = math.log(2)

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


@dataclasses.dataclass(frozen=True, slots=True)
class Echoed:
    """The ``logprobs`` of a completions answer: per token its text, its offset in ``text``,
    its log-probability and its top-N alternatives."""

    text: str
    tokens: tuple[str, ...]
    offsets: tuple[int, ...]
    logprobs: tuple[float | None, ...]
    top: tuple[Mapping[str, float] | None, ...]

    @classmethod
    def read(cls, choice: Mapping[str, Any]) -> Echoed | None:
        """The listing of a ``text_completion`` choice; ``None`` when it has none.

        Offsets are recomputed from the token strings when the server sends none.

        >>> Echoed.read({"text": "a b", "logprobs": {"tokens": ["a", " b"],
        ...     "token_logprobs": [None, -0.5], "top_logprobs": [None, {" b": -0.5}]}}).offsets
        (0, 1)
        >>> Echoed.read({"text": "a b", "logprobs": None}) is None
        True
        """
        listing = choice.get("logprobs")
        if not isinstance(listing, Mapping):
            return None
        tokens, logprobs = listing.get("tokens"), listing.get("token_logprobs")
        if not isinstance(tokens, list) or not isinstance(logprobs, list) or not tokens:
            return None
        offsets = listing.get("text_offset")
        if not isinstance(offsets, list) or len(offsets) != len(tokens):
            offsets, at = [], 0
            for token in tokens:
                offsets.append(at)
                at += len(token)
        top = listing.get("top_logprobs")
        tops = top if isinstance(top, list) and len(top) == len(tokens) else [None] * len(tokens)
        return cls(
            str(choice.get("text") or ""),
            tuple(str(t) for t in tokens),
            tuple(int(o) for o in offsets),
            tuple(None if v is None else float(v) for v in logprobs),
            tuple(t if isinstance(t, Mapping) else None for t in tops),
        )

    def span(self, i: int) -> tuple[int, int]:
        """Where token ``i`` starts and ends in :attr:`text`."""
        start = self.offsets[i]
        end = self.offsets[i + 1] if i + 1 < len(self.offsets) else start + len(self.tokens[i])
        return start, max(start, end)


def detect_layout(echo: Echoed, prompt: str) -> Literal["aligned", "shifted"] | None:
    """The layout of a probe's echo of ``prompt`` (sent with ``max_tokens=1``), or ``None``
    when this reply cannot tell.

    A first token with no log-probability (``null``) is OpenAI's and vLLM's aligned layout. Else
    (llama-cpp-python) the generated token decides: listed, the entries are aligned; generated
    but not listed, each entry holds the next token's distribution (shifted). A reply that
    generated nothing (the model ended the text at once) cannot tell.

    >>> listing = {"tokens": ["1", ",", " 7"], "token_logprobs": [-3.0, -0.1, -0.2],
    ...            "text_offset": [0, 1, 2]}
    >>> detect_layout(Echoed.read({"text": "1, 7", "logprobs": listing}), "1,")
    'aligned'
    >>> listing = {"tokens": ["1", ","], "token_logprobs": [-3.0, -0.1], "text_offset": [0, 1]}
    >>> detect_layout(Echoed.read({"text": "1, 7", "logprobs": listing}), "1,")
    'shifted'
    """
    if echo.logprobs[0] is None:
        return "aligned"
    if any(offset >= len(prompt) for offset in echo.offsets):
        return "aligned"
    if echo.text.startswith(prompt) and echo.text[len(prompt) :]:
        return "shifted"
    return None


def continuation_logprob(
    echo: Echoed, prompt_end: int, end: int, layout: Literal["aligned", "shifted"]
) -> float:
    """The log-probability of the text between ``prompt_end`` and ``end`` in an echo: the sum
    over the tokens that end after ``prompt_end`` and start before ``end``.

    Raises :class:`ValueError` naming what the listing lacks.

    >>> listing = {"tokens": ["Q", ":", " very", " good", " echo"],
    ...            "token_logprobs": [None, -1.0, -0.5, -0.25, -2.0]}
    >>> echo = Echoed.read({"text": "Q: very good echo", "logprobs": listing})
    >>> continuation_logprob(echo, len("Q:"), len("Q: very good"), "aligned")
    -0.75
    >>> listing = {"tokens": ["Q", ":", " very", " good"], "token_logprobs": [-9.0] * 4,
    ...            "top_logprobs": [{":": -1.0}, {" very": -0.5}, {" good": -0.25}, {}]}
    >>> echo = Echoed.read({"text": "Q: very good echo", "logprobs": listing})
    >>> continuation_logprob(echo, len("Q:"), len("Q: very good"), "shifted")
    -0.75
    """
    picked = [
        i for i in range(len(echo.tokens)) if echo.span(i)[1] > prompt_end and echo.span(i)[0] < end
    ]
    if not picked:
        raise ValueError(f"no listed token covers the text after character {prompt_end}")
    total = 0.0
    for i in picked:
        if layout == "aligned":
            value = echo.logprobs[i]
            if value is None:
                raise ValueError(f"token {i} ({echo.tokens[i]!r}) has no log-probability")
        else:
            row = echo.top[i - 1] if i > 0 else None
            if not row:
                raise ValueError(
                    f"the entry before token {i} ({echo.tokens[i]!r}) lists no top_logprobs"
                )
            value = row.get(echo.tokens[i])
            if value is None:
                value = min(row.values()) - UNLISTED_PENALTY
        total += value
    return total


def first_word(label: str) -> str:
    """A label's first word (or mark), case-folded: what a chat answer's first token begins.

    >>> first_word("Yes, it is"), first_word("(A) first")
    ('yes', '(')
    """
    match = _WORD.search(label)
    return match.group().casefold() if match else label.strip().casefold()


def check_chat_labels(labels: Sequence[str]) -> None:
    """Refuse labels that a chat answer's first token cannot tell apart.

    >>> check_chat_labels(["yes", "no"])
    >>> check_chat_labels(["yes it is", "yes no"])
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: the labels 'yes it is' and 'yes no' both begin with 'yes'...
    """
    words = [first_word(label) for label in labels]
    for i, a in enumerate(words):
        for j, b in enumerate(words):
            if i != j and b.startswith(a) and (a != b or i < j):
                same = f"both begin with {a!r}" if a == b else f"begin with {a!r} and {b!r}"
                raise ConfigError(
                    f"the labels {labels[i]!r} and {labels[j]!r} {same}: a chat model's first "
                    "answer token, the only one scored in chat mode, cannot tell them apart. "
                    "Use labels whose first words differ and none begins another (e.g. "
                    "'A) ...', 'B) ...'), or score whole labels in completion mode "
                    "(GenerateText(mode='completion')) on a completions server"
                )


def read_chat_listing(choice: Mapping[str, Any]) -> dict[str, float] | None:
    """Token -> log-probability at the first answer token of a chat choice (the top list and
    the token chosen); ``None`` when the choice has no log-probabilities.

    >>> top = [{"token": "yes", "logprob": -0.1}, {"token": "No", "logprob": -2.5}]
    >>> read_chat_listing({"logprobs": {"content": [
    ...     {"token": "yes", "logprob": -0.1, "top_logprobs": top}]}})
    {'yes': -0.1, 'No': -2.5}
    """
    listing = choice.get("logprobs")
    content = listing.get("content") if isinstance(listing, Mapping) else None
    if not isinstance(content, list) or not content or not isinstance(content[0], Mapping):
        return None
    first = content[0]
    listed: dict[str, float] = {}
    for entry in [first, *(first.get("top_logprobs") or ())]:
        token, value = entry.get("token"), entry.get("logprob")
        if isinstance(token, str) and isinstance(value, int | float):
            listed[token] = max(float(value), listed.get(token, -math.inf))
    return listed or None


def chat_label_logprobs(labels: Sequence[str], listed: Mapping[str, float]) -> tuple[float, ...]:
    """Each label's log-probability of beginning the answer, from the listed first tokens.

    A token counts for a label when, stripped of whitespace and case-folded, it begins the
    label's :func:`first_word` and no other label's (``"Yes"``, ``" yes"`` and ``"y"`` all count
    for ``"yes"``); a label's score is the log of the summed probabilities of its tokens. A
    label with no listed token gets the floor (the lowest listed log-probability minus
    :data:`UNLISTED_PENALTY`). Call :func:`check_chat_labels` first.

    >>> scores = chat_label_logprobs(["yes", "no", "maybe"], {"Yes": -0.5, "yes": -1.5, "No": -2.0})
    >>> [round(s, 4) for s in scores]
    [-0.1867, -2.0, -2.6931]
    """
    words = [first_word(label) for label in labels]
    matched: list[list[float]] = [[] for _ in labels]
    for token, value in listed.items():
        key = token.strip().casefold()
        owners = [i for i, word in enumerate(words) if key and word.startswith(key)]
        if len(owners) == 1:
            matched[owners[0]].append(value)
    floor = min(listed.values()) - UNLISTED_PENALTY
    return tuple(_logsumexp(values) if values else floor for values in matched)


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))
