"""How much llama.cpp's KV-cache prefix reuse saves when one candidate's rows run back to back.

Two candidate programs share nothing but the chat template: each has a long instruction with
few-shot examples (~400 tokens) in its system message, then one short input per row. The same
requests (``--rows`` per candidate, ``max_tokens=8``, temperature 0) run three ways on one
:class:`~sammo_core.runners.local.LlamaCppRunner`:

* grouped: awaited one by one, all rows of candidate A, then all rows of B, so each call
  re-evaluates only its short suffix;
* interleaved: awaited one by one, alternating A and B, so every call evaluates its whole prompt;
* interleaved, submitted at once with ``asyncio.gather``: the runner's scheduler regroups them.

Run::

    python -m benchmarks.harness.prefix_reuse --rows 100
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Sequence

from sammo_core.runners.base import LLMRequest, LLMResult, Message
from sammo_core.runners.local import LlamaCppRunner

__all__ = ["build_requests", "main"]

_SUBJECTS = ["battery", "screen", "keyboard", "delivery", "price", "manual", "camera", "speaker"]
_VERDICTS = [
    "works perfectly",
    "broke after a week",
    "is fine I guess",
    "exceeded my hopes",
    "was a waste of money",
    "does what it says",
]


def _instruction(task: str, labels: Sequence[str], rng: random.Random) -> str:
    lines = [
        f"You are a careful annotator. {task} Read the review, think about the customer's "
        "overall attitude rather than single words, ignore sarcasm markers you are unsure of, "
        "and answer with exactly one label from this list and nothing else: "
        f"{', '.join(labels)}. Do not explain your answer. Do not repeat the review.",
        "",
        "Examples:",
    ]
    for _ in range(18):
        subject, verdict = rng.choice(_SUBJECTS), rng.choice(_VERDICTS)
        lines += [f"Review: The {subject} {verdict}.", f"Label: {rng.choice(labels)}", ""]
    return "\n".join(lines)


def build_requests(rows: int, seed: int = 0) -> tuple[list[LLMRequest], list[LLMRequest]]:
    """The requests of candidates A and B: one per row, sharing a long per-candidate prefix."""
    rng = random.Random(seed)
    system_a = _instruction(
        "Classify the sentiment of a product review.", ["positive", "negative", "neutral"], rng
    )
    system_b = _instruction(
        "Decide whether a product review reports a defect.", ["defect", "no defect"], rng
    )
    inputs = [
        f"Review: The {rng.choice(_SUBJECTS)} {rng.choice(_VERDICTS)} (order {i})."
        for i in range(rows)
    ]

    def request(system: str, text: str) -> LLMRequest:
        return LLMRequest(
            messages=(Message("system", system), Message("user", text)),
            temperature=0.0,
            max_tokens=8,
        )

    return [request(system_a, t) for t in inputs], [request(system_b, t) for t in inputs]


async def run_one_by_one(
    runner: LlamaCppRunner, requests: Sequence[LLMRequest]
) -> tuple[float, list[LLMResult]]:
    start = time.perf_counter()
    results = [await runner.generate(r) for r in requests]
    return time.perf_counter() - start, results


async def run_at_once(
    runner: LlamaCppRunner, requests: Sequence[LLMRequest]
) -> tuple[float, list[LLMResult]]:
    start = time.perf_counter()
    results = await runner.generate_many(requests)
    return time.perf_counter() - start, results


async def _run(rows: int, n_threads: int | None) -> None:
    a, b = build_requests(rows)
    grouped = a + b
    interleaved = [r for pair in zip(a, b, strict=True) for r in pair]
    runner = LlamaCppRunner(n_ctx=2048, n_threads=n_threads)
    try:
        await runner.generate(b[0])  # warm up (and leave B's prefix in the KV cache)
        t_grouped, res_grouped = await run_one_by_one(runner, grouped)
        t_inter, res_inter = await run_one_by_one(runner, interleaved)
        t_gather, res_gather = await run_at_once(runner, interleaved)
    finally:
        await runner.aclose()
    calls = len(grouped)
    prompt_tokens = res_grouped[0].prompt_tokens
    by_request = {id(r): x.text for r, x in zip(grouped, res_grouped, strict=True)}
    same = sum(by_request[id(r)] == x.text for r, x in zip(interleaved, res_inter, strict=True))
    same_gather = sum(
        by_request[id(r)] == x.text for r, x in zip(interleaved, res_gather, strict=True)
    )
    print(f"model {runner.model}; {rows} rows x 2 candidates = {calls} calls per way")
    print(f"prompt ~{prompt_tokens} tokens per call, max_tokens=8, temperature 0")
    print(f"grouped (A rows then B rows, one by one): {t_grouped:7.2f} s")
    print(f"interleaved (A, B, A, B, one by one):     {t_inter:7.2f} s")
    print(f"interleaved, submitted with gather:       {t_gather:7.2f} s (runner regroups)")
    print(f"interleaved / grouped time ratio: {t_inter / t_grouped:.2f}x")
    print(f"same text as grouped: interleaved {same}/{calls}, gathered {same_gather}/{calls}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.harness.prefix_reuse", description=__doc__
    )
    parser.add_argument("--rows", type=int, default=100, help="rows per candidate (default 100)")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp CPU threads")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error(f"--rows must be >= 1; got {args.rows}")
    asyncio.run(_run(args.rows, args.threads))


if __name__ == "__main__":
    main()
