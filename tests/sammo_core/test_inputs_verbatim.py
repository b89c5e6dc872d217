"""The prompt holds each input exactly as the data holds it, whatever the formats."""

from __future__ import annotations

import pytest

from sammo_core import (
    DataTable,
    Examples,
    GenerateText,
    InputData,
    MetaPrompt,
    Output,
    ScriptedRunner,
    Section,
    compile,
)

# As in Super-NaturalInstructions task 1297: every input ends in "? ".
INPUTS = ["Is the sky blue? ", "  Does it rain? "]


@pytest.mark.parametrize("data_format", ["plain", "markdown", "xml"])
@pytest.mark.parametrize("section_format", ["markdown", "xml", "plain"])
def test_inputs_reach_the_model_unstripped(data_format: str, section_format: str) -> None:
    program = Output(
        GenerateText(
            MetaPrompt(
                [Section("Task", ["Answer yes or no."]), Section("Question", [InputData()])],
                data_format=data_format,
                section_format=section_format,
            )
        )
    )
    runner = ScriptedRunner(default="yes")
    compile(program).run_sync(DataTable(INPUTS, ["yes", "no"]), runner)
    for text, prompt in zip(INPUTS, runner.prompts, strict=True):
        assert text in prompt


def test_plain_prompt_is_exact() -> None:
    program = Output(GenerateText(MetaPrompt([InputData()], data_format="plain")))
    runner = ScriptedRunner(default="yes")
    compile(program).run_sync(DataTable(INPUTS[:1]), runner)
    assert runner.prompts == ["Input: Is the sky blue? \n\nOutput:"]


def test_example_inputs_are_unstripped_too() -> None:
    examples = DataTable([" Is it? "], ["yes"])
    program = Output(
        GenerateText(
            MetaPrompt(
                [Section("Examples", [Examples(examples)]), InputData()], data_format="plain"
            )
        )
    )
    runner = ScriptedRunner(default="yes")
    compile(program).run_sync(DataTable(["Q? "]), runner)
    assert runner.prompts == [
        "# Examples\n\nExample 1:\nInput:  Is it? \nOutput: yes\n\nInput: Q? \n\nOutput:"
    ]
