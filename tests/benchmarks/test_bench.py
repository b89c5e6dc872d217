"""`sammo-core bench` end to end against a loopback chat server and the real benchmark data,
plus the suite rules (compression pick, FunQL normalizer) and the report pieces."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from benchmarks import cli_bench, report
from benchmarks.datasets import (
    load_geoquery_rag,
    load_sammo_compression,
    load_sammo_instruction_tuning,
)
from benchmarks.suites import (
    SUITES,
    SuiteOptions,
    SwapText,
    funql_match,
    get_suite,
    normalize_funql,
    pick_compressed,
)
from sammo_core.errors import ConfigError, SammoError
from sammo_core.objectives import Score, get_objective
from sammo_core.runners.accounting import Usage
from sammo_core.stats import mcnemar_exact
from sammo_core.testing.chat_server import ChatServer
from search.candidate import Candidate
from search.result import SearchResult

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def bench(*argv: str) -> int:
    """Run `sammo-core bench ...` as the console script would (entry point if registered)."""
    from sammo_core.cli import main

    args = ["bench", *argv]
    if any(ep.name == "bench" for ep in entry_points(group="sammo_core.commands")):
        return main(args)
    parser = argparse.ArgumentParser(prog="sammo-core")
    cli_bench.register(parser.add_subparsers())
    parsed = parser.parse_args(args)
    try:
        return int(parsed.func(parsed))
    except SammoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


class Oracle:
    """Answers with the gold output of the known input the prompt holds (last one wins), in
    plain or JSON form; prompts without a known input get "unknown"."""

    def __init__(self, *tables: Any) -> None:
        self.gold = {row.input: row.output for table in tables for row in table}

    def __call__(self, request: Mapping[str, Any]) -> str:
        prompt = request["messages"][-1]["content"]
        found = [(prompt.rfind(q), a) for q, a in self.gold.items() if q in prompt]
        if not found:
            return "unknown"
        answer = max(found)[1]
        return json.dumps({"output": answer}) if "JSON object" in prompt else answer


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[ChatServer]:
    tables = []
    for task in ("implicatures", "sports_understanding"):
        s = load_sammo_instruction_tuning(data_dir, task)
        tables += [s.val, s.test]
    s = load_sammo_compression(data_dir, "task108")
    tables += [s.val, s.test]
    s = load_geoquery_rag(data_dir, val_size=50)
    tables += [s.val, s.test]
    with ChatServer(reply=Oracle(*tables)) as chat:
        yield chat


def run_suite(server: ChatServer, out: Path, suite: str, *extra: str) -> int:
    return bench(
        "run", suite, "--model", "loopback", "--base-url", server.base_url,
        "--timeout", "10", "--out", str(out), *extra,
    )  # fmt: skip


# -- end to end --------------------------------------------------------------------------------


def test_run_quick_writes_results_report_and_plot(
    server: ChatServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "quick"
    assert run_suite(server, out, "quick", "--max-rows", "4", "--budget", "4") == 0
    table = capsys.readouterr().out
    assert "implicatures" in table and "sports_under" in table  # long names fold
    results = json.loads((out / "results.json").read_text())
    assert results["suite"] == "quick" and results["model"] == "loopback"
    assert results["errors"] == {}
    assert "seeds" not in results and "aggregate" not in results  # a one-seed run's shape
    assert results["options"]["seed"] == 0
    assert set(results["tasks"]) == {"implicatures", "sports_understanding"}
    task = results["tasks"]["implicatures"]
    assert task["objective"] == "label_accuracy"
    assert task["sizes"] == {"train": 4, "val": 4, "test": 4}
    for role in ("baseline", "optimized"):
        entry = task[role]
        assert entry["test"]["n"] == 4 and entry["val"]["n"] == 4
        assert entry["test"]["ci_low"] <= entry["test"]["value"] <= entry["test"]["ci_high"]
        assert entry["prompt_tokens"] > 0
        assert (out / entry["prompt_file"]).read_text().rstrip().endswith("Output:")
    # The oracle answers every plain-format prompt right.
    assert task["baseline"]["test"]["value"] == 1.0
    assert task["search"]["candidates"] == 4 and task["search"]["budget"] == "4"
    assert task["search"]["strategy"] == "BeamSearch"
    assert task["calls"] == task["usage"]["total"]["calls"] > 0
    assert task["seconds"] > 0
    assert (out / task["winner_program"]).is_file()
    assert (out / task["run_dir"] / "trace.jsonl").is_file()
    assert (out / task["run_dir"] / "checkpoint.json").is_file()

    md = (out / "report.md").read_text()
    assert "| task | objective | baseline (test) | optimized (test) |" in md
    assert "| implicatures | label_accuracy | 1.000 [0.510, 1.000] |" in md
    # An unpriced hosted model's dollars are unknown, not $0.0000 (which read as free).
    assert "cost unknown (no price for loopback)" in md and "| 0.0000 |" not in md
    assert "![best validation score against budget](score_vs_budget.png)" in md
    assert "### Diff from the baseline prompt" in md
    assert "Does Speaker 2's answer mean yes or no?" in md  # the winning prompt
    assert "<table>" in (out / "report.html").read_text()
    png = (out / report.PLOT_FILE).read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 1000
    # Winner against baseline on the same 4 test rows: both right on every row.
    assert task["paired"] == {
        "diff": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n": 4, "beats": False,
        "winner_only": 0, "baseline_only": 0, "mcnemar_p": 1.0,
    }  # fmt: skip
    assert "- paired test: winner - baseline on the same 4 test rows +0.000" in md
    # A results.json written before the paired test was kept still renders.
    for record in results["tasks"].values():
        del record["paired"]
    report.write_report(out, results)
    old = (out / "report.md").read_text()
    assert "| implicatures | label_accuracy | 1.000 [0.510, 1.000] |" in old
    assert "paired test" not in old


def test_run_compression_picks_fewer_tokens_and_diffs(server: ChatServer, tmp_path: Path) -> None:
    out = tmp_path / "compression"
    code = run_suite(
        server, out, "compression", "--tasks", "task108", "--max-rows", "5", "--budget", "6"
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    [(name, task)] = results["tasks"].items()
    assert name == "task108_contextualabusedetection_classification"
    assert task["objectives"] == ["label_accuracy", "mean_prompt_tokens"]
    base, best = task["baseline"], task["optimized"]
    # Every candidate the oracle answers right is eligible; the shortest wins.
    assert best["val"]["value"] >= base["val"]["value"] - 0.02
    assert (
        best["val_scores"]["mean_prompt_tokens"]["value"]
        < (base["val_scores"]["mean_prompt_tokens"]["value"])
    )
    assert task["compression_ratio"] == pytest.approx(base["prompt_tokens"] / best["prompt_tokens"])
    assert task["compression_ratio"] > 1
    assert best["test"] is not None and best["test_scores"]["mean_prompt_tokens"]
    md = (out / "report.md").read_text()
    assert "```diff\n--- baseline\n+++ optimized\n@@" in md
    assert "(no change: the baseline won)" not in md
    assert f"({task['compression_ratio']:.2f}x)" in md


def test_run_rag_enumerates_the_grid(server: ChatServer, tmp_path: Path) -> None:
    out = tmp_path / "rag"
    assert run_suite(server, out, "rag-parsing", "--max-rows", "3", "--budget", "3") == 0
    task = json.loads((out / "results.json").read_text())["tasks"]["geo880"]
    assert task["objective"] == "exact_match"
    assert task["search"]["strategy"] == "EnumerativeSearch"
    assert task["search"]["space_size"] == 54 and task["search"]["candidates"] == 3
    assert task["baseline"]["test"]["value"] == 1.0  # the oracle's FunQL matches exactly
    prompt = (out / task["baseline"]["prompt_file"]).read_text()
    assert "# DSL" in prompt and prompt.count("Example ") == 5  # k = 5 retrieved examples
    md = (out / "report.md").read_text()
    assert "````text" in md  # the DSL's own ``` fences are fenced by a longer run


def test_compare_lists_both_runs_and_unmatched_tasks(
    server: ChatServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, "0"), (b, "1")):
        assert (
            run_suite(server, out, "quick", "--max-rows", "3", "--budget", "2", "--seed", seed) == 0
        )
    assert run_suite(
        server, c, "quick", "--tasks", "implicatures", "--max-rows", "3", "--budget", "2"
    ) == 0  # fmt: skip
    capsys.readouterr()
    assert bench("compare", str(a), str(b)) == 0
    text = capsys.readouterr().out
    assert f"A = {a}" in text and f"B = {b}" in text
    assert "implicatures" in text and "sports_under" in text and "+0.000" in text
    assert bench("compare", str(a), str(c)) == 0
    text = capsys.readouterr().out
    assert "only in A" in text and "sports_understanding" in text
    assert bench("compare", str(a), str(tmp_path / "nothing")) == 1
    captured = capsys.readouterr()
    assert "holds no results.json" in captured.out + captured.err


def test_list_shows_every_suite(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench("list", "--data-dir", str(data_dir)) == 0
    text = capsys.readouterr().out
    for name in SUITES:
        assert name in text
    assert "geo880" in text and "liar" in text


def test_unknown_task_is_recorded_and_fails(server: ChatServer, tmp_path: Path) -> None:
    out = tmp_path / "bad"
    assert run_suite(server, out, "quick", "--tasks", "nope", "--budget", "2") == 1
    results = json.loads((out / "results.json").read_text())
    assert "unknown task 'nope'" in results["errors"]["nope"]


# -- seeds -------------------------------------------------------------------------------------


class Picky(Oracle):
    """The oracle, except that a prompt with a markdown ``# Task`` section gets every other row
    wrong: the baseline scores 0.5, and a child that changes the format or drops that section
    scores 1.0."""

    def __init__(self, *tables: Any) -> None:
        super().__init__(*tables)
        self.hard = {table.inputs[i] for table in tables for i in range(0, len(table), 2)}

    def __call__(self, request: Mapping[str, Any]) -> str:
        prompt = request["messages"][-1]["content"]
        found = [(prompt.rfind(q), q) for q in self.gold if q in prompt]
        if found and "# Task\n" in prompt and max(found)[1] in self.hard:
            return "unknown"
        return super().__call__(request)


@pytest.fixture(scope="module")
def picky(data_dir: Path) -> Iterator[ChatServer]:
    s = load_sammo_instruction_tuning(data_dir, "implicatures")
    with ChatServer(reply=Picky(s.val, s.test)) as chat:
        yield chat


SEEDS_RUN = ("quick", "--tasks", "implicatures", "--max-rows", "8", "--budget", "2")


def test_run_with_seeds_reports_each_seed_paired_and_the_aggregate(
    picky: ChatServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "seeds"
    assert run_suite(picky, out, *SEEDS_RUN, "--seeds", "0,1") == 0
    captured = capsys.readouterr()
    # Progress names each (task, seed).
    assert "quick/implicatures seed 0 (1/2)" in captured.err
    assert "quick/implicatures seed 1 (2/2)" in captured.err
    assert "across seeds" in captured.out
    results = json.loads((out / "results.json").read_text())
    assert "tasks" not in results and results["errors"] == {}
    assert results["options"]["seeds"] == [0, 1] and results["options"]["seed"] is None
    assert [entry["seed"] for entry in results["seeds"]] == [0, 1]
    records = [entry["tasks"]["implicatures"] for entry in results["seeds"]]
    winners, gains = [], []
    for seed, record in zip((0, 1), records, strict=True):
        assert record["search"]["seed"] == seed
        assert record["run_dir"] == f"implicatures/seed-{seed}"
        assert (out / record["run_dir"] / "trace.jsonl").is_file()
        base = record["baseline"]["test"]["value"]
        best = record["optimized"]["test"]["value"]
        assert base == 0.5  # the picky oracle fails every other row of the baseline's prompt
        paired = record["paired"]
        assert paired["n"] == 8 and paired["diff"] == pytest.approx(best - base)
        assert paired["ci_low"] <= paired["diff"] <= paired["ci_high"]
        assert (paired["winner_only"] - paired["baseline_only"]) / 8 == pytest.approx(best - base)
        assert paired["mcnemar_p"] == pytest.approx(
            mcnemar_exact(paired["winner_only"], paired["baseline_only"])
        )
        winners.append(best)
        gains.append(best - base)
    task = results["aggregate"]["tasks"]["implicatures"]
    assert task["seeds"] == [0, 1]
    assert [r["winner"] for r in task["per_seed"]] == winners
    assert [r["baseline"] for r in task["per_seed"]] == [0.5, 0.5]
    for name, values in (("winner_test", winners), ("gain", gains)):
        assert task[name]["mean"] == pytest.approx(statistics.mean(values))
        assert task[name]["std"] == pytest.approx(statistics.stdev(values))
        assert (task[name]["min"], task[name]["max"]) == (min(values), max(values))
    assert task["paired"] == 2
    assert task["beats"] == sum(r["paired"]["ci_low"] > 0 for r in records)

    md = (out / "report.md").read_text()
    mean, std = task["winner_test"]["mean"], task["winner_test"]["std"]
    assert "Across seeds (0, 1)" in md
    assert (
        f"| implicatures | label_accuracy | 0, 1 | {mean:.3f} ± {std:.3f} "
        f"[{min(winners):.3f}, {max(winners):.3f}] |"
    ) in md
    assert f"| {task['beats']} of 2 |" in md
    for seed, record in zip((0, 1), records, strict=True):
        paired = record["paired"]
        assert (
            f"| implicatures | {seed} | {report.format_score(record['baseline']['test'])} | "
            f"{report.format_score(record['optimized']['test'])} | "
            f"{paired['diff']:+.3f} [{paired['ci_low']:+.3f}, {paired['ci_high']:+.3f}] | "
            f"{paired['mcnemar_p']:.3g} ({paired['winner_only']}/{paired['baseline_only']}) |"
        ) in md
        assert f"## implicatures (seed {seed})" in md
        assert f"`implicatures/seed-{seed}/programs/" in md
    assert "exact McNemar p = " in md
    page = (out / "report.html").read_text()
    assert page.count("<table>") == 2 and "implicatures (seed 1)" in page
    assert (out / report.PLOT_FILE).read_bytes().startswith(PNG_MAGIC)

    # compare reads a multi-seed run as its mean over seeds.
    one = tmp_path / "one"
    assert run_suite(picky, one, *SEEDS_RUN, "--seed", "0") == 0
    single = json.loads((one / "results.json").read_text())["tasks"]["implicatures"]
    capsys.readouterr()
    assert bench("compare", str(one), str(out)) == 0
    text = capsys.readouterr().out
    assert "seeds 0, 1" in text and f"{mean:.3f} ± {std:.3f}" in text and "(2 seeds)" in text
    assert f"{mean - single['optimized']['test']['value']:+.3f}" in text


class Crash(Exception):
    """Stands for a crash: not a SammoError, so the run does not record it and go on."""


def test_a_crashed_seeds_run_keeps_its_records_and_resumes(
    picky: ChatServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "crash"
    run_task = cli_bench._run_task

    async def crash_at_seed_1(bench: Any, **kwargs: Any) -> dict[str, Any]:
        if bench.params["seed"] == 1:
            raise Crash
        return await run_task(bench, **kwargs)

    monkeypatch.setattr(cli_bench, "_run_task", crash_at_seed_1)
    with pytest.raises(Crash):
        run_suite(picky, out, *SEEDS_RUN, "--seeds", "0,1")
    saved = json.loads((out / "results.json").read_text())
    kept = saved["seeds"][0]["tasks"]["implicatures"]
    assert saved["seeds"][1]["tasks"] == {}
    assert saved["aggregate"]["tasks"]["implicatures"]["seeds"] == [0]

    monkeypatch.setattr(cli_bench, "_run_task", run_task)
    capsys.readouterr()
    picky.reset()
    assert run_suite(picky, out, *SEEDS_RUN, "--seeds", "0,1", "--resume") == 0
    assert "implicatures seed 0 (1/2): finished in" in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"][0]["tasks"]["implicatures"] == kept
    resumed = results["seeds"][1]["tasks"]["implicatures"]
    assert resumed["search"]["seed"] == 1
    # Only seed 1 called the model.
    assert picky.stats().completions == resumed["calls"]
    assert results["aggregate"]["tasks"]["implicatures"]["seeds"] == [0, 1]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--seed", "1", "--seeds", "0,1"), "--seed 1 and --seeds '0,1' both given"),
        (("--seeds", "0,x"), "--seeds '0,x': 'x' is not an integer; give comma-separated"),
        (("--seeds", ""), "--seeds '' names no seed; give comma-separated integers"),
    ],
)
def test_bad_seeds_fail_before_running(
    flags: tuple[str, ...],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "never"
    assert bench("run", "quick", "--model", "loopback", "--out", str(out), *flags) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


# -- suites ------------------------------------------------------------------------------------


def test_bench_list_agrees_with_the_suites(capsys: pytest.CaptureFixture[str]) -> None:
    # One source: the registry's suites, each with the data it reads (base-model was listed as
    # needing none, while it reads SAMMO's BIG-bench splits).
    assert bench("list") == 0
    lines = capsys.readouterr().out.splitlines()
    for name in SUITES:
        row = next(line for line in lines if f" {name} " in line)
        assert get_suite(name).data and all(d in row for d in get_suite(name).data), row
    assert "sammo" in next(line for line in lines if " base-model " in line)


def test_suites_build_their_tasks(data_dir: Path) -> None:
    options = SuiteOptions(max_rows=7)
    it = get_suite("instruction-tuning").build("navigate", data_dir, options)
    assert (len(it.train or ()), len(it.val), len(it.test)) == (7, 7, 7)
    assert it.objectives[0].name == "label_accuracy" and it.mutator is not None
    assert "TextGradient" in repr(it.mutator) and "Paraphrase" in repr(it.mutator)
    sorting = get_suite("instruction-tuning").build("word_sorting", data_dir, options)
    assert sorting.objectives[0].name == "accuracy"  # free-form outputs: no label set
    apo = get_suite("apo").build("liar", data_dir, SuiteOptions())
    assert (len(apo.val), len(apo.test)) == (100, 461)
    assert type(apo.make_search()).__name__ == "BeamSearch"
    evo = get_suite("quick").build("implicatures", data_dir, SuiteOptions(strategy="evolution"))
    assert len(evo.val) == 8 and type(evo.make_search()).__name__ == "RegularizedEvolution"
    with pytest.raises(ConfigError, match="no search space to enumerate"):
        get_suite("apo").build("liar", data_dir, SuiteOptions(strategy="enumerate"))


def test_rag_pool_excludes_the_evaluated_questions(data_dir: Path) -> None:
    task = get_suite("rag-parsing").build("geo880", data_dir, SuiteOptions(strategy="beam"))
    [examples] = [n for n in _walk(task.program) if type(n).__name__ == "Examples"]
    pool = set(examples.data.inputs)
    assert len(pool) == 450 and examples.selection == "knn"
    assert not pool & (set(task.val.inputs) | set(task.test.inputs))
    assert "SwapText" in repr(task.mutator) and "ChangeExampleCount" in repr(task.mutator)


def _walk(node: Any) -> Iterator[Any]:
    yield node
    for child in node.children_nodes():
        yield from _walk(child)


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="--max-rows must be >= 1"):
        SuiteOptions(max_rows=0)
    with pytest.raises(ConfigError, match="cannot read budget"):
        SuiteOptions(budget="lots")
    with pytest.raises(ConfigError, match="unknown suite"):
        get_suite("poetry")


@pytest.mark.parametrize(
    ("prediction", "gold", "match"),
    [
        ("answer(state(all))", "answer(state(all))", True),
        ("  answer( state( all ) ) ", "answer(state(all))", True),
        ('answer(cityid("austin", "tx"))', "answer(cityid('austin','tx'))", True),
        ("```\nanswer(river(all))\n```", "answer(river(all))", True),
        ("answer(river(all)).\nThis lists the rivers.", "answer(river(all))", True),
        ("answer(city(all))", "answer(state(all))", False),
        ("Answer(state(all))", "answer(state(all))", False),  # case is kept
        ("answer(stateid('new york'))", "answer(stateid('newyork'))", False),
        (None, "answer(state(all))", False),
    ],
)
def test_funql_normalizer(prediction: Any, gold: str, match: bool) -> None:
    assert funql_match(prediction, gold) == float(match)
    assert normalize_funql(normalize_funql(prediction)) == normalize_funql(prediction)


def _candidate(i: int, acc: float, tokens: float) -> Candidate:
    scores = {
        "accuracy": Score("accuracy", acc),
        "mean_prompt_tokens": Score("mean_prompt_tokens", tokens),
    }
    return Candidate(i, None, str(i), scores, parent=None if i == 0 else 0)  # type: ignore[arg-type]


def _result(pool: list[Candidate]) -> SearchResult:
    objectives = [get_objective("accuracy"), get_objective("mean_prompt_tokens")]
    best = max(pool, key=lambda c: c.score("accuracy"))
    return SearchResult(
        objectives, pool, pool[0], best, pool, {}, Usage(), Usage(), "done", 1, 0.0, "Beam", {}
    )


@pytest.mark.parametrize(
    ("pool", "expected"),
    [
        # the shortest within 2 points of the baseline's accuracy, not the most accurate
        ([(0.80, 900), (0.79, 400), (0.70, 100), (0.85, 600)], 1),
        # exactly 2 points below still qualifies; 2.5 below does not
        ([(0.80, 900), (0.78, 500), (0.775, 100)], 1),
        # nothing shorter qualifies: the baseline itself
        ([(0.80, 900), (0.50, 100)], 0),
        # equal tokens: the more accurate, then the older
        ([(0.80, 900), (0.79, 300), (0.81, 300), (0.81, 300)], 2),
    ],
)
def test_compression_pick_rule(pool: list[tuple[float, float]], expected: int) -> None:
    cands = [_candidate(i, acc, tokens) for i, (acc, tokens) in enumerate(pool)]
    assert pick_compressed(_result(cands)).id == expected


def test_swap_text_offers_every_other_choice() -> None:
    import asyncio
    import random

    from sammo_core import GenerateText, InputData, MetaPrompt, Output, Section

    program = Output(GenerateText(MetaPrompt([Section("DSL", ["a"], id="dsl"), InputData()])))
    op = SwapText("Section#dsl", {"first": "a", "second": "b", "third": "c"})
    children = asyncio.run(op.mutate(program, random.Random(0), n=5))
    texts = sorted(c.program.child.prompt.children[0].children[0].text for c in children)
    assert texts == ["b", "c"]
    assert program.child.prompt.children[0].children[0].text == "a"  # the parent is untouched
    with pytest.raises(ConfigError, match="at least two choices"):
        SwapText("Section", {"only": "a"})


# -- report pieces -----------------------------------------------------------------------------


def test_best_so_far_tracks_direction_and_calls() -> None:
    trace = [{"scores": {"s": {"value": v}}, "calls": 5} for v in (0.2, 0.6, 0.4, 0.9)]
    assert report.best_so_far(trace, "s") == [(1, 5, 0.2), (2, 10, 0.6), (3, 15, 0.6), (4, 20, 0.9)]
    assert [p[2] for p in report.best_so_far(trace, "s", "minimize")] == [0.2, 0.2, 0.2, 0.2]


def test_the_calls_axis_shows_every_call_the_search_spent() -> None:
    # Candidates carry their spent calls (proposals included); 7 calls came after the last.
    trace = [{"scores": {"s": {"value": v}}, "spent": {"calls": 10}} for v in (0.2, 0.6)]
    points = report.best_so_far(trace, "s", total_calls=27)
    assert points == [(1, 10, 0.2), (2, 20, 0.6), (2, 27, 0.6)]
    assert report.best_so_far(trace, "s", total_calls=20)[-1] == (2, 20, 0.6)


def test_prompt_diff_and_fence() -> None:
    diff = report.prompt_diff("a\nb\n", "a\nc\n")
    assert diff.splitlines()[:2] == ["--- baseline", "+++ optimized"]
    assert "-b" in diff and "+c" in diff
    assert report.prompt_diff("same", "same") == ""
    assert report.fence("x").startswith("```\n")
    assert report.fence("````", "text").startswith("`````text\n")


@pytest.mark.parametrize("command", [("bench", "list"), ("data", "list")])
def test_lists_work_before_any_data_is_fetched(
    command: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from benchmarks import datasets
    from sammo_core.cli import main

    monkeypatch.delenv("SAMMO_CORE_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(datasets, "CHECKOUT_DATA_DIR", tmp_path / "none")
    assert main(list(command)) == 0
    out = capsys.readouterr().out
    assert "instruction-tuning" in out and "apo" in out
    assert "sammo-core data fetch liar" in out  # what the apo suite needs


def test_bench_races_candidates_and_keeps_no_record_of_another_racing_mode(
    server: ChatServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "raced"
    flags = ("--max-rows", "12", "--budget", "6", "--tasks", "implicatures")
    assert run_suite(server, out, "quick", *flags, "--racing", "halving") == 0
    results = json.loads((out / "results.json").read_text())
    task = results["tasks"]["implicatures"]
    assert results["options"]["racing"] == "halving"
    assert task["search"]["racing"] == "halving" and task["search"]["params"]["racing"] == "halving"
    lines = (out / task["run_dir"] / "trace.jsonl").read_text().splitlines()
    assert all(json.loads(line)["race"]["rows"] >= 8 for line in lines)  # rungs of 8 or more
    # Resumed without racing, the raced record is not kept as the off run's result.
    capsys.readouterr()
    assert run_suite(server, out, "quick", *flags, "--resume") == 1
    captured = capsys.readouterr()
    assert "belongs to a different search" in captured.out + captured.err
