"""Structural operators: DropSection, DropParagraph, ReorderSections, RepeatSection."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mutators.base import Mutation, Mutator
from mutators.structure import DropParagraph, DropSection, ReorderSections, RepeatSection
from sammo_core import (
    ConfigError,
    DataTable,
    Examples,
    GenerateText,
    InputData,
    MetaPrompt,
    Output,
    Paragraph,
    Section,
    Template,
    find_one,
)

SHOTS = DataTable(["the sky is blue", "fish can fly"], ["yes", "no"])


def program() -> Output:
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", ["Answer yes or no."], id="task"),
                    Section("Rules", ["Be brief.", Paragraph("Be polite.")]),
                    Section("Examples", [Examples(SHOTS, n=2)]),
                    Section("Input", [InputData()]),
                ]
            )
        )
    )


def titles(p: Output) -> list[str]:
    return [s.title for s in p.child.prompt.children]


ALL = [DropSection(), DropParagraph(), ReorderSections(), RepeatSection()]


@pytest.mark.parametrize("op", ALL, ids=lambda op: op.name)
def test_children_are_distinct_runnable_and_leave_the_parent_alone(
    op: Mutator, prompt_of: Callable[..., str], fresh_children: Callable[..., list[Mutation]]
) -> None:
    children = fresh_children(op, program())
    assert len(children) >= 1
    for child in children:
        assert child.operator == op.name
        assert "\n" not in child.description
        assert "Input: is water wet" in prompt_of(child.program)


@pytest.mark.parametrize("op", ALL, ids=lambda op: op.name)
def test_same_seed_same_children(
    op: Mutator, reproducible: Callable[..., list[tuple[str, str]]]
) -> None:
    reproducible(op, program, seed=3, n=2)


@pytest.mark.parametrize("op", ALL, ids=lambda op: op.name)
def test_n_caps_the_children(op: Mutator, mutate: Callable[..., list[Mutation]]) -> None:
    assert len(mutate(op, program(), n=1)) == 1
    assert mutate(op, program(), n=0) == []
    with pytest.raises(ConfigError, match="-1"):
        mutate(op, program(), n=-1)


def test_drop_section_drops_every_section_but_the_input(
    mutate: Callable[..., list[Mutation]], prompt_of: Callable[..., str]
) -> None:
    children = mutate(DropSection(), program())
    assert sorted(c.description for c in children) == [
        "drop section 'Examples'",
        "drop section 'Rules'",
        "drop section 'Task'",
    ]
    by_description = {c.description: c.program for c in children}
    dropped = by_description["drop section 'Rules'"]
    assert titles(dropped) == ["Task", "Examples", "Input"]
    text = prompt_of(dropped)
    assert "# Rules" not in text and "Be brief." not in text and "Be polite." not in text
    assert text.startswith("# Task\n\nAnswer yes or no.\n\n# Examples\n\n")


def test_drop_section_keeps_sections_holding_input_even_in_templates(
    mutate: Callable[..., list[Mutation]],
) -> None:
    p = Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", ["Say yes."]),
                    Section("Question", [Template("Q: {{ input }}")]),
                    Section("Outer", [Section("Inner", [InputData()])]),
                ]
            )
        )
    )
    assert [c.description for c in mutate(DropSection(), p)] == ["drop section 'Task'"]


def test_drop_section_never_empties_a_list(mutate: Callable[..., list[Mutation]]) -> None:
    p = Output(GenerateText(MetaPrompt([Section("Only", ["Say yes."])])))
    assert not DropSection().applicable(p)
    assert mutate(DropSection(), p) == []


def test_drop_section_honours_the_selector(mutate: Callable[..., list[Mutation]]) -> None:
    children = mutate(DropSection("#task"), program())
    assert [c.description for c in children] == ["drop section 'Task'"]


def test_drop_paragraph_removes_one_text_and_never_empties_a_section(
    mutate: Callable[..., list[Mutation]], prompt_of: Callable[..., str]
) -> None:
    children = mutate(DropParagraph(), program())
    assert sorted(c.description for c in children) == [
        "drop paragraph 'Be brief.' from 'Rules'",
        "drop paragraph 'Be polite.' from 'Rules'",
    ]
    by_description = {c.description: c.program for c in children}
    text = prompt_of(by_description["drop paragraph 'Be brief.' from 'Rules'"])
    assert "# Rules\n\nBe polite.\n\n# Examples" in text
    assert "Be brief." not in text
    # 'Task' holds one paragraph only: dropping it would leave an empty section.
    assert "Answer yes or no." in text


def test_drop_paragraph_shortens_long_texts_in_descriptions(
    mutate: Callable[..., list[Mutation]],
) -> None:
    long = "Read the question carefully and think about every word before answering."
    p = Output(GenerateText(MetaPrompt([Section("Task", [long, "Say yes."]), InputData()])))
    descriptions = sorted(c.description for c in mutate(DropParagraph(), p))
    assert descriptions == [
        "drop paragraph 'Read the question carefully and think...' from 'Task'",
        "drop paragraph 'Say yes.' from 'Task'",
    ]


def test_reorder_sections_swaps_and_moves_but_keeps_the_input_last(
    mutate: Callable[..., list[Mutation]], prompt_of: Callable[..., str]
) -> None:
    children = mutate(ReorderSections(), program())
    assert sorted(c.description for c in children) == [
        "move section 'Examples' before 'Task'",
        "move section 'Task' after 'Examples'",
        "swap sections 'Rules' and 'Examples'",
        "swap sections 'Task' and 'Examples'",
        "swap sections 'Task' and 'Rules'",
    ]
    by_description = {c.description: c.program for c in children}
    assert titles(by_description["swap sections 'Task' and 'Rules'"]) == [
        "Rules",
        "Task",
        "Examples",
        "Input",
    ]
    assert titles(by_description["move section 'Task' after 'Examples'"]) == [
        "Rules",
        "Examples",
        "Task",
        "Input",
    ]
    assert titles(by_description["move section 'Examples' before 'Task'"]) == [
        "Examples",
        "Task",
        "Rules",
        "Input",
    ]
    text = prompt_of(by_description["swap sections 'Task' and 'Rules'"])
    assert text.index("# Rules") < text.index("# Task") < text.index("# Input")


def test_reorder_sections_may_move_the_input_when_asked(
    mutate: Callable[..., list[Mutation]], prompt_of: Callable[..., str]
) -> None:
    p = Output(
        GenerateText(MetaPrompt([Section("Task", ["Say yes."]), Section("In", [InputData()])]))
    )
    assert not ReorderSections().applicable(p)
    children = mutate(ReorderSections(fixed_input=False), p)
    assert [c.description for c in children] == ["swap sections 'Task' and 'In'"]
    assert (
        prompt_of(children[0].program)
        == "# In\n\nInput: is water wet\n\nOutput:\n\n# Task\n\nSay yes."
    )


def test_reorder_sections_leaves_non_section_children_in_place(
    mutate: Callable[..., list[Mutation]],
) -> None:
    p = Output(
        GenerateText(
            MetaPrompt([Section("A", ["a."]), "Between.", Section("B", ["b."]), InputData()])
        )
    )
    [child] = mutate(ReorderSections(), p)
    items = child.program.child.prompt.children
    assert [getattr(i, "title", None) or i.text for i in items[:3]] == ["B", "Between.", "A"]


def test_reorder_sections_rejects_a_non_bool_option() -> None:
    with pytest.raises(ConfigError, match="fixed_input must be True or False; got 'yes'"):
        ReorderSections(fixed_input="yes")  # type: ignore[arg-type]


def test_repeat_section_copies_an_instruction_before_the_input(
    mutate: Callable[..., list[Mutation]], prompt_of: Callable[..., str]
) -> None:
    children = mutate(RepeatSection(), program())
    # Never the input section, never the examples section.
    assert sorted(c.description for c in children) == [
        "repeat section 'Rules' before 'Input'",
        "repeat section 'Task' before 'Input'",
    ]
    by_description = {c.description: c.program for c in children}
    child = by_description["repeat section 'Task' before 'Input'"]
    assert titles(child) == ["Task", "Rules", "Examples", "Task", "Input"]
    text = prompt_of(child)
    assert text.count("# Task\n\nAnswer yes or no.") == 2
    assert text.endswith("# Task\n\nAnswer yes or no.\n\n# Input\n\nInput: is water wet\n\nOutput:")
    # The copy carries no id, so id selectors keep matching one node.
    assert find_one(child, "#task").path == "child.prompt.children[0]"


def test_repeat_section_is_not_applicable_twice_in_a_row(
    mutate: Callable[..., list[Mutation]],
) -> None:
    p = Output(
        GenerateText(MetaPrompt([Section("Task", ["Say yes."]), Section("In", [InputData()])]))
    )
    assert not RepeatSection().applicable(p)  # already right before the input
    [child] = mutate(RepeatSection(), program(), n=1, seed=1)
    again = {c.description for c in mutate(RepeatSection(), child.program)}
    assert child.description not in again


def test_repeat_section_appends_when_no_section_holds_the_input(
    mutate: Callable[..., list[Mutation]],
) -> None:
    p = Output(
        GenerateText(MetaPrompt([Section("Task", ["Say yes."]), Section("Style", ["Be brief."])]))
    )
    [child] = mutate(RepeatSection(), p)
    assert child.description == "repeat section 'Task' at the end"
    assert titles(child.program) == ["Task", "Style", "Task"]
