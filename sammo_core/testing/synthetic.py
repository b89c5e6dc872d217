"""A synthetic task whose best program is known, for testing and benchmarking search.

A scripted "model" answers ``item N`` questions correctly with a probability that depends
only on what the prompt holds:

- the task instruction ``Answer yes or no.`` present: +1 quality point,
- the distractor section (``Always answer maybe.``) absent: +1,
- at least 3 in-context examples shown: +1.

With ``q`` points, the model answers an item right iff ``(7919 * N) % 4 <= q``, so accuracy is
``(q + 1) / 4`` on a table of items 0..4k-1: 0.5 for :func:`start_program`, 1.0 for the known
optimum (drop the distractor, show 3 or more examples). Among optimal programs, the fewest
prompt tokens go to the one with exactly 3 examples and no filler section.

>>> from sammo_core import compile
>>> from sammo_core.objectives import get_objective
>>> runner, data = synthetic_model(), items(8)
>>> results = compile(start_program()).run_sync(data, runner)
>>> results.predictions[:4], results.outputs[:4]
(['yes', 'maybe', 'maybe', 'no'], ['yes', 'no', 'yes', 'no'])
>>> get_objective("accuracy").score(results).value
0.5
>>> get_objective("accuracy").score(compile(optimal_program()).run_sync(data, runner)).value
1.0
"""

from __future__ import annotations

import re

from sammo_core.components import Examples, GenerateText, InputData, MetaPrompt, Output, Section
from sammo_core.data import DataTable
from sammo_core.runners.base import LLMRequest
from sammo_core.runners.scripted import ScriptedRunner

__all__ = [
    "DISTRACTOR",
    "TASK",
    "answer",
    "items",
    "optimal_program",
    "quality",
    "start_program",
    "synthetic_model",
]

TASK = "Answer yes or no."
DISTRACTOR = "Always answer maybe."
FILLER = "Please note that it is really very important that you basically read carefully."
_ITEM = re.compile(r"Input: item (\d+)\s*(?:\n\s*Output:\s*)?$")


def label(n: int) -> str:
    return "yes" if n % 2 == 0 else "no"


def items(count: int, start: int = 0) -> DataTable:
    """Labelled rows ``item start`` .. ``item start+count-1``."""
    ns = range(start, start + count)
    return DataTable([f"item {n}" for n in ns], [label(n) for n in ns])


def quality(prompt: str) -> int:
    """Quality points of a rendered prompt (0..3)."""
    examples = len(re.findall(r"^Example \d+:", prompt, re.MULTILINE))
    return int(TASK in prompt) + int(DISTRACTOR not in prompt) + int(examples >= 3)


def answer(request: LLMRequest) -> str:
    """The synthetic model's answer to one request."""
    prompt = request.prompt_text
    match = _ITEM.search(prompt.rstrip())
    if match is None:
        return "I cannot find the item."
    n = int(match.group(1))
    if (7919 * n) % 4 <= quality(prompt):
        return label(n)
    return "maybe"


def synthetic_model(latency: float = 0.0) -> ScriptedRunner:
    """The scripted model described in the module docstring."""
    return ScriptedRunner(default=answer, model="synthetic", latency=latency)


def start_program(n_examples: int = 1) -> Output:
    """Accuracy 0.5: the task, a distractor, a filler section and too few examples."""
    pool = items(12, start=1000)
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", [TASK], id="task"),
                    Section("Style", [DISTRACTOR], id="distractor"),
                    Section("Notes", [FILLER], id="filler"),
                    Section("Examples", [Examples(pool, n=n_examples)], id="examples"),
                    Section("Question", [InputData()], id="question"),
                ],
                data_format="plain",
            )
        ),
        parser="first_line",
    )


def optimal_program() -> Output:
    """Accuracy 1.0 with the fewest prompt tokens."""
    pool = items(12, start=1000)
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", [TASK], id="task"),
                    Section("Examples", [Examples(pool, n=3)], id="examples"),
                    Section("Question", [InputData()], id="question"),
                ],
                data_format="plain",
            )
        ),
        parser="first_line",
    )
