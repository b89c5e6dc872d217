"""Wall time of ``sammo-core optimize`` and ``sammo-core run`` measured from outside.

:mod:`benchmarks.harness.search_speed` times a search inside one process. A user runs the command
line, which also starts an interpreter, imports its libraries, writes the run folder, keeps a
usage journal and scores the test split. This runs the real commands as child processes against
the synthetic model behind a loopback server in another process (50 ms per call by default),
and splits each command's wall time by what the server saw:

- ``start-up``: from launching the command to the server's first request (interpreter,
  imports, reading the program and the data);
- ``calls``: from the first request to the last answer (the last request's arrival plus the
  latency);
- ``finish``: from the last answer to the command's exit (writing results, the report).

``ideal`` is ``calls x latency / concurrency`` (every slot busy all the time); ``outside`` is
``(wall - start-up) / ideal``, the figure of issue 18 (start-up subtracted), and ``during``
is ``calls / ideal``. Run it with::

    python -m benchmarks.harness.cli_speed                      # optimize, 48 candidates, and run
    python -m benchmarks.harness.cli_speed --repeat 3 --rows 2000
    python -m benchmarks.harness.cli_speed --rows 0 --variant '' \
        --variant '--strategy evolution --parallel 4'

A benchmark reports: it exits 0 whatever it measured. The machine's load shows in the figures
(the ``cpu s`` column is the command's own CPU time): compare changes on a quiet machine,
side by side in one invocation.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from benchmarks.harness.synthetic_server import MODEL, SyntheticServer
from sammo_core.serialization import to_json
from sammo_core.testing import synthetic

__all__ = ["CliSpeed", "main", "measure", "parser"]

#: Issue 18's measurement of the optimize workload before this benchmark existed (quiet
#: machine, CLI start-up subtracted by hand).
REFERENCE = "issue 18 (before): optimize, 48 candidates, 150 rows, 50 ms, 32: 1.64-1.70x outside"


@dataclasses.dataclass(frozen=True)
class CliSpeed:
    """One command's wall time split by what the server saw (seconds)."""

    command: str
    calls: int
    latency: float
    concurrency: int
    wall_s: float
    startup_s: float
    calls_s: float
    cpu_s: float

    @property
    def finish_s(self) -> float:
        """From the last answer to the command's exit."""
        return self.wall_s - self.startup_s - self.calls_s

    @property
    def ideal_s(self) -> float:
        """``calls x latency / concurrency``.

        >>> CliSpeed("run", 64, 0.05, 32, 1.0, 0.5, 0.2, 0.9).ideal_s
        0.1
        """
        return self.calls * self.latency / self.concurrency

    @property
    def outside(self) -> float:
        """``(wall - start-up) / ideal``: what the user waits beyond the interpreter's start.

        >>> round(CliSpeed("run", 64, 0.05, 32, 1.0, 0.5, 0.2, 0.9).outside, 2)
        5.0
        """
        return (self.wall_s - self.startup_s) / self.ideal_s if self.ideal_s else float("inf")

    @property
    def during(self) -> float:
        """``calls / ideal``: how well the calls kept the slots busy while they lasted."""
        return self.calls_s / self.ideal_s if self.ideal_s else float("inf")


def write_workload(folder: Path, rows: int) -> tuple[Path, Path]:
    """The synthetic start program (``program.json``) and ``rows`` labelled rows
    (``data.jsonl``) in ``folder``."""
    program = folder / "program.json"
    program.write_bytes(orjson.dumps(to_json(synthetic.start_program())))
    data = folder / "data.jsonl"
    table = synthetic.items(rows)
    data.write_bytes(
        b"".join(orjson.dumps({"input": row.input, "output": row.output}) + b"\n" for row in table)
    )
    return program, data


def measure(
    server: SyntheticServer, command: Sequence[str], name: str, concurrency: int
) -> CliSpeed:
    """Run ``command`` (a sammo-core command line, without the executable) once."""
    server.reset()
    argv = [sys.executable, "-m", "sammo_core.cli", *command]
    env = {**os.environ, "OPENAI_API_KEY": "sk-loopback"}
    # In a folder of its own: `python -m` puts the working folder first on the path, where a
    # folder named like a package (a copy of sammo_core/examples, say) would shadow it.
    with tempfile.TemporaryDirectory() as cwd:
        before = os.times()
        launched = time.time()
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, cwd=cwd)
        ended = time.time()
        after = os.times()
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed ({done.returncode}): {done.stderr[-2000:]}")
    stats = server.stats()
    if not stats["first_at"]:
        raise RuntimeError(f"{name} made no request")
    last_answer = min(ended, stats["last_at"] + server.latency)
    cpu = (after.children_user + after.children_system) - (
        before.children_user + before.children_system
    )
    return CliSpeed(
        command=name,
        calls=int(stats["completions"]),
        latency=server.latency,
        concurrency=concurrency,
        wall_s=ended - launched,
        startup_s=stats["first_at"] - launched,
        calls_s=last_answer - stats["first_at"],
        cpu_s=cpu,
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.harness.cli_speed",
        description="Wall time of sammo-core optimize and run from outside, split by phase.",
    )
    p.add_argument("--candidates", type=int, default=48, help="optimize's budget (candidates)")
    p.add_argument("--optimize-rows", type=int, default=150, help="rows of optimize's data")
    p.add_argument("--rows", type=int, default=2000, help="rows of the plain run (0: skip it)")
    p.add_argument("--latency", type=float, default=0.05, help="server seconds per call")
    p.add_argument("--concurrency", type=int, default=32, help="calls in flight")
    p.add_argument("--repeat", type=int, default=2, help="timed runs of each command")
    p.add_argument(
        "--variant",
        action="append",
        default=None,
        metavar="ARGS",
        help="optimize's extra options for one timed variant (repeat it to put variants side "
        "by side), e.g. --variant '' --variant '--strategy evolution --parallel 4' "
        "(default: one, optimize's defaults)",
    )
    return p


def table(rows: Sequence[CliSpeed]) -> Table:
    t = Table(title="sammo-core from outside (seconds)")
    for col in ("command", "calls", "wall", "start-up", "calls", "finish", "ideal"):
        t.add_column(col, justify="left" if col == "command" else "right")
    t.add_column("outside", justify="right")
    t.add_column("during", justify="right")
    t.add_column("cpu s", justify="right")
    for r in rows:
        t.add_row(
            r.command,
            f"{r.calls:,}",
            f"{r.wall_s:.2f}",
            f"{r.startup_s:.2f}",
            f"{r.calls_s:.2f}",
            f"{r.finish_s:.2f}",
            f"{r.ideal_s:.2f}",
            f"{r.outside:.2f}x",
            f"{r.during:.2f}x",
            f"{r.cpu_s:.2f}",
        )
    return t


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    console = Console(width=120)
    results: list[CliSpeed] = []
    with tempfile.TemporaryDirectory() as tmp, SyntheticServer(args.latency) as server:
        folder = Path(tmp)
        program, data = write_workload(folder, args.optimize_rows)
        common = ["--model", f"openai:{MODEL}", "--base-url", server.base_url]
        common += ["--concurrency", str(args.concurrency)]
        optimize = ["optimize", str(program), "--data", str(data)]
        optimize += ["--budget", str(args.candidates), "--out", str(folder / "run"), "--force"]
        jobs: list[tuple[str, list[str]]] = [
            (f"optimize {args.candidates} {extra}".rstrip(), optimize + shlex.split(extra) + common)
            for extra in args.variant or [""]
        ]
        if args.rows:
            big = folder / "big"
            big.mkdir()
            _, big_data = write_workload(big, args.rows)
            run = ["run", str(program), "--data", str(big_data), "--out", str(folder / "rows")]
            jobs.append((f"run {args.rows}", run + common))
        for _ in range(args.repeat):  # interleaved, so both see the same load
            for name, command in jobs:
                results.append(measure(server, command, name, args.concurrency))
    console.print(table(results))
    console.print(f"load average {os.getloadavg()[0]:.2f}; {REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
