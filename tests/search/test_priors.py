"""Search priors: optimize writes what it learned, --priors starts the next search from it, and
the priors steer the draw (operators and values) without ruling anything out."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from mutators.format import ChangeDataFormat, ChangeSectionFormat
from mutators.mixture import Mixture
from mutators.priors import Learned, Priors, apply_priors
from mutators.structure import DropSection, ReorderSections
from sammo_core import GenerateText, InputData, MetaPrompt, Output, Section
from sammo_core.cli import main
from sammo_core.errors import DataError
from sammo_core.testing.chat_server import ChatServer
from tests.search.test_cli_optimize import files, optimize_args, reply  # noqa: F401

PROGRAM = Output(
    GenerateText(
        MetaPrompt([Section("Task", ["Say yes."]), Section("Notes", ["Be brief."]), InputData()])
    )
)


def draws(mixture: Mixture, seeds: int = 200) -> Counter[str]:
    """Which operator gives the first child, over many seeds."""
    return Counter(
        asyncio.run(mixture.mutate(PROGRAM, random.Random(seed)))[0].operator
        for seed in range(seeds)
    )


def test_credit_from_other_tasks_shifts_the_draw_to_the_operators_that_paid() -> None:
    ops = lambda: [DropSection(), ReorderSections(), ChangeSectionFormat()]  # noqa: E731
    plain = draws(Mixture(ops()))
    steered = Mixture(ops())
    priors = Priors({"a": Learned({"ChangeSectionFormat": (20, 15), "DropSection": (20, 0)})})
    apply_priors(steered, priors)
    after = draws(steered)
    assert after["ChangeSectionFormat"] > plain["ChangeSectionFormat"] + 40
    assert after["DropSection"] < plain["DropSection"] - 30
    assert after["DropSection"] > 0  # steered, never ruled out


def test_preferred_values_come_first_more_often_but_all_stay_possible() -> None:
    def first_values(op: ChangeSectionFormat) -> Counter[str]:
        return Counter(
            asyncio.run(op.mutate(PROGRAM, random.Random(seed)))[0].description.split()[-1]
            for seed in range(300)
        )

    uniform = first_values(ChangeSectionFormat())
    op = ChangeSectionFormat()
    apply_priors(op, Priors({"a": Learned({}, {"MetaPrompt.section_format": {"xml": 4}})}))
    steered = first_values(op)
    assert steered["xml"] > uniform["xml"] + 80
    assert set(steered) == set(uniform) == {"plain", "xml", "json"}


def test_priors_file_round_trip_and_errors(tmp_path: Path) -> None:
    p = Priors({"t": Learned({"DropSection": (3, 1)}, {"MetaPrompt.data_format": {"json": 2}})})
    path = tmp_path / "priors.json"
    path.write_bytes(p.dumps())
    assert Priors.load(path) == p
    path.write_text(json.dumps({"format": "sammo-core priors", "version": 7}))
    with pytest.raises(DataError, match="priors version 7"):
        Priors.load(path)
    path.write_text("[1, 2]")
    with pytest.raises(DataError, match="not a priors file"):
        Priors.load(path)


def test_mixture_state_keeps_priors_for_resume() -> None:
    mix = Mixture([DropSection(), ChangeDataFormat()])
    apply_priors(mix, Priors({"t": Learned({"DropSection": (4, 3)})}))
    mix.record("ChangeDataFormat", improved=True)
    again = Mixture([DropSection(), ChangeDataFormat()])
    again.load_state_dict(json.loads(json.dumps(mix.state_dict())))
    assert again.stats() == mix.stats() and repr(again) == repr(mix)
    fresh = Mixture([DropSection(), ChangeDataFormat()])
    assert repr(fresh) != repr(mix)  # the fingerprint of a run with priors differs


def test_optimize_writes_priors_and_the_next_run_starts_from_them(
    files: tuple[Path, Path, Path],  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    program, data, _ = files
    with ChatServer(reply=reply) as server:
        first = tmp_path / "first"
        assert main(optimize_args(program, data, server.base_url, first)) == 0
        learned = json.loads((first / "priors.json").read_text())
        assert list(learned["tasks"]) == ["program"]
        learned = learned["tasks"]["program"]
        result = json.loads((first / "result.json").read_text())
        tries = {op["operator"]: op["tries"] for op in result["operators"]}
        assert {k: v["tries"] for k, v in learned["operators"].items()} == tries
        assert sum(v["wins"] for v in learned["operators"].values()) >= 1
        capsys.readouterr()

        second = tmp_path / "second"
        args = optimize_args(
            program, data, server.base_url, second, "--priors", str(first / "priors.json")
        )
        assert main(args) == 0
        err = capsys.readouterr().err
        assert "priors of 1 task: credit for" in err and str(first / "priors.json") in err
        assert json.loads((second / "run.json").read_text())["priors"] == str(first / "priors.json")

        # The priors changed which children were drawn: not the same run again.
        def operators(run: Path) -> list[str]:
            state = json.loads((run / "checkpoint.json").read_text())
            return [c["operator"] for c in state["candidates"]]

        assert operators(second) != operators(first)


def test_optimize_refuses_a_bad_priors_file_in_one_line(
    files: tuple[Path, Path, Path],  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    program, data, _ = files
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    for spec, expected in [
        (str(bad), "not a priors file"),
        (str(tmp_path / "missing.json"), "cannot read priors file"),
    ]:
        code = main(
            optimize_args(program, data, "http://127.0.0.1:9/v1", tmp_path / "o", "--priors", spec)
        )
        err = capsys.readouterr().err
        assert code in (1, 2) and expected in err and "Traceback" not in err
        assert len(err.strip().splitlines()) <= 2  # the budget note, then the one error line
