"""A side script run by another interpreter: a JSON job on its stdin, one prefixed JSON line
of result on its stdout (the comparisons with SAMMO and DSPy run their sides this way, each in
its own virtualenv), and the rows of a data table as the job's ``[input, output]`` pairs.

>>> from sammo_core.data import DataTable
>>> table_pairs(DataTable(["2+2", "3+3"], ["4", "6"]))
[['2+2', '4'], ['3+3', '6']]
>>> result_line('progress\\nRESULT {"calls": 3}\\n', "RESULT ")
{'calls': 3}
>>> result_line("no result\\n", "RESULT ") is None
True
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import orjson

__all__ = ["SideRun", "result_line", "run_side", "table_pairs"]


def table_pairs(table: Iterable[Any]) -> list[list[Any]]:
    """Each row of ``table`` as ``[input, output]``, as a side's job carries it."""
    return [[row.input, row.output] for row in table]


def result_line(stdout: str, prefix: str) -> Any:
    """The JSON after ``prefix`` on the first line of ``stdout`` that starts with it; ``None``
    when no line does."""
    for line in stdout.splitlines():
        if line.startswith(prefix):
            return orjson.loads(line[len(prefix) :])
    return None


@dataclasses.dataclass(frozen=True)
class SideRun:
    """What a side left: its ``result`` (``None`` when it printed none), exit code and stderr
    (empty when it went to a log file)."""

    result: Any
    returncode: int
    stderr: str


def run_side(
    python: str | Path,
    script: Path,
    job: Mapping[str, Any],
    *,
    prefix: str,
    timeout: float,
    stderr: IO[str] | None = None,
) -> SideRun:
    """Run ``script`` with ``python`` on ``job`` (JSON on stdin) and read its result line.

    ``stderr``: an open file for the side's progress and warnings; ``None`` keeps them in
    :attr:`SideRun.stderr`.
    """
    done = subprocess.run(
        [str(python), str(script)],
        input=orjson.dumps(job).decode(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stderr is None else stderr,
        text=True,
        timeout=timeout,
        check=False,
    )
    return SideRun(result_line(done.stdout, prefix), done.returncode, done.stderr or "")
