"""Throughput of ``bench run --ray`` with 1, 2 and 4 workers, and the Ray path's cost per request.

Part a runs one suite (default: ``instruction-tuning``, 3 tasks x 3 seeds, small splits)
against a loopback :class:`~sammo_core.testing.chat_server.ChatServer` with a fixed latency:
once in one process, then on a local Ray cluster of 1, 2 and 4 workers, each time with no cache
(every run makes its calls). The slots (``--concurrency``) are held cluster-wide, so the ideal
time is ``requests x latency / concurrency``; ``efficiency`` is that over the server's busy span
(from the first request's start to the last one's end: the cluster's start-up is not in it;
the ``wall`` column has it). One job rarely fills every slot (a search step scores a few
candidates on a few rows), so more workers, running more jobs at once, fill more of them.

Part b times the Ray path per request: ``N`` distinct requests at a given concurrency against the
server at zero latency, through the backend alone and through
:class:`~sammo_core.runners.shared_limits.SharedLimitsRunner` asking a
:class:`~sammo_core.runners.shared_limits.SharedLimits` actor (a round trip to acquire a slot,
one message to give it back), from a Ray worker. The difference per request is what the actor
adds; its own CPU per request bounds the request rate one actor serves.

    python -m benchmarks.harness.ray_speed                     # about 2 minutes on two cores
    python -m benchmarks.harness.ray_speed --workers 1,2 --requests 200

It reports; it exits 0 whatever it measured (1 without Ray: install ``sammo-core[ray]``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sammo_core.testing.chat_server import ChatServer

__all__ = ["main", "per_request_cost", "suite_run"]


def _ints(text: str) -> list[int]:
    """``1,2,4`` as ``[1, 2, 4]``.

    >>> _ints("1,2,4")
    [1, 2, 4]
    """
    return [int(x) for x in text.split(",") if x.strip()]


def _span(server: ChatServer, since: int) -> tuple[int, float]:
    """Completions answered after the first ``since`` records, and their busy span."""
    records = [r for r in server.records[since:] if r.path.endswith("/completions")]
    if not records:
        return 0, 0.0
    return len(records), max(r.finished for r in records) - min(r.started for r in records)


def suite_run(server: ChatServer, args: argparse.Namespace, workers: int | None) -> dict[str, Any]:
    """One ``bench run`` of the suite (``workers=None``: in this process); its figures."""
    from sammo_core.cli import main as cli

    since = len(server.records)
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            "bench", "run", args.suite, "--tasks", args.tasks, "--seeds", args.seeds,
            "--max-rows", str(args.max_rows), "--budget", str(args.budget),
            "--model", "loopback", "--base-url", server.base_url,
            "--concurrency", str(args.concurrency), "--out", str(Path(tmp) / "out"),
        ]  # fmt: skip
        if workers is not None:
            argv += ["--ray", "--ray-workers", str(workers)]
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = cli(argv)
        wall = time.perf_counter() - started
    requests, span = _span(server, since)
    ideal = requests * server.latency / args.concurrency
    return {
        "path": "one process" if workers is None else f"Ray, {workers} worker(s)",
        "code": code,
        "requests": requests,
        "wall": wall,
        "span": span,
        "ideal": ideal,
        "efficiency": ideal / span if span else 0.0,
        "max_in_flight": server.stats().max_in_flight,
    }


def _timed_calls(base_url: str, n: int, concurrency: int, limits: Any, tag: str) -> list[float]:
    """In a Ray worker: wall and CPU seconds of ``n`` requests, plain and through ``limits``."""
    from sammo_core.runners.base import LLMRequest
    from sammo_core.runners.openai_runner import OpenAIRunner
    from sammo_core.runners.shared_limits import SharedLimitsRunner

    async def timed(shared: bool, offset: int) -> tuple[float, float]:
        backend = OpenAIRunner("loopback", base_url=base_url, max_concurrency=concurrency)
        runner: Any = SharedLimitsRunner(backend, limits, tag) if shared else backend
        requests = [LLMRequest.from_prompt(f"{tag} {offset + i}", max_tokens=4) for i in range(n)]
        await runner.generate_many(requests[:concurrency])  # warm: connections, imports
        start, cpu = time.perf_counter(), time.process_time()
        await runner.generate_many(requests[concurrency:])
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        await runner.aclose()
        return wall, cpu

    plain = asyncio.run(timed(False, 0))
    shared = asyncio.run(timed(True, 10 * n))
    return [*plain, *shared]


def per_request_cost(args: argparse.Namespace) -> dict[str, float]:
    """Part b: ms per request, plain and through the actor (see the module docstring)."""
    import ray

    from sammo_core.runners.shared_limits import start_ray_limits

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        with ChatServer() as server:
            limits = start_ray_limits(args.concurrency)
            actor_pid = ray.get(limits.handle.__ray_call__.remote(lambda self: os.getpid()))
            actor_cpu = _cpu_seconds(actor_pid)
            work = ray.remote(num_cpus=1)(_timed_calls)
            n = args.requests + args.concurrency
            wall, cpu, shared_wall, shared_cpu = ray.get(
                work.remote(server.base_url, n, args.concurrency, limits, "b")
            )
            actor_cpu = _cpu_seconds(actor_pid) - actor_cpu
    finally:
        ray.shutdown()
    per = 1000.0 / args.requests
    return {
        "plain_wall_ms": wall * per,
        "plain_cpu_ms": cpu * per,
        "ray_wall_ms": shared_wall * per,
        "ray_cpu_ms": shared_cpu * per,
        "actor_cpu_ms": actor_cpu * per,
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: Sequence[str] | None = None) -> int:
    """Run parts a and b and print their tables."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.harness.ray_speed", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--suite", default="instruction-tuning")
    parser.add_argument("--tasks", default="implicatures,navigate,sports_understanding")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--max-rows", type=int, default=8)
    parser.add_argument("--budget", type=int, default=4, help="candidates per search")
    parser.add_argument("--latency", type=float, default=0.05, help="server seconds per request")
    parser.add_argument("--concurrency", type=int, default=8, help="slots, cluster-wide")
    parser.add_argument("--workers", type=_ints, default=[1, 2, 4], help="e.g. 1,2,4")
    parser.add_argument("--requests", type=int, default=400, help="part b's requests")
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 110))
    try:
        import ray  # noqa: F401
    except ImportError:
        console.print("ray_speed needs Ray: pip install 'sammo-core[ray]'")
        return 1
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # local clusters of this process only
    rows = []
    with ChatServer(latency=args.latency) as server:
        for workers in [None, *args.workers]:
            server.reset()
            rows.append(suite_run(server, args, workers))
    table = Table(
        title=f"a. {args.suite} ({args.tasks}; seeds {args.seeds}), loopback at "
        f"{args.latency * 1000:.0f} ms, {args.concurrency} slots cluster-wide"
    )
    for column in ("path", "requests", "wall s", "busy span s", "ideal s", "efficiency", "peak"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for r in rows:
        table.add_row(
            r["path"] + ("" if r["code"] == 0 else f" (exit {r['code']})"),
            f"{r['requests']:,}",
            f"{r['wall']:.1f}",
            f"{r['span']:.2f}",
            f"{r['ideal']:.2f}",
            f"{r['efficiency']:.0%}",
            str(r["max_in_flight"]),
        )
    console.print(table)
    cost = per_request_cost(args)
    table = Table(
        title=f"b. per request, {args.requests} requests at concurrency {args.concurrency}, "
        "server at 0 ms, from one Ray worker"
    )
    for column in ("path", "wall ms/req", "worker CPU ms/req", "actor CPU ms/req"):
        table.add_column(column, justify="left" if column == "path" else "right")
    table.add_row(
        "backend alone", f"{cost['plain_wall_ms']:.2f}", f"{cost['plain_cpu_ms']:.2f}", "-"
    )
    table.add_row(
        "through the SharedLimits actor",
        f"{cost['ray_wall_ms']:.2f}",
        f"{cost['ray_cpu_ms']:.2f}",
        f"{cost['actor_cpu_ms']:.2f}",
    )
    console.print(table)
    rate = 1000.0 / cost["actor_cpu_ms"] if cost["actor_cpu_ms"] > 0 else float("inf")
    console.print(
        f"Ray path adds {cost['ray_wall_ms'] - cost['plain_wall_ms']:+.2f} ms wall and "
        f"{cost['ray_cpu_ms'] - cost['plain_cpu_ms']:+.2f} ms worker CPU per request; one actor "
        f"serves at most about {rate:,.0f} requests/s at its CPU cost. Load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
