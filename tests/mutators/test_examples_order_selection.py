"""Example operators for small models: balanced redraws, order, selection (knn), count with knn,
and the prefixes of the data format."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import pytest

from mutators.base import Mutation, Mutator
from mutators.examples import (
    ChangeExampleCount,
    ChangeExampleSelection,
    ReorderExamples,
    SwapExamples,
)
from mutators.format import ChangePrefixes
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
    ["the sky is blue", "fish can fly", "water is wet", "fire is cold", "snow is white",
     "ice is cold", "stones can swim", "birds can fly"],
    ["yes", "no", "yes", "no", "yes", "yes", "no", "yes"],
)  # fmt: skip


def program(examples: Examples | None = None, *, mode: str = "chat", fmt: str = "plain") -> Output:
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", ["Answer yes or no."]),
                    examples if examples is not None else Examples(SHOTS, n=4),
                    InputData(),
                ],
                data_format=fmt,
            ),
            mode=mode,
            stop=["\n"] if mode == "completion" else [],
        )
    )


def examples_of(p: Output) -> Examples:
    node = p.child.prompt.children[1]
    assert isinstance(node, Examples)
    return node


@pytest.fixture
def shown(prompt_of: Callable[..., str]) -> Callable[..., list[str]]:
    def shown(p: Output, query: str = "is ice cold") -> list[str]:
        """The example inputs in the rendered prompt, in order."""
        return re.findall(r"^(?:Input|Q|Sentence): (.+)$", prompt_of(p, (query,)), re.M)[:-1]

    return shown


OPERATORS = [
    (ReorderExamples(), program),
    (ChangeExampleSelection(), program),
    (SwapExamples(), lambda: program(Examples(SHOTS, n=4, selection="balanced"))),
    (ChangeExampleCount(), lambda: program(Examples(SHOTS, n=2, selection="knn"))),
    (ChangePrefixes(), lambda: program(mode="completion")),
]


@pytest.mark.parametrize(("op", "make"), OPERATORS, ids=lambda x: getattr(x, "name", ""))
def test_children_are_new_runnable_and_reproducible(
    op: Mutator,
    make: Callable[[], Output],
    fresh_children: Callable[..., list[Mutation]],
    reproducible: Callable[..., list[tuple[str, str]]],
    shown: Callable[..., list[str]],
) -> None:
    children = fresh_children(op, make())
    assert len(children) >= 2
    for child in children:
        shown(child.program)
    assert reproducible(op, make, seed=3, n=4)


def test_swap_examples_keeps_a_balanced_draw_balanced(
    mutate: Callable[..., list[Mutation]], shown: Callable[..., list[str]]
) -> None:
    p = program(Examples(SHOTS, n=4, selection="balanced", seed=0))
    children = mutate(SwapExamples(), p, n=5)
    assert len(children) == 5
    labels = dict(zip(SHOTS.inputs, SHOTS.outputs, strict=True))
    for child in children:
        node = examples_of(child.program)
        assert (node.selection, node.n) == ("balanced", 4)
        assert Counter(labels[row] for row in shown(child.program)) == {"yes": 2, "no": 2}


def test_reorder_shows_a_permutation_of_the_same_rows(
    mutate: Callable[..., list[Mutation]], shown: Callable[..., list[str]]
) -> None:
    p = program()
    parent = shown(p)
    children = mutate(ReorderExamples(), p, n=10)
    orders = [shown(c.program) for c in children]
    assert "reverse the examples" in [c.description for c in children]
    assert all(sorted(order) == sorted(parent) and order != parent for order in orders)
    assert len({tuple(o) for o in orders}) == len(orders)
    for child in children:
        node = examples_of(child.program)
        assert node.order in ("reversed", "shuffled")


def test_reorder_back_to_selection_order(mutate: Callable[..., list[Mutation]]) -> None:
    p = program(Examples(SHOTS, n=3, order="reversed"))
    descriptions = [c.description for c in mutate(ReorderExamples(shuffles=0), p, n=5)]
    assert descriptions == ["show the examples in selection order"]


def test_reorder_knn_reversed_puts_the_most_similar_row_last(
    mutate: Callable[..., list[Mutation]], shown: Callable[..., list[str]]
) -> None:
    p = program(Examples(SHOTS, n=3, selection="knn"))
    by = {c.description: c.program for c in mutate(ReorderExamples(), p, n=10)}
    assert shown(p)[0] == "ice is cold"
    assert shown(by["reverse the examples"])[-1] == "ice is cold"


def test_reorder_not_applicable_below_two_rows() -> None:
    assert not ReorderExamples().applicable(program(Examples(SHOTS, n=1)))
    assert not ReorderExamples().applicable(program(Examples(SHOTS[:1])))
    assert ReorderExamples().applicable(program(Examples(SHOTS, n=2)))
    with pytest.raises(ConfigError, match=r"shuffles \(shuffled orders per node\) must be"):
        ReorderExamples(shuffles=-1)


def test_change_selection_offers_every_other_selection(
    mutate: Callable[..., list[Mutation]], shown: Callable[..., list[str]]
) -> None:
    children = {c.description: c.program for c in mutate(ChangeExampleSelection(), program())}
    assert sorted(children) == [
        "example selection first -> balanced",
        "example selection first -> knn",
        "example selection first -> random",
    ]
    knn = children["example selection first -> knn"]
    assert shown(knn, "is ice cold")[0] == "ice is cold"
    assert shown(knn, "can stones swim")[0] == "stones can swim"
    labels = dict(zip(SHOTS.inputs, SHOTS.outputs, strict=True))
    balanced = shown(children["example selection first -> balanced"])
    assert Counter(labels[row] for row in balanced) == {"yes": 2, "no": 2}


def test_change_selection_skips_a_selection_that_shows_the_same_rows(
    mutate: Callable[..., list[Mutation]],
) -> None:
    # Two rows with distinct labels: a balanced draw shows them in table order, like first.
    p = program(Examples(DataTable(["a", "b"], ["x", "y"]), n=2))
    descriptions = {c.description for c in mutate(ChangeExampleSelection(), p)}
    assert "example selection first -> balanced" not in descriptions
    assert "example selection first -> knn" in descriptions


def test_change_selection_not_applicable_without_rows_to_choose() -> None:
    assert not ChangeExampleSelection().applicable(program(Examples(SHOTS, n=0)))
    assert not ChangeExampleSelection().applicable(program(Examples(SHOTS[:1])))
    assert not ChangeExampleSelection(choices=["first"]).applicable(program())
    with pytest.raises(ConfigError, match="unknown example selection 'best'"):
        ChangeExampleSelection(choices=["best"])
    with pytest.raises(ConfigError, match=r"choices \(example selections\) must not be empty"):
        ChangeExampleSelection(choices=[])


def test_change_example_count_searches_k_of_knn(
    mutate: Callable[..., list[Mutation]], shown: Callable[..., list[str]]
) -> None:
    p = program(Examples(SHOTS, n=2, selection="knn"))
    children = {c.description: c.program for c in mutate(ChangeExampleCount(), p)}
    assert sorted(children) == [
        "show 0 examples (was 2)",
        "show 1 examples (was 2)",
        "show 4 examples (was 2)",
        "show 8 examples (was 2)",
    ]
    assert ChangeExampleCount().choices == (0, 1, 2, 4, 8)
    eight = children["show 8 examples (was 2)"]
    assert examples_of(eight).selection == "knn"
    assert shown(eight)[0] == "ice is cold" and len(shown(eight)) == 8


def test_change_prefixes_ends_a_completion_prompt_with_the_answer_prefix(
    mutate: Callable[..., list[Mutation]], prompt_of: Callable[..., str]
) -> None:
    p = program(mode="completion")
    children = {c.description: c.program for c in mutate(ChangePrefixes(), p)}
    assert sorted(children) == ["prefixes plain -> qa", "prefixes plain -> sentence"]
    qa = prompt_of(children["prefixes plain -> qa"])
    assert "Q: the sky is blue\nA: yes" in qa and qa.endswith("Q: is water wet\n\nA:")
    assert prompt_of(children["prefixes plain -> sentence"]).endswith("Label:")
    assert prompt_of(p).endswith("Output:")


def test_change_prefixes_reads_answers_back(
    run: Callable[..., tuple[list[object], list[str]]],
) -> None:
    for fmt, reply in [
        ("qa", "A: yes"),
        ("sentence", " yes"),
        ("sentence", "Label: yes\nSentence: x"),
    ]:
        predictions, _ = run(program(fmt=fmt), reply)
        assert predictions == ["yes"]


def test_change_prefixes_leaves_other_layouts_alone() -> None:
    assert not ChangePrefixes().applicable(program(fmt="json"))
    assert not ChangePrefixes().applicable(program(fmt="markdown"))
    assert ChangePrefixes().applicable(program(fmt="qa"))
