"""Fixtures shared by the mutator tests: run an operator, run a program, check the children.

The test folders are not packages, so the shared helpers are fixtures rather than imports.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from typing import Protocol

import pytest

from mutators.base import Mutation, Mutator
from sammo_core import DataTable, Output, ScriptedRunner, compile, dumps


class Mutate(Protocol):
    def __call__(self, op: Mutator, p: Output, seed: int = 0, n: int = 10) -> list[Mutation]: ...


class Run(Protocol):
    def __call__(
        self, p: Output, reply: str = "yes", inputs: Sequence[str] = ("is water wet",)
    ) -> tuple[list[object], list[str]]: ...


class PromptOf(Protocol):
    def __call__(self, p: Output, inputs: Sequence[str] = ("is water wet",)) -> str: ...


class FreshChildren(Protocol):
    def __call__(self, op: Mutator, p: Output, n: int = 10) -> list[Mutation]: ...


class Reproducible(Protocol):
    def __call__(
        self, op: Mutator, make: Callable[[], Output], seed: int, n: int
    ) -> list[tuple[str, str]]: ...


def _mutate(op: Mutator, p: Output, seed: int = 0, n: int = 10) -> list[Mutation]:
    return asyncio.run(op.mutate(p, random.Random(seed), n=n))


def _run(
    p: Output, reply: str = "yes", inputs: Sequence[str] = ("is water wet",)
) -> tuple[list[object], list[str]]:
    runner = ScriptedRunner(default=reply)
    results = compile(p).run_sync(DataTable(list(inputs)), runner)
    return list(results.predictions), runner.prompts


def _prompt_of(p: Output, inputs: Sequence[str] = ("is water wet",)) -> str:
    predictions, prompts = _run(p, "yes", inputs)
    assert predictions == ["yes"] * len(inputs)
    return prompts[0]


def _fresh_children(op: Mutator, p: Output, n: int = 10) -> list[Mutation]:
    before = dumps(p)
    children = _mutate(op, p, n=n)
    assert dumps(p) == before
    hashes = {compile(c.program).hash for c in children}
    assert len(hashes) == len(children)
    assert compile(p).hash not in hashes
    return children


def _reproducible(
    op: Mutator, make: Callable[[], Output], seed: int, n: int
) -> list[tuple[str, str]]:
    first = [(c.description, dumps(c.program)) for c in _mutate(op, make(), seed=seed, n=n)]
    again = [(c.description, dumps(c.program)) for c in _mutate(op, make(), seed=seed, n=n)]
    # Two empty lists are equal whatever the operator does: the check needs children.
    assert first, f"{op.name} made no child of the test program; give it one it applies to"
    assert first == again
    return first


@pytest.fixture
def mutate() -> Mutate:
    """``op``'s children of ``p`` for ``random.Random(seed)``, no mutation context."""
    return _mutate


@pytest.fixture
def run() -> Run:
    """``(predictions, prompts)`` of ``p`` run on ``inputs`` by a runner that says ``reply``."""
    return _run


@pytest.fixture
def prompt_of() -> PromptOf:
    """The first prompt ``p`` sends for ``inputs``, after checking every answer comes back."""
    return _prompt_of


@pytest.fixture
def fresh_children() -> FreshChildren:
    """``op``'s children of ``p`` after checking what every operator promises.

    The parent is left as it was, and the children are distinct and differ from it.
    """
    return _fresh_children


@pytest.fixture
def reproducible() -> Reproducible:
    """``(description, program)`` of ``op``'s children of ``make()``, the same on a rerun."""
    return _reproducible
