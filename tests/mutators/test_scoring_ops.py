"""The verbalizer and calibration operators: deterministic, non-empty, and right in a run."""

from __future__ import annotations

import asyncio
import math
import random

from mutators.scoring import ChangeVerbalizer, ToggleCalibration
from sammo_core import (
    DataTable,
    Examples,
    GenerateText,
    InputData,
    MetaPrompt,
    Output,
    ScriptedRunner,
    dumps,
    loads,
)
from sammo_core.graph import compile as compile_program
from sammo_core.runners import LLMRequest

POOL = DataTable(["fire is hot", "ice is hot", "sun is bright"], ["True", "False", "True"])


def _program(labels: list[str] | None = None) -> Output:
    call = GenerateText(
        MetaPrompt([Examples(POOL, n=3), InputData()]),
        labels=["False", "True"] if labels is None else labels,
        mode="completion",
    )
    return Output(call)


def _children(op: object, program: Output, seed: int, n: int = 2) -> list[str]:
    mutations = asyncio.run(op.mutate(program, random.Random(seed), n=n))  # type: ignore[attr-defined]
    return [dumps(m.program) for m in mutations]


def test_same_seed_same_children_and_never_empty() -> None:
    for op in (ChangeVerbalizer(), ToggleCalibration()):
        first = _children(op, _program(), 3)
        assert first and first == _children(op, _program(), 3)
        assert all(loads(text) != _program() for text in first)


def test_nothing_to_change_without_labels() -> None:
    bare = _program(labels=[])
    assert not ChangeVerbalizer().applicable(bare)
    assert not ToggleCalibration().applicable(bare)


def test_a_verbalized_program_shows_and_scores_words_and_answers_in_labels() -> None:
    [yes_no] = [
        m.program
        for m in asyncio.run(ChangeVerbalizer().mutate(_program(), random.Random(0), n=9))
        if list(m.program.child.verbalizer) == ["no", "yes"]
    ]

    def scores(request: LLMRequest) -> dict[str, float]:
        hot = "hot" in request.prompt_text.rsplit("Input:", 1)[-1]
        return {"yes": math.log(0.9 if hot else 0.2), "no": math.log(0.1 if hot else 0.8)}

    runner = ScriptedRunner(label_scores=scores)
    data = DataTable(["lava is hot", "snow is cold"], ["True", "False"])
    rows = compile_program(yes_no).run_sync(data, runner)
    assert rows.predictions == ["True", "False"]
    assert "Output: yes" in runner.prompts[0] and "Output: True" not in runner.prompts[0]
    # Changing it again maps the examples from the words shown now, not from the labels.
    again = [
        m.program
        for m in asyncio.run(ChangeVerbalizer().mutate(yes_no, random.Random(0), n=9))
        if list(m.program.child.verbalizer) == ["B", "A"]
    ]
    assert list(again[0].child.prompt.children[0].data.outputs) == ["A", "B", "A"]
    # Back to the labels: no verbalizer, the examples as they were.
    back = [
        m.program
        for m in asyncio.run(ChangeVerbalizer().mutate(yes_no, random.Random(0), n=9))
        if not list(m.program.child.verbalizer)
    ]
    assert back[0] == _program()
