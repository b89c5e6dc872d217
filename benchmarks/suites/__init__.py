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

The package holds one concept a module: :mod:`~benchmarks.suites.suite` (options, tasks, the
suite type and :func:`get_suite`), :mod:`~benchmarks.suites.assemble` (a task from its splits
and the suite's defaults, with the search factory), :mod:`~benchmarks.suites.operators` (the
operator groups), :mod:`~benchmarks.suites.swap_text` (an operator over fixed texts),
:mod:`~benchmarks.suites.funql` (FunQL scoring), and the suites themselves:
:mod:`~benchmarks.suites.classic`, :mod:`~benchmarks.suites.rag` and
:mod:`~benchmarks.suites.base_model`. Every public name is re-exported here, where the
entry points of ``sammo_core.suites`` (``benchmarks.suites:APO`` ...) find them.
"""

from __future__ import annotations

from benchmarks.registry import SUITES
from benchmarks.suites.base_model import (
    BASE_MODEL,
    BASE_MODEL_DATA_FORMATS,
    BASE_MODEL_MAX_TOKENS,
    BASE_MODEL_START_SHOTS,
    BASE_MODEL_STOPS,
    base_model_program,
)
from benchmarks.suites.classic import (
    APO,
    COMPRESSION,
    COMPRESSION_TOLERANCE,
    INSTRUCTION_TUNING,
    QUICK,
    QUICK_MAX_ROWS,
    QUICK_TASKS,
    classic_program,
    pick_compressed,
)
from benchmarks.suites.funql import (
    funql_match,
    normalize_funql,
)
from benchmarks.suites.rag import (
    DSL_VARIANTS,
    GEOQUERY_INSTRUCTION_VARIANTS,
    RAG_DATA_FORMATS,
    RAG_EXAMPLE_COUNTS,
    RAG_MAX_TOKENS,
    RAG_PARSING,
    RAG_VAL_SIZE,
)
from benchmarks.suites.suite import (
    BenchTask,
    DataDir,
    Suite,
    SuiteOptions,
    get_suite,
)
from benchmarks.suites.swap_text import (
    SwapText,
)

__all__ = [
    "APO",
    "BASE_MODEL",
    "BASE_MODEL_DATA_FORMATS",
    "BASE_MODEL_MAX_TOKENS",
    "BASE_MODEL_START_SHOTS",
    "BASE_MODEL_STOPS",
    "COMPRESSION",
    "COMPRESSION_TOLERANCE",
    "DSL_VARIANTS",
    "GEOQUERY_INSTRUCTION_VARIANTS",
    "INSTRUCTION_TUNING",
    "QUICK",
    "QUICK_MAX_ROWS",
    "QUICK_TASKS",
    "RAG_DATA_FORMATS",
    "RAG_EXAMPLE_COUNTS",
    "RAG_MAX_TOKENS",
    "RAG_PARSING",
    "RAG_VAL_SIZE",
    "SUITES",
    "BenchTask",
    "DataDir",
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
