"""Hardening, second round (issue 19): two processes, locks, signals, and numbers a cache can bend.

Each case runs the command line from the outside (a subprocess ``python -m sammo_core.cli``, or
``main([...])`` in this process) against the loopback chat server, and checks what a user would
see: exit codes, the one line on stderr, the files in the run folder, and the server's own count
of the requests it answered against the counts the run reports.

``CASES`` names each case with what it did before the fix (measured on the code before it).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from sammo_core.cli import main
from sammo_core.processes import LOCK_FILE
from sammo_core.runners import LLMRequest, Message
from sammo_core.runners.cache import BUSY_TIMEOUT_ENV
from sammo_core.testing.chat_server import ChatServer
from sammo_core.testing.synthetic import answer, items

ROOT = Path(__file__).parents[2]
PROGRAM = """\
from sammo_core.testing.synthetic import start_program

program = start_program()
OBJECTIVE = "accuracy"
"""
BENCH = ("quick", "--tasks", "implicatures", "--max-rows", "8", "--budget", "2")


def synthetic(body: Mapping[str, Any]) -> str:
    """The loopback server answers like the synthetic model (sammo_core.testing.synthetic)."""
    messages = tuple(Message(m["role"], m["content"]) for m in body["messages"])
    return answer(LLMRequest(messages=messages))


@dataclasses.dataclass
class Files:
    """A program, its data (30 rows: 20 train, 10 validation) and a test split of 10 rows."""

    root: Path

    def __post_init__(self) -> None:
        (self.root / "program.py").write_text(PROGRAM)
        items(30).save(self.root / "data.jsonl")
        items(10, start=9000).save(self.root / "test.jsonl")

    def run(self, url: str, *extra: str) -> list[str]:
        return [
            *("run", str(self.root / "program.py"), "--data", str(self.root / "data.jsonl")),
            *("--model", "loopback", "--base-url", url, "--timeout", "10", *extra),
        ]

    def optimize(self, url: str, out: Path, *extra: str) -> list[str]:
        return [
            *("optimize", str(self.root / "program.py"), "--data", str(self.root / "data.jsonl")),
            *("--test-data", str(self.root / "test.jsonl"), "--model", "loopback"),
            *("--base-url", url, "--strategy", "beam", "--operators", "structure,examples"),
            *("--width", "2", "--depth", "2", "--seed", "0", "--out", str(out)),
            *("--timeout", "10", *extra),
        ]


def bench(url: str, out: Path, *extra: str) -> list[str]:
    return [
        *("bench", "run", *BENCH, "--model", "loopback", "--base-url", url),
        *("--timeout", "10", "--out", str(out), *extra),
    ]


def spawn(argv: list[str], **env: str) -> subprocess.Popen[str]:
    """``sammo-core ARGV`` in a new process, with this checkout's packages first."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.Popen(
        [sys.executable, "-m", "sammo_core.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        cwd=ROOT,
    )


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str) -> None:
    """Wait until ``condition()`` holds while ``proc`` runs (generous: a busy machine)."""
    deadline = time.monotonic() + 120
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended (exit {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no {what} within 120 s")
        time.sleep(0.02)


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def holds_lock(folder: Path) -> Callable[[], bool]:
    """Whether a process wrote its pid into the folder's lock file (it holds the lock then)."""
    return lambda: (folder / LOCK_FILE).is_file() and bool((folder / LOCK_FILE).read_text())


def one_error_line(err: str) -> str:
    """The ``error:`` line of stderr; there is exactly one, and no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def bench_data() -> Iterator[None]:
    from benchmarks.datasets import resolve_data_dir
    from sammo_core.errors import ConfigError

    try:
        resolve_data_dir()
    except ConfigError as exc:
        pytest.skip(f"benchmark data not available ({exc})")
    yield


# -- 1. one process per folder --------------------------------------------------------------------


def two_optimize_runs_on_one_out(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files, out = Files(tmp), tmp / "run"
    with ChatServer(reply=synthetic, latency=0.05) as server:
        first = spawn(files.optimize(server.base_url, out, "--budget", "4"))
        wait_for(holds_lock(out), first, "the first run took its folder")
        capsys.readouterr()
        second = main(files.optimize(server.base_url, out, "--budget", "6", "--force"))
        err = capsys.readouterr().err
        code, _ = finish(first)
    assert second == 1
    line = one_error_line(err)
    assert f"--out {str(out)!r} is in use by process {first.pid} (" in line
    assert f"process {first.pid} (sammo-core optimize " in line  # the other process's command
    assert code == 0
    assert json.loads((out / "run.json").read_text())["budget"] == "4"  # the first run's alone
    assert json.loads((out / "result.json").read_text())["candidates"] <= 4


def two_runs_on_one_out(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files, out = Files(tmp), tmp / "out"
    with ChatServer(reply=synthetic, latency=0.05) as server:
        first = spawn(files.run(server.base_url, "--concurrency", "1", "--out", str(out)))
        wait_for(holds_lock(out), first, "the first run took its folder")
        capsys.readouterr()
        second = main(files.run(server.base_url, "--limit", "2", "--out", str(out)))
        err = capsys.readouterr().err
        code, _ = finish(first)
    assert second == 1
    assert f"is in use by process {first.pid} (" in one_error_line(err)
    assert code == 0
    assert json.loads((out / "results.json").read_text())["rows"] == 30  # the first run's


def two_bench_runs_on_one_out(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp / "bench"
    with ChatServer(latency=0.05) as server:
        first = spawn(bench(server.base_url, out))
        wait_for(holds_lock(out), first, "the first bench took its folder")
        capsys.readouterr()
        second = main(bench(server.base_url, out, "--resume"))
        err = capsys.readouterr().err
        code, _ = finish(first)
    assert second == 1
    assert f"is in use by process {first.pid} (" in one_error_line(err)
    assert code == 0


# -- 2. a cache another process holds locked ------------------------------------------------------


def a_cache_locked_by_another_process(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files, cache = Files(tmp), tmp / "cache.sqlite"
    with ChatServer(reply=synthetic) as server:
        assert main(files.run(server.base_url, "--limit", "1", "--cache", str(cache))) == 0
        holder = sqlite3.connect(cache, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process writes for a long time
        try:
            server.reset()
            run = files.run(server.base_url, "--limit", "20", "--concurrency", "1")
            run += ["--cache", str(cache), "--out", str(tmp / "out")]
            code, err = finish(spawn(run, **{BUSY_TIMEOUT_ENV: "1"}))
            paid = server.stats().requests
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert code == 1
        assert f"cache {cache} is locked by another process; keeping answers in memory" in err
        line = one_error_line(err)
        assert f"error: cache {str(cache)!r} stayed locked by another process for 1 s" in line
        spilled = list(tmp.glob("cache.sqlite.pending-*.jsonl"))
        assert len(spilled) == 1
        assert f"not in it ({paid} so far) go to {str(spilled[0])!r} and join the cache" in line
        assert 0 < paid < 19
        results = json.loads((tmp / "out" / "results.json").read_text())
        assert results["partial"] is True
        server.reset()
        assert main(run[:-2]) == 0  # the lock is gone: every answer paid is served from cache
        assert server.stats().requests == 19 - paid
    assert not list(tmp.glob("cache.sqlite.pending-*.jsonl"))  # taken into the cache


# -- 3. SIGTERM is Ctrl-C -------------------------------------------------------------------------


def sigterm_during_run(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files, out = Files(tmp), tmp / "out"
    with ChatServer(reply=synthetic, latency=0.2) as server:
        proc = spawn(files.run(server.base_url, "--concurrency", "1", "--out", str(out)))
        wait_for(lambda: server.stats().requests >= 3, proc, "three rows were asked")
        proc.send_signal(signal.SIGTERM)
        code, err = finish(proc)
    assert code == 143
    assert "interrupted (SIGTERM)" in err and "Traceback" not in err
    results = json.loads((out / "results.json").read_text())
    assert results["partial"] is True
    assert results["stopped"] == "interrupted (SIGTERM)"
    rows = (out / "predictions.jsonl").read_text().splitlines()
    assert 2 <= len(rows) == results["rows"] < 30


def sigterm_during_optimize(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files, out = Files(tmp), tmp / "run"
    with ChatServer(reply=synthetic, latency=0.02) as server:
        proc = spawn(files.optimize(server.base_url, out, "--budget", "6"))
        wait_for((out / "checkpoint.json").is_file, proc, "the first checkpoint")
        proc.send_signal(signal.SIGTERM)
        code, err = finish(proc)
        assert code == 143, err
        assert "interrupted (SIGTERM)" in err and "continue with --resume" in err
        assert "Traceback" not in err
        assert not (out / "result.json").exists()
        assert main(files.optimize(server.base_url, out, "--budget", "6", "--resume")) == 0
    assert json.loads((out / "result.json").read_text())["candidates"] <= 6


def sigterm_during_bench(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp / "bench"
    with ChatServer(latency=0.05) as server:
        proc = spawn(bench(server.base_url, out))
        wait_for(lambda: server.stats().requests >= 3, proc, "the search began")
        proc.send_signal(signal.SIGTERM)
        code, err = finish(proc)
        assert code == 143, err
        assert "interrupted (SIGTERM)" in err and "Traceback" not in err
        assert json.loads((out / "results.json").read_text())["stopped"] == (
            "interrupted (SIGTERM)"
        )
        assert main(bench(server.base_url, out, "--resume")) == 0
    results = json.loads((out / "results.json").read_text())
    assert "stopped" not in results and "implicatures" in results["tasks"]


# -- 4. --resume of a finished run ----------------------------------------------------------------


def resume_of_a_finished_optimize(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files, out = Files(tmp), tmp / "run"
    with ChatServer(reply=synthetic) as server:
        assert main(files.optimize(server.base_url, out, "--budget", "4")) == 0
        first = server.stats().requests
        before = json.loads((out / "result.json").read_text())
        server.reset()
        capsys.readouterr()
        assert main(files.optimize(server.base_url, out, "--budget", "4", "--resume")) == 0
        again = server.stats().requests
    assert before["total_usage"]["calls"] == first  # every request the server answered
    assert again == 0
    assert f"the run in {out} had finished" in capsys.readouterr().err
    after = json.loads((out / "result.json").read_text())
    assert after["total_usage"]["calls"] == first
    assert after["best"]["test_scores"] == before["best"]["test_scores"]


def bench_resume_of_a_finished_search(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The search and its test report finished, but results.json lost the record (the
    process stopped between the two): the resume takes the report from the checkpoint."""
    out = tmp / "bench"
    with ChatServer() as server:
        assert main(bench(server.base_url, out)) == 0
        first = server.stats().requests
        (out / "results.json").unlink()
        server.reset()
        assert main(bench(server.base_url, out, "--resume")) == 0
        again = server.stats().requests
    record = json.loads((out / "results.json").read_text())["tasks"]["implicatures"]
    assert again == 0
    assert record["calls"] == first


# -- 5. a calls budget does not depend on the cache -----------------------------------------------


def calls_budget_on_a_warm_cache(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files, cache = Files(tmp), str(tmp / "cache.sqlite")
    budget = ("--budget", "candidates=40,calls=60", "--cache", cache)
    results, requests = [], []
    with ChatServer(reply=synthetic) as server:
        for name, extra in (("cold", ()), ("warm", ()), ("replay", ("--replay",))):
            server.reset()
            assert main(files.optimize(server.base_url, tmp / name, *budget, *extra)) == 0
            requests.append(server.stats().requests)
            results.append(json.loads((tmp / name / "result.json").read_text()))
    cold, warm, replay = results
    assert cold["candidates"] == warm["candidates"] == replay["candidates"]
    assert cold["best"]["id"] == warm["best"]["id"] == replay["best"]["id"]
    assert requests == [cold["total_usage"]["calls"], 0, 0]
    for r in results:  # the search made its 60 calls each time; what it paid differs
        assert r["usage"]["calls"] + r["usage"]["cache_hits"] == 60
    assert (cold["usage"]["calls"], warm["usage"]["calls"]) == (60, 0)


@dataclasses.dataclass(frozen=True)
class Case:
    check: Callable[[Path, pytest.CaptureFixture[str]], None]
    before: str
    needs_bench_data: bool = False


CASES: dict[str, Case] = {
    "two optimize runs, one --out": Case(
        two_optimize_runs_on_one_out, "both exit 0; one folder mixes both runs"
    ),
    "two runs, one run --out": Case(two_runs_on_one_out, "both exit 0 into one folder"),
    "two bench runs, one --out": Case(
        two_bench_runs_on_one_out, "both exit 0 into one folder", needs_bench_data=True
    ),
    "cache locked by another process": Case(
        a_cache_locked_by_another_process,
        "a traceback (database is locked) after 30 s; the answer paid is lost",
    ),
    "SIGTERM during run": Case(sigterm_during_run, "exit -15, nothing written"),
    "SIGTERM during optimize": Case(sigterm_during_optimize, "exit -15"),
    "SIGTERM during bench run": Case(
        sigterm_during_bench, "exit -15, nothing marked", needs_bench_data=True
    ),
    "--resume of a finished optimize": Case(
        resume_of_a_finished_optimize, "10 test requests again, not in total_usage"
    ),
    "bench --resume of a finished search": Case(
        bench_resume_of_a_finished_search,
        "8 test requests again, not in the record's calls",
        needs_bench_data=True,
    ),
    "calls budget on a warm cache": Case(
        calls_budget_on_a_warm_cache, "7 candidates cold, 13 warm; --replay of the warm misses"
    ),
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", BUSY_TIMEOUT_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("name", list(CASES))
def test_case(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    case = CASES[name]
    if case.needs_bench_data:
        request.getfixturevalue("bench_data")
    case.check(tmp_path, capsys)
