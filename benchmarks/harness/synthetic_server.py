"""The synthetic task's model behind a loopback server in a child process, with its counters.

The harness's shared model: :mod:`benchmarks.harness.perf`, ``search_speed``, ``cli_speed`` and
``sammo_compare`` time sammo-core (and SAMMO) against it. The server runs in its own process
so that it shares no interpreter lock with what is measured; ``python -m
benchmarks.harness.synthetic_server --latency S`` serves until stdin closes, answering
``stats`` and ``reset`` lines.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any

import orjson

from sammo_core.testing import synthetic
from sammo_core.testing.chat_server import ChatServer

__all__ = ["MODEL", "SyntheticServer", "main", "synthetic_reply"]

MODEL = "bench-model"
_ITEM = re.compile(r"\bitem (\d+)")


def synthetic_reply(payload: Mapping[str, Any]) -> str:
    """The synthetic task's model, reading only the prompt text (any framework's rendering).

    The last ``item N`` in the prompt is the input; the other distinct items are examples.

    >>> prompt = "Answer yes or no.\\nInput: item 1000\\nOutput: yes\\nInput: item 2"
    >>> synthetic_reply({"messages": [{"role": "user", "content": prompt}]})
    'yes'
    """
    prompt = "\n\n".join(str(m.get("content", "")) for m in payload["messages"])
    items = _ITEM.findall(prompt)
    if not items:
        return "I cannot find the item."
    n = int(items[-1])
    points = (
        int(synthetic.TASK in prompt)
        + int(synthetic.DISTRACTOR not in prompt)
        + int(len(set(items[:-1])) >= 3)
    )
    return synthetic.label(n) if (7919 * n) % 4 <= points else "maybe"


def _serve(latency: float) -> int:
    """The child process: serve, and answer ``stats`` / ``reset`` lines on stdin until EOF."""
    seen: list[float] = []  # wall-clock times (comparable across processes) of the first/last

    def reply(payload: Mapping[str, Any]) -> str:
        now = time.time()
        seen[:] = [seen[0] if seen else now, now]
        return synthetic_reply(payload)

    with ChatServer(latency=latency, reply=reply, model=MODEL) as server:
        print(f"serving {server.base_url}", flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "reset":
                server.reset()
                seen.clear()
                print("ok", flush=True)
            elif command == "stats":
                stats = server.stats()
                counters = {
                    "completions": stats.completions,
                    "requests": stats.requests,
                    "connections": stats.connections,
                    "max_in_flight": stats.max_in_flight,
                    # when the first and the last request came in (time.time(); 0: none yet)
                    "first_at": seen[0] if seen else 0.0,
                    "last_at": seen[-1] if seen else 0.0,
                }
                print(orjson.dumps(counters).decode(), flush=True)
    return 0


class SyntheticServer:
    """The synthetic model behind a ChatServer in a child process, with its call counters."""

    def __init__(self, latency: float) -> None:
        if latency < 0:
            raise ValueError(f"latency must be >= 0 seconds; got {latency}")
        self.latency = latency
        self._child: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> SyntheticServer:
        command = [sys.executable, "-m", "benchmarks.harness.synthetic_server"]
        command += ["--latency", str(self.latency)]
        self._child = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        line = self._stdout.readline()
        if not line.startswith("serving "):
            self.__exit__(None, None, None)
            raise RuntimeError(f"the synthetic server did not start: {line!r}")
        self.base_url = line.split()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._child is None:
            return
        child, self._child = self._child, None
        try:
            if child.stdin is not None:
                child.stdin.close()  # EOF: the child stops serving
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        finally:
            if child.stdout is not None:
                child.stdout.close()

    @property
    def _stdout(self) -> IO[str]:
        if self._child is None or self._child.stdout is None:
            raise RuntimeError("the synthetic server is not running; use it in a with block")
        return self._child.stdout

    def _ask(self, command: str) -> str:
        if self._child is None or self._child.stdin is None:
            raise RuntimeError("the synthetic server is not running; use it in a with block")
        self._child.stdin.write(command + "\n")
        self._child.stdin.flush()
        return self._stdout.readline().strip()

    def reset(self) -> None:
        """Zero the counters (between the runs being compared)."""
        self._ask("reset")

    def stats(self) -> dict[str, Any]:
        """``completions``, ``requests``, ``connections`` and ``max_in_flight`` since reset,
        and ``first_at``/``last_at``: when the first and the last request came in
        (``time.time()``, comparable with other processes' clocks; 0.0 before any)."""
        counters: dict[str, Any] = orjson.loads(self._ask("stats"))
        return counters


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.harness.synthetic_server")
    parser.add_argument("--latency", type=float, default=0.05, help="server seconds per call")
    return _serve(parser.parse_args(argv).latency)


if __name__ == "__main__":
    sys.exit(main())
