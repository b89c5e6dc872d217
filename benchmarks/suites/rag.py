"""``rag-parsing``: GeoQuery to FunQL with BM25-retrieved examples, enumerating a ``pg.oneof``
grid of instructions, DSL descriptions, example counts and data formats (or searching it with
operators).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pyglove as pg

from benchmarks import datasets
from benchmarks.suites.assemble import SuiteDefaults, assemble
from benchmarks.suites.funql import funql_match
from benchmarks.suites.operators import group_operators
from benchmarks.suites.suite import BenchTask, DataDir, Suite, SuiteOptions, tasks_in
from benchmarks.suites.swap_text import SwapText
from mutators.base import Mutator
from sammo_core.components import Examples, GenerateText, InputData, MetaPrompt, Output, Section
from sammo_core.data import DataTable
from sammo_core.errors import ConfigError
from sammo_core.objectives import FunctionObjective

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


_RAG = SuiteDefaults(
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
        chosen.extend(_retarget(op) for op in group_operators(operators))
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
        return assemble(
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
    return assemble(
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


RAG_PARSING = Suite(
    "rag-parsing",
    "GeoQuery -> FunQL with BM25-retrieved examples: enumerate DSL x k x format x instructions",
    tasks_in("rag-parsing"),
    _build_rag,
    data=("sammo", "geoquery"),
)
