"""The workload the perf harness times: labelled product reviews (:func:`review_table`), a
realistic program in three variants (:func:`realistic_program`), a zero-latency scripted reply
and a runner that times the calls it passes on.
"""

from __future__ import annotations

import random
import re
import time

from renderers import Record, get_data_format
from sammo_core.components import Examples, GenerateText, InputData, MetaPrompt, Output, Section
from sammo_core.data import DataTable
from sammo_core.runners.base import LLMRequest, LLMResult, Runner

VARIANTS = ("plain", "minibatch", "knn")
MINIBATCH = 8
N_EXAMPLES = 5
CONCURRENCY = 32  # rows in flight in the overhead runs (the default of FunctionGraph.run)
LABELS = ("positive", "negative", "neutral")
TASK = "Classify the sentiment of a product review as positive, negative or neutral."

_SUBJECTS = ("battery", "screen", "keyboard", "delivery", "price", "manual", "camera", "speaker")
_VERDICTS = (
    "works perfectly",
    "broke after a week",
    "is fine I guess",
    "exceeded my hopes",
    "was a waste of money",
    "does what it says",
)
_CONTEXT = (
    "I bought it for my daughter",
    "after reading many reviews",
    "on sale last month",
    "to replace an older model",
    "as a gift",
)
_INPUT_ID = re.compile(r"^Input \[(\d+)\]:", re.MULTILINE)
_PLAIN = get_data_format("plain")


def review_table(rows: int, seed: int = 0) -> DataTable:
    """``rows`` labelled product reviews, drawn with ``seed``.

    >>> review_table(2)[0].input
    'Review 0: The camera exceeded my hopes; I bought it for my daughter.'
    >>> review_table(2)[0].output
    'positive'
    """
    rng = random.Random(seed)
    inputs, outputs = [], []
    for i in range(rows):
        verdict = rng.randrange(len(_VERDICTS))
        inputs.append(
            f"Review {i}: The {rng.choice(_SUBJECTS)} {_VERDICTS[verdict]}; {rng.choice(_CONTEXT)}."
        )
        outputs.append(LABELS[verdict % len(LABELS)])
    return DataTable(inputs, outputs)


def realistic_program(variant: str, pool: DataTable) -> Output:
    """The benchmark program: system message, two text sections, 5 examples, the input.

    ``variant``: ``plain``, ``minibatch`` (8 inputs per call) or ``knn`` (BM25 examples).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section(
                        "Task",
                        [TASK],
                        id="task",
                    ),
                    Section(
                        "Guidelines",
                        [
                            "Judge the customer's overall attitude rather than single words.",
                            "Treat sarcasm as negative only when it is unmistakable.",
                            "A review that only states facts is neutral.",
                        ],
                        id="guidelines",
                    ),
                    Section(
                        "Examples",
                        [
                            Examples(
                                pool,
                                n=N_EXAMPLES,
                                selection="knn" if variant == "knn" else "first",
                            )
                        ],
                        id="examples",
                    ),
                    Section("Input", [InputData()], id="input"),
                ],
                data_format="plain",
            ),
            system="You are a careful annotator. Answer with the label only.",
        ),
        parser="auto",
        inputs_per_call=MINIBATCH if variant == "minibatch" else 1,
    )


def scripted_reply(request: LLMRequest) -> str:
    """A well-formed answer for every input of the prompt (always ``positive``)."""
    ids = _INPUT_ID.findall(request.messages[-1].content)
    if not ids:
        return "positive"
    return _PLAIN.render_outputs([Record(int(i), None, "positive") for i in ids])


class TimedRunner(Runner):
    """Counts calls and the seconds spent inside the wrapped runner's ``generate``."""

    def __init__(self, inner: Runner) -> None:
        self.inner = inner
        self.model = inner.model
        self.seconds = 0.0
        self.calls = 0

    async def generate(self, request: LLMRequest) -> LLMResult:
        start = time.perf_counter()
        try:
            return await self.inner.generate(request)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1
