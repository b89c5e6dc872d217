"""The mutation-operator interface and the copy-then-edit helpers every operator uses.

An operator takes a selector for the nodes it may touch, says whether it is ``applicable`` to
a program, and ``mutate``s it into children. It never changes its argument: every edit goes
through :func:`replace`, :func:`set_list` or :func:`remove`, which deep-copy first. Each child
carries a one-line description of the change and the operator's name.

>>> import asyncio, random
>>> from sammo_core import GenerateText, MetaPrompt, Output, Section
>>> from mutators.structure import DropSection
>>> program = Output(GenerateText(MetaPrompt([Section("A", ["x"]), Section("B", ["y"])])))
>>> children = asyncio.run(DropSection().mutate(program, random.Random(0), n=2))
>>> sorted(c.description for c in children)
["drop section 'A'", "drop section 'B'"]
>>> [s.title for s in program.child.prompt.children]  # untouched
['A', 'B']
"""

from __future__ import annotations

import abc
import dataclasses
import math
import random
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pyglove as pg

from sammo_core.completion import answer_slot_problem
from sammo_core.components import Component, InputData, Output, Paragraph, Section, Template
from sammo_core.data import DataTable
from sammo_core.errors import ConfigError
from sammo_core.graph import content_hash
from sammo_core.runners.base import LLMRequest, Runner
from sammo_core.selectors import Match, find

__all__ = [
    "PROPOSAL_MAX_TOKENS",
    "Edit",
    "Mutation",
    "MutationContext",
    "Mutator",
    "ScoredProgram",
    "ancestor",
    "check_n",
    "choose_children",
    "contains_input",
    "copy_tree",
    "is_list_item",
    "join_path",
    "keeps_answer_slot",
    "node_label",
    "remove",
    "replace",
    "set_list",
    "shorten",
    "split_list_path",
    "text_children",
]


#: The default completion cap of a proposal (a rewritten instruction, a critique, a list).
PROPOSAL_MAX_TOKENS = 1024


@dataclasses.dataclass(frozen=True)
class Mutation:
    """One child program and how it was made."""

    program: Output
    description: str
    operator: str


@dataclasses.dataclass(frozen=True)
class ScoredProgram:
    """An earlier candidate and its validation score (for history-based proposers)."""

    program: Output
    score: float


@dataclasses.dataclass(frozen=True)
class MutationContext:
    """What operators may use besides the program itself.

    ``runner`` proposes text (it may be a stronger model than the task's). ``train`` holds
    the labelled rows operators learn from (instruction induction, example pools, text
    gradients); validation and test rows never enter a context. ``task`` is the runner
    programs are scored with: a text gradient runs the parent on a training minibatch through
    it, charged like any other call. ``history`` lists scored earlier candidates, best last
    (their validation scores: selection information, no validation rows).
    """

    runner: Runner | None = None
    train: DataTable | None = None
    task: Runner | None = None
    history: tuple[ScoredProgram, ...] = ()
    #: Content hashes of programs already evaluated: operators that enumerate edits skip them,
    #: so a search asks for exactly the children it will evaluate.
    exclude: frozenset[str] = frozenset()

    def require_runner(self, operator: str) -> Runner:
        if self.runner is None:
            raise ConfigError(
                f"{operator} asks an LLM to propose text but the mutation context has no "
                "runner: pass proposer=... (or the task runner) to the search"
            )
        return self.runner

    async def ask(
        self,
        operator: str,
        prompt: str,
        *,
        seed: int,
        temperature: float = 0.7,
        max_tokens: int = PROPOSAL_MAX_TOKENS,
    ) -> str:
        """Send one proposal prompt to the proposer runner and return its stripped text.

        The answer is capped at ``max_tokens``, so a budget can bound what a proposal costs.
        """
        request = LLMRequest.from_prompt(
            prompt, temperature=temperature, seed=seed, max_tokens=max_tokens
        )
        result = await self.require_runner(operator).generate(request)
        return result.text.strip()


class Mutator(abc.ABC):
    """Base class of mutation operators.

    Subclasses set ``default_selector`` and implement :meth:`mutate`; most also narrow
    :meth:`accepts` (e.g. "sections that do not hold the input"). An operator that can list
    its edits builds them as :data:`Edit` pairs and lets :func:`choose_children` pick.
    """

    default_selector: str = "*"

    def __init__(self, selector: str | None = None) -> None:
        self.selector = selector or self.default_selector

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"{self.name}(selector={self.selector!r})"

    def accepts(self, match: Match, program: Output) -> bool:
        """Whether this operator can edit the matched node (default: yes)."""
        return True

    def targets(self, program: Output) -> list[Match]:
        """Nodes of ``program`` this operator may edit."""
        return [m for m in find(program, self.selector) if self.accepts(m, program)]

    def applicable(self, program: Output) -> bool:
        """Whether :meth:`mutate` can produce at least one child."""
        return bool(self.targets(program))

    # -- learning (the search reports outcomes; a learning operator overrides these) ---------

    def operator_names(self) -> frozenset[str]:
        """The names its children carry in ``Mutation.operator`` (an operator that holds
        others, such as :class:`~mutators.mixture.Mixture`, answers theirs)."""
        return frozenset({self.name})

    def record(self, operator_name: str, improved: bool) -> None:
        """Learn that a child of ``operator_name`` was scored, improving on its parent or not.
        The search calls it for every child; operators that do not learn ignore it."""
        del operator_name, improved  # a no-op by design: only learning operators count

    def state_dict(self) -> dict[str, Any] | None:
        """What it learned, JSON-ready, for :meth:`load_state_dict` on resume (``None``: it
        learns nothing)."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        raise ConfigError(
            f"{self.name} learns nothing, so it has no state to load; got {state!r:.80}"
        )

    @abc.abstractmethod
    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        """Return up to ``n`` distinct children of ``program`` (fewer if fewer exist)."""

    def _child(self, program: Output, description: str) -> Mutation:
        return Mutation(program, description, self.name)


# -- copy-then-edit helpers --------------------------------------------------------------------

_Node = TypeVar("_Node", bound=pg.Symbolic)


def copy_tree(node: _Node) -> _Node:
    """A deep copy of ``node`` that skips re-checking its fields against their types.

    Every node of ``node`` passed those checks when it was built, and a copy holds the same,
    already converted values, so checking them again (most of what a pyglove deep copy costs)
    could only repeat the answer. The nodes' own checks (``_on_bound``) still run, and an edit
    of the copy (``rebind``) is checked as usual. About half the CPU of ``pg.clone(node,
    deep=True)``, which a search spends on every child it proposes.

    >>> from sammo_core import GenerateText, Output, Paragraph
    >>> p = Output(GenerateText(Paragraph("a")))
    >>> q = copy_tree(p)
    >>> pg.eq(p, q), q is p, q.child.prompt is p.child.prompt
    (True, False, False)
    """
    with pg.enable_type_check(False):
        return pg.clone(node, deep=True)  # type: ignore[no-any-return]


def replace(program: Output, path: str, value: Any) -> Output:
    """A deep copy of ``program`` with the value at ``path`` replaced.

    >>> from sammo_core import GenerateText, Output, Paragraph
    >>> p = Output(GenerateText(Paragraph("a")))
    >>> replace(p, "child.prompt.text", "b").child.prompt.text, p.child.prompt.text
    ('b', 'a')
    """
    copy = copy_tree(program)
    copy.rebind({path: value}, skip_notification=True)
    return copy


_LIST_ITEM = re.compile(r"^(.*)\[(\d+)\]$")


def split_list_path(path: str) -> tuple[str, int]:
    """``"a.children[2]"`` -> ``("a.children", 2)``; a path that is not a list item raises."""
    m = _LIST_ITEM.match(path)
    if not m:
        raise ConfigError(f"path {path!r} does not address a list item")
    return m.group(1), int(m.group(2))


def is_list_item(path: str) -> bool:
    """Whether ``path`` addresses a list item (``"a.children[2]"``), which can be removed."""
    return _LIST_ITEM.match(path) is not None


def join_path(base: str, rel: str) -> str:
    """The absolute path of ``rel`` below the node at ``base`` (``""`` is the root).

    >>> join_path("child.prompt", "children[0]"), join_path("", "child")
    ('child.prompt.children[0]', 'child')
    """
    return f"{base}.{rel}" if base else rel


def set_list(program: Output, list_path: str, items: Sequence[Any]) -> Output:
    """A deep copy of ``program`` whose list at ``list_path`` holds ``items``."""
    copy = copy_tree(program)
    fresh = [copy_tree(i) if isinstance(i, pg.Symbolic) else i for i in items]
    copy.rebind({list_path: fresh}, skip_notification=True)
    return copy


def remove(program: Output, path: str) -> Output:
    """A deep copy of ``program`` without the list item at ``path``."""
    list_path, index = split_list_path(path)
    items = list(program.sym_get(list_path))
    del items[index]
    return set_list(program, list_path, items)


# -- reading programs --------------------------------------------------------------------------


def contains_input(node: Component | str) -> bool:
    """Whether ``node`` shows the program's input, so dropping it would break the program.

    True for :class:`InputData`, a :class:`Template` that reads the input, and any node
    holding one of them; a plain string never shows the input.

    >>> from sammo_core import InputData, Section, Template
    >>> [contains_input(n) for n in (Section("In", [InputData()]), Template("Q: {{ input }}"))]
    [True, True]
    >>> [contains_input(n) for n in (Section("Task", ["Say yes."]), Template("Hi"), "text")]
    [False, False, False]
    """
    if isinstance(node, str):
        return False
    if isinstance(node, InputData) or find(node, "InputData"):
        return True
    return any(
        m.node.depends_on_input() for m in find(node, "Template") if isinstance(m.node, Template)
    )


def text_children(node: Component) -> list[tuple[str, str]]:
    """``(field_path, text)`` of a node's plain-text children: its Paragraphs.

    Plain strings became Paragraphs when the node was built. Paths are relative to ``node``.

    >>> text_children(Section("Task", ["Say yes.", Template("{{ input }}"), "Be brief."]))
    [('children[0].text', 'Say yes.'), ('children[2].text', 'Be brief.')]
    """
    out: list[tuple[str, str]] = []
    for name in node.child_fields:
        value = node.sym_getattr(name)
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            base = name if index is None else f"{name}[{index}]"
            if isinstance(item, Paragraph):
                out.append((f"{base}.text", item.text))
    return out


def ancestor(program: Output, path: str, selector: str) -> Match | None:
    """The nearest proper ancestor of the node at ``path`` matching ``selector``, if any."""
    best: Match | None = None
    for match in find(program, selector):
        inside = path.startswith(match.path + ".") or (not match.path and path)
        if inside and (best is None or len(match.path) > len(best.path)):
            best = match
    return best


# -- choosing children -------------------------------------------------------------------------

#: An edit an operator may make: its description and a function building the child (built
#: lazily, so asking for one child of a large prompt does not copy the program once per edit).
#: Not a :class:`search.candidate.Candidate`, which is a program the search scored.
Edit = tuple[str, Callable[[], Output]]


def check_n(n: int) -> None:
    """Reject a number of children that is not an int >= 0 (``True`` included)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"n (the number of children) must be an int >= 0; got {n!r}")


def choose_children(
    operator: Mutator,
    parent: Output,
    candidates: Sequence[Edit],
    rng: random.Random,
    n: int,
    *,
    context: MutationContext | None = None,
    weights: Sequence[float] | None = None,
) -> list[Mutation]:
    """Up to ``n`` children built from ``candidates`` in an order drawn from ``rng``.

    With ``weights`` (one per candidate, each > 0) the order is a weighted draw without
    replacement (Efraimidis-Spirakis exponential keys): a candidate of weight 3 tends to come
    before one of weight 1; without, every order is equally likely.

    Children equal to the parent, to an earlier child or to a program in ``context.exclude``
    (by content hash) are skipped, so an operator may offer overlapping edits; so are children
    that would lose the answer slot of a completion-mode parent (:func:`keeps_answer_slot`).
    Only the children kept, and those skipped on the way, are built.

    >>> import asyncio
    >>> from functools import partial
    >>> from sammo_core import GenerateText, Output, Paragraph
    >>> class Say(Mutator):
    ...     async def mutate(self, program, rng, n=1, context=None):
    ...         edits = [(f"say {t}", partial(replace, program, "child.prompt.text", t))
    ...                  for t in ("a", "b", "b")]
    ...         return choose_children(self, program, edits, rng, n)
    >>> p = Output(GenerateText(Paragraph("a")))
    >>> [(m.description, m.operator) for m in asyncio.run(Say().mutate(p, random.Random(0), 5))]
    [('say b', 'Say')]
    """
    check_n(n)
    seen = {content_hash(parent)} | (context.exclude if context is not None else frozenset())
    guard = answer_slot_problem(parent) is None
    children: list[Mutation] = []
    if weights is None:
        order = rng.sample(range(len(candidates)), len(candidates))
    else:
        if len(weights) != len(candidates) or not all(w > 0 for w in weights):
            raise ValueError(f"need one weight > 0 per candidate; got {list(weights)!r}")
        keys = [-math.log(1.0 - rng.random()) / w for w in weights]
        order = sorted(range(len(candidates)), key=keys.__getitem__)
    for index in order:
        if len(children) >= n:
            break
        description, build = candidates[index]
        child = build()
        digest = content_hash(child)
        if guard and answer_slot_problem(child) is not None:
            seen.add(digest)
        elif digest not in seen:
            seen.add(digest)
            children.append(Mutation(child, description, operator.name))
    return children


def keeps_answer_slot(parent: Output, child: Output) -> bool:
    """Whether ``child`` keeps its prompt ending with the answer cue where ``parent``'s did.

    A completion-mode program (a base model) answers only where its prompt ends with the cue
    of its examples (``Output:``); :func:`~sammo_core.completion.answer_slot_problem` says why
    a prompt does not. Operators never produce a child that lost it (a JSON section format,
    a data format without a cue, several inputs per call), while a parent that never had it
    (its author's choice) does not stop its children.

    >>> from sammo_core import GenerateText, InputData, MetaPrompt, Output, Section
    >>> p = Output(GenerateText(MetaPrompt([Section("In", [InputData()])]), mode="completion"))
    >>> keeps_answer_slot(p, replace(p, "child.prompt.section_format", "xml"))
    False
    >>> keeps_answer_slot(p, replace(p, "child.prompt.section_format", "plain"))
    True
    """
    return answer_slot_problem(child) is None or answer_slot_problem(parent) is not None


# -- describing nodes --------------------------------------------------------------------------


def shorten(text: str, limit: int = 40) -> str:
    """``text`` on one line, cut to ``limit`` characters with ``...`` when longer.

    >>> shorten("Read the question carefully and think about every word before answering.")
    'Read the question carefully and think...'
    """
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def node_label(node: Component | str) -> str:
    """How descriptions refer to a node: a section by its quoted title, a text by its start.

    >>> node_label(Section("Task", ["Say yes."])), node_label(Section("", [])), node_label("Hi.")
    ("'Task'", '(untitled section)', "'Hi.'")
    """
    if isinstance(node, Section):
        return repr(node.title) if node.title else "(untitled section)"
    if isinstance(node, str):
        return repr(shorten(node))
    return type(node).__name__
