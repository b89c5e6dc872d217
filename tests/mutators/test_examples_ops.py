"""Example operators: SwapExamples (resampling) and ChangeExampleCount."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from mutators.base import Mutation, Mutator
from mutators.examples import ChangeExampleCount, SwapExamples
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

SHOTS = DataTable(
    ["the sky is blue", "fish can fly", "water is wet", "fire is cold", "snow is white"],
    ["yes", "no", "yes", "no", "yes"],
)


def program(examples: Examples | None = None) -> Output:
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", ["Answer yes or no."]),
                    Section("Examples", [examples or Examples(SHOTS, n=2)]),
                    Section("Input", [InputData()]),
                ]
            )
        )
    )


@pytest.fixture
def shown(prompt_of: Callable[..., str]) -> Callable[[Output], list[str]]:
    def shown(p: Output) -> list[str]:
        """The example inputs in the rendered prompt, in order."""
        section = prompt_of(p, ("is ice cold",)).split("# Examples")[1].split("# Input")[0]
        return re.findall(r"Input: (.+)", section)

    return shown


@pytest.mark.parametrize("op", [SwapExamples(), ChangeExampleCount()], ids=lambda op: op.name)
def test_children_are_distinct_runnable_and_leave_the_parent_alone(
    op: Mutator, shown: Callable[[Output], list[str]], fresh_children: Callable[..., list[Mutation]]
) -> None:
    children = fresh_children(op, program())
    assert len(children) >= 3
    for child in children:
        shown(child.program)


@pytest.mark.parametrize("op", [SwapExamples(), ChangeExampleCount()], ids=lambda op: op.name)
def test_same_seed_same_children(
    op: Mutator, reproducible: Callable[..., list[tuple[str, str]]]
) -> None:
    reproducible(op, program, seed=7, n=3)


def test_swap_examples_resamples_with_a_seed_from_rng(
    mutate: Callable[..., list[Mutation]], shown: Callable[[Output], list[str]]
) -> None:
    assert shown(program()) == ["the sky is blue", "fish can fly"]
    [child] = mutate(SwapExamples(), program(), seed=0, n=1)
    assert child.description == "resample examples (seed 6890)"
    examples = child.program.child.prompt.children[1].children[0]
    assert (examples.selection, examples.seed, examples.n) == ("random", 6890, 2)
    assert shown(child.program) == ["water is wet", "snow is white"]


def test_swap_examples_children_show_different_rows(
    mutate: Callable[..., list[Mutation]], shown: Callable[[Output], list[str]]
) -> None:
    children = mutate(SwapExamples(), program(), n=8)
    rows = [tuple(shown(c.program)) for c in children]
    assert len(children) == 8
    assert len(set(rows)) == 8
    assert ("the sky is blue", "fish can fly") not in rows


def test_swap_examples_changes_the_seed_of_a_random_selection(
    mutate: Callable[..., list[Mutation]], shown: Callable[[Output], list[str]]
) -> None:
    p = program(Examples(SHOTS, n=2, selection="random", seed=6890))
    children = mutate(SwapExamples(), p, seed=0, n=3)
    assert all(c.program.child.prompt.children[1].children[0].seed != 6890 for c in children)
    assert ("water is wet", "snow is white") not in {tuple(shown(c.program)) for c in children}


def test_swap_examples_runs_out_when_few_orders_exist(
    mutate: Callable[..., list[Mutation]], shown: Callable[[Output], list[str]]
) -> None:
    # Two rows shown out of two: only the reversed order is new.
    p = program(Examples(SHOTS[:2]))
    children = mutate(SwapExamples(), p, n=5)
    assert [shown(c.program) for c in children] == [["fish can fly", "the sky is blue"]]


def test_swap_examples_skips_knn_and_tiny_tables(mutate: Callable[..., list[Mutation]]) -> None:
    assert not SwapExamples().applicable(program(Examples(SHOTS, n=2, selection="knn")))
    assert not SwapExamples().applicable(program(Examples(SHOTS[:1])))
    assert not SwapExamples().applicable(program(Examples(SHOTS, n=0)))
    assert mutate(SwapExamples(), program(Examples(SHOTS, n=0))) == []


def test_swap_examples_names_the_section_when_several_nodes_qualify(
    mutate: Callable[..., list[Mutation]],
) -> None:
    p = Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Easy", [Examples(SHOTS, n=2)]),
                    Section("Hard", [Examples(SHOTS, n=3)]),
                    InputData(),
                ]
            )
        )
    )
    descriptions = [c.description for c in mutate(SwapExamples(), p, n=4)]
    assert all(
        re.fullmatch(r"resample examples in '(Easy|Hard)' \(seed \d+\)", d) for d in descriptions
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SwapExamples(max_seed=1), "max_seed must be an int >= 2; got 1"),
        (
            lambda: SwapExamples(attempts=0),
            r"attempts \(seed draws per child\) must be an int >= 1",
        ),
    ],
)
def test_swap_examples_validates_options(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


def test_change_example_count_offers_every_other_count_that_fits(
    mutate: Callable[..., list[Mutation]], shown: Callable[[Output], list[str]]
) -> None:
    children = mutate(ChangeExampleCount(), program())
    assert sorted(c.description for c in children) == [
        "show 0 examples (was 2)",
        "show 1 examples (was 2)",
        "show 4 examples (was 2)",  # 8 is more than the table holds
    ]
    by_description = {c.description: c.program for c in children}
    assert shown(by_description["show 4 examples (was 2)"]) == [
        "the sky is blue",
        "fish can fly",
        "water is wet",
        "fire is cold",
    ]
    assert shown(by_description["show 0 examples (was 2)"]) == []


def test_change_example_count_treats_all_rows_as_the_table_size(
    mutate: Callable[..., list[Mutation]],
) -> None:
    p = program(Examples(SHOTS[:3]))  # n=None: all three rows
    descriptions = sorted(c.description for c in mutate(ChangeExampleCount(choices=(1, 3, 8)), p))
    assert descriptions == ["show 1 examples (was 3)"]


def test_change_example_count_not_applicable_without_another_count(
    mutate: Callable[..., list[Mutation]],
) -> None:
    p = program(Examples(SHOTS, n=2))
    assert not ChangeExampleCount(choices=(2,)).applicable(p)
    assert mutate(ChangeExampleCount(choices=(2, 8)), p) == []


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        ((), r"choices \(example counts\) must not be empty"),
        ((1, -2), r"example counts must be ints >= 0; got -2 in \(1, -2\)"),
        ((1, True), r"got True"),
    ],
)
def test_change_example_count_validates_choices(choices: tuple[int, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ChangeExampleCount(choices=choices)
