"""The perf benchmark and the SAMMO harness at tiny sizes: structure and counts, never timings."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from benchmarks.harness import perf, sammo_compare, synthetic_server, throughput
from benchmarks.harness.perf import cli as perf_cli
from benchmarks.harness.perf import overhead
from benchmarks.harness.perf.sweep import measurement_dict
from benchmarks.peers import _sammo_side
from sammo_core.graph import compile
from sammo_core.objectives import Accuracy, evaluate
from sammo_core.runners.base import LLMRequest
from sammo_core.runners.scripted import ScriptedRunner
from sammo_core.testing import synthetic

# -- perf: a. framework overhead -----------------------------------------------------------------


@pytest.mark.parametrize(("variant", "calls"), [("plain", 16), ("minibatch", 2), ("knn", 16)])
def test_overhead_counts_every_row(variant: str, calls: int) -> None:
    figure = perf.measure_overhead(variant, 16)
    assert (figure.variant, figure.rows, figure.calls, figure.scored_rows) == (
        variant,
        16,
        calls,
        16,
    )
    assert min(figure.compile_s, figure.run_s, figure.runner_s, figure.objective_s) >= 0
    assert figure.runner_s <= figure.run_s
    assert figure.total_s == pytest.approx(figure.compile_s + figure.run_s + figure.objective_s)
    assert figure.rows_per_second > 0
    assert figure.to_dict()["rows_per_second"] == figure.rows_per_second


def test_review_table_is_seeded_and_labelled() -> None:
    table = perf.review_table(30, seed=3)
    assert len(table) == 30
    assert [r.input for r in table] == [r.input for r in perf.review_table(30, seed=3)]
    assert [r.input for r in table] != [r.input for r in perf.review_table(30, seed=4)]
    assert {r.output for r in table} <= set(perf.LABELS)


def test_scripted_reply_answers_each_input_of_a_minibatch() -> None:
    program = perf.realistic_program("minibatch", perf.review_table(10))
    runner = ScriptedRunner(default=perf.scripted_reply)
    results = compile(program).run_sync(perf.review_table(11), runner)
    assert runner.calls == 2  # 8 + 3 inputs
    assert results.predictions == ["positive"] * 11
    assert perf.scripted_reply(LLMRequest.from_prompt("no ids here")) == "positive"


def test_realistic_program_rejects_an_unknown_variant() -> None:
    with pytest.raises(ValueError, match="unknown variant 'fast'"):
        perf.realistic_program("fast", perf.review_table(5))


def test_profile_breakdown_splits_a_pass_into_phases() -> None:
    breakdown = perf.profile_breakdown("plain", 20, top=5)
    shares = breakdown.shares()
    assert list(shares) == [*overhead._PHASES, "scheduling + rest"]
    assert all(0.0 <= share <= 1.0 for share in shares.values())
    assert sum(shares.values()) <= 1.02  # the phases do not overlap; the rest fills the gap
    assert breakdown.phases["render"] > 0 and breakdown.phases["runner"] > 0
    assert len(breakdown.top_cumulative) == 5 and len(breakdown.top_self) == 5
    assert all(f.calls >= 1 and f.cumulative_s >= 0 for f in breakdown.top_cumulative)
    assert all(f.name.split("/")[0] in overhead._PROJECT for f in breakdown.top_cumulative)


# -- perf: b. throughput, c. prefix reuse --------------------------------------------------------


def test_throughput_sweep_counts_rows_and_gives_sane_ratios() -> None:
    with throughput.serve(0.02, "thread") as base_url:
        sweep = perf.measure_throughput(base_url, [1, 4], latency=0.02, waves=2)
    assert [(m.concurrency, m.rows) for m in sweep] == [(1, 2), (4, 8)]
    for m in sweep:
        assert m.ideal == pytest.approx(2 * 0.02)
        assert 0.0 < m.efficiency <= 1.5
        assert measurement_dict(m)["efficiency"] == m.efficiency


def test_prefix_reuse_figure_reads_per_candidate() -> None:
    figure = perf.PrefixReuseFigure(10, "m", 400, 4.0, 12.0, 5.0, 20, 20)
    assert figure.per_candidate == {"grouped": 2.0, "interleaved": 6.0, "gathered": 2.5}
    assert figure.speedup == 3.0
    assert figure.to_dict()["speedup"] == 3.0


def test_prefix_reuse_says_why_it_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    message = perf.llama_cpp_missing()
    assert message is not None and "llama_cpp is not importable" in message


def test_main_prints_and_writes_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(perf_cli, "llama_cpp_missing", lambda: "llama_cpp is not importable (test)")
    out = tmp_path / "figures" / "perf.json"
    argv = ["--rows", "12", "--variants", "plain,minibatch", "--profile-rows", "12"]
    argv += ["--concurrency", "1,2", "--waves", "1", "--latency", "0.01", "--server", "thread"]
    assert perf.main([*argv, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "framework overhead" in printed and "prefix reuse skipped" in printed
    report = json.loads(out.read_text())
    assert [(f["variant"], f["rows"], f["calls"]) for f in report["overhead"]] == [
        ("plain", 12, 12),
        ("minibatch", 12, 2),
    ]
    assert [b["variant"] for b in report["breakdown"]] == ["plain", "minibatch"]
    assert [(m["concurrency"], m["rows"]) for m in report["throughput"]] == [(1, 1), (2, 2)]
    assert all(0.0 < m["efficiency"] <= 1.5 for m in report["throughput"])
    assert report["prefix_reuse"] == {"skipped": "llama_cpp is not importable (test)"}


def test_quick_sizes_are_small(monkeypatch: pytest.MonkeyPatch) -> None:
    """--quick is a first look within a minute on 2 cores, not the full 1,000-row run."""
    seen: dict[str, object] = {}

    def part_a(console: object, variants: object, sizes: object, profile_rows: object) -> dict:  # type: ignore[type-arg]
        seen.update(sizes=sizes, profile_rows=profile_rows)
        return {}

    monkeypatch.setattr(perf_cli, "_part_a", part_a)
    monkeypatch.setattr(perf_cli, "llama_cpp_missing", lambda: "not here (test)")
    monkeypatch.setattr(
        perf_cli,
        "measure_throughput",
        lambda url, conc, latency, waves: seen.update(waves=waves) or [],
    )
    assert perf.main(["--quick", "--server", "thread"]) == 0
    assert seen == {"sizes": [300], "profile_rows": 200, "waves": 2}


def test_throughput_reports_and_exits_1_only_with_check(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--rows", "4", "--latency", "0.01", "--concurrency", "2", "--server", "thread"]
    assert throughput.main([*argv, "--target", "50"]) == 0  # a benchmark reports
    assert "efficiency below 5000%" in capsys.readouterr().out
    assert throughput.main([*argv, "--target", "50", "--check"]) == 1


def test_main_rejects_unknown_variants() -> None:
    with pytest.raises(SystemExit) as exc:
        perf.main(["--variants", "plain,fast", "--no-throughput", "--no-prefix"])
    assert exc.value.code == 2


# -- sammo_compare: arguments and skips ----------------------------------------------------------


def test_compare_without_sammo_python_skips_with_setup_hint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert sammo_compare.main([]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "SAMMO comparison skipped: --sammo-python was not given" in printed
    assert "pip install sammo==0.3.3" in printed


def test_compare_with_a_missing_interpreter_skips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-venv" / "python"
    assert sammo_compare.main(["--sammo-python", str(missing)]) == 0
    assert "does not exist" in " ".join(capsys.readouterr().out.split())


@pytest.mark.skipif(
    importlib.util.find_spec("sammo") is not None, reason="sammo is installed in this venv"
)
def test_an_interpreter_without_sammo_is_refused() -> None:
    message = sammo_compare.sammo_unavailable(sys.executable)
    assert message is not None and "cannot import sammo" in message


@pytest.mark.parametrize(
    "argv",
    [
        ["--concurrency", "0"],
        ["--rows", "0"],
        ["--rows", "many"],
        ["--candidates", "0"],
        ["--timeout", "0"],
    ],
)
def test_compare_rejects_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        sammo_compare.main(argv)
    assert exc.value.code == 2


def test_sammo_side_failure_is_reported_with_its_message() -> None:
    job = sammo_compare._job("eval", "http://127.0.0.1:9/v1", 2, synthetic.items(2))
    if importlib.util.find_spec("sammo") is None:
        with pytest.raises(RuntimeError, match="the SAMMO side failed"):
            sammo_compare.run_sammo_side(sys.executable, job, timeout=60)
    with pytest.raises(RuntimeError, match="unknown task 'fly'"):
        sammo_compare.run_sammo_side(sys.executable, job | {"task": "fly"}, timeout=60)


def test_sammo_side_imports_without_sammo() -> None:
    assert _sammo_side.RESULT_PREFIX == sammo_compare.RESULT_PREFIX
    assert Path(_sammo_side.__file__) == sammo_compare.SIDE_SCRIPT


# -- sammo_compare: the synthetic model and sammo-core's side ------------------------------------


def _as_payload(request: LLMRequest) -> str:
    return synthetic_server.synthetic_reply({"messages": [m.to_dict() for m in request.messages]})


@pytest.mark.parametrize(
    ("program", "accuracy"),
    [(synthetic.start_program(), 0.5), (synthetic.optimal_program(), 1.0)],
)
def test_synthetic_reply_scores_like_the_synthetic_model(program: object, accuracy: float) -> None:
    runner = ScriptedRunner(default=_as_payload)
    results = compile(program).run_sync(synthetic.items(40), runner)  # type: ignore[arg-type]
    assert evaluate(results, [Accuracy()])["accuracy"].value == accuracy


def test_ours_side_against_the_synthetic_server() -> None:
    with synthetic_server.SyntheticServer(latency=0.0) as server:
        (figure,) = sammo_compare.compare_eval(server, None, rows=6, concurrency=3, timeout=30)
        assert server.stats()["completions"] == 6
        server.reset()
        assert server.stats()["completions"] == 0
    assert (figure.side, figure.rows, figure.calls, figure.accuracy) == ("sammo-core", 6, 6, 1.0)
    assert figure.max_in_flight <= 3
    assert figure.ideal_s == 0.0 and figure.overhead_ms_per_row > 0


def test_eval_figure_arithmetic() -> None:
    figure = sammo_compare.EvalFigure("x", 200, 32, 0.05, 10.0, 200, 32, 1.0)
    assert figure.ideal_s == pytest.approx(0.3125)
    assert figure.efficiency == pytest.approx(0.03125)
    assert figure.overhead_ms_per_row == pytest.approx(1000 * (10.0 - 0.3125) / 200)


# -- perf: rows per second -----------------------------------------------------------------------


def test_rows_figures_and_table_show_the_before_figures() -> None:
    figure = perf.measure_rows(30)
    assert figure.rows == 30 and figure.wall_s > 0 and figure.cpu_s >= 0
    assert figure.to_dict()["cpu_us_per_row"] == figure.cpu_us_per_row
    assert perf.measure_memory(30) > 0
    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(perf_cli.rows_table([perf.RowsFigure(1000, 0.1, 0.05)], (100_000, 12.5)))
    text = console.export_text()
    assert "10,000" in text and f"{perf.BEFORE['rows_per_second_1000']:,.0f}" in text
    assert "peak MiB, 100,000 rows" in text and "12.5" in text


def test_goals_print_each_figure_beside_the_one_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from benchmarks.harness import search_speed

    # Rows at 25,000/s and 30 µs of CPU each; a small run and search, really measured.
    monkeypatch.setattr(
        perf_cli, "measure_rows", lambda n: perf.RowsFigure(n, n / 25_000, n * 3e-5)
    )
    monkeypatch.setattr(perf_cli, "measure_memory", lambda n: 100.0)

    def small(latency: float) -> tuple[throughput.Measurement, search_speed.SearchSpeed]:
        with throughput.serve(latency, "thread") as url:
            run = asyncio.run(throughput.measure(url, 20, 4, latency))
        argv = ["--candidates", "3", "--rows", "4", "--test-rows", "2", "--width", "1"]
        argv += ["--depth", "2", "--mutations-per-parent", "1", "--latency", str(latency)]
        with synthetic_server.SyntheticServer(latency) as server:
            return run, search_speed.measure(server, search_speed.parser().parse_args(argv))

    monkeypatch.setattr(perf_cli, "run_and_search", small)
    out = tmp_path / "goals.json"
    assert perf.main(["--goals", "--latency", "0.01", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "before issue 12" in printed and "668.1" in printed and "6.76x" in printed
    goals = {g["figure"]: g for g in json.loads(out.read_text())["goals"]}
    assert goals["rows/s, 100,000 rows"]["now"] == "25,000"
    assert goals["rows/s, 100,000 rows"]["before"] == "434"
    assert goals["rows/s, 1,000 rows"]["met"] and goals["CPU µs per row, 10,000 rows"]["met"]
    assert goals["peak MiB, 100,000 rows"]["now"] == "100.0"
    run = goals["client CPU ms per request (20 requests)"]
    assert run["before"] == perf.BEFORE_GOALS["cpu_ms_per_request"]
    search = goals["beam search, 3 candidates: wall / ideal"]
    assert search["now"].endswith(" s)") and search["target"] == "<= 1.5x"
