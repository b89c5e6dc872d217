"""Proposers learn from the training split only; validation only selects; test only reports.

Every split has inputs no other split has (a zebra, a walrus, a narwhal), and the runners
record every request, so a single validation or test input in a proposer prompt is caught,
through ``Search.run`` and through ``sammo-core optimize``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from mutators import (
    InduceInstructions,
    Mixture,
    Mutator,
    Paraphrase,
    ProposeFromHistory,
    TextGradient,
)
from sammo_core import DataTable, ScriptedRunner
from sammo_core.cli import main
from sammo_core.testing.chat_server import ChatServer
from search import BeamSearch, SearchBudget


def split(animal: str, n: int) -> DataTable:
    inputs = [f"Does the {animal} number {i} swim?" for i in range(n)]
    return DataTable(inputs, ["yes" if i % 2 else "no" for i in range(n)])


TRAIN, VAL, TEST = split("zebra", 12), split("walrus", 8), split("narwhal", 8)
HELD_OUT = ("walrus", "narwhal")
PROGRAM_TEXT = """\
from sammo_core import GenerateText, InputData, MetaPrompt, Output, Section

program = Output(GenerateText(MetaPrompt([
    Section("Task", ["Answer the question."]),
    Section("Question", [InputData()]),
])))
OBJECTIVE = "accuracy"
"""


def make_program() -> Any:
    namespace: dict[str, Any] = {}
    exec(PROGRAM_TEXT, namespace)
    return namespace["program"]


def propose(prompt: str, seed: int | None) -> str:
    """The proposer model: a critique for critique prompts, else a new instruction."""
    if "Give one reason" in prompt:
        return "The prompt does not say to answer yes or no."
    return f"Answer yes or no (version {seed})."


def task_answer(prompt: str) -> str:
    return "yes"  # half of every split is wrong: text gradients have errors to learn from


OPERATORS: dict[str, Any] = {
    "apo": TextGradient,
    "ape": InduceInstructions,
    "opro": ProposeFromHistory,
    "all": lambda: Mixture(
        [TextGradient(), InduceInstructions(), ProposeFromHistory(), Paraphrase()]
    ),
}
MARKERS = {
    "apo": "Give one reason",
    "ape": "I gave a friend",
    "opro": "earlier versions",
    "all": "Give one reason",
}


def assert_clean(prompts: list[str], kind: str) -> None:
    assert prompts, "the proposer was never asked"
    assert any(MARKERS[kind] in p for p in prompts)
    for prompt in prompts:
        for animal in HELD_OUT:
            assert animal not in prompt, f"a held-out input reached a proposer:\n{prompt}"
    if kind in ("apo", "ape"):
        assert any("zebra" in p for p in prompts)  # they do learn, from training rows


@pytest.mark.parametrize("kind", sorted(OPERATORS))
def test_search_run_keeps_validation_and_test_out_of_proposer_prompts(kind: str) -> None:
    task = ScriptedRunner(default=lambda r: task_answer(r.prompt_text))
    proposer = ScriptedRunner(default=lambda r: propose(r.prompt_text, r.seed))
    mutator: Mutator = OPERATORS[kind]()
    search = BeamSearch(mutator, width=2, depth=3, budget=SearchBudget(candidates=12), seed=1)
    result = asyncio.run(
        search.run(make_program(), train=TRAIN, val=VAL, test=TEST, runner=task, proposer=proposer)
    )
    assert len(result.candidates) > 1
    assert_clean(proposer.prompts, kind)
    # Every call is charged: the search's usage covers task (minibatches included) and proposer.
    assert result.usage.calls + result.test_usage.calls == task.calls + proposer.calls


def test_text_gradient_runs_training_minibatches_through_the_task_runner() -> None:
    task = ScriptedRunner(default=lambda r: task_answer(r.prompt_text))
    proposer = ScriptedRunner(default=lambda r: propose(r.prompt_text, r.seed))
    search = BeamSearch(
        TextGradient(minibatch=4), width=1, depth=2, budget=SearchBudget(calls=60), seed=0
    )
    result = asyncio.run(
        search.run(make_program(), train=TRAIN, val=VAL, test=TEST, runner=task, proposer=proposer)
    )
    zebras = [p for p in task.prompts if "zebra" in p]
    assert zebras and len(zebras) % 4 == 0  # whole minibatches of 4 training rows
    assert result.usage.calls <= 60


# -- the command line ------------------------------------------------------------------------


class Recorder:
    """A loopback model: records each request body; answers as task or proposer model."""

    def __init__(self) -> None:
        self.bodies: list[Mapping[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, body: Mapping[str, Any]) -> str:
        with self._lock:
            self.bodies.append(body)
        prompt = body["messages"][-1]["content"]
        if body["model"] == "proposer":
            return propose(prompt, body.get("seed"))
        return task_answer(prompt)

    def prompts(self, model: str) -> list[str]:
        return [b["messages"][-1]["content"] for b in self.bodies if b["model"] == model]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"program": tmp_path / "program.py"}
    paths["program"].write_text(PROGRAM_TEXT)
    for name, table in (("train", TRAIN), ("val", VAL), ("test", TEST)):
        paths[name] = tmp_path / f"{name}.jsonl"
        table.save(paths[name])
    return paths


def optimize(files: dict[str, Path], url: str, out: Path, *extra: str) -> int:
    return main(
        [
            "optimize", str(files["program"]), "--data", str(files["train"]),
            "--model", "task", "--base-url", url, "--timeout", "5", "--out", str(out), *extra,
        ]
    )  # fmt: skip


def test_cli_optimize_keeps_validation_and_test_out_of_proposer_prompts(
    files: dict[str, Path], tmp_path: Path
) -> None:
    recorder = Recorder()
    with ChatServer(reply=recorder) as server:
        code = optimize(
            files, server.base_url, tmp_path / "run",
            "--val-data", str(files["val"]), "--test-data", str(files["test"]),
            "--proposer-model", "proposer", "--operators", "apo,ape,opro,content",
            "--strategy", "beam", "--width", "2", "--depth", "2", "--budget", "10",
        )  # fmt: skip
    assert code == 0
    assert_clean(recorder.prompts("proposer"), "all")
    task_prompts = "\n".join(recorder.prompts("task"))
    assert "walrus" in task_prompts and "narwhal" in task_prompts  # selected on and reported
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["val_data"] == str(files["val"])
    assert meta["data_hash"] == {
        "train": TRAIN.content_hash(),
        "val": VAL.content_hash(),
        "test": TEST.content_hash(),
    }


def run_meta(files: dict[str, Path], url: str, out: Path, *extra: str) -> dict[str, Any]:
    assert optimize(files, url, out, "--budget", "1", *extra) == 0
    return dict(json.loads((out / "run.json").read_text())["data_hash"])


def test_val_data_keeps_the_users_partition_across_seeds(
    files: dict[str, Path], tmp_path: Path
) -> None:
    with ChatServer(reply=Recorder()) as server:
        url = server.base_url
        given = ("--val-data", str(files["val"]))
        fixed = [run_meta(files, url, tmp_path / f"v{s}", *given, "--seed", str(s)) for s in (0, 1)]
        drawn = [run_meta(files, url, tmp_path / f"d{s}", "--seed", str(s)) for s in (0, 1)]
    assert fixed[0]["val"] == fixed[1]["val"] == VAL.content_hash()
    # Without --test-data the test split is drawn from --data (train:test as in --split).
    assert fixed[0]["train"] != TRAIN.content_hash()
    # The default still draws every split from --data with the seed.
    assert drawn[0]["val"] != drawn[1]["val"]


def test_both_split_files_make_the_partition_seed_free(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    both = ("--val-data", str(files["val"]), "--test-data", str(files["test"]))
    with ChatServer(reply=Recorder()) as server:
        url = server.base_url
        runs = [run_meta(files, url, tmp_path / f"s{s}", *both, "--seed", str(s)) for s in (0, 1)]
        assert runs[0] == runs[1]
        assert runs[0]["train"] == TRAIN.content_hash()
        code = optimize(
            files, url, tmp_path / "x", "--budget", "1", *both, "--split", "0.6,0.2,0.2"
        )
    assert code != 0
    assert "--split '0.6,0.2,0.2' has no effect with both --val-data and --test-data" in (
        capsys.readouterr().err
    )
