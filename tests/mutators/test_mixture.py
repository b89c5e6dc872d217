"""Mixture: weighted operator choice, retries, learning, and checkpointed state."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable

import pytest

from mutators.base import Mutation, MutationContext, Mutator
from mutators.format import ChangeInputsPerCall, ChangeSectionFormat
from mutators.mixture import Mixture
from mutators.structure import DropSection
from sammo_core import (
    ConfigError,
    GenerateText,
    InputData,
    MetaPrompt,
    Output,
    Section,
    dumps,
)


def program(parser: str = "auto") -> Output:
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", ["Answer yes or no."]),
                    Section("Rules", ["Be brief."]),
                    Section("Input", [InputData()]),
                ]
            )
        ),
        parser=parser,
    )


class Barren(Mutator):
    """Claims to apply but never produces a child."""

    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        return []


class DropSectionAgain(DropSection):
    """Makes exactly the children DropSection makes, under another name."""


def draws(mix: Mixture, count: int = 200, seed: int = 0) -> Counter[str]:
    rng = random.Random(seed)
    p = program()
    return Counter(asyncio.run(mix.mutate(p, rng, n=1))[0].operator for _ in range(count))


def test_children_are_distinct_runnable_and_leave_the_parent_alone(
    run: Callable[..., tuple[list[object], list[str]]],
    fresh_children: Callable[..., list[Mutation]],
) -> None:
    mix = Mixture([DropSection(), ChangeSectionFormat(), ChangeInputsPerCall()])
    children = fresh_children(mix, program(), n=6)
    assert len(children) == 6
    for child in children:
        _, prompts = run(child.program, inputs=("a",))
        assert "Input: a" in prompts[0] or '"a"' in prompts[0]


def test_returns_every_child_when_n_exceeds_what_exists(
    mutate: Callable[..., list[Mutation]],
) -> None:
    mix = Mixture([DropSection(), ChangeSectionFormat()])
    children = mutate(mix, program(), n=50)
    assert sorted(c.description for c in children) == [
        "drop section 'Rules'",
        "drop section 'Task'",
        "section format markdown -> json",
        "section format markdown -> plain",
        "section format markdown -> xml",
    ]
    assert Counter(c.operator for c in children) == {"ChangeSectionFormat": 3, "DropSection": 2}


def test_retries_other_operators_and_never_repeats_a_child(
    mutate: Callable[..., list[Mutation]],
) -> None:
    mix = Mixture([(Barren(), 100.0), DropSection(), DropSectionAgain()])
    children = mutate(mix, program(), n=10)
    assert sorted(c.description for c in children) == [
        "drop section 'Rules'",
        "drop section 'Task'",
    ]


def test_skips_operators_that_do_not_apply(mutate: Callable[..., list[Mutation]]) -> None:
    mix = Mixture([(ChangeInputsPerCall(), 1000.0), DropSection()])
    children = mutate(mix, program(parser="raw"), n=5)
    assert {c.operator for c in children} == {"DropSection"}
    assert not Mixture([ChangeInputsPerCall()]).applicable(program(parser="raw"))
    assert mutate(Mixture([ChangeInputsPerCall()]), program(parser="raw"), n=3) == []


def test_same_seed_same_children(mutate: Callable[..., list[Mutation]]) -> None:
    def children() -> list[tuple[str, str]]:
        mix = Mixture([DropSection(), ChangeSectionFormat(), ChangeInputsPerCall()])
        return [(c.description, dumps(c.program)) for c in mutate(mix, program(), seed=11, n=4)]

    first = children()
    assert len(first) == 4 and first == children()


def test_base_weights_steer_the_draw() -> None:
    counts = draws(Mixture([(DropSection(), 1.0), (ChangeSectionFormat(), 9.0)]), 100)
    assert counts["ChangeSectionFormat"] > 75


def test_learns_to_prefer_the_operator_that_wins() -> None:
    mix = Mixture([DropSection(), ChangeSectionFormat()])
    before = draws(mix)
    for _ in range(10):
        mix.record("ChangeSectionFormat", improved=True)
        mix.record("DropSection", improved=False)
    after = draws(mix)
    assert after["ChangeSectionFormat"] > before["ChangeSectionFormat"] + 50
    assert after["ChangeSectionFormat"] > 150
    assert mix.stats() == {
        "DropSection": {"tries": 10, "wins": 0, "weight": 1 / 12},
        "ChangeSectionFormat": {"tries": 10, "wins": 10, "weight": 11 / 12},
    }


def test_weights_follow_the_beta_formula() -> None:
    mix = Mixture([(DropSection(), 3.0)], prior=2.0)
    assert mix.weight("DropSection") == pytest.approx(1.5)  # no data: base / 2
    for improved in (True, False, False):
        mix.record("DropSection", improved)
    assert mix.weight("DropSection") == pytest.approx(3.0 * (1 + 2) / (3 + 4))


def test_without_learning_weights_stay_at_their_base() -> None:
    mix = Mixture([(DropSection(), 2.0), ChangeSectionFormat()], learn=False)
    before = draws(mix, 50)
    for _ in range(10):
        mix.record("ChangeSectionFormat", improved=True)
    assert draws(mix, 50) == before
    assert mix.stats()["ChangeSectionFormat"] == {"tries": 10, "wins": 10, "weight": 1.0}


def test_state_round_trips_through_json_and_resumes_exactly() -> None:
    mix = Mixture([DropSection(), ChangeSectionFormat()])
    for improved in (True, True, False):
        mix.record("DropSection", improved)
    mix.record("ChangeSectionFormat", improved=False)
    saved = json.loads(json.dumps(mix.state_dict()))
    assert saved == {
        "version": 1,
        "counts": {
            "DropSection": {"tries": 3, "wins": 2},
            "ChangeSectionFormat": {"tries": 1, "wins": 0},
        },
    }
    resumed = Mixture([DropSection(), ChangeSectionFormat()])
    resumed.load_state_dict(saved)
    assert resumed.stats() == mix.stats()
    assert draws(resumed, 50, seed=4) == draws(mix, 50, seed=4)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"version": 2, "counts": {}}, "not a Mixture state of version 1"),
        ({"version": 1, "counts": {"DropSection": {"tries": 1, "wins": 0}}}, "this mixture has"),
        (
            {
                "version": 1,
                "counts": {
                    "DropSection": {"tries": 1, "wins": 2},
                    "ChangeSectionFormat": {"tries": 0, "wins": 0},
                },
            },
            "0 <= wins <= tries",
        ),
        (
            {
                "version": 1,
                "counts": {
                    "DropSection": {"tries": "1", "wins": 0},
                    "ChangeSectionFormat": {"tries": 0, "wins": 0},
                },
            },
            "needs int tries and wins",
        ),
    ],
)
def test_bad_state_is_rejected_and_leaves_counts_alone(
    state: dict[str, object], message: str
) -> None:
    mix = Mixture([DropSection(), ChangeSectionFormat()])
    mix.record("DropSection", improved=True)
    with pytest.raises(ConfigError, match=message):
        mix.load_state_dict(state)
    assert mix.stats()["DropSection"]["tries"] == 1


def test_record_names_the_known_operators() -> None:
    mix = Mixture([DropSection()])
    with pytest.raises(ConfigError, match="unknown operator 'Nope'; this mixture has: DropSection"):
        mix.record("Nope", improved=True)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Mixture([]), "at least one operator"),
        (lambda: Mixture([DropSection(), DropSection("#a")]), "'DropSection' appears twice"),
        (
            lambda: Mixture([(DropSection(), 0.0)]),
            "weight of DropSection must be a finite number > 0; got 0.0",
        ),
        (lambda: Mixture([(DropSection(), float("nan"))]), "got nan"),
        (lambda: Mixture([DropSection()], prior=0), "prior must be a finite number > 0; got 0"),
        (lambda: Mixture([DropSection()], learn="yes"), "learn must be True or False"),  # type: ignore[arg-type]
        (lambda: Mixture(["DropSection"]), "must be Mutator instances"),  # type: ignore[list-item]
    ],
)
def test_options_are_validated(make: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()  # type: ignore[operator]


def test_repr_lists_operators_and_weights() -> None:
    mix = Mixture([DropSection(), (ChangeSectionFormat(choices=["xml"]), 2.0)], prior=0.5)
    assert repr(mix) == (
        "Mixture([(DropSection(selector='Section'), 1.0), "
        "(ChangeSectionFormat(selector='MetaPrompt', choices=('xml',)), 2.0)], "
        "learn=True, prior=0.5)"
    )


def test_a_mixture_inside_a_mixture_learns_and_resumes() -> None:
    inner = Mixture([DropSection(), ChangeSectionFormat()])
    outer = Mixture([inner, ChangeInputsPerCall()])
    assert outer.operator_names() == {"DropSection", "ChangeSectionFormat", "ChangeInputsPerCall"}
    for _ in range(3):
        outer.record("DropSection", improved=True)
    outer.record("ChangeInputsPerCall", improved=False)
    # The outer mixture credits the inner one; the inner one learns which of its own paid.
    assert outer.stats()["Mixture"]["wins"] == 3
    assert inner.stats()["DropSection"]["wins"] == 3
    assert inner.stats()["ChangeSectionFormat"]["tries"] == 0

    fresh_inner = Mixture([DropSection(), ChangeSectionFormat()])
    fresh = Mixture([fresh_inner, ChangeInputsPerCall()])
    fresh.load_state_dict(outer.state_dict())
    assert fresh.stats() == outer.stats() and fresh_inner.stats() == inner.stats()


def test_an_operator_that_learns_nothing_has_no_state() -> None:
    assert DropSection().state_dict() is None
    DropSection().record("DropSection", improved=True)  # ignored
    with pytest.raises(ConfigError, match="DropSection learns nothing"):
        DropSection().load_state_dict({"version": 1})
