"""c. Prefix reuse on the embedded llama.cpp model: one candidate's rows grouped, interleaved
with another's, or gathered (:mod:`benchmarks.harness.prefix_reuse`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from benchmarks.harness import prefix_reuse
from benchmarks.harness.tables import figures_table
from sammo_core.runners.base import LLMResult


@dataclasses.dataclass(frozen=True)
class PrefixReuseFigure:
    """Two candidates' rows on the embedded model, run three ways (seconds for both)."""

    rows: int
    model: str
    prompt_tokens: int
    grouped_s: float
    interleaved_s: float
    gathered_s: float
    same_text_interleaved: int
    same_text_gathered: int

    @property
    def per_candidate(self) -> dict[str, float]:
        """Seconds for one candidate's ``rows`` rows, each way."""
        return {
            "grouped": self.grouped_s / 2,
            "interleaved": self.interleaved_s / 2,
            "gathered": self.gathered_s / 2,
        }

    @property
    def speedup(self) -> float:
        """How many times faster grouped rows run than interleaved ones."""
        return self.interleaved_s / self.grouped_s if self.grouped_s > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "per_candidate": self.per_candidate,
            "speedup": self.speedup,
        }


def llama_cpp_missing() -> str | None:
    """Why the prefix-reuse part cannot run here, or ``None`` when it can."""
    if importlib.util.find_spec("llama_cpp") is None:
        return 'llama_cpp is not importable; install the local extra: pip install -e ".[local]"'
    return None


def measure_prefix_reuse(rows: int, n_threads: int | None = None) -> PrefixReuseFigure:
    """Run ``rows`` rows of two candidates grouped, interleaved and gathered (see module doc)."""
    from sammo_core.runners.local import LlamaCppRunner

    a, b = prefix_reuse.build_requests(rows)
    grouped = a + b
    interleaved = [r for pair in zip(a, b, strict=True) for r in pair]

    async def run() -> PrefixReuseFigure:
        runner = LlamaCppRunner(n_ctx=2048, n_threads=n_threads)
        try:
            await runner.generate(b[0])  # warm up, leaving B's prefix in the KV cache
            t_grouped, res_grouped = await prefix_reuse.run_one_by_one(runner, grouped)
            t_inter, res_inter = await prefix_reuse.run_one_by_one(runner, interleaved)
            t_gather, res_gather = await prefix_reuse.run_at_once(runner, interleaved)
        finally:
            await runner.aclose()
        by_request = {id(r): x.text for r, x in zip(grouped, res_grouped, strict=True)}

        def same(results: Sequence[LLMResult]) -> int:
            pairs = zip(interleaved, results, strict=True)
            return sum(by_request[id(r)] == x.text for r, x in pairs)

        return PrefixReuseFigure(
            rows,
            runner.model,
            res_grouped[0].prompt_tokens,
            t_grouped,
            t_inter,
            t_gather,
            same(res_inter),
            same(res_gather),
        )

    return asyncio.run(run())


def prefix_table(figure: PrefixReuseFigure) -> Table:
    title = (
        f"c. prefix reuse: {figure.model}, one candidate's {figure.rows} rows "
        f"(~{figure.prompt_tokens} prompt tokens per call)"
    )
    table = figures_table(
        title, ("order", "s per candidate", "s/row", "vs grouped", "same text as grouped")
    )
    same = {"grouped": "-", "interleaved": figure.same_text_interleaved}
    same["gathered"] = figure.same_text_gathered
    grouped = figure.per_candidate["grouped"]
    for order, seconds in figure.per_candidate.items():
        table.add_row(
            order,
            f"{seconds:.2f}",
            f"{seconds / figure.rows:.3f}",
            f"{seconds / grouped:.2f}x" if grouped > 0 else "-",
            f"{same[order]}/{2 * figure.rows}" if order != "grouped" else "-",
        )
    return table
