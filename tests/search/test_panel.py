"""Several models, one program: every candidate scored on each model of a Panel, the search
selecting on the combined score, each model's score kept beside it."""

from __future__ import annotations

import asyncio

import pytest

from sammo_core.errors import ConfigError
from sammo_core.objectives import Accuracy
from sammo_core.runners import ScriptedRunner
from sammo_core.testing.synthetic import items, start_program, synthetic_model
from search.evaluator import Evaluator
from search.panel import Panel
from search.racing import Race, Racing


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
