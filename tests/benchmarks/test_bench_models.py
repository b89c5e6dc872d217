"""bench run with --model more than once: each task's candidates scored on every model, the
records holding each model's scores and calls."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from benchmarks.datasets import load_sammo_instruction_tuning
from sammo_core.testing.chat_server import ChatServer
from tests.benchmarks.test_bench import Oracle, run_suite

SEEN: Counter[str] = Counter()


class TwoModels(Oracle):
    """Model "right" is the oracle; model "wrong" answers "unknown" to everything."""

    def __call__(self, request: Mapping[str, Any]) -> str:
        SEEN[request["model"]] += 1
        return super().__call__(request) if request["model"] == "right" else "unknown"


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[ChatServer]:
    s = load_sammo_instruction_tuning(data_dir, "implicatures")
    with ChatServer(reply=TwoModels(s.val, s.test)) as chat:
        yield chat


def test_bench_scores_each_candidate_on_every_model(server: ChatServer, tmp_path: Path) -> None:
    SEEN.clear()
    out = tmp_path / "two"
    code = run_suite(
        server, out, "quick", "--tasks", "implicatures", "--max-rows", "6", "--budget", "3",
        "--model", "wrong", "--across", "min",
    )  # fmt: skip
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["models"] == ["loopback", "wrong"] and results["across"] == "min"
    record = results["tasks"]["implicatures"]
    assert set(record["usage_by_model"]) == {"loopback", "wrong"}
    assert (
        record["usage_by_model"]["loopback"]["calls"] == record["usage_by_model"]["wrong"]["calls"]
    )
    tests = record["optimized"]["test_scores"]
    assert tests["label_accuracy@wrong"]["value"] == 0.0
    # --across min: the combined score is the worst model's.
    assert tests["label_accuracy"]["value"] == 0.0
    assert SEEN["wrong"] > 0 and SEEN["loopback"] == SEEN["wrong"]
    chat = {"mode": "chat", "stop": []}
    assert record["call_settings"] == {"loopback": chat, "wrong": chat}


def test_bench_with_several_models_refuses_ray_and_racing(
    server: ChatServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for extra, expected in (("--racing", "halving"), ("--ray", "")):
        argv = ["--model", "wrong", extra] + ([expected] if expected else [])
        code = run_suite(server, tmp_path / extra.strip("-"), "quick", *argv)
        err = capsys.readouterr().err
        assert code != 0 and "Traceback" not in err
        assert ("use --racing off" in err) if extra == "--racing" else ("drop --ray" in err)
