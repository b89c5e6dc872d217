"""Two kinds of cost: what a program costs per input (the same live, on a warm cache and in
replay) and what a run spent (zero for cache hits)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sammo_core import (
    DataTable,
    GenerateText,
    InputData,
    MetaPrompt,
    Output,
    ScriptedRunner,
    Section,
    compile,
)
from sammo_core.objectives import Calls, CostUSD, MeanPromptTokens, PromptTokens, evaluate
from sammo_core.results import ResultRow, ResultTable
from sammo_core.runners import Cache, CachedRunner


def program(inputs_per_call: int) -> Output:
    return Output(
        GenerateText(
            MetaPrompt(
                [Section("Task", ["Answer yes or no."]), Section("Question", [InputData()])],
                data_format="plain",
            )
        ),
        inputs_per_call=inputs_per_call,
    )


def test_a_cache_hit_carries_the_programs_cost_but_spends_nothing(tmp_path: Path) -> None:
    # Minibatched by 2 over a priced model, so shares and dollars are exercised too.
    data = DataTable(["a", "b", "c", "d"], ["yes", "no", "no", "yes"])
    graph = compile(program(inputs_per_call=2))
    objectives = [MeanPromptTokens(), PromptTokens(), CostUSD(), Calls()]
    tables = []
    for mode in ("readwrite", "readwrite", "replay"):
        with Cache(tmp_path / "cache.sqlite", mode) as cache:
            inner = ScriptedRunner(default="Output [1]: yes\nOutput [2]: no", model="gpt-4o-mini")
            tables.append(graph.run_sync(data, CachedRunner(inner, cache)))
    live, warm, replay = tables
    assert live.spent_calls == 2 and live.spent_prompt_tokens == live.prompt_tokens > 0
    assert live.spent_usd == pytest.approx(live.cost_usd) and live.cost_usd > 0
    for hit in (warm, replay):
        assert all(r.cached for r in hit)
        assert (hit.spent_calls, hit.spent_prompt_tokens, hit.spent_usd) == (0, 0, 0.0)
        assert [r.prompt_tokens for r in hit] == [r.prompt_tokens for r in live]
        assert hit.cost_per_input() == live.cost_per_input()
        assert evaluate(hit, objectives) == evaluate(live, objectives)
    assert live.cost_per_input().calls == 0.5  # two inputs share each call


def test_mean_prompt_tokens_scores_a_cached_row_by_its_size() -> None:
    rows = (
        ResultRow(0, "a", None, "p", "x", "x", prompt_tokens=40, cached=True),
        ResultRow(1, "b", None, "p", "x", "x", prompt_tokens=20, spent_prompt_tokens=20),
    )
    assert MeanPromptTokens().score(ResultTable(rows)).value == 30.0
