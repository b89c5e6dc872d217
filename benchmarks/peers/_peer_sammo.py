"""SAMMO 0.3.3's side of :mod:`benchmarks.harness.peer_compare`, run by the Python of its
virtualenv.

It imports only ``sammo`` and the standard library. It reads one JSON job on stdin (a task's
train / validation / test rows, the server, the budget; see ``peer_compare.peer_job``), runs
SAMMO's ``BeamSearch`` on the validation rows, answers the test rows with the start and the
winner, and prints one line ``PEER_RESULT {...}`` on stdout (SAMMO's own output goes to stderr).

The search, in SAMMO's own terms (``BagOfMutators`` over its operators):

* ``ReplaceParameter('#examples', ...)``: show 1, 2, 4 or 8 train rows, three random draws each
  (the start shows none, as sammo-core's does);
* ``ChangeSectionsFormat('#prompt render_as', ...)``: markdown, markdown-alt, xml or raw sections;
* ``DropIntro('#task')`` and ``RepeatSegment('#task', '#examples')``: drop or repeat the task.

Two things are adapted to SAMMO 0.3.3 and a base model. The examples are static text rendered
by its ``PlainFormatter``: its CSS matching, which every mutator runs, raises ``ValueError:
Unsupported type: <class 'sammo.data.DataTable'>`` on a program holding ``FewshotExamples``, so
``DecreaseInContextExamples`` and ``ChangeDataFormat`` (whose examples would stay plain) are left
out. And SAMMO has no completion-mode runner: :func:`_runner` subclasses its ``OpenAIChat`` to
send the rendered prompt as is to ``/v1/completions`` with the job's stop sequences.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time
from typing import Any

RESULT_PREFIX = "PEER_RESULT "
EXAMPLE_COUNTS = (1, 2, 4, 8)
DRAWS = 3
FORMATS = ("markdown", "markdown-alt", "xml", "raw")
# SAMMO's beam, sized as sammo-core's base-model beam (width 4, depth 6, 4 children per parent).
WIDTH, DEPTH, CHILDREN = 4, 6, 4


def _table(pairs: list[list[Any]], with_outputs: bool = True) -> Any:
    from sammo.data import DataTable  # type: ignore[import-not-found]

    inputs = [p[0] for p in pairs]
    return DataTable(inputs, [p[1] for p in pairs]) if with_outputs else DataTable(inputs)


def _runner(job: dict[str, Any], cache: Any) -> Any:
    """SAMMO's ``OpenAIChat``, turned into a completion-mode runner that counts its calls."""
    from sammo.base import LLMResult  # type: ignore[import-not-found]
    from sammo.runners import OpenAIChat  # type: ignore[import-not-found]
    from sammo.throttler import AtMost  # type: ignore[import-not-found]
    from sammo.utils import serialize_json  # type: ignore[import-not-found]

    stop = list(job["stop"])

    class CompletionRunner(OpenAIChat):  # type: ignore[misc]
        SUFFIX = "/completions"
        backend_calls = 0  # on the class: SAMMO's runners are symbolic objects
        prompts: dict[str, str] = {}

        async def generate_text(
            self,
            prompt: str,
            max_tokens: int | None = None,
            randomness: float | None = 0,
            seed: int = 0,
            priority: int = 0,
            **_: Any,
        ) -> Any:
            request = {
                "prompt": prompt,
                "temperature": randomness,
                "max_tokens": max_tokens,
                "stop": stop,
            }
            fingerprint = serialize_json(
                {"seed": seed, "generative_model_id": self._equivalence_class, **request}
            )
            return await self._execute_request(
                request | {"model": self._model_id}, fingerprint, priority
            )

        async def _call_backend(self, request: dict[str, Any]) -> dict[str, Any]:
            CompletionRunner.backend_calls += 1
            reply: dict[str, Any] = await super()._call_backend(request)
            return reply

        def _to_llm_result(self, request: dict[str, Any], json_data: Any, fingerprint: Any) -> Any:
            return LLMResult(
                json_data["choices"][0]["text"],
                costs=self._extract_costs(json_data),
                request_text=request["prompt"],
            )

    return CompletionRunner(
        model_id=job["model"],
        api_config={"api_key": "unused", "base_url": job["base_url"]},
        cache=cache,
        rate_limit=[AtMost(job["concurrency"], "running")],
        timeout=120,
    )


def _examples(job: dict[str, Any], k: int, draw: int) -> Any:
    """A section showing ``k`` train rows of random draw ``draw``, as static plain text."""
    from sammo.dataformatters import PlainFormatter  # type: ignore[import-not-found]
    from sammo.instructions import Section  # type: ignore[import-not-found]

    rows = random.Random(f"{job['seed']}/{k}/{draw}").sample(job["train"], k)
    text = PlainFormatter().format_datatable(_table(rows))
    return Section("Examples", text, reference_id="examples")


def _start(job: dict[str, Any]) -> Any:
    """The task's instruction, an empty examples slot, the input and an ``Output:`` cue."""
    from sammo.components import GenerateText, Output  # type: ignore[import-not-found]
    from sammo.dataformatters import PlainFormatter
    from sammo.instructions import InputData, MetaPrompt, Paragraph, Section

    formatter = PlainFormatter()
    prompt = MetaPrompt(
        [
            Section("Task", job["instructions"], reference_id="task"),
            Paragraph("", reference_id="examples"),
            InputData(reference_id="input"),
            Paragraph("Output:", reference_id="cue"),
        ],
        render_as="markdown",
        data_formatter=formatter,
        reference_id="prompt",
    )
    generate = GenerateText(prompt, max_tokens=job["max_tokens"], randomness=0)
    return Output(formatter.get_extractor(generate, on_error="empty_result"))


def _mutators(job: dict[str, Any]) -> list[Any]:
    from sammo.mutators import (  # type: ignore[import-not-found]
        ChangeSectionsFormat,
        DropIntro,
        RepeatSegment,
        ReplaceParameter,
    )

    counts = [k for k in EXAMPLE_COUNTS if k <= min(job["max_examples"], len(job["train"]))]
    choices = [_examples(job, k, d) for k in counts for d in range(DRAWS)]
    return [
        ReplaceParameter("#examples", choices),
        ChangeSectionsFormat("#prompt render_as", list(FORMATS)),
        DropIntro("#task"),
        RepeatSegment("#task", "#examples"),
    ]


def _answer(value: Any) -> str:
    """One output of SAMMO's extractor as text (a list holds one answer per input)."""
    while isinstance(value, list):
        value = value[0] if value else ""
    return "" if value is None else str(value)


def _accuracy(labels: list[str]) -> Any:
    """The objective SAMMO's search maximizes: exact label match after trimming and casefold."""
    from sammo.base import EvaluationScore

    def key(text: Any) -> str:
        first = next((ln for ln in _answer(text).splitlines() if ln.strip()), "")
        return first.strip().strip("'\"`*_").rstrip(".,;:!?").strip().casefold()

    def score(y_true: Any, y_pred: Any) -> Any:
        gold = [key(v) for v in y_true.outputs.values]
        pred = [key(v) for v in y_pred.outputs.values]
        hits = sum(g == p for g, p in zip(gold, pred, strict=True))
        return EvaluationScore(hits / len(gold) if gold else 0.0)

    return score


async def _run(job: dict[str, Any]) -> dict[str, Any]:
    from sammo.mutators import BagOfMutators
    from sammo.search import BeamSearch  # type: ignore[import-not-found]
    from sammo.store import InMemoryDict  # type: ignore[import-not-found]

    runner = _runner(job, cache=InMemoryDict())
    start = _start(job)
    search = BeamSearch(
        runner,
        BagOfMutators(start, *_mutators(job), seed=job["seed"]),
        _accuracy(job["labels"]),
        maximize=True,
        beam_width=WIDTH,
        depth=DEPTH,
        mutations_per_beam=CHILDREN,
        max_evals=job["budget"],
    )
    started = time.perf_counter()
    await search.afit_transform(_table(job["val"]))
    fit = search._state["fit"]  # SAMMO has no public accessor for its log of candidates
    test = _table(job["test"], with_outputs=False)
    replies = {}
    prompts = {}
    for role, program in (("start", start), ("best", search.best_prompt)):
        result = await program.arun(runner, test, progress_callback=False)
        replies[role] = [_answer(v) for v in result.outputs.values]
        prompts[role] = str(result.outputs.llm_requests[0][0])
    return {
        "method": f"BeamSearch {WIDTH}x{DEPTH}, {CHILDREN} per parent: examples (1-8 of train), "
        "section format, drop/repeat task; static plain examples",
        "candidates": len(fit),
        "calls": type(runner).backend_calls,
        "seconds": time.perf_counter() - started,
        "start_val": fit[0]["objective"],
        "best_val": search.best_score,
        "note": f"{len({repr(x['candidate']) for x in fit})} distinct of {len(fit)} candidates "
        "(a repeat is answered from SAMMO's cache); winner's edits, last first: "
        + " <- ".join(search.best.get("prev_actions", [])),
        "start_test_replies": replies["start"],
        "best_test_replies": replies["best"],
        "start_prompt": prompts["start"],
        "best_prompt": prompts["best"],
    }


def main() -> int:
    """Read a job on stdin, run it, print ``PEER_RESULT {...}``."""
    job = json.loads(sys.stdin.read())
    from importlib.metadata import version

    with contextlib.redirect_stdout(sys.stderr):  # progress bars must not mix with the result
        result = asyncio.run(_run(job))
    result["version"] = version("sammo")
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
