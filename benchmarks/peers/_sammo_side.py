"""The SAMMO side of :mod:`benchmarks.harness.sammo_compare`, run by the Python of a SAMMO
virtualenv.

It imports only ``sammo`` (0.3.3) and the standard library, so it runs in a separate virtualenv
whose pins (pyglove, openai) cannot clash with sammo-core's. It reads one JSON job on stdin,
runs it against the OpenAI-compatible server named in the job, and writes one line starting
with ``SAMMO_RESULT `` and a JSON object on stdout; anything SAMMO prints itself goes to stderr.

Jobs (``"task"``):

* ``eval``: one fixed prompt (task, 3 examples, input) over ``rows``.
* ``search``: SAMMO's ``BeamSearch`` from the synthetic start prompt (task, distractor, filler,
  1 example, input) with ``DropParameter`` per droppable section and ``ReplaceParameter`` over
  example counts, capped at ``max_evals`` candidates.

Run by hand::

    echo '{"task": "eval", ...}' | /tmp/sammo-venv/bin/python benchmarks/peers/_sammo_side.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

RESULT_PREFIX = "SAMMO_RESULT "
DROPPABLE = ("task", "distractor", "filler", "examples")


def measurement_table(pairs: Sequence[Sequence[str]]) -> Any:
    from sammo.data import DataTable  # type: ignore[import-not-found]

    return DataTable([p[0] for p in pairs], [p[1] for p in pairs])


def _runner(job: dict[str, Any], cache: Any) -> Any:
    """SAMMO's ``OpenAIChat`` pointed at the job's server, counting the HTTP calls it sends.

    The count lives on the class (``type(runner).backend_calls``): SAMMO's runners are
    symbolic pyglove objects, which do not take new instance attributes freely.
    """
    from sammo.runners import OpenAIChat  # type: ignore[import-not-found]
    from sammo.throttler import AtMost  # type: ignore[import-not-found]

    class CountingChat(OpenAIChat):  # type: ignore[misc]
        backend_calls = 0

        async def _call_backend(self, request: dict[str, Any]) -> dict[str, Any]:
            CountingChat.backend_calls += 1
            reply: dict[str, Any] = await super()._call_backend(request)
            return reply

    return CountingChat(
        model_id=job["model"],
        api_config={"api_key": "unused", "base_url": job["base_url"]},
        cache=cache,
        # SAMMO's own way to cap calls in flight (an int would mean calls per second).
        rate_limit=[AtMost(job["concurrency"], "running")],
        timeout=job.get("timeout", 60),
    )


def _examples_section(pool: Any, n_examples: int, static: bool) -> Any:
    """The examples section: ``FewshotExamples``, or (``static``) its text rendered ahead.

    SAMMO 0.3.3's CSS matching, which every mutator's ``applicable`` runs over the whole
    program, raises ``ValueError: Unsupported type: <class 'sammo.data.DataTable'>`` on a
    program holding ``FewshotExamples``; the search therefore shows the same rows as static
    text, rendered by the same ``PlainFormatter``.
    """
    from sammo.dataformatters import PlainFormatter  # type: ignore[import-not-found]
    from sammo.instructions import FewshotExamples, Section  # type: ignore[import-not-found]

    content = (
        PlainFormatter().format_datatable(pool[:n_examples])
        if static
        else FewshotExamples(pool, n_examples)
    )
    return Section("Examples", content, reference_id="examples")


def _prompt(job: dict[str, Any], start: bool) -> Any:
    """The synthetic task's prompt; ``start``: the search's starting point, else the fixed one."""
    from sammo.components import GenerateText, Output  # type: ignore[import-not-found]
    from sammo.dataformatters import PlainFormatter
    from sammo.instructions import InputData, MetaPrompt, Section

    texts = job["texts"]
    sections = [Section("Task", texts["task"], reference_id="task")]
    if start:
        sections += [
            Section("Style", texts["distractor"], reference_id="distractor"),
            Section("Notes", texts["filler"], reference_id="filler"),
        ]
    sections += [
        _examples_section(measurement_table(job["pool"]), 1 if start else 3, static=start),
        Section("Question", InputData(), reference_id="question"),
    ]
    prompt = MetaPrompt(sections, render_as="markdown", data_formatter=PlainFormatter())
    return Output(GenerateText(prompt, max_tokens=job.get("max_tokens")))


def _accuracy(y_true: Any, y_pred: Any) -> Any:
    from sammo.base import EvaluationScore  # type: ignore[import-not-found]

    gold = [str(v).strip().lower() for v in y_true.outputs.values]
    pred = [str(v).strip().lower() for v in y_pred.outputs.values]
    hits = sum(g == p for g, p in zip(gold, pred, strict=True))
    return EvaluationScore(hits / len(gold) if gold else 0.0)


async def _eval(job: dict[str, Any]) -> dict[str, Any]:
    runner = _runner(job, cache=None)
    program = _prompt(job, start=False)
    data = measurement_table(job["rows"])
    # One untimed row first (imports, first connection), as on sammo-core's side.
    await program.arun(runner, measurement_table(job["warmup"]), progress_callback=False)
    warmup_calls = type(runner).backend_calls
    start = time.perf_counter()
    result = await program.arun(runner, data, progress_callback=False)
    wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "backend_calls": type(runner).backend_calls - warmup_calls,
        "warmup_calls": warmup_calls,
        "rows": len(result.outputs.values),
        "accuracy": _accuracy(data, result).score,
    }


async def _search(job: dict[str, Any]) -> dict[str, Any]:
    from sammo.mutators import (  # type: ignore[import-not-found]
        BagOfMutators,
        DropParameter,
        ReplaceParameter,
    )
    from sammo.search import BeamSearch  # type: ignore[import-not-found]
    from sammo.store import InMemoryDict  # type: ignore[import-not-found]

    # SAMMO keys its cache by request; an in-memory cache lets a repeated candidate cost
    # nothing, as sammo-core's search skips a candidate whose graph it has evaluated. (A plain
    # dict fails: the symbolic runner turns it into a pg.Dict, which refuses bytes keys.)
    runner = _runner(job, cache=InMemoryDict())
    pool = measurement_table(job["pool"])
    mutators = [DropParameter(f"#{name}") for name in DROPPABLE]
    counts = [_examples_section(pool, k, static=True) for k in job["example_counts"]]
    mutators.append(ReplaceParameter("#examples", counts))
    search = BeamSearch(
        runner,
        BagOfMutators(_prompt(job, start=True), *mutators, seed=job["seed"]),
        _accuracy,
        maximize=True,
        beam_width=job["width"],
        depth=job["depth"],
        mutations_per_beam=job["mutations_per_parent"],
        max_evals=job["candidates"],
    )
    data = measurement_table(job["rows"])
    start = time.perf_counter()
    await search.afit_transform(data)
    wall = time.perf_counter() - start
    fit = search._state["fit"]  # SAMMO has no public accessor for its log of candidates
    return {
        "wall_s": wall,
        "backend_calls": type(runner).backend_calls,
        "candidates": len(fit),
        "distinct_candidates": len({repr(x["candidate"]) for x in fit}),
        "start_score": fit[0]["objective"],
        "best_score": search.best_score,
        "best_actions": search.best.get("prev_actions", []),
        "depths": max(x["iteration"] for x in fit) + 1,
    }


def main() -> int:
    """Read a job on stdin, run it, print ``SAMMO_RESULT {...}``."""
    job = json.loads(sys.stdin.read())
    tasks = {"eval": _eval, "search": _search}
    if job.get("task") not in tasks:
        print(f"unknown task {job.get('task')!r}; use one of {sorted(tasks)}", file=sys.stderr)
        return 2
    from importlib.metadata import version

    with contextlib.redirect_stdout(sys.stderr):  # progress bars must not mix with the result
        result = asyncio.run(tasks[job["task"]](job))
    result["sammo_version"] = version("sammo")
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
