"""Throughput of :class:`~sammo_core.runners.openai_runner.OpenAIRunner` against a local server.

Starts a :class:`~sammo_core.testing.ChatServer` with a fixed latency and sends N distinct
requests through one runner at a given concurrency. With perfect overlap the run takes
``ideal = N * latency / concurrency`` seconds; ``efficiency = ideal / wall`` shows how much the
client, the event loop and the server add (the target is at least 90 %). A benchmark reports:
it exits 0 whatever it measured; ``--check`` makes a size below ``--target`` exit 1.

Run it with::

    python -m benchmarks.harness.throughput                 # N = 400 and 2000 at concurrency 32
    python -m benchmarks.harness.throughput --rows 1000 --latency 0.1 --concurrency 64
    python -m benchmarks.harness.throughput --concurrency-sweep 1,8,32,128 --sweep-rows 400
    python -m benchmarks.harness.throughput --cache               # plus a second run from the cache
    python -m benchmarks.harness.throughput --check               # exit 1 below the 90 % target

The server runs in a child process (``python -m sammo_core.testing.chat_server``), so that it does
not share the interpreter lock with the client; ``--server thread`` runs it in this process. The
``cpu ms/req`` column is this process's CPU time per request: the client's cost, which is what
limits throughput at high concurrency (the target is at most 0.5 ms). ``server ms/req`` is the
child server's CPU time per request (Linux; ``-`` elsewhere and with ``--server thread``, where
the first column holds both). On a machine that other work loads, the wall-time efficiency falls
with the load, while CPU per request moves far less: compare runs by CPU per request, and read
efficiency only on a quiet machine (the load average is printed beside the table).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.harness.tables import figures_table
from sammo_core.runners.accounting import AccountingRunner, Usage
from sammo_core.runners.base import LLMRequest, Runner
from sammo_core.runners.cache import Cache, CachedRunner
from sammo_core.runners.openai_runner import OpenAIRunner
from sammo_core.runners.retry import RetryPolicy
from sammo_core.testing.chat_server import ChatServer

__all__ = ["Measurement", "main", "measure"]


@dataclasses.dataclass(frozen=True, slots=True)
class Measurement:
    """One timed run of ``rows`` requests at ``concurrency``."""

    label: str
    rows: int
    concurrency: int
    latency: float
    wall: float
    cpu: float = 0.0
    server_cpu: float | None = None

    @property
    def ideal(self) -> float:
        return self.rows * self.latency / self.concurrency

    @property
    def efficiency(self) -> float:
        return self.ideal / self.wall if self.wall > 0 else float("inf")

    @property
    def requests_per_second(self) -> float:
        return self.rows / self.wall if self.wall > 0 else float("inf")

    @property
    def cpu_ms_per_request(self) -> float:
        """CPU time of this process (the client; the server too with ``--server thread``)."""
        return 1000.0 * self.cpu / self.rows

    @property
    def server_cpu_ms_per_request(self) -> float | None:
        """CPU time of the server's child process per request, where it was measured."""
        return None if self.server_cpu is None else 1000.0 * self.server_cpu / self.rows


def make_requests(rows: int, offset: int = 0) -> list[LLMRequest]:
    """``rows`` distinct requests (the offset keeps runs from repeating each other's prompts)."""
    return [
        LLMRequest.from_prompt(
            f"Row {offset + i}: is the following review positive? 'The soup was cold.'",
            system="Answer with one word.",
            max_tokens=16,
        )
        for i in range(rows)
    ]


async def _timed(runner: Runner, requests: Sequence[LLMRequest]) -> tuple[float, float]:
    """Wall and CPU seconds for all ``requests`` at once."""
    start, cpu_start = time.perf_counter(), time.process_time()
    results = await runner.generate_many(requests)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if len(results) != len(requests):
        raise RuntimeError(f"expected {len(requests)} results, got {len(results)}")
    return wall, cpu


async def measure(
    base_url: str, rows: int, concurrency: int, latency: float, offset: int = 0
) -> Measurement:
    """Send ``rows`` requests through a fresh runner.

    A warm-up of ``concurrency`` requests, not timed, opens the keep-alive connections and
    imports what the first call needs, so the figures show the steady state.
    """
    async with OpenAIRunner(
        "bench-model",
        base_url=base_url,
        max_concurrency=concurrency,
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, seed=0),
    ) as runner:
        await runner.generate_many(make_requests(concurrency, offset + 900_000))
        wall, cpu = await _timed(runner, make_requests(rows, offset))
    return Measurement("openai", rows, concurrency, latency, wall, cpu)


async def measure_cache(
    base_url: str, rows: int, concurrency: int, latency: float
) -> tuple[list[Measurement], list[Usage]]:
    """A first run through the persistent cache (misses), then the same requests again (hits),
    with what each pass spent: the second makes no call and saves the first's tokens."""
    requests = make_requests(rows, offset=10_000_000)
    measurements, usages = [], []
    with tempfile.TemporaryDirectory() as tmp, Cache(Path(tmp) / "bench-cache.sqlite") as cache:
        inner = OpenAIRunner("bench-model", base_url=base_url, max_concurrency=concurrency)
        async with inner:
            for label in ("cache: first run (misses)", "cache: second run (cache hits)"):
                runner = AccountingRunner(CachedRunner(inner, cache))
                wall, cpu = await _timed(runner, requests)
                measurements.append(Measurement(label, rows, concurrency, latency, wall, cpu))
                usages.append(runner.usage)
    return measurements, usages


ServerCpu = Callable[[], float | None]
"""Seconds of CPU the server has used so far, or ``None`` where that cannot be read."""


@contextlib.contextmanager
def serve(latency: float, where: str) -> Iterator[str]:
    """A chat server with ``latency``, in this process (``thread``) or a child (``process``)."""
    with serve_measured(latency, where) as (base_url, _):
        yield base_url


@contextlib.contextmanager
def serve_measured(latency: float, where: str) -> Iterator[tuple[str, ServerCpu]]:
    """Like :func:`serve`, with a reader of the server's CPU seconds so far (a child's only)."""
    if where == "thread":
        with ChatServer(latency=latency) as server:
            yield server.base_url, lambda: None
        return
    command = [sys.executable, "-m", "sammo_core.testing.chat_server"]
    command += ["--port", "0", "--latency", str(latency)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # "serving http://127.0.0.1:PORT/v1 (Ctrl-C to stop)"
        if not line.startswith("serving "):
            raise RuntimeError(f"the chat server did not start: {line!r}")
        yield line.split()[1], lambda: process_cpu_seconds(child.pid)
    finally:
        child.terminate()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of process ``pid`` (Linux ``/proc``; else ``None``).

    >>> import os, sys
    >>> seconds = process_cpu_seconds(os.getpid())
    >>> seconds is None if not sys.platform.startswith("linux") else seconds > 0
    True
    """
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # The fields after the command name, which may hold spaces: utime, stime are 14, 15.
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _with_server_cpu(m: Measurement, before: float | None, after: float | None) -> Measurement:
    if before is None or after is None:
        return m
    return dataclasses.replace(m, server_cpu=after - before)


async def _measured(
    server_cpu: ServerCpu,
    base_url: str,
    rows: int,
    concurrency: int,
    latency: float,
    *,
    offset: int,
) -> Measurement:
    """:func:`measure`, with the server's CPU over the run (the warm-up included: it is small
    beside ``rows``, and the server cannot tell the two apart)."""
    before = server_cpu()
    m = await measure(base_url, rows, concurrency, latency, offset=offset)
    return _with_server_cpu(m, before, server_cpu())


def measurement_table(title: str, measurements: Sequence[Measurement]) -> Table:
    columns = ["run", "rows", "conc.", "wall s", "ideal s", "eff.", "req/s", "cpu ms/req"]
    columns.append("server ms/req")
    table = figures_table(title, columns)
    for m in measurements:
        table.add_row(
            m.label,
            str(m.rows),
            str(m.concurrency),
            f"{m.wall:.3f}",
            f"{m.ideal:.3f}",
            "-" if "cache hits" in m.label else f"{m.efficiency:.1%}",
            f"{m.requests_per_second:,.0f}",
            f"{m.cpu_ms_per_request:.2f}",
            "-" if (server := m.server_cpu_ms_per_request) is None else f"{server:.2f}",
        )
    return table


def int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers; got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers; got {text!r}")
    return values


async def _run(
    args: argparse.Namespace, base_url: str, server_cpu: ServerCpu, console: Console
) -> bool:
    latency: float = args.latency
    sizes = [
        await _measured(server_cpu, base_url, rows, args.concurrency, latency, offset=i * 1_000_000)
        for i, rows in enumerate(args.rows)
    ]
    console.print(
        measurement_table(f"rows at concurrency {args.concurrency}, latency {latency:g} s", sizes)
    )
    ok = all(m.efficiency >= args.target for m in sizes)
    if hasattr(os, "getloadavg"):
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
        console.print(
            f"load average {load:.2f} on {cores} cores: efficiency falls with load, "
            "CPU per request far less"
        )
    if args.concurrency_sweep:
        sweep = [
            await _measured(
                server_cpu, base_url, args.sweep_rows, c, latency, offset=(50 + i) * 1_000_000
            )
            for i, c in enumerate(args.concurrency_sweep)
        ]
        console.print(measurement_table(f"concurrency sweep, {args.sweep_rows} rows", sweep))
    if args.cache:
        # The second run is answered from the cache: the server sees no request.
        cached, (first, second) = await measure_cache(
            base_url, args.rows[0], args.concurrency, latency
        )
        console.print(measurement_table("persistent cache", cached))
        console.print(
            f"second run: {second.calls} calls, {second.cache_hits} cache hits, "
            f"{second.saved_tokens:,} tokens saved (not spent; the first run spent "
            f"{first.total_tokens:,}); time {cached[1].wall / cached[0].wall:.1%} of the first run"
        )
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its tables; with ``--check``, exit 1 below ``--target``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.harness.throughput", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rows", type=int_list, default=[400, 2000], help="e.g. 400,2000")
    parser.add_argument("--latency", type=float, default=0.05, help="server seconds per request")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight (default 32)")
    parser.add_argument("--concurrency-sweep", type=int_list, default=None, help="e.g. 1,8,32,128")
    parser.add_argument(
        "--sweep-rows", type=int, default=400, help="rows per sweep point (default 400)"
    )
    parser.add_argument("--cache", action="store_true", help="also time a run from the cache")
    parser.add_argument(
        "--server",
        choices=("process", "thread"),
        default="process",
        help="run the ChatServer in a child process (default) or in a thread of this one",
    )
    parser.add_argument(
        "--target", type=float, default=0.9, help="efficiency to reach (default 0.9)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a size misses --target (without it the benchmark only reports)",
    )
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.latency <= 0:
        parser.error("--concurrency must be >= 1 and --latency > 0")
    console = Console(width=max(Console().width, 100))
    with serve_measured(args.latency, args.server) as (base_url, server_cpu):
        ok = asyncio.run(_run(args, base_url, server_cpu, console))
    if not ok:
        console.print(f"[red]efficiency below {args.target:.0%} for some size")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
