"""Known log-probabilities for the loopback server, in OpenAI's response shapes.

The server's "model" has a tokenizer and a scorer. :func:`tokenize` splits text into tokens
that carry their leading whitespace, as byte-pair tokenizers do, so the tokens always join back
into the text, and a label continuing a prompt that ends in a space merges with it:

>>> tokenize("Answer: yes"), tokenize("Answer: " + "yes")
(['Answer', ':', ' yes'], ['Answer', ':', ' yes'])

A scorer is a function ``logprob(context, token) -> float``: the natural log-probability of
``token`` right after the text ``context``. The default, :func:`default_logprob`, makes shorter
tokens likelier. The top-N lists rank the tokens of the text itself and those of a vocabulary.
Nothing is normalized: the numbers are known, which is what tests need.

Echoed prompt log-probabilities (``/v1/completions`` with ``echo`` and ``logprobs``) come in one
of two layouts:

- ``"aligned"`` (OpenAI, vLLM): entry *i* is token *i* with its log-probability given the text
  before it; the first token has none (``null``), and the generated tokens follow.
- ``"shifted"`` (llama-cpp-python 0.3.x serving a model that adds no BOS token): entry *i* names
  token *i* but holds the distribution that comes after it, the one of token *i + 1*: its
  ``top_logprobs`` rank the candidates for token *i + 1*, with token *i*'s own value in that
  distribution added (as llama-cpp-python adds it), and ``token_logprobs[i]`` is that value,
  a number that belongs to no token. The first token has a number; the generated token has no
  entry.

>>> scorer = {"Answer": -1.0, ":": -0.5, " yes": -0.25}
>>> def logprob(context: str, token: str) -> float:
...     return scorer.get(token, -4.0) - len(context) / 100
>>> aligned = completion_logprobs("Answer: yes", "", logprob, top=1, layout="aligned")
>>> aligned["tokens"], aligned["token_logprobs"], aligned["text_offset"]
(['Answer', ':', ' yes'], [None, -0.56, -0.32], [0, 6, 7])
>>> shifted = completion_logprobs("Answer: yes", "", logprob, top=1, layout="shifted")
>>> shifted["top_logprobs"][1]  # after "Answer:": the candidates for " yes"
{' yes': -0.32, ':': -0.57}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, get_args

from sammo_core.errors import ConfigError

__all__ = [
    "DEFAULT_VOCABULARY",
    "LOGPROB_LAYOUTS",
    "LogprobLayout",
    "Scorer",
    "chat_logprobs",
    "completion_logprobs",
    "default_logprob",
    "tokenize",
]

#: ``(context, token) -> log-probability`` of ``token`` right after the text ``context``.
Scorer = Callable[[str, str], float]
#: How a server lists echoed prompt log-probabilities (see the module's docstring); ``"none"``
#: plays a server that lacks them: it answers every request with ``logprobs: null``.
LogprobLayout = Literal["aligned", "shifted", "none"]
LOGPROB_LAYOUTS: tuple[LogprobLayout, ...] = get_args(LogprobLayout)

#: Tokens every top-N list may rank besides those of the text itself (the usual labels).
DEFAULT_VOCABULARY: tuple[str, ...] = (" yes", " no", "yes", "no", "Yes", "No")

_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])|\s+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Words and punctuation marks, each with the whitespace before it; they join into ``text``.

    >>> tokenize("Q: 2+2?\\n A:  "), "".join(tokenize("a  b\\n"))
    (['Q', ':', ' 2', '+', '2', '?', '\\n A', ':', '  '], 'a  b\\n')
    """
    return _TOKEN.findall(text)


def default_logprob(context: str, token: str) -> float:
    """The default scorer: -0.5 per character of the token without its whitespace (at least
    one), whatever the context.

    >>> default_logprob("Answer:", " yes"), default_logprob("", "\\n")
    (-1.5, -0.5)
    """
    return -0.5 * max(1, len(token.strip()))


def _top(context: str, candidates: Iterable[str], logprob: Scorer, top: int) -> dict[str, float]:
    """The ``top`` likeliest candidates after ``context``, likeliest first (ties: by token)."""
    scored = sorted((-logprob(context, c), c) for c in set(candidates))
    return {token: -negative for negative, token in scored[:top]}


def completion_logprobs(
    prompt: str,
    generated: str,
    logprob: Scorer,
    *,
    top: int,
    layout: LogprobLayout = "aligned",
    echo: bool = True,
    vocabulary: Sequence[str] = DEFAULT_VOCABULARY,
) -> dict[str, Any]:
    """The ``logprobs`` object of a ``text_completion`` choice (``None`` for layout ``"none"``).

    ``prompt`` is echoed when ``echo`` (in ``layout``); ``generated`` follows it, tokenized on
    its own as a model generates it. Without ``echo`` only the generated tokens are listed,
    aligned (llama-cpp-python lists those right).
    """
    if layout not in LOGPROB_LAYOUTS:
        raise ConfigError(f"layout {layout!r} is not one of {', '.join(LOGPROB_LAYOUTS)}")
    if layout == "none":
        return {}
    prompt_tokens = tokenize(prompt)
    tokens = prompt_tokens + tokenize(generated)
    offsets = [0]
    for token in tokens:
        offsets.append(offsets[-1] + len(token))
    candidates = [*tokens, *vocabulary]
    first = 0 if echo else len(prompt_tokens)
    listed: dict[str, list[Any]] = {
        "tokens": [],
        "token_logprobs": [],
        "top_logprobs": [],
        "text_offset": [],
    }
    for i in range(first, len(tokens)):
        value: float | None
        row: dict[str, float] | None
        if layout == "shifted" and echo:
            if i >= len(prompt_tokens):
                break  # the generated token was never evaluated, so it has no row
            context = prompt[: offsets[i + 1]]  # the row after token i
            own = logprob(context, tokens[i])
            # llama-cpp-python adds the listed token's own value to the ranked ones.
            value, row = own, {**_top(context, candidates, logprob, top), tokens[i]: own}
        elif i == 0:
            value, row = None, None  # nothing comes before the first token
        else:
            context = (prompt + generated)[: offsets[i]]
            value = logprob(context, tokens[i])
            row = _top(context, candidates, logprob, top)
        listed["tokens"].append(tokens[i])
        listed["token_logprobs"].append(None if value is None else round(value, 6))
        listed["top_logprobs"].append(
            None if row is None else {t: round(v, 6) for t, v in row.items()}
        )
        listed["text_offset"].append(offsets[i])  # from the prompt's start, echoed or not
    return listed


def chat_logprobs(
    context: str,
    generated: str,
    logprob: Scorer,
    *,
    top: int,
    vocabulary: Sequence[str] = DEFAULT_VOCABULARY,
) -> dict[str, Any]:
    """The ``logprobs`` object of a ``chat.completion`` choice: each generated token with its
    log-probability and the ``top`` likeliest candidates at its place.

    >>> listing = chat_logprobs("Sunny?", "yes", lambda c, t: -len(t) / 2, top=2)
    >>> [(e["token"], e["logprob"]) for e in listing["content"][0]["top_logprobs"]]
    [('No', -1.0), ('no', -1.0)]
    """
    content = []
    text = context
    candidates = [*tokenize(generated), *vocabulary]
    for token in tokenize(generated):
        row = _top(text, candidates, logprob, top)
        content.append(
            {
                "token": token,
                "logprob": round(logprob(text, token), 6),
                "bytes": list(token.encode("utf-8")),
                "top_logprobs": [
                    {"token": t, "logprob": round(v, 6), "bytes": list(t.encode("utf-8"))}
                    for t, v in row.items()
                ],
            }
        )
        text += token
    return {"content": content}
