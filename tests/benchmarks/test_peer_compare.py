"""``python -m benchmarks.harness.peer_compare``: the table, the prompt diffs, the flags, the
server helper.

No peer virtualenv is needed: the peers' rows say they were skipped and why, and the model
server is the loopback one (in a child process where the helper is tested, in this process
where the comparison runs end to end through ``--base-url``).
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from benchmarks.datasets import load_sammo_instruction_tuning
from benchmarks.harness import peer_compare
from benchmarks.harness.peer_compare import (
    Settings,
    SystemResult,
    peer_job,
    peer_result,
    render_report,
    render_table,
    score_predictions,
)
from benchmarks.harness.peer_env import ModelServer, free_port
from sammo_core.errors import ConfigError
from sammo_core.stats import format_p, mcnemar_exact
from sammo_core.testing.chat_server import ChatServer


def ok(system: str, **fields: Any) -> SystemResult:
    base: dict[str, Any] = {
        "task": "implicatures",
        "status": "ok",
        "method": "random search",
        "candidates": 24,
        "calls": 580,
        "seconds": 301.4,
        "start_val": 0.25,
        "best_val": 0.6,
        "start_test": {"value": 0.3, "ci_low": 0.18, "ci_high": 0.44},
        "best_test": {"value": 0.62, "ci_low": 0.48, "ci_high": 0.76},
        "start_prompt": "# Task\nSay yes or no.\n\nInput: q\nOutput:",
        "best_prompt": "# Task\nSay yes or no.\n\nInput: a\nOutput: yes\n\nInput: q\nOutput:",
    }
    return SystemResult(system, **{**base, **fields})


# -- the table and the report --------------------------------------------------------------


def test_table_has_one_row_per_system_with_scores_intervals_and_why_a_peer_did_not_run() -> None:
    rows = [
        ok("sammo-core", note="winner's edits: show 1 example"),
        ok("dspy", version="3.4.0", note="plain adapter | ChatAdapter 100% unparsed"),
        SystemResult("sammo", "implicatures", "skipped", note="no virtualenv; use --setup"),
        SystemResult("sammo-core", "navigate", "failed", note="server gone"),
    ]
    lines = render_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]
    assert all(len(c) == len(cells[0]) for c in cells)  # a "|" in a note is escaped
    header = cells[0]
    ours = dict(zip(header, cells[2], strict=True))
    assert ours["val start -> best"] == "0.250 -> 0.600"
    assert ours["test start"] == "0.300 [0.180, 0.440]"
    assert ours["test best (95% CI)"] == "0.620 [0.480, 0.760]"
    assert (ours["candidates"], ours["calls"], ours["s"]) == ("24", "580", "301")
    dspy = dict(zip(header, cells[3], strict=True))
    assert dspy["system"] == "dspy 3.4.0"
    assert dspy["note"] == "plain adapter \\| ChatAdapter 100% unparsed"
    skipped = dict(zip(header, cells[4], strict=True))
    assert skipped["note"] == "skipped: no virtualenv; use --setup"
    assert skipped["test best (95% CI)"] == skipped["calls"] == "-"
    assert dict(zip(header, cells[5], strict=True))["note"] == "failed: server gone"


def test_paired_columns_compare_on_the_same_rows() -> None:
    """Separate intervals that overlap, while row by row sammo-core's winner beats the
    peer's on 12 rows and loses on 2 of the 50 they share."""
    agree = [1.0] * 20 + [0.0] * 16
    ours_best = [1.0] * 12 + [0.0] * 2 + agree
    theirs_best = [0.0] * 12 + [1.0] * 2 + agree
    start = [0.0] * 14 + agree

    def row(system: str, best: list[float]) -> SystemResult:
        value = sum(best) / len(best)
        return ok(
            system,
            start_test={"value": sum(start) / 50, "per_item": start},
            best_test={"value": value, "ci_low": 0.0, "ci_high": 1.0, "per_item": best},
        )

    lines = render_table([row("sammo-core", ours_best), row("dspy", theirs_best)]).splitlines()
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]
    ours, theirs = (dict(zip(cells[0], c, strict=True)) for c in cells[2:])
    versus = "sammo-core best - this best (paired)"
    assert ours[versus] == "-"  # not paired with itself
    p = format_p(mcnemar_exact(12, 2))
    assert theirs[versus].startswith("+0.200 [") and theirs[versus].endswith(f"(12/2, p={p})")
    gains = "best - start (paired 95% CI; better/worse, p)"
    assert ours[gains].endswith(f"(12/0, p={format_p(mcnemar_exact(12, 0))})")
    assert theirs[gains].startswith("+0.040 [") and theirs[gains].endswith("(2/0, p=0.500)")


def test_report_shows_each_winning_prompt_and_its_diff_from_the_start() -> None:
    rows = [
        ok("sammo-core"),
        ok("sammo", best_prompt=ok("sammo").start_prompt),
        SystemResult("dspy", "implicatures", "skipped", note="absent"),
    ]
    text = render_report(rows, {"model": "gemma3", "budget (candidates)": 24})
    assert "model: gemma3, budget (candidates): 24" in text
    assert text.count("### implicatures:") == 2  # no section for a skipped system
    ours = text.split("### implicatures: sammo-core")[1].split("###")[0]
    assert "+Input: a\n+Output: yes" in ours
    assert "```diff\n--- baseline\n+++ optimized" in ours
    theirs = text.split("### implicatures: sammo")[-1]
    assert "(unchanged)" in theirs


def test_peer_replies_are_scored_by_our_objective_on_their_first_line() -> None:
    score = score_predictions(
        ("no", "yes"),
        ["yes", "no", "yes", "no"],
        ["Yes.\nInput: next", "  no", "yes, because", None],
    )
    assert score["name"] == "label_accuracy"
    assert score["value"] == 0.5
    assert 0.0 <= score["ci_low"] <= 0.5 <= score["ci_high"] <= 1.0
    free = score_predictions(None, ["Paris"], ["paris"])
    assert (free["name"], free["value"]) == ("accuracy", 1.0)


def test_a_peer_side_output_becomes_a_scored_row(data_dir: Path) -> None:
    settings = Settings(tasks=("implicatures",), val_rows=3, test_rows=4, budget=5)
    job = peer_job("implicatures", data_dir, settings, "http://127.0.0.1:1/v1", "gemma3")
    splits = load_sammo_instruction_tuning(data_dir, "implicatures")
    assert [q for q, _ in job["val"]] == list(splits.val.inputs[:3])
    assert [q for q, _ in job["test"]] == list(splits.test.inputs[:4])
    assert len(job["train"]) == len(splits.train) and job["labels"] == ["no", "yes"]
    gold = [g for _, g in job["test"]]
    side = {
        "candidates": 5,
        "calls": 31,
        "seconds": 9.5,
        "start_test_replies": ["maybe"] * 4,
        "best_test_replies": gold,
        "start_prompt": "a",
        "best_prompt": "b",
        "version": "0.3.3",
    }
    row = peer_result("sammo", job, side)
    assert row.best_test is not None and row.best_test["value"] == 1.0
    assert row.start_test is not None and row.start_test["value"] == 0.0
    assert (row.candidates, row.calls, row.version) == (5, 31, "0.3.3")


# -- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--val-rows", "0"], "--val-rows must be >= 1; got 0"),
        (["--budget", "-2"], "--budget must be >= 1; got -2"),
        (["--tasks", ","], "--tasks names no task"),
        (
            ["--systems", "ours"],
            "unknown system 'ours'; use some of: sammo-core, sammo-core-scored, sammo, dspy",
        ),
        (["--base-url", "http://127.0.0.1:1/v1"], "--base-url and --model go together"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag_and_the_fix(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        peer_compare.main([*argv, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_without_a_server_python_it_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(peer_compare, "_server_python", lambda peers_dir: None)
    with pytest.raises(SystemExit, match=r"add --setup .*llama-cpp-python\[server\]"):
        peer_compare.main(["--peers-dir", str(tmp_path / "peers"), "--out", str(tmp_path)])


class Answers:
    """A loopback base model that answers every known input right (the first line)."""

    def __init__(self, gold: Mapping[str, str]) -> None:
        self.gold = gold

    def __call__(self, payload: Mapping[str, Any]) -> str:
        prompt = str(payload.get("prompt", ""))
        last = max(self.gold, key=prompt.rfind)
        return f" {self.gold[last]}\nInput: something else"


def test_the_comparison_runs_end_to_end_and_skips_absent_peers(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    splits = load_sammo_instruction_tuning(data_dir, "implicatures")
    gold = {row.input: row.output for t in (splits.val, splits.test) for row in t}
    out = tmp_path / "out"
    with ChatServer(reply=Answers(gold)) as server:
        code = peer_compare.main(
            [
                *("--tasks", "implicatures", "--val-rows", "3", "--test-rows", "4"),
                *("--budget", "2", "--data-dir", str(data_dir)),
                *("--base-url", server.base_url, "--model", "stand-in"),
                *("--peers-dir", str(tmp_path / "no-peers"), "--out", str(out)),
                *("--systems", "sammo-core,sammo-core-scored,sammo,dspy"),
            ]
        )
        calls = server.stats().completions
    assert code == 0
    report = json.loads((out / "peers.json").read_text())
    rows = {r["system"]: r for r in report["results"]}
    assert set(rows) == {"sammo-core", "sammo-core-scored", "sammo", "dspy"}
    ours, scored = rows["sammo-core"], rows["sammo-core-scored"]
    assert ours["status"] == "ok" and ours["best_test"]["value"] == 1.0
    assert ours["best_test"]["per_item"] == [1.0] * 4  # each test row's score, for pairing
    ours_line = next(
        x for x in markdown_lines(out) if x.startswith("| implicatures | sammo-core |")
    )
    best_minus_start = dict(
        zip(markdown_header(out), ours_line.strip("|").split(" | "), strict=True)
    )
    assert best_minus_start["best - start (paired 95% CI; better/worse, p)"].strip() != "-"
    assert scored["status"] == "ok" and scored["best_test"] is not None
    # every request the server answered was one of our two rows' (scored: one per label)
    assert ours["calls"] + scored["calls"] == calls
    assert ours["candidates"] == 2
    for peer in ("sammo", "dspy"):
        assert rows[peer]["status"] == "skipped"
        assert "no virtualenv" in rows[peer]["note"] and "--setup" in rows[peer]["note"]
    markdown = (out / "peers.md").read_text()
    assert "| implicatures | sammo-core |" in markdown
    assert "### implicatures: sammo-core" in markdown
    assert "| implicatures | sammo-core |" in capsys.readouterr().out


def markdown_lines(out: Path) -> list[str]:
    return (out / "peers.md").read_text().splitlines()


def markdown_header(out: Path) -> list[str]:
    header = next(x for x in markdown_lines(out) if x.startswith("| task | system |"))
    return header.strip("|").split(" | ")


# -- the server helper ---------------------------------------------------------------------


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


def test_the_server_helper_waits_for_models_and_stops_the_child(tmp_path: Path) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    command = [sys.executable, "-m", "sammo_core.testing.chat_server", "--port", str(port)]
    with ModelServer(command, base_url, start_timeout=60, log=tmp_path / "server.log") as server:
        assert server.running and server.ready()
        assert reachable(base_url + "/models")
    assert not server.running
    assert not reachable(base_url + "/models")
    assert "serving" in (tmp_path / "server.log").read_text()


def test_a_server_that_exits_or_never_answers_is_an_error_naming_the_fix(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    exits = [sys.executable, "-c", "raise SystemExit(3)"]
    with (
        pytest.raises(RuntimeError, match=r"exited with 3 before serving; its output is in"),
        ModelServer(exits, url, log=tmp_path / "exits.log"),
    ):
        pass
    sleeps = [sys.executable, "-c", "import time; time.sleep(60)"]
    silent = ModelServer(sleeps, url, start_timeout=1)
    with pytest.raises(RuntimeError, match=r"did not answer .*/models within 1 s; raise"), silent:
        pass
    assert not silent.running
    with pytest.raises(ConfigError, match="start_timeout must be > 0"):
        ModelServer(exits, url, start_timeout=0)
