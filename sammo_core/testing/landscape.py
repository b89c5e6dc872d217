"""A noisy task whose every prompt has a known true accuracy, for testing and measuring racing.

The synthetic task of :mod:`sammo_core.testing.synthetic` answers each row right or wrong by a
rule with few levels; a real model is noisier: two prompts of nearly equal merit disagree on
many rows, and some rows are hard for every prompt. Here each line of the prompt adds a fixed
amount (from -``spread`` to +``spread``, drawn from the line's hash) to the accuracy ``base``,
clipped to [0.05, 0.95]: that is the prompt's *true accuracy*, known exactly
(:func:`true_accuracy`). Row ``item N`` is answered right iff a uniform draw ``u`` falls below
it, where ``u`` is the row's own draw (the same for every prompt: a hard row is hard for all)
with probability ``shared``, else a draw of the prompt and the row. A mixture of uniform draws
is uniform, so every row is right with exactly the true accuracy, and two prompts agree on
more rows than chance would give: what paired comparisons exploit.

>>> from sammo_core import compile
>>> from sammo_core.testing.synthetic import items, start_program
>>> model = landscape_model()
>>> results = compile(start_program(n_examples=3)).run_sync(items(400), model)
>>> truth = true_accuracy(results.prompts[0])
>>> observed = sum(p == o for p, o in zip(results.predictions, results.outputs)) / 400
>>> abs(observed - truth) < 0.08
True
"""

from __future__ import annotations

import hashlib
import re

from sammo_core.runners.base import LLMRequest
from sammo_core.runners.scripted import ScriptedRunner

__all__ = ["landscape_answer", "landscape_model", "true_accuracy"]

_ITEM = re.compile(r"item (\d+)\s*(?:\n\s*Output:\s*)?$")


def _uniform(*parts: object) -> float:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def true_accuracy(prompt: str, *, base: float = 0.6, spread: float = 0.08) -> float:
    """The accuracy a prompt has on every row: ``base`` plus each distinct line's share.

    The row's own input at the end does not count, so the truth is the prompt's, not the
    row's; a line repeated counts once.

    >>> true_accuracy("Answer yes or no.\\nInput: item 3") == true_accuracy(
    ...     "Answer yes or no.\\nAnswer yes or no.\\nInput: item 8")
    True
    """
    text = _ITEM.sub("", prompt)
    lines = {line.strip() for line in text.splitlines()}
    lines.discard("")
    value = base + sum(spread * (2 * _uniform("line", line) - 1) for line in sorted(lines))
    return min(0.95, max(0.05, value))


def landscape_answer(prompt: str, *, shared: float = 0.6, base: float = 0.6) -> str:
    """The reply to a prompt ending in ``item N``: right (``yes`` for even N) iff the row's
    draw falls below the prompt's true accuracy."""
    found = _ITEM.search(prompt)
    if found is None:
        return "maybe"
    n = int(found.group(1))
    truth = true_accuracy(prompt, base=base)
    own = _uniform("row", n) if _uniform("pick", prompt, n) < shared else _uniform(prompt, n)
    right = own < truth
    gold = "yes" if n % 2 == 0 else "no"
    return gold if right else ("no" if gold == "yes" else "yes")


def landscape_model(latency: float = 0.0, *, shared: float = 0.6) -> ScriptedRunner:
    """A scripted model answering :func:`landscape_answer`."""

    def reply(request: LLMRequest) -> str:
        return landscape_answer(request.prompt_text, shared=shared)

    return ScriptedRunner(default=reply, model="landscape", latency=latency)
