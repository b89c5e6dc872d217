"""b. Client throughput: ``OpenAIRunner`` requests at several concurrencies against a loopback
server (the functions of :mod:`benchmarks.harness.throughput`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

from benchmarks.harness import throughput


def measure_throughput(
    base_url: str, concurrencies: Sequence[int], latency: float, waves: int
) -> list[throughput.Measurement]:
    """Time ``concurrency * waves`` requests at each concurrency (ideal: ``waves * latency``)."""
    if waves < 1:
        raise ValueError(f"waves must be >= 1; got {waves}")

    async def sweep() -> list[throughput.Measurement]:
        return [
            await throughput.measure(base_url, c * waves, c, latency, offset=i * 1_000_000)
            for i, c in enumerate(concurrencies)
        ]

    return asyncio.run(sweep())


def measurement_dict(m: throughput.Measurement) -> dict[str, Any]:
    return {
        **dataclasses.asdict(m),
        "ideal": m.ideal,
        "efficiency": m.efficiency,
        "requests_per_second": m.requests_per_second,
        "cpu_ms_per_request": m.cpu_ms_per_request,
    }
