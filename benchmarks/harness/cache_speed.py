"""What a cached request costs in the SQLite cache and in the PostgreSQL one, and how fast
several writer processes fill each.

For each backend, one process makes N puts of distinct keys (each committed), N gets that hit
and N gets that miss; the table gives wall time and this process's CPU time per operation,
and for PostgreSQL the server process's CPU time per operation too (Linux: read from
``/proc``). Then W writer processes (default 4) each put N/W keys of their own at once, from
one barrier: the aggregate write rate is all rows over the time from the barrier to the last
writer's end. A benchmark reports; it exits 0 whatever it measured.

Run it with::

    python -m benchmarks.harness.cache_speed                      # a throwaway local server
    python -m benchmarks.harness.cache_speed --n 5000 --writers 8
    python -m benchmarks.harness.cache_speed --url postgresql://sammo@db:5432/bench

Without ``--url`` it starts a throwaway PostgreSQL server from Debian's server binaries
(:mod:`sammo_core.testing.postgres_server`; fsync off, so commits cost what a server with a
fast disk and ``synchronous_commit=off`` would show). With ``--url`` it writes to a table of
that database's cache (keys that no real request has) and leaves the rows there.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import multiprocessing
import os
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sammo_core.runners.base import LLMRequest, LLMResult
from sammo_core.runners.cache_open import open_cache
from sammo_core.runners.cache_store import CacheStore, mask_url

__all__ = ["OpTiming", "WriteRate", "main", "time_ops", "write_rate"]


@dataclasses.dataclass(frozen=True, slots=True)
class OpTiming:
    """``n`` operations of one kind on one backend."""

    backend: str
    op: str
    n: int
    wall_s: float
    cpu_s: float
    server_cpu_s: float | None

    def per_op_us(self, seconds: float | None) -> str:
        """Microseconds per operation, or ``-``.

        >>> OpTiming("sqlite", "put", 2000, 0.5, 0.4, None).per_op_us(0.5)
        '250.0'
        """
        return "-" if seconds is None else f"{seconds / self.n * 1e6:.1f}"


@dataclasses.dataclass(frozen=True, slots=True)
class WriteRate:
    """``writers`` processes putting ``rows`` rows in all."""

    backend: str
    writers: int
    rows: int
    wall_s: float

    @property
    def rows_per_s(self) -> float:
        """
        >>> WriteRate("sqlite", 4, 2000, 0.5).rows_per_s
        4000.0
        """
        return self.rows / self.wall_s if self.wall_s > 0 else float("inf")


def _request(run: str, i: int) -> LLMRequest:
    return LLMRequest.from_prompt(f"cache_speed {run} question {i}: what is {i} + {i}?")


def _result(i: int) -> LLMResult:
    return LLMResult(f"{2 * i} (a reply of typical length for a short answer)", 40, 12, model="m")


def _server_cpu(store: CacheStore) -> float | None:
    """CPU seconds the server process behind ``store`` has used (Linux), or ``None``."""
    pid = getattr(store, "server_pid", None)
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_ops(backend: str, target: str, n: int) -> list[OpTiming]:
    """Time ``n`` puts, ``n`` hits and ``n`` misses on the cache at ``target``."""
    run = uuid.uuid4().hex
    timings = []
    with open_cache(target) as store:
        for op in ("put", "get hit", "get miss"):
            server_before = _server_cpu(store)
            cpu, wall = time.process_time(), time.perf_counter()
            for i in range(n):
                if op == "put":
                    store.put("m", _request(run, i), _result(i))
                elif op == "get hit":
                    assert store.get("m", _request(run, i)) is not None
                else:
                    assert store.get("m", _request(run + "-miss", i)) is None
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            server_after = _server_cpu(store)
            server = (
                None
                if server_before is None or server_after is None
                else server_after - server_before
            )
            timings.append(OpTiming(backend, op, n, wall, cpu, server))
    return timings


def _writer(job: tuple[str, str, int, int], barrier: Any, done: Any) -> None:
    target, run, index, rows = job
    with open_cache(target) as store:
        barrier.wait()
        start = time.time()
        for i in range(rows):
            store.put("m", _request(f"{run}-{index}", i), _result(i))
    # After close: a SQLite writer that found the file locked stores what it kept on close.
    done.put((start, time.time()))


def write_rate(backend: str, target: str, writers: int, rows: int) -> WriteRate:
    """``writers`` processes each putting ``rows // writers`` distinct keys at once."""
    context = multiprocessing.get_context("spawn")
    barrier, done = context.Barrier(writers), context.Queue()
    run = uuid.uuid4().hex
    each = rows // writers
    procs = [
        context.Process(target=_writer, args=((target, run, w, each), barrier, done))
        for w in range(writers)
    ]
    for proc in procs:
        proc.start()
    spans = [done.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    return WriteRate(backend, writers, each * writers, wall)


@contextlib.contextmanager
def _postgres(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    from sammo_core.testing.postgres_server import missing_reason, postgres_server

    with postgres_server() as server:
        if server is None:
            raise SystemExit(f"error: {missing_reason()}; or pass --url postgresql://...")
        yield server.create_database("cache_speed")


def main(argv: Sequence[str] | None = None) -> int:
    """Measure both backends and print the tables."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.harness.cache_speed", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--n", type=int, default=2000, help="operations of each kind")
    parser.add_argument("--writers", type=int, default=4, help="writer processes (default 4)")
    parser.add_argument("--url", help="an existing PostgreSQL database (default: start one)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.writers < 1:
        parser.error("--n and --writers must be >= 1")
    console = Console(width=max(Console().width, 100))
    with tempfile.TemporaryDirectory() as tmp, _postgres(args.url) as url:
        targets = {"sqlite": str(Path(tmp) / "cache.sqlite"), "postgresql": url}
        timings = [t for name, target in targets.items() for t in time_ops(name, target, args.n)]
        rates = [write_rate(name, target, args.writers, args.n) for name, target in targets.items()]
    table = Table(title=f"cache operations, one process (PostgreSQL: {mask_url(url)})")
    for column in ("backend", "op", "n", "wall us/op", "cpu us/op", "server cpu us/op"):
        table.add_column(column, justify="left" if column in ("backend", "op") else "right")
    for t in timings:
        table.add_row(
            t.backend, t.op, str(t.n), t.per_op_us(t.wall_s), t.per_op_us(t.cpu_s),
            t.per_op_us(t.server_cpu_s),
        )  # fmt: skip
    console.print(table)
    rate_table = Table(title=f"{args.writers} writer processes, distinct keys, one commit each")
    for column in ("backend", "writers", "rows", "wall s", "rows/s"):
        rate_table.add_column(column, justify="left" if column == "backend" else "right")
    for r in rates:
        rate_table.add_row(
            r.backend, str(r.writers), str(r.rows), f"{r.wall_s:.2f}", f"{r.rows_per_s:,.0f}"
        )
    console.print(rate_table)
    console.print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
