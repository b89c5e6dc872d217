"""bench run writes the priors of a suite (task by task, seeds summed), and --priors starts
each task from the OTHER tasks' priors, never its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.datasets import load_sammo_instruction_tuning
from sammo_core.testing.chat_server import ChatServer
from tests.benchmarks.test_bench import Picky, run_suite

RUN = ("quick", "--max-rows", "8", "--budget", "3")


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[ChatServer]:
    tables = []
    for task in ("implicatures", "sports_understanding"):
        s = load_sammo_instruction_tuning(data_dir, task)
        tables += [s.val, s.test]
    with ChatServer(reply=Picky(*tables)) as chat:
        yield chat


def test_bench_writes_suite_priors_and_leaves_each_task_out_of_its_own(
    server: ChatServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "first"
    assert run_suite(server, first, *RUN, "--seeds", "0,1") == 0
    priors = json.loads((first / "priors.json").read_text())
    assert set(priors["tasks"]) == {"implicatures", "sports_understanding"}
    results = json.loads((first / "results.json").read_text())
    for name, learned in priors["tasks"].items():
        # Both seeds' children counted, operator by operator.
        tries = sum(
            op["tries"]
            for seed in results["seeds"]
            for op in seed["tasks"][name]["search"]["operators_stats"]
        )
        assert sum(op["tries"] for op in learned["operators"].values()) == tries > 0
    capsys.readouterr()

    second = tmp_path / "second"
    assert run_suite(server, second, *RUN, "--priors", str(first / "priors.json")) == 0
    err = capsys.readouterr().err
    assert err.count("priors of 1 task:") == 2  # each task steered by the other one only
    results = json.loads((second / "results.json").read_text())
    assert results["options"]["priors"] == str(first / "priors.json")
    for name, record in results["tasks"].items():
        assert record["priors_from"] == [t for t in priors["tasks"] if t != name]


def test_bench_refuses_a_priors_file_that_is_not_one(
    server: ChatServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    code = run_suite(server, tmp_path / "out", *RUN, "--priors", str(bad))
    err = capsys.readouterr().err
    assert code != 0 and "not a priors file" in err and "Traceback" not in err
