"""Completion-mode programs keep their prompt ending with the answer cue: the predicate, and
the operators that refuse children that would lose it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mutators.base import Mutation, keeps_answer_slot, replace
from mutators.format import ChangeDataFormat, ChangeInputsPerCall, ChangeSectionFormat
from mutators.groups import operators_of
from mutators.structure import ReorderSections
from sammo_core import (
    DataTable,
    Examples,
    GenerateText,
    InputData,
    MetaPrompt,
    Output,
    ScriptedRunner,
    Section,
    Template,
    compile,
)
from sammo_core.completion import answer_slot_problem

SHOTS = DataTable(["the sky is blue", "fish can fly", "snow is white"], ["yes", "no", "yes"])


def program(
    section_format: str = "markdown",
    data_format: str = "plain",
    *,
    mode: str = "completion",
    in_section: bool = True,
    inputs_per_call: int = 1,
) -> Output:
    data = InputData()
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", ["Answer yes or no."]),
                    Section("Rules", ["Be brief."]),
                    Section("Examples", [Examples(SHOTS, n=2)]),
                    Section("Input", [data]) if in_section else data,
                ],
                section_format=section_format,
                data_format=data_format,
            ),
            mode=mode,
            stop=["\n"],
        ),
        inputs_per_call=inputs_per_call,
    )


def prompt(p: Output) -> str:
    runner = ScriptedRunner(default="yes")
    compile(p).run_sync(DataTable(["is ice cold"]), runner)
    return runner.prompts[0]


@pytest.mark.parametrize(
    ("section_format", "data_format", "cue"),
    [("markdown", "plain", "Output:"), ("plain", "qa", "A:"), ("markdown", "sentence", "Label:"),
     ("plain", "markdown", "**Output:**")],
)  # fmt: skip
def test_prompts_that_end_with_the_cue_pass(
    section_format: str, data_format: str, cue: str
) -> None:
    p = program(section_format, data_format)
    assert answer_slot_problem(p) is None
    assert prompt(p).endswith(cue)


@pytest.mark.parametrize(
    ("p", "message"),
    [
        (program("json"), "section format 'json' writes '\"\\n    ]\\n  }\\n]' after the answer "
         "cue 'Output:', which must end a completion-mode prompt"),
        (program("xml"), "section format 'xml' writes '\\n</section>' after the answer cue"),
        (program(data_format="json"), "data format 'json' has no answer cue"),
        (program(data_format="xml"), "data format 'xml' has no answer cue"),
        (program(inputs_per_call=4), "inputs_per_call=4 ends the prompt with an instruction"),
    ],
)  # fmt: skip
def test_prompts_that_bury_or_lack_the_cue_are_refused_with_the_reason(
    p: Output, message: str
) -> None:
    problem = answer_slot_problem(p)
    assert problem is not None and problem.startswith(message)
    assert not prompt(p).rstrip().endswith("Output:") or "inputs_per_call" in message


def test_the_actual_json_prompt_ends_after_the_cue() -> None:
    # What the predicate guards against: with stop "\n" a base model's reply would be empty.
    assert prompt(program("json")).endswith('Output:"\n    ]\n  }\n]')


def test_xml_is_fine_when_the_input_is_not_inside_a_section() -> None:
    p = program("xml", in_section=False)
    assert answer_slot_problem(p) is None
    assert prompt(p).endswith("Output:")


def test_other_programs_are_not_judged() -> None:
    assert answer_slot_problem(program("json", mode="chat")) is None
    own_cue = Output(GenerateText(MetaPrompt([Template("Q: {{ input }}\nA:")]), mode="completion"))
    assert answer_slot_problem(own_cue) is None
    hint_off = Output(GenerateText(MetaPrompt([InputData(hint=False)]), mode="completion"))
    assert "set hint=True" in str(answer_slot_problem(hint_off))
    note = Section("Note", ["Be brief."])
    after = Output(GenerateText(MetaPrompt([InputData(), note]), mode="completion"))
    assert "move the input last" in str(answer_slot_problem(after))


def test_keeps_answer_slot_lets_an_already_broken_parent_change() -> None:
    good, broken = program(), program("json")
    assert not keeps_answer_slot(good, broken)
    assert keeps_answer_slot(broken, replace(broken, "child.prompt.section_format", "xml"))
    assert keeps_answer_slot(broken, good)


def test_change_section_format_never_buries_the_cue(
    mutate: Callable[..., list[Mutation]],
) -> None:
    children = mutate(ChangeSectionFormat(), program(), n=10)
    assert [c.description for c in children] == ["section format markdown -> plain"]
    assert not ChangeSectionFormat(choices=["json", "xml"]).applicable(program())
    assert ChangeSectionFormat(choices=["json", "xml"]).applicable(program(mode="chat"))
    # The input outside any section: XML closes nothing after it.
    top = [c.description for c in mutate(ChangeSectionFormat(), program(in_section=False), n=9)]
    assert sorted(top) == ["section format markdown -> plain", "section format markdown -> xml"]


def test_change_data_format_offers_only_formats_with_a_cue(
    mutate: Callable[..., list[Mutation]],
) -> None:
    children = mutate(ChangeDataFormat(), program(), n=10)
    assert sorted(c.description for c in children) == [
        "data format plain -> markdown",
        "data format plain -> qa",
        "data format plain -> sentence",
    ]
    assert not ChangeDataFormat(choices=["json", "xml"]).applicable(program())


def test_inputs_per_call_is_not_changed_in_completion_mode() -> None:
    assert not ChangeInputsPerCall().applicable(program())
    assert ChangeInputsPerCall().applicable(program(mode="chat"))


def test_a_broken_parent_still_gets_children(mutate: Callable[..., list[Mutation]]) -> None:
    children = mutate(ChangeSectionFormat(), program("json"), n=10)
    assert len(children) == 3  # markdown and plain fix it; xml is no worse


def test_no_operator_of_the_search_groups_makes_a_completion_program_lose_its_cue(
    mutate: Callable[..., list[Mutation]],
) -> None:
    ops = [*operators_of("structure,examples,format"), ReorderSections(fixed_input=False)]
    for seed in range(3):
        for op in ops:
            for child in mutate(op, program(), seed=seed, n=20):
                assert answer_slot_problem(child.program) is None, child.description
