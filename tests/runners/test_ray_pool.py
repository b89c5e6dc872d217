"""optimize --ray: one search's calls spread over Ray workers, with the same results."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from sammo_core.cli import main
from sammo_core.runners import LLMRequest
from sammo_core.runners.backends import BackendOptions
from sammo_core.testing.chat_server import ChatServer
from tests.search.test_cli_optimize import files, optimize_args, reply  # noqa: F401

pytestmark = pytest.mark.slow
if os.environ.get("SAMMO_REQUIRE_RAY") != "1":
    pytest.importorskip("ray", reason="needs the [ray] extra: pip install -e '.[ray]'")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def test_a_pool_spreads_calls_over_its_workers_and_names_the_backend() -> None:
    from sammo_core.runners.ray_pool import RayPool

    with ChatServer(reply=lambda body: "ok") as server:
        options = BackendOptions(base_url=server.base_url, timeout=10)
        pool = RayPool("m", options, workers=2)

        async def go() -> tuple[list[str], list[int]]:
            try:
                requests = [LLMRequest.from_prompt(f"q{i}") for i in range(16)]
                results = await asyncio.gather(*(pool.generate(r) for r in requests))
                return [r.text for r in results], await pool.served()
            finally:
                await pool.aclose()

        texts, served = asyncio.run(go())
        assert texts == ["ok"] * 16 and server.stats().completions == 16
        assert sum(served) == 16 and min(served) > 0  # both workers answered
        assert (pool.model, pool.endpoint) == ("m", server.base_url.rstrip("/"))


def test_optimize_on_ray_workers_ends_as_in_one_process(
    files: tuple[Path, Path, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    program, data, _ = files
    with ChatServer(reply=reply) as server:
        here = tmp_path / "here"
        assert main(optimize_args(program, data, server.base_url, here)) == 0
        calls = server.stats().completions
        ray = tmp_path / "ray"
        args = optimize_args(program, data, server.base_url, ray)
        assert main([*args, "--ray", "--ray-workers", "2"]) == 0
        assert server.stats().completions == 2 * calls  # the same calls, sent by the workers
    assert (ray / "trace.jsonl").read_text() == (here / "trace.jsonl").read_text()
    a, b = (json.loads((d / "result.json").read_text()) for d in (here, ray))
    assert a["best"]["test_scores"] == b["best"]["test_scores"]
