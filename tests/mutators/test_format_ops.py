"""Format operators: ChangeSectionFormat, ChangeDataFormat, ChangeInputsPerCall."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mutators.base import Mutation, Mutator
from mutators.format import ChangeDataFormat, ChangeInputsPerCall, ChangeSectionFormat
from renderers import DATA_FORMATS, SECTION_FORMATS
from sammo_core import (
    ConfigError,
    DataTable,
    Examples,
    GenerateText,
    InputData,
    MetaPrompt,
    Output,
    Section,
)

SHOTS = DataTable(["the sky is blue"], ["yes"])


def program(
    parser: str = "auto", inputs_per_call: int = 1, data_format: str | None = None
) -> Output:
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", ["Answer yes or no."]),
                    Section("Examples", [Examples(SHOTS, data_format=data_format)]),
                    Section("Input", [InputData(data_format=data_format)]),
                ]
            )
        ),
        parser=parser,
        inputs_per_call=inputs_per_call,
    )


OPS = [ChangeSectionFormat(), ChangeDataFormat(), ChangeInputsPerCall()]


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_children_are_distinct_runnable_and_leave_the_parent_alone(
    op: Mutator,
    run: Callable[..., tuple[list[object], list[str]]],
    fresh_children: Callable[..., list[Mutation]],
) -> None:
    children = fresh_children(op, program())
    assert len(children) >= 3
    for child in children:
        predictions, _ = run(child.program, inputs=("a", "b"))
        assert len(predictions) == 2


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_same_seed_same_children(
    op: Mutator, reproducible: Callable[..., list[tuple[str, str]]]
) -> None:
    reproducible(op, program, seed=5, n=2)


def test_change_section_format_offers_every_other_format(
    mutate: Callable[..., list[Mutation]], run: Callable[..., tuple[list[object], list[str]]]
) -> None:
    children = mutate(ChangeSectionFormat(), program())
    assert sorted(c.description for c in children) == [
        f"section format markdown -> {f}" for f in sorted(SECTION_FORMATS) if f != "markdown"
    ]
    by_description = {c.description: c.program for c in children}
    _, [prompt] = run(by_description["section format markdown -> xml"])
    assert prompt.startswith('<section title="Task">\nAnswer yes or no.\n</section>')
    _, [before] = run(program())
    assert before.startswith("# Task\n\nAnswer yes or no.")


def test_change_section_format_restricted_choices(mutate: Callable[..., list[Mutation]]) -> None:
    op = ChangeSectionFormat(choices=["xml", "markdown"])
    assert [c.description for c in mutate(op, program())] == ["section format markdown -> xml"]
    assert repr(op) == "ChangeSectionFormat(selector='MetaPrompt', choices=('xml', 'markdown'))"
    assert not ChangeSectionFormat(choices=["markdown"]).applicable(program())


def test_change_data_format_resets_explicit_formats_so_the_change_shows(
    mutate: Callable[..., list[Mutation]], run: Callable[..., tuple[list[object], list[str]]]
) -> None:
    p = program(data_format="xml")
    children = {c.description: c.program for c in mutate(ChangeDataFormat(), p)}
    assert sorted(children) == [
        f"data format plain -> {f}" for f in sorted(DATA_FORMATS) if f != "plain"
    ]
    child = children["data format plain -> json"]
    assert child.child.prompt.data_format == "json"
    assert child.child.prompt.children[1].children[0].data_format is None
    assert child.child.prompt.children[2].children[0].data_format is None
    predictions, [prompt] = run(child, '{"output": "yes"}', ("is ice cold",))
    assert predictions == ["yes"]  # the auto parser follows the new format
    assert prompt.endswith(
        '# Examples\n\n{"id": 1, "input": "the sky is blue", "output": "yes"}\n\n'
        '# Input\n\n{"input": "is ice cold"}\n\nAnswer with one JSON object: {"output": <answer>}.'
    )


def test_change_data_format_leaves_nested_prompts_alone(
    mutate: Callable[..., list[Mutation]],
) -> None:
    inner = MetaPrompt([InputData(data_format="xml")], data_format="markdown")
    p = Output(GenerateText(MetaPrompt([Section("Context", [GenerateText(inner)]), InputData()])))
    [child] = mutate(ChangeDataFormat("MetaPrompt:nth(0)", choices=["json"]), p)
    assert child.description == "data format plain -> json"
    nested = child.program.child.prompt.children[0].children[0].prompt
    assert (nested.data_format, nested.children[0].data_format) == ("markdown", "xml")


def test_change_data_format_needs_the_auto_parser_by_default(
    mutate: Callable[..., list[Mutation]],
) -> None:
    p = program(parser="first_line")
    assert not ChangeDataFormat().applicable(p)
    assert mutate(ChangeDataFormat(), p) == []
    assert len(mutate(ChangeDataFormat(auto_parser_only=False), p)) == len(DATA_FORMATS) - 1


def test_change_inputs_per_call_packs_inputs_into_one_call(
    mutate: Callable[..., list[Mutation]], run: Callable[..., tuple[list[object], list[str]]]
) -> None:
    children = {c.description: c.program for c in mutate(ChangeInputsPerCall(), program())}
    assert sorted(children) == [
        "inputs per call 1 -> 16",
        "inputs per call 1 -> 2",
        "inputs per call 1 -> 4",
        "inputs per call 1 -> 8",
    ]
    reply = "Output [1]: yes\nOutput [2]: no"
    predictions, prompts = run(children["inputs per call 1 -> 2"], reply, ("a", "b"))
    assert predictions == ["yes", "no"]
    assert len(prompts) == 1
    assert prompts[0].endswith(
        "# Input\n\nInput [1]: a\n\nInput [2]: b\n\n"
        'Answer each of the 2 inputs on its own line as "Output [<id>]: <answer>".'
    )


def test_change_inputs_per_call_only_with_the_auto_parser(
    mutate: Callable[..., list[Mutation]],
) -> None:
    assert not ChangeInputsPerCall().applicable(program(parser="raw"))
    assert mutate(ChangeInputsPerCall(), program(parser="json")) == []
    op = ChangeInputsPerCall(choices=(1, 4))
    assert [c.description for c in mutate(op, program(inputs_per_call=4))] == [
        "inputs per call 4 -> 1"
    ]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: ChangeSectionFormat(choices=["yaml"]),
            "unknown section format 'yaml'; use one of",
        ),
        (lambda: ChangeSectionFormat(choices=[]), "must not be empty"),
        (lambda: ChangeDataFormat(choices=["csv"]), "unknown data format 'csv'; use one of"),
        (lambda: ChangeDataFormat(auto_parser_only=1), "auto_parser_only must be True or False"),  # type: ignore[arg-type]
        (lambda: ChangeInputsPerCall(choices=(0,)), r"inputs per call must be ints >= 1; got 0"),
        (lambda: ChangeInputsPerCall(choices=()), "must not be empty"),
    ],
)
def test_options_are_validated(make: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()  # type: ignore[operator]
