"""The throughput benchmark reports the client's and the server's CPU per request apart."""

from __future__ import annotations

import re
import sys

import pytest

from benchmarks.harness import throughput


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_client_and_server_cpu_per_request_are_reported_apart(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = throughput.main(["--rows", "200", "--concurrency", "16", "--latency", "0.01"])
    out = capsys.readouterr().out
    assert code == 0
    assert "cpu ms/req" in out and "server ms/req" in out
    [row] = [line for line in out.splitlines() if re.search(r"│ openai\s+│\s+200 ", line)]
    *_, client, server, _ = (cell.strip() for cell in row.split("│"))
    # The child server's CPU is measured apart: a number (a few clock ticks at most for 200
    # requests, so it may round to 0.00), never the "-" of a server sharing this process.
    assert float(client) > 0 and float(server) >= 0
    assert re.search(r"load average \d+\.\d\d on \d+ cores", out)


def test_a_server_in_this_process_has_no_cpu_of_its_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--rows", "8", "--concurrency", "4", "--latency", "0.01", "--server", "thread"]
    assert throughput.main(args) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if "│ openai" in line]
    assert row.split("│")[-2].strip() == "-"
