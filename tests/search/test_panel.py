"""Several models, one program: every candidate scored on each model of a Panel, the search
selecting on the combined score, each model's score kept beside it."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sammo_core.cli import main
from sammo_core.errors import ConfigError
from sammo_core.objectives import Accuracy
from sammo_core.runners import ScriptedRunner
from sammo_core.testing.chat_server import ChatServer
from sammo_core.testing.synthetic import items, start_program, synthetic_model
from search.evaluator import Evaluator
from search.panel import Panel
from search.racing import Race, Racing
from tests.search.test_cli_optimize import files, optimize_args, reply  # noqa: F401


def test_each_model_scores_every_row_and_the_scores_combine() -> None:
    data = items(12)
    for across, expected in (("mean", None), ("min", 0.0)):
        good = synthetic_model()
        bad = ScriptedRunner(default="maybe")  # never right
        evaluator = Evaluator(data, Panel({"good": good, "bad": bad}, across=across), [Accuracy()])
        scores = asyncio.run(evaluator.evaluate(start_program())).scores
        alone = scores["accuracy@good"].value
        assert scores["accuracy@bad"].value == 0.0 and alone > 0
        assert good.calls == bad.calls == 12  # every row on each model, once
        if expected is None:
            assert scores["accuracy"].value == pytest.approx(alone / 2)
            per_row = scores["accuracy"].per_item
            assert per_row is not None and set(per_row) <= {0.0, 0.5}
        else:
            assert scores["accuracy"].value == expected


def test_a_panel_refuses_racing_and_bad_settings() -> None:
    panel = Panel({"a": ScriptedRunner(default="yes"), "b": ScriptedRunner(default="no")})
    evaluator = Evaluator(items(8), panel, [Accuracy()])
    race = Race(Racing("halving"), range(8), (4, 8), Accuracy(), (), None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="--racing off"):
        asyncio.run(evaluator.evaluate(start_program(), race=race))
    with pytest.raises(ConfigError, match="across must be one of mean, min"):
        Panel({"a": ScriptedRunner(default="x")}, across="median")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="without '@'"):
        Panel({"a@b": ScriptedRunner(default="x")})


# -- from the command line ---------------------------------------------------------------------


SEEN: Counter[str] = Counter()


def two_models(body: Mapping[str, Any]) -> str:
    """Model "good" is the synthetic task's model; model "bad" answers right only when the
    prompt shows three examples or more (and "maybe" otherwise)."""
    SEEN[body["model"]] += 1
    if body["model"] == "good":
        return reply(body)
    prompt = body["messages"][-1]["content"]
    return reply(body) if prompt.count("Output:") >= 4 else "maybe"


def optimize_on_two_models(
    paths: tuple[Path, Path, Path], out: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> Any:
    """``optimize`` on models "good" and "bad" (:func:`two_models`) into ``out``, which must
    succeed; what it printed (``SEEN`` counts each model's requests)."""
    program, data, _ = paths
    SEEN.clear()
    with ChatServer(reply=two_models) as server:
        args = optimize_args(program, data, server.base_url, out)
        args[args.index("--model") : args.index("--model") + 2] = ["--model", "good"]
        code = main([*args, "--model", "bad", *extra])
        printed = capsys.readouterr()
        assert code == 0, printed.err[-2000:]
    return printed


def test_optimize_scores_every_candidate_on_each_model(
    files: tuple[Path, Path, Path],  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "run"
    printed = optimize_on_two_models(files, out, capsys, "--across", "mean")
    result = json.loads((out / "result.json").read_text())
    by_model = result["usage_by_model"]
    assert set(by_model) == {"good", "bad"}
    assert by_model["good"]["calls"] == by_model["bad"]["calls"] > 0  # every row on both
    assert by_model["good"]["calls"] + by_model["bad"]["calls"] == result["usage"]["calls"]
    assert SEEN["good"] == SEEN["bad"] > by_model["good"]["calls"]  # and the test report
    best = result["best"]["scores"]
    mean = (best["accuracy@good"]["value"] + best["accuracy@bad"]["value"]) / 2
    assert best["accuracy"]["value"] == pytest.approx(mean)
    assert set(result["best"]["test_scores"]) >= {"accuracy", "accuracy@good", "accuracy@bad"}
    run = json.loads((out / "run.json").read_text())
    assert run["models"] == ["good", "bad"] and run["across"] == "mean"
    assert "accuracy on each model" in printed.out and "good test" in printed.out
    assert "search calls by model: good" in printed.out
    chat = {"mode": "chat", "stop": []}
    assert run["call_settings"] == {"good": chat, "bad": chat}  # neither is a base model
    assert main(["export", str(out), "--format", "json"]) == 0
    manifest = json.loads((out / "export" / "manifest-json.json").read_text())
    assert manifest["models"] == {"good": chat, "bad": chat}


def test_each_models_score_is_an_objective_of_a_pareto_front(
    files: tuple[Path, Path, Path],  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--objective accuracy@good,accuracy@bad``: the front trades one model's score against
    the other's, and export picks a member by a limit on either model."""
    out = tmp_path / "run"
    objectives = ["--objective", "accuracy@good,accuracy@bad"]
    printed = optimize_on_two_models(files, out, capsys, *objectives)
    result = json.loads((out / "result.json").read_text())
    names = ["accuracy@good", "accuracy@bad"]
    assert [o["name"] for o in result["objectives"]] == names
    assert "val accuracy@bad" in printed.out  # a column per objective, so per model

    def point(c: Mapping[str, Any]) -> tuple[float, float]:
        return c["scores"][names[0]]["value"], c["scores"][names[1]]["value"]

    front = [point(c) for c in result["front"]]
    assert front[0] == point(result["best"])
    for a in front:  # no member of the front dominates another
        assert not any(b != a and b[0] >= a[0] and b[1] >= a[1] for b in front)
    start = point(result["start"])
    assert any(p[1] > start[1] for p in front)  # the "bad" model's gain is on the front
    assert set(result["best"]["test_scores"]) >= {*names, "accuracy"}
    best_bad = max(p[1] for p in front)
    assert main(["export", str(out), "--pick", f"limit:accuracy@bad={best_bad}"]) == 0
    (manifest,) = (out / "export").glob("manifest-*.json")
    assert json.loads(manifest.read_text())["scores"]["accuracy@bad"]["value"] == best_bad


def test_a_models_objective_names_one_of_the_runs_models(
    files: tuple[Path, Path, Path],  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    program, data, _ = files
    url = "http://127.0.0.1:9/v1"
    args = optimize_args(program, data, url, tmp_path / "a")
    code = main([*args, "--model", "other", "--objective", "accuracy@elsewhere"])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "names model 'elsewhere', which is not among this run's models (loopback, other)" in err
    code = main([*optimize_args(program, data, url, tmp_path / "b"), "--objective", "accuracy@x"])
    err = capsys.readouterr().err
    assert code != 0 and "give --model more than once" in err and "Traceback" not in err
    run = ["run", str(program), "--data", str(data), "--model", "x", "--base-url", url]
    assert main([*run, "--objective", "accuracy@x"]) != 0  # refused before any call
    err = capsys.readouterr().err
    assert "this command runs one model: drop '@x'" in err and "Traceback" not in err


def test_commands_that_take_one_model_say_so(
    files: tuple[Path, Path, Path],  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    program, data, _ = files
    code = main(["run", str(program), "--data", str(data), "--model", "a", "--model", "b",
                 "--base-url", "http://127.0.0.1:9/v1"])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and "--model is given 2 times (a, b)" in err and "Traceback" not in err
    args = optimize_args(program, data, "http://127.0.0.1:9/v1", tmp_path / "o")
    code = main([*args, "--model", "other", "--racing", "halving"])
    err = capsys.readouterr().err
    assert code != 0 and "with 2 models use --racing off" in err


def test_a_base_model_in_a_panel_is_prompted_in_completion_mode_the_other_in_chat() -> None:
    from search.panel import panel_of

    chat, base = ScriptedRunner(default="yes"), ScriptedRunner(default="yes")
    program = start_program()
    panel, settings = panel_of({"chat": chat, "base": base}, program, base_models={"base"})
    asyncio.run(Evaluator(items(4), panel, [Accuracy()]).evaluate(program))
    assert {r.mode for r in chat.requests} == {"chat"} and {r.stop for r in chat.requests} == {()}
    assert {r.mode for r in base.requests} == {"completion"}
    assert {r.stop for r in base.requests} == {("\n",)}
    assert settings["base"] == {"mode": "completion", "stop": ["\n"]}
