"""The suites on the SAMMO paper's classic programs (instructions, in-context examples, input):
``instruction-tuning``, ``quick``, ``compression`` (with its pick, :func:`pick_compressed`) and
``apo``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from benchmarks import datasets
from benchmarks.suites.assemble import SuiteDefaults, assemble, quality_objective
from benchmarks.suites.suite import BenchTask, DataDir, Suite, SuiteOptions, tasks_in
from sammo_core.components import Examples, GenerateText, InputData, MetaPrompt, Output, Section
from sammo_core.data import DataTable
from sammo_core.errors import ConfigError
from sammo_core.objectives import MeanPromptTokens
from search.candidate import Candidate
from search.result import SearchResult

#: Two BIG-bench tasks with short inputs, for ``quick``.
QUICK_TASKS = ("implicatures", "sports_understanding")
#: The accuracy drop the ``compression`` pick tolerates (2 points).
COMPRESSION_TOLERANCE = 0.02


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


_INSTRUCTION_TUNING = SuiteDefaults(
    "48", "beam", "examples,format,structure,compression,content,apo"
)


def _build_instruction_tuning(task: str, data_dir: DataDir, options: SuiteOptions) -> BenchTask:
    splits = datasets.load_sammo_instruction_tuning(data_dir, task)
    return assemble(
        "instruction-tuning",
        splits,
        classic_program(splits.instructions, splits.incontext),
        objectives=[quality_objective(splits)],
        options=options,
        defaults=_INSTRUCTION_TUNING,
        notes=(
            "BIG-bench task, SAMMO splits (5 in-context / 100 train / 50 val / 100 test); "
            "baseline: task instructions + 5 in-context examples + input."
        ),
    )


_QUICK = SuiteDefaults("6", "beam", "quick", width=2, depth=3, mutations_per_parent=3)
QUICK_MAX_ROWS = 8


def _build_quick(task: str, data_dir: DataDir, options: SuiteOptions) -> BenchTask:
    if task not in QUICK_TASKS:
        raise ConfigError(f"unknown task {task!r} for suite 'quick'; use: {', '.join(QUICK_TASKS)}")
    if options.max_rows is None:
        options = dataclasses.replace(options, max_rows=QUICK_MAX_ROWS)
    splits = datasets.load_sammo_instruction_tuning(data_dir, task)
    return assemble(
        "quick",
        splits,
        classic_program(splits.instructions, splits.incontext),
        objectives=[quality_objective(splits)],
        options=options,
        defaults=_QUICK,
        notes=(
            f"instruction-tuning task cut to {options.max_rows} rows per split; structure, format "
            "and RemoveFiller operators only (no proposer calls)."
        ),
    )


_COMPRESSION = SuiteDefaults("48", "beam", "structure,examples,format,compression")


def _build_compression(task: str, data_dir: DataDir, options: SuiteOptions) -> BenchTask:
    splits = datasets.load_sammo_compression(data_dir, task)
    # One paragraph per line, so DropParagraph and RemoveFiller can work on parts of it.
    paragraphs = [line.strip() for line in splits.instructions.splitlines() if line.strip()]
    return assemble(
        "compression",
        splits,
        classic_program(paragraphs, splits.incontext),
        objectives=[quality_objective(splits), MeanPromptTokens()],
        options=options,
        defaults=_COMPRESSION,
        notes=(
            "Super-NaturalInstructions task, SAMMO splits; objectives: accuracy and prompt "
            "tokens per input; winner: fewest tokens with validation accuracy >= "
            "baseline - 0.02."
        ),
        select=pick_compressed,
    )


_APO = SuiteDefaults("32", "beam", "apo,content", width=4, depth=6)


def _build_apo(task: str, data_dir: DataDir, options: SuiteOptions) -> BenchTask:
    if task != "liar":
        raise ConfigError(f"unknown task {task!r} for suite 'apo'; its only task is 'liar'")
    splits = datasets.load_liar(data_dir)
    return assemble(
        "apo",
        splits,
        classic_program(splits.instructions, None),
        objectives=[quality_objective(splits)],
        options=options,
        defaults=_APO,
        notes=(
            "LIAR as binarised by the APO paper (Yes = a lie); baseline: APO's initial "
            "instruction; operators: TextGradient (critique + fix from the errors on a seeded "
            "minibatch of training rows; validation only selects) and Paraphrase."
        ),
    )


def _quick_tasks(data_dir: DataDir) -> list[str]:
    found = set(datasets.list_tasks(data_dir)["instruction-tuning"])
    return [t for t in QUICK_TASKS if t in found]


INSTRUCTION_TUNING = Suite(
    "instruction-tuning",
    "SAMMO's BIG-bench instruction tuning: beam search over examples, format, structure, "
    "compression and LLM rewrites",
    tasks_in("instruction-tuning"),
    _build_instruction_tuning,
    data=("sammo",),
)
COMPRESSION = Suite(
    "compression",
    "SAMMO's Super-NaturalInstructions compression: fewest prompt tokens within 2 points of "
    "the baseline's accuracy",
    tasks_in("compression"),
    _build_compression,
    data=("sammo",),
)
APO = Suite(
    "apo",
    "LIAR with APO's text gradients and paraphrases, beam search",
    tasks_in("apo"),
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
