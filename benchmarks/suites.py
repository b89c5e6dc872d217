"""Benchmark suites: for each task, the baseline program, the splits, the objectives, the
operators and the search strategy that ``sammo-core bench run`` uses.

=======================  ================================================  ==========  ======
suite                    searches over                                     strategy    budget
=======================  ================================================  ==========  ======
``instruction-tuning``   examples, format, structure, compression,         beam 4x8    48
                         content (paraphrase), apo (text gradients)
``rag-parsing``          DSL description x k retrieved examples x data     enumerate   54
                         format x instructions (a ``pg.oneof`` grid)
``compression``          structure, examples, format, compression; pick    beam 4x8    48
                         the fewest tokens within 2 points of baseline
``apo``                  TextGradient + Paraphrase (the APO paper)         beam 4x6    32
``quick``                structure, format, RemoveFiller (no proposer)     beam 2x3    6
``base-model``           structure, examples, format (no proposer), from   beam 4x6    24
                         the instruction alone; completion mode + stops
=======================  ================================================  ==========  ======

(budget: candidates evaluated on the validation split, the start program included.) Tasks
use their splits as published (:mod:`benchmarks.datasets`): the seed of a run never reshuffles
them, and ``max_rows`` keeps the first rows of each. Proposers learn from train, the search
selects on validation, and test is scored for the baseline and the winner only. A
:class:`Suite` lists its tasks in a data folder and builds a :class:`BenchTask` per task from
:class:`SuiteOptions`; the suites live in :data:`SUITES`.

>>> sorted(SUITES)
['apo', 'base-model', 'compression', 'instruction-tuning', 'quick', 'rag-parsing']
>>> options = SuiteOptions(max_rows=4)
>>> task = get_suite("quick").build("implicatures", None, options)  # doctest: +SKIP
>>> len(task.val), task.objectives[0].name  # doctest: +SKIP
(4, 'label_accuracy')
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyglove as pg

from benchmarks import datasets
from benchmarks.datasets import TaskSplits
from benchmarks.registry import SUITES
from mutators.base import Mutation, MutationContext, Mutator, replace, text_children
from sammo_core.components import Examples, GenerateText, InputData, MetaPrompt, Output, Section
from sammo_core.data import DataTable
from sammo_core.errors import ConfigError
from sammo_core.objectives import (
    Accuracy,
    FunctionObjective,
    LabelAccuracy,
    MeanPromptTokens,
    Objective,
)
from sammo_core.selectors import Match
from search.base import Search
from search.budget import SearchBudget
from search.candidate import Candidate
from search.result import SearchResult
from search.strategies import pick_strategy

__all__ = [
    "BASE_MODEL_DATA_FORMATS",
    "BASE_MODEL_MAX_TOKENS",
    "BASE_MODEL_STOPS",
    "GEOQUERY_INSTRUCTION_VARIANTS",
    "QUICK_TASKS",
    "SUITES",
    "BenchTask",
    "Suite",
    "SuiteOptions",
    "SwapText",
    "base_model_program",
    "classic_program",
    "funql_match",
    "get_suite",
    "normalize_funql",
    "pick_compressed",
]

DataDir = str | os.PathLike[str] | None
#: Two BIG-bench tasks with short inputs, for ``quick``.
QUICK_TASKS = ("implicatures", "sports_understanding")
#: The accuracy drop the ``compression`` pick tolerates (2 points).
COMPRESSION_TOLERANCE = 0.02
GEOQUERY_INSTRUCTION_VARIANTS = (
    datasets.GEOQUERY_INSTRUCTIONS,
    "Translate the question into a FunQL program over the GeoQuery database. Use only the "
    "operators described below and answer with the program alone, on one line.",
)
#: The DSL descriptions of the loader (``constants["dsl"]``), in this order.
DSL_VARIANTS = ("full_dd", "list_of_operators", "formal")
RAG_EXAMPLE_COUNTS = (5, 1, 10)
RAG_DATA_FORMATS = ("plain", "json", "xml")
RAG_VAL_SIZE = 50
# FunQL programs run past the embedded runner's default 64 completion tokens.
RAG_MAX_TOKENS = 160


# -- options and tasks -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SuiteOptions:
    """What the command line may change about a suite; ``None`` keeps the suite's default.

    ``budget`` is a :meth:`SearchBudget.parse` string (``"48"`` or ``"candidates=48,calls=
    3000"``); ``max_rows`` caps each of train, validation and test; ``val_rows`` and
    ``test_rows`` cap one split each, over ``max_rows``; ``operators`` replaces the suite's
    operator groups (those of ``sammo-core optimize --operators``).

    >>> SuiteOptions(strategy="beam", max_rows=10).max_rows
    10
    >>> SuiteOptions(max_rows=10, test_rows=50).rows("test"), SuiteOptions(max_rows=10).rows("val")
    (50, 10)
    >>> SuiteOptions(strategy="annealing")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: unknown strategy 'annealing'; use: beam, enumerate, evolution, \
random
    """

    budget: str | None = None
    strategy: str | None = None
    seed: int = 0
    max_rows: int | None = None
    operators: str | None = None
    concurrency: int = 32
    val_rows: int | None = None
    test_rows: int | None = None
    #: Answers read by label likelihood (the call lists the task's labels, so a runner that
    #: scores them ranks them); ``None``: the suite's default (``base-model``: yes).
    scored: bool | None = None
    #: The examples ``base-model`` starts from (``None``: :data:`BASE_MODEL_START_SHOTS`).
    start_shots: int | None = None
    #: How candidates race (:mod:`search.racing`): ``off``, ``halving`` or ``paired``.
    racing: str = "off"

    def __post_init__(self) -> None:
        if self.strategy is not None:
            pick_strategy(self.strategy)
        for flag, value in (
            ("--max-rows", self.max_rows),
            ("--val-rows", self.val_rows),
            ("--test-rows", self.test_rows),
        ):
            if value is not None and value < 1:
                raise ConfigError(f"{flag} must be >= 1; got {value}")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1; got {self.concurrency}")
        if self.budget is not None:
            SearchBudget.parse(self.budget)  # fail early on a malformed budget

    def rows(self, split: str) -> int | None:
        """How many rows of ``split`` (``train``, ``val`` or ``test``) to keep; None: all."""
        own = {"val": self.val_rows, "test": self.test_rows}.get(split)
        return own if own is not None else self.max_rows


@dataclasses.dataclass(frozen=True)
class BenchTask:
    """One task of a suite, ready to search.

    ``program`` is the start program (for ``enumerate``, the ``pg.oneof`` search space whose
    first point is the baseline). ``make_search`` builds a fresh strategy (they hold state).
    ``select`` picks the reported winner from the result (default: ``result.best``).
    ``params`` records the settings for ``results.json``.
    """

    suite: str
    name: str
    program: Output
    train: DataTable | None
    val: DataTable
    test: DataTable
    objectives: tuple[Objective, ...]
    mutator: Mutator | None
    make_search: Callable[[], Search]
    notes: str
    params: Mapping[str, Any]
    select: Callable[[SearchResult], Candidate] | None = None

    def winner(self, result: SearchResult) -> Candidate:
        """The candidate reported as optimized."""
        return result.best if self.select is None else self.select(result)


@dataclasses.dataclass(frozen=True)
class Suite:
    """A named family of tasks: ``tasks(data_dir)`` lists them, ``build`` makes one; ``data``
    names the data sets it reads (``sammo-core data fetch NAME``). Suites are the entry
    points of group ``sammo_core.suites`` (:data:`SUITES`)."""

    name: str
    description: str
    tasks: Callable[[DataDir], list[str]]
    build: Callable[[str, DataDir, SuiteOptions], BenchTask]
    data: tuple[str, ...] = ()


# -- objectives ------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*```[\w-]*\s*$")
_QUOTES = str.maketrans({'"': "'", "`": "'", "\u2018": "'", "\u2019": "'", "\u201c": "'"})
_SPACE_AROUND = re.compile(r"\s*([(),])\s*")


def normalize_funql(value: Any) -> str:
    """A FunQL program in canonical form, for exact-match scoring.

    Takes the first line that is not a code fence, writes every quote as ``'``, removes the
    spaces around parentheses and commas, collapses other whitespace and strips the ends (a
    trailing period is dropped). Case is kept: FunQL is case-sensitive in principle.

    >>> normalize_funql('answer( population_1( cityid("austin", "tx") ) )')
    "answer(population_1(cityid('austin','tx')))"
    >>> normalize_funql("```\\nanswer(state(all))\\n```") == normalize_funql("answer(state(all)).")
    True
    >>> normalize_funql(None)
    ''
    """
    if value is None:
        return ""
    lines = [line for line in str(value).splitlines() if line.strip() and not _FENCE.match(line)]
    text = lines[0] if lines else ""
    text = text.translate(_QUOTES).replace("\u201d", "'")
    text = _SPACE_AROUND.sub(r"\1", " ".join(text.split()))
    return text.strip().rstrip(".").strip()


def funql_match(prediction: Any, gold: Any) -> float:
    """1.0 when the normalized programs are equal (:func:`normalize_funql`), else 0.0.

    >>> funql_match("answer(river( all ))", "answer(river(all))")
    1.0
    """
    return float(normalize_funql(prediction) == normalize_funql(gold))


def _quality(splits: TaskSplits) -> Objective:
    return LabelAccuracy(splits.labels) if splits.labels else Accuracy()


def pick_compressed(result: SearchResult, tolerance: float = COMPRESSION_TOLERANCE) -> Candidate:
    """The candidate with the fewest prompt tokens whose validation score (the first
    objective) is at least the start's minus ``tolerance``; ties go to the higher score, then
    the older candidate. The start always qualifies.

    >>> from sammo_core.objectives import Score, get_objective
    >>> objs = [get_objective("accuracy"), get_objective("mean_prompt_tokens")]
    >>> def cand(i, acc, tokens, parent=0):
    ...     return Candidate(i, None, str(i), {"accuracy": Score("accuracy", acc),
    ...         "mean_prompt_tokens": Score("mean_prompt_tokens", tokens)},
    ...         parent=None if i == 0 else parent)
    >>> pool = [cand(0, 0.80, 900), cand(1, 0.79, 400), cand(2, 0.70, 100), cand(3, 0.85, 600)]
    >>> result = SearchResult(objs, pool, pool[0], pool[3], pool, {}, None, None, "", 1, 0.0,
    ...                       "BeamSearch", {})
    >>> pick_compressed(result).id
    1
    """
    quality, cost = result.objectives[0].name, result.objectives[1].name
    floor = result.start.score(quality) - tolerance - 1e-9
    eligible = [c for c in result.candidates if c.score(quality) >= floor]
    return min(eligible, key=lambda c: (c.score(cost), -c.score(quality), c.id))


# -- programs and operators ------------------------------------------------------------------


def classic_program(
    instructions: str | Sequence[str], incontext: DataTable | None, *, n: int | None = None
) -> Output:
    """The baseline of the SAMMO paper's tasks: a "Task" section with the instructions, an
    "Examples" section with the in-context examples (if any), and the input.

    >>> shots = DataTable(["2+2", "3+3"], ["4", "6"])
    >>> print(classic_program("Add the numbers.", shots))
    Output()
    └── GenerateText(temperature=0.0, seed=0)
        └── MetaPrompt()
            ├── #task Section 'Task'
            │   └── 'Add the numbers.'
            ├── #examples Section 'Examples'
            │   └── Examples(n=all, selection='first', rows=2)
            └── InputData()
    """
    texts = [instructions] if isinstance(instructions, str) else list(instructions)
    children: list[Any] = [Section("Task", texts, id="task")]
    if incontext is not None and len(incontext):
        children.append(Section("Examples", [Examples(incontext, n=n)], id="examples"))
    children.append(InputData())
    return Output(GenerateText(MetaPrompt(children)))


class SwapText(Mutator):
    """Replace the plain text of a matched section with another of ``choices``.

    For texts a search should choose among (the DSL descriptions of ``rag-parsing``): the
    child's description names the choice by its key.

    >>> import asyncio
    >>> p = Output(GenerateText(MetaPrompt([Section("DSL", ["short"], id="dsl"), InputData()])))
    >>> op = SwapText("Section#dsl", {"short": "short", "long": "long text"})
    >>> [m.description for m in asyncio.run(op.mutate(p, random.Random(0), n=3))]
    ["section 'DSL': short -> long"]
    """

    def __init__(self, selector: str, choices: Mapping[str, str]) -> None:
        super().__init__(selector)
        if len(choices) < 2:
            raise ConfigError(f"SwapText needs at least two choices; got {list(choices)}")
        self.choices = dict(choices)

    def __repr__(self) -> str:
        return f"{self.name}(selector={self.selector!r}, choices={sorted(self.choices)})"

    def _current(self, node: Any) -> str | None:
        if not isinstance(node, Section):
            return None
        texts = [text for _, text in text_children(node)]
        return "\n".join(texts) if texts else None

    def accepts(self, match: Match, program: Output) -> bool:
        return self._current(match.node) is not None

    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        options: list[tuple[Match, str]] = []
        for match in self.targets(program):
            current = self._current(match.node)
            options += [(match, key) for key, text in self.choices.items() if text != current]
        rng.shuffle(options)
        children = []
        for match, key in options[:n]:
            before = next(
                (k for k, t in self.choices.items() if t == self._current(match.node)), "custom"
            )
            child = replace(program, f"{match.path}.children", [self.choices[key]])
            children.append(self._child(child, f"section {match.node.title!r}: {before} -> {key}"))
        return children


def _group_operators(groups: str) -> list[Mutator]:
    """The operators of ``sammo-core optimize --operators GROUPS``."""
    from mutators.groups import operators_of

    return operators_of(groups)


def _group_mutator(groups: str) -> Mutator:
    from mutators.mixture import Mixture

    return Mixture(_group_operators(groups))


def _quick_mutator() -> Mutator:
    """Structure, format and filler removal: no proposer calls. Packing several inputs into
    one call rarely suits a small model, so it is drawn less often."""
    from mutators.compression import RemoveFiller
    from mutators.format import ChangeDataFormat, ChangeInputsPerCall, ChangeSectionFormat
    from mutators.mixture import Mixture
    from mutators.structure import DropParagraph, DropSection, ReorderSections, RepeatSection

    return Mixture(
        [
            DropSection(),
            DropParagraph(),
            ReorderSections(),
            RepeatSection(),
            ChangeSectionFormat(),
            ChangeDataFormat(),
            (ChangeInputsPerCall(), 0.25),
            RemoveFiller(),
        ]
    )


@dataclasses.dataclass(frozen=True)
class _Defaults:
    budget: str
    strategy: str
    operators: str
    width: int = 4
    depth: int = 8
    mutations_per_parent: int = 4
    scored: bool = False


def _make_search(
    strategy: str,
    *,
    mutator: Mutator | None,
    objectives: Sequence[Objective],
    budget: SearchBudget,
    options: SuiteOptions,
    defaults: _Defaults,
) -> Callable[[], Search]:
    from search.racing import Racing
    from search.strategies import StrategySettings, pick_strategy

    common: dict[str, Any] = {
        "objectives": list(objectives),
        "budget": budget,
        "seed": options.seed,
        "max_concurrency": options.concurrency,
        "racing": Racing(options.racing),  # type: ignore[arg-type]
    }
    # Enough steps that the candidate budget, not the step count, ends the search.
    planned = budget.candidates or 48
    size = max(2, min(8, planned // 4))  # evolution's population
    settings = StrategySettings(
        width=defaults.width,
        depth=defaults.depth,
        mutations_per_parent=defaults.mutations_per_parent,
        population=size,
        tournament=min(3, size),
        cycles=planned,
        steps=max(1, -(-planned // 4)),
        batch_size=4,
    )
    factory = pick_strategy(strategy)

    def build() -> Search:
        return factory(mutator if factory.needs_mutator else None, settings, **common)

    return build


def _cap(table: DataTable, options: SuiteOptions, split: str = "train") -> DataTable:
    rows = options.rows(split)
    return table if rows is None else table[:rows]


def _assemble(
    suite: str,
    splits: TaskSplits,
    program: Output,
    *,
    objectives: Sequence[Objective],
    options: SuiteOptions,
    defaults: _Defaults,
    notes: str,
    mutator: Mutator | None = None,
    select: Callable[[SearchResult], Candidate] | None = None,
    space_size: int | None = None,
) -> BenchTask:
    strategy = options.strategy or defaults.strategy
    operators = options.operators or defaults.operators
    if strategy == "enumerate" and space_size is None:
        raise ConfigError(
            f"suite {suite!r} has no search space to enumerate; use --strategy beam, "
            "evolution or random (enumerate is for rag-parsing)"
        )
    if strategy != "enumerate" and mutator is None:
        mutator = _quick_mutator() if operators == "quick" else _group_mutator(operators)
    budget_text = options.budget or defaults.budget
    budget = SearchBudget.parse(budget_text)
    scored = defaults.scored if options.scored is None else options.scored
    if scored and splits.labels:
        from sammo_core.loading import with_labels

        program = with_labels(program, list(splits.labels))
    train = _cap(splits.train, options)
    params = {
        "strategy": strategy,
        "budget": budget_text,
        "seed": options.seed,
        "operators": "pg.oneof grid" if strategy == "enumerate" else operators,
        "max_rows": options.max_rows,
        "val_rows": options.val_rows,
        "test_rows": options.test_rows,
        "space_size": space_size,
        "scoring": "label likelihood" if scored and splits.labels else "generated text",
        **({"racing": options.racing} if options.racing != "off" else {}),
    }
    return BenchTask(
        suite=suite,
        name=splits.name,
        program=program,
        train=train if len(train) else None,
        val=_cap(splits.val, options, "val"),
        test=_cap(splits.test, options, "test"),
        objectives=tuple(objectives),
        mutator=None if strategy == "enumerate" else mutator,
        make_search=_make_search(
            strategy,
            mutator=mutator,
            objectives=objectives,
            budget=budget,
            options=options,
            defaults=defaults,
        ),
        notes=notes,
        params=params,
        select=select,
    )


# -- the suites ------------------------------------------------------------------------------


_INSTRUCTION_TUNING = _Defaults("48", "beam", "examples,format,structure,compression,content,apo")


def _build_instruction_tuning(task: str, data_dir: DataDir, options: SuiteOptions) -> BenchTask:
    splits = datasets.load_sammo_instruction_tuning(data_dir, task)
    return _assemble(
        "instruction-tuning",
        splits,
        classic_program(splits.instructions, splits.incontext),
        objectives=[_quality(splits)],
        options=options,
        defaults=_INSTRUCTION_TUNING,
        notes=(
            "BIG-bench task, SAMMO splits (5 in-context / 100 train / 50 val / 100 test); "
            "baseline: task instructions + 5 in-context examples + input."
        ),
    )


_QUICK = _Defaults("6", "beam", "quick", width=2, depth=3, mutations_per_parent=3)
QUICK_MAX_ROWS = 8


def _build_quick(task: str, data_dir: DataDir, options: SuiteOptions) -> BenchTask:
    if task not in QUICK_TASKS:
        raise ConfigError(f"unknown task {task!r} for suite 'quick'; use: {', '.join(QUICK_TASKS)}")
    if options.max_rows is None:
        options = dataclasses.replace(options, max_rows=QUICK_MAX_ROWS)
    splits = datasets.load_sammo_instruction_tuning(data_dir, task)
    return _assemble(
        "quick",
        splits,
        classic_program(splits.instructions, splits.incontext),
        objectives=[_quality(splits)],
        options=options,
        defaults=_QUICK,
        notes=(
            f"instruction-tuning task cut to {options.max_rows} rows per split; structure, format "
            "and RemoveFiller operators only (no proposer calls)."
        ),
    )


_COMPRESSION = _Defaults("48", "beam", "structure,examples,format,compression")


def _build_compression(task: str, data_dir: DataDir, options: SuiteOptions) -> BenchTask:
    splits = datasets.load_sammo_compression(data_dir, task)
    # One paragraph per line, so DropParagraph and RemoveFiller can work on parts of it.
    paragraphs = [line.strip() for line in splits.instructions.splitlines() if line.strip()]
    return _assemble(
        "compression",
        splits,
        classic_program(paragraphs, splits.incontext),
        objectives=[_quality(splits), MeanPromptTokens()],
        options=options,
        defaults=_COMPRESSION,
        notes=(
            "Super-NaturalInstructions task, SAMMO splits; objectives: accuracy and prompt "
            "tokens per input; winner: fewest tokens with validation accuracy >= "
            "baseline - 0.02."
        ),
        select=pick_compressed,
    )


_APO = _Defaults("32", "beam", "apo,content", width=4, depth=6)


def _build_apo(task: str, data_dir: DataDir, options: SuiteOptions) -> BenchTask:
    if task != "liar":
        raise ConfigError(f"unknown task {task!r} for suite 'apo'; its only task is 'liar'")
    splits = datasets.load_liar(data_dir)
    return _assemble(
        "apo",
        splits,
        classic_program(splits.instructions, None),
        objectives=[_quality(splits)],
        options=options,
        defaults=_APO,
        notes=(
            "LIAR as binarised by the APO paper (Yes = a lie); baseline: APO's initial "
            "instruction; operators: TextGradient (critique + fix from the errors on a seeded "
            "minibatch of training rows; validation only selects) and Paraphrase."
        ),
    )


def _rag_space(pool: DataTable, dsl: Mapping[str, str]) -> Output:
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", [pg.oneof(list(GEOQUERY_INSTRUCTION_VARIANTS))], id="task"),
                    Section("DSL", [pg.oneof([dsl[k] for k in DSL_VARIANTS])], id="dsl"),
                    Section(
                        "Examples",
                        [Examples(pool, n=pg.oneof(list(RAG_EXAMPLE_COUNTS)), selection="knn")],
                        id="examples",
                    ),
                    InputData(),
                ],
                data_format=pg.oneof(list(RAG_DATA_FORMATS)),
            ),
            max_tokens=RAG_MAX_TOKENS,
        )
    )


_RAG = _Defaults(
    str(
        len(GEOQUERY_INSTRUCTION_VARIANTS)
        * len(DSL_VARIANTS)
        * len(RAG_EXAMPLE_COUNTS)
        * len(RAG_DATA_FORMATS)
    ),
    "enumerate",
    "rag",
)


def _rag_mutator(dsl: Mapping[str, str], operators: str) -> Mutator:
    from mutators.examples import ChangeExampleCount
    from mutators.format import ChangeDataFormat
    from mutators.mixture import Mixture

    chosen: list[Mutator] = [
        ChangeExampleCount(choices=(1, 3, 5, 10)),
        ChangeDataFormat(choices=RAG_DATA_FORMATS),
        SwapText("Section#dsl", {k: dsl[k] for k in DSL_VARIANTS}),
    ]
    if operators != "rag":
        # Other groups' text operators must leave the DSL alone: rewrite the task only.
        chosen.extend(_retarget(op) for op in _group_operators(operators))
    return Mixture(chosen)


def _retarget(op: Mutator) -> Mutator:
    if type(op).__module__ in ("mutators.content", "mutators.compression"):
        op.selector = "Section#task"
    return op


def _build_rag(task: str, data_dir: DataDir, options: SuiteOptions) -> BenchTask:
    if task != "geo880":
        raise ConfigError(f"unknown task {task!r} for suite 'rag-parsing'; its only task is geo880")
    splits = datasets.load_geoquery_rag(data_dir, val_size=RAG_VAL_SIZE, seed=0)
    assert splits.pool is not None
    # Train qids are part of the in-context pool: a validation question would retrieve itself.
    held_out = set(splits.val.inputs) | set(splits.test.inputs)
    pool = splits.pool.select(i for i, q in enumerate(splits.pool.inputs) if q not in held_out)
    dsl = splits.val.constants["dsl"]
    space = _rag_space(pool, dsl)
    objective = FunctionObjective(funql_match, "exact_match")
    strategy = options.strategy or _RAG.strategy
    notes = (
        f"geo880 with SAMMO's qids: {len(pool)}-question retrieval pool (the pool minus the "
        f"{len(splits.val)} validation questions carved from train), BM25 kNN examples "
        "(sammo_core.retrieval.BM25Index), exact match after normalising whitespace and quotes."
    )
    if strategy == "enumerate":
        from search.enumerative import candidates_of

        size = sum(1 for _ in candidates_of(space))
        return _assemble(
            "rag-parsing",
            splits,
            space,
            objectives=[objective],
            options=options,
            defaults=dataclasses.replace(_RAG, budget=str(size)),
            notes=(
                notes
                + " Grid: 2 instructions x 3 DSL descriptions x k in (5, 1, 10) x 3 data formats, "
                "enumerated in order (data format varies fastest; point 0 is the baseline)."
            ),
            space_size=size,
        )
    start = next(iter(pg.iter(space)))
    operators = options.operators or "rag"
    return _assemble(
        "rag-parsing",
        splits,
        start,
        objectives=[objective],
        options=options,
        defaults=dataclasses.replace(_RAG, budget="24"),
        notes=(
            notes
            + " Operators: example count, data format, DSL variant"
            + ("." if operators == "rag" else f", plus the groups {operators} (on the task only).")
        ),
        mutator=_rag_mutator(dsl, operators),
    )


# -- base models (local:gemma3): completion mode, no proposer --------------------------------

#: Where the next record starts in each data format: a base model that has answered goes on
#: writing the next example or input unless stopped there. (OpenAI's own API takes at most 4
#: stop sequences; vLLM and llama.cpp, which serve base models, take these.)
BASE_MODEL_STOPS = (
    "\nInput",
    "\nExample",
    "\n**Input",
    "\n**Example",
    '\n{"input"',
    '\n{"id"',
    "\n<input",
    "\n<example",
    "\n#",
)
#: Labels and short answers, with room for a JSON or XML wrapper.
BASE_MODEL_MAX_TOKENS = 16
#: The data formats whose prompt ends with the answer's cue, which a base model continues.
BASE_MODEL_DATA_FORMATS = ("plain", "markdown", "qa", "sentence")


#: The examples a user would write first: ``base-model`` starts from this many, label-balanced.
BASE_MODEL_START_SHOTS = 4


def base_model_program(
    instructions: str, pool: DataTable, shots: int = BASE_MODEL_START_SHOTS
) -> Output:
    """The start of ``base-model``: the task's instruction, ``shots`` label-balanced examples
    drawn from ``pool`` (what a user would write first) and the input, in completion mode.

    The :class:`Examples` node stands outside any section, so its rows read as a plain few-shot
    continuation; ``shots=0`` shows none yet (the instruction alone), and the examples operators
    change the count, the selection, the draw and the order.

    >>> program = base_model_program("Answer yes or no.", DataTable(["a", "b"], ["yes", "no"]))
    >>> print(program)
    Output()
    └── GenerateText(temperature=0.0, seed=0, max_tokens=16, mode='completion', stop=[...])
        └── MetaPrompt()
            ├── #task Section 'Task'
            │   └── 'Answer yes or no.'
            ├── #examples Examples(n=4, selection='balanced', seed=0, rows=2)
            └── InputData()
    """
    selection = "balanced" if shots else "first"
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", [instructions], id="task"),
                    Examples(pool, n=shots, selection=selection, id="examples"),
                    InputData(),
                ]
            ),
            max_tokens=BASE_MODEL_MAX_TOKENS,
            mode="completion",
            stop=list(BASE_MODEL_STOPS),
        )
    )


def _base_model_mutator() -> Mutator:
    """Structure, examples and format operators: none calls a proposer model.

    Weights say what a base model is known to need: examples above all (implicatures on Gemma
    3 270M: instruction alone 0.00, 8 examples 0.60), so the example count is drawn three times
    as often as any other operator; then how they are chosen (label-balanced, by similarity),
    drawn and ordered. The data formats are those whose prompt ends with the answer's cue
    (``Output:``, ``**Output:**``, ``A:``, ``Label:``): the JSON and XML formats end with an
    instruction ("Answer with one JSON object ..."), which a base model continuing text does
    not follow (it writes on, and nothing parses). Operators never make a child whose prompt
    stops ending with its cue (:func:`~mutators.base.keeps_answer_slot`: no JSON or XML section
    around the input). Packing several inputs into one call rarely suits a small base model,
    so it is drawn less often."""
    from mutators.examples import (
        ChangeExampleCount,
        ChangeExampleSelection,
        ReorderExamples,
        SwapExamples,
    )
    from mutators.format import (
        ChangeDataFormat,
        ChangeInputsPerCall,
        ChangePrefixes,
        ChangeSectionFormat,
    )
    from mutators.mixture import Mixture
    from mutators.scoring import ChangeVerbalizer, ToggleCalibration
    from mutators.structure import DropParagraph, DropSection, ReorderSections, RepeatSection

    return Mixture(
        [
            DropSection(),
            DropParagraph(),
            ReorderSections(),
            RepeatSection(),
            (ChangeExampleCount(), 3.0),
            SwapExamples(),
            ChangeExampleSelection(),
            ReorderExamples(),
            ChangeSectionFormat(),
            ChangeDataFormat(choices=BASE_MODEL_DATA_FORMATS),
            ChangePrefixes(),
            (ChangeInputsPerCall(), 0.25),
            (ChangeVerbalizer(), 0.5),
            (ToggleCalibration(), 0.5),
        ]
    )


_BASE_MODEL = _Defaults("24", "beam", "structure,examples,format", width=4, depth=6, scored=True)


def _build_base_model(task: str, data_dir: DataDir, options: SuiteOptions) -> BenchTask:
    splits = datasets.load_sammo_instruction_tuning(data_dir, task)
    shots = BASE_MODEL_START_SHOTS if options.start_shots is None else options.start_shots
    return _assemble(
        "base-model",
        splits,
        # The whole train split is the example pool: --max-rows bounds the rows evaluated.
        base_model_program(splits.instructions, splits.train, shots),
        objectives=[_quality(splits)],
        options=options,
        defaults=_BASE_MODEL,
        notes=(
            "BIG-bench task, SAMMO splits, for base models (--model local:gemma3): completion "
            f"mode with stop sequences, starting from the task's instruction and {shots} "
            "label-balanced examples; structure, examples (from the 100 train rows), format "
            "and scoring operators, no proposer calls."
        ),
        mutator=None if options.operators else _base_model_mutator(),
    )


def _tasks_of(suite: str) -> Callable[[DataDir], list[str]]:
    def tasks(data_dir: DataDir) -> list[str]:
        return list(datasets.list_tasks(data_dir)[suite])

    return tasks


def _quick_tasks(data_dir: DataDir) -> list[str]:
    found = set(datasets.list_tasks(data_dir)["instruction-tuning"])
    return [t for t in QUICK_TASKS if t in found]


INSTRUCTION_TUNING = Suite(
    "instruction-tuning",
    "SAMMO's BIG-bench instruction tuning: beam search over examples, format, structure, "
    "compression and LLM rewrites",
    _tasks_of("instruction-tuning"),
    _build_instruction_tuning,
    data=("sammo",),
)
RAG_PARSING = Suite(
    "rag-parsing",
    "GeoQuery -> FunQL with BM25-retrieved examples: enumerate DSL x k x format x instructions",
    _tasks_of("rag-parsing"),
    _build_rag,
    data=("sammo", "geoquery"),
)
COMPRESSION = Suite(
    "compression",
    "SAMMO's Super-NaturalInstructions compression: fewest prompt tokens within 2 points of "
    "the baseline's accuracy",
    _tasks_of("compression"),
    _build_compression,
    data=("sammo",),
)
APO = Suite(
    "apo",
    "LIAR with APO's text gradients and paraphrases, beam search",
    _tasks_of("apo"),
    _build_apo,
    data=("liar",),
)
QUICK = Suite(
    "quick",
    "two instruction-tuning tasks, 8 rows, 6 candidates, no proposer calls: minutes on the "
    "embedded model",
    _quick_tasks,
    _build_quick,
    data=("sammo",),
)
BASE_MODEL = Suite(
    "base-model",
    "instruction-tuning tasks for a base model (local:gemma3) in completion mode: from the "
    "instruction alone, structure, examples and format operators (no proposer), 24 candidates",
    _tasks_of("instruction-tuning"),
    _build_base_model,
    data=("sammo",),
)


def get_suite(name: str) -> Suite:
    """The suite called ``name``.

    >>> get_suite("apo").name
    'apo'
    >>> get_suite("poetry")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: unknown suite 'poetry'; use: apo, base-model, compression, \
instruction-tuning, quick, rag-parsing
    """
    return SUITES.pick(name)
