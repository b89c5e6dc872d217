"""``bench run --ray ADDRESS`` on a real two-node Ray cluster (``ray start --head`` and a
second ``ray start --address`` on this machine): the same results as the one-process run, a
second run from the cache makes no request, and a worker killed mid-job changes no result and
repeats at most the calls it had in flight."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from sammo_core.testing.chat_server import ChatServer

pytestmark = pytest.mark.slow

if os.environ.get("SAMMO_REQUIRE_RAY") != "1":
    pytest.importorskip("ray", reason="needs the [ray] extra: pip install -e '.[ray]'")

ROOT = Path(__file__).resolve().parents[2]
#: The cluster's processes and its drivers: this checkout first; a loopback cluster of this
#: test's alone needs no token.
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"}
TASKS = "implicatures,navigate"
#: Keys whose values say what a run spent or how long it took: they differ between runs that
#: share a cache at different moments (which job paid a shared call first), never their results.
SPENT = frozenset(
    {
        "seconds",
        "date",
        "wall_seconds",
        "usage",
        "spent",
        "test_usage",
        "total_usage",
        "cached",
        "unattributed",
    }
)


def coin(request: Mapping[str, Any]) -> str:
    """A deterministic model: yes or no by the prompt's hash, so candidates score apart."""
    prompt = request["messages"][-1]["content"]
    return "yes" if hashlib.sha256(prompt.encode()).digest()[0] % 2 else "no"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        port: int = s.getsockname()[1]
        return port


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    # A session of its own: the cluster's processes are its group, stopped together at the end.
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=ENV,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a two-node local Ray cluster, one CPU each."""
    logs = tmp_path_factory.mktemp("ray-logs")
    # Outside Ray's default worker port range (10002-19999).
    port = next(p for p in iter(free_port, None) if p > 20000)
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus=1", "--disable-usage-stats"]
    head = _start(["--head", f"--port={port}", "--include-dashboard=false", *common], logs / "h")
    nodes = [head]
    try:
        _wait_for(logs / "h", head)
        nodes.append(_start([f"--address={address}", *common], logs / "n"))
        _wait_for(logs / "n", nodes[1])
        yield address
    finally:
        for node in reversed(nodes):
            _stop(node)


def _wait_for(log: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while "Ray runtime started" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"ray start failed: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.5)


def bench(server: ChatServer, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    """``sammo-core bench run instruction-tuning`` in a process of its own (a Ray driver)."""
    argv = [
        "bench", "run", "instruction-tuning", "--tasks", TASKS, "--max-rows", "6",
        "--budget", "4", "--model", "loopback", "--base-url", server.base_url,
        "--timeout", "20", "--out", str(out), *extra,
    ]  # fmt: skip
    code = "import sys; from sammo_core.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=ENV,
    )


def finished(process: subprocess.Popen[bytes]) -> None:
    _, err = process.communicate(timeout=240)
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]


def normal(data: Any) -> Any:
    """``data`` without what a run spent and when: what must match between two runs."""
    if isinstance(data, dict):
        record = "run_dir" in data  # a task's record: its calls and dollars are spent too
        return {
            k: normal(v)
            for k, v in data.items()
            if k not in SPENT
            and not k.startswith("spent_")
            and not (record and k in ("calls", "usd"))
        }
    if isinstance(data, list):
        return [normal(v) for v in data]
    return data


def contents(out: Path) -> dict[str, Any]:
    """Every result file of a bench folder, normalized."""
    found: dict[str, Any] = {}
    for path in sorted(out.rglob("*")):
        name = str(path.relative_to(out))
        if not path.is_file() or path.suffix in (".png", ".html", ".md"):
            continue  # the reports print times; results.json holds what they show
        if path.name in ("usage.jsonl", "cluster-usage.jsonl", ".lock"):
            continue  # spent calls
        if path.suffix == ".json":
            found[name] = normal(json.loads(path.read_text()))
        elif path.suffix == ".jsonl":
            found[name] = [normal(json.loads(line)) for line in path.read_text().splitlines()]
        else:
            found[name] = path.read_bytes()
    return found


def test_two_nodes_give_the_one_process_results_and_a_rerun_makes_no_request(
    cluster: str, tmp_path: Path
) -> None:
    with ChatServer(reply=coin) as server:
        finished(bench(server, tmp_path / "one", "--seeds", "0,1", "--cache", str(tmp_path / "a")))
        one = server.stats().completions
        cache = str(tmp_path / "b.sqlite")
        finished(
            bench(server, tmp_path / "ray", "--seeds", "0,1", "--cache", cache, "--ray", cluster)
        )
        paid = server.stats().completions - one
        finished(
            bench(server, tmp_path / "again", "--seeds", "0,1", "--cache", cache, "--ray", cluster)
        )
        assert server.stats().completions - one == paid  # the second run: 0 requests
    expected = contents(tmp_path / "one")
    assert len([k for k in expected if k.endswith("trace.jsonl")]) == 4  # 2 tasks x 2 seeds
    assert contents(tmp_path / "ray") == expected
    assert contents(tmp_path / "again") == expected
    # Concurrent jobs may both pay a prompt they share (the start program's, across seeds).
    assert one <= paid <= 2 * one
    journal = (tmp_path / "ray" / "cluster-usage.jsonl").read_text().splitlines()
    assert sum(json.loads(line)["kind"] == "sent" for line in journal) == paid


def test_a_worker_killed_mid_job_changes_no_result(cluster: str, tmp_path: Path) -> None:
    concurrency = 2
    limit = ["--concurrency", str(concurrency)]
    with ChatServer(reply=coin) as server:
        finished(bench(server, tmp_path / "one", *limit, "--cache", str(tmp_path / "a")))
        clean = server.stats().completions
    with ChatServer(reply=coin, latency=0.2) as server:
        run = bench(
            server, tmp_path / "ray", *limit, "--cache", str(tmp_path / "b"), "--ray", cluster
        )
        while server.stats().completions < clean // 4:
            assert run.poll() is None, run.stderr.read().decode() if run.stderr else ""
            time.sleep(0.05)
        workers = _job_processes()
        assert workers, "no Ray worker runs a job"
        os.kill(workers[0], signal.SIGKILL)
        finished(run)
        paid = server.stats().completions
    assert contents(tmp_path / "ray") == contents(tmp_path / "one")
    # Ray ran the job again, and the new attempt went on from the lost one's checkpoint.
    opened = [
        path.read_text().count('"kind":"open"') for path in (tmp_path / "ray").rglob("usage.jsonl")
    ]
    assert sorted(opened) == [1, 2]
    # The killed worker's finished calls were in the cache: only those in flight were repeated.
    assert clean <= paid <= clean + concurrency


def _job_processes() -> list[int]:
    """Ray worker processes running a bench job now (Ray titles them ``ray::run_job``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if command.startswith(b"ray::run_job"):
                found.append(int(entry.name))
    return found


def test_three_tasks_three_seeds_on_two_nodes_with_the_postgresql_cache(
    cluster: str, pg_url: str, tmp_path: Path
) -> None:
    """The issue's whole setting: a 3-task x 3-seed suite, 50 ms per call, on the two-node
    cluster with one PostgreSQL cache: the one-process results, a rerun with 0 requests, and a
    rate limit held across the workers (the server's own per-second counts)."""
    three = ["--tasks", "implicatures,navigate,sports_understanding", "--seeds", "0,1,2"]
    rpm = 600  # 10 a second for the cluster as a whole
    with ChatServer(reply=coin, latency=0.05) as server:
        finished(bench(server, tmp_path / "one", *three, "--cache", str(tmp_path / "a.sqlite")))
        one = server.stats().completions
        start = time.monotonic()
        ray_run = [*three, "--cache", pg_url, "--rpm", str(rpm), "--ray", cluster]
        finished(bench(server, tmp_path / "ray", *ray_run))
        paid = server.stats().completions - one
        finished(bench(server, tmp_path / "again", *ray_run))
        assert server.stats().completions - one == paid  # the rerun: 0 requests
        seconds: dict[int, int] = {}
        for record in server.stats().records:
            if record.started >= start:
                second = int(record.started - start)
                seconds[second] = seconds.get(second, 0) + 1
    expected = contents(tmp_path / "one")
    assert len([k for k in expected if k.endswith("trace.jsonl")]) == 9  # 3 tasks x 3 seeds
    assert contents(tmp_path / "ray") == expected
    assert contents(tmp_path / "again") == expected
    assert one <= paid <= 2 * one
    # A token bucket of 10 a second with a burst of its size: never 20 in one second.
    assert max(seconds.values()) <= 2 * rpm // 60
