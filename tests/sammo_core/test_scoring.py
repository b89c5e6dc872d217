"""Scored answers through a whole run: label distributions, verbalizers, calibration, the
probability objectives, and the cache replaying scores exactly."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sammo_core import DataTable, GenerateText, InputData, MetaPrompt, Output, ScriptedRunner
from sammo_core.errors import ConfigError
from sammo_core.graph import compile as compile_program
from sammo_core.objectives import BrierScore, LabelAccuracy, LabelLogLikelihood, evaluate
from sammo_core.runners import LLMRequest
from sammo_core.runners.cache import Cache, CachedRunner

DATA = DataTable(
    ["sunny and warm", "rain all day", "clear skies", "storm warning"],
    ["yes", "no", "yes", "no"],
)


def _program(**output: object) -> Output:
    call = GenerateText(MetaPrompt(["Nice weather?", InputData()]), labels=["yes", "no"])
    return Output(call, **output)  # type: ignore[arg-type]


def _biased(request: LLMRequest) -> dict[str, float]:
    """A model that leans to the first label everywhere, a little less when the input is bad
    weather: uncalibrated it answers the first label always; its content-free lean is 0.7."""
    text = request.prompt_text
    if "rain" in text or "storm" in text:
        p_first = 0.6
    elif "sunny" in text or "clear" in text:
        p_first = 0.8
    else:  # content-free inputs
        p_first = 0.7
    first, second = request.labels
    return {first: math.log(p_first), second: math.log(1 - p_first)}


def test_a_scored_run_predicts_the_most_likely_label_and_keeps_the_distribution() -> None:
    runner = ScriptedRunner(label_scores=_biased)
    rows = compile_program(_program()).run_sync(DATA, runner)
    assert rows.predictions == ["yes", "yes", "yes", "yes"]
    assert rows.scored and rows.label_prior is None
    first = rows[0].label_logprobs
    assert first is not None
    assert math.exp(first["yes"]) == pytest.approx(0.8)
    assert math.fsum(math.exp(v) for v in first.values()) == pytest.approx(1.0)
    assert rows[0].to_dict()["label_logprobs"] == first
    scores = evaluate(rows, [LabelAccuracy(("yes", "no")), LabelLogLikelihood(), BrierScore()])
    assert scores["label_accuracy"].value == 0.5
    expected = (math.log(0.8) + math.log(0.4) + math.log(0.8) + math.log(0.4)) / 4
    assert scores["label_loglik"].value == pytest.approx(expected)
    assert scores["label_loglik"].ci_low is not None
    brier = (2 * 0.2**2 + 2 * 0.6**2) * 2 / 4  # (1 - p_gold)^2 + p_other^2, p_other = 1 - p_gold
    assert scores["brier"].value == pytest.approx(brier)


def test_calibration_divides_out_the_content_free_prior() -> None:
    """On a synthetic biased model, calibration turns an always-'yes' program into a perfect one,
    fits the prior from three content-free calls, and a given prior makes no calls."""
    runner = ScriptedRunner(label_scores=_biased)
    rows = compile_program(_program(calibration="content_free")).run_sync(DATA, runner)
    assert rows.predictions == ["yes", "no", "yes", "no"]
    assert rows.label_prior is not None
    assert rows.label_prior["yes"] == pytest.approx(0.7)
    assert runner.calls == len(DATA) + 3
    assert [p for p in runner.prompts[:3] if "N/A" in p or "[MASK]" in p]
    calibrated = rows[1].label_logprobs
    assert calibrated is not None
    # 0.6 / 0.7 against 0.4 / 0.3, renormalized
    expected_no = (0.4 / 0.3) / (0.6 / 0.7 + 0.4 / 0.3)
    assert math.exp(calibrated["no"]) == pytest.approx(expected_no)

    given = ScriptedRunner(label_scores=_biased)
    program = _program(calibration="content_free", label_prior=[0.7, 0.3])
    again = compile_program(program).run_sync(DATA, given)
    assert again.predictions == rows.predictions and given.calls == len(DATA)


def test_calibration_needs_a_runner_that_scores_and_the_labels() -> None:
    generating = ScriptedRunner(default="yes")
    with pytest.raises(ConfigError, match=r"calibration needs scored answers.*'scripted'"):
        compile_program(_program(calibration="content_free")).run_sync(DATA, generating)
    with pytest.raises(ConfigError, match=r"needs the call's labels.*--labels yes,no"):
        Output(GenerateText(MetaPrompt([InputData()])), calibration="content_free")
    with pytest.raises(ConfigError, match=r"calibration 'always'"):
        _program(calibration="always")


def test_a_verbalizer_shows_and_scores_words_and_answers_in_labels() -> None:
    call = GenerateText(
        MetaPrompt(["Nice weather?", InputData()]), labels=["yes", "no"], verbalizer=["A", "B"]
    )
    runner = ScriptedRunner(label_scores=_biased)
    rows = compile_program(Output(call)).run_sync(DATA, runner)
    assert {r.labels for r in runner.requests} == {("A", "B")}
    assert rows.predictions == ["yes", "yes", "yes", "yes"]
    assert rows[0].label_logprobs is not None and set(rows[0].label_logprobs) == {"yes", "no"}
    # A runner that generates the word gets it mapped back to its label too.
    words = ScriptedRunner(rules={"rain|storm": "B"}, default="A")
    generated = compile_program(Output(call, parser="raw")).run_sync(DATA, words)
    assert generated.predictions == ["yes", "no", "yes", "no"]
    with pytest.raises(ConfigError, match=r"verbalizer \['A'\] must give one"):
        GenerateText(MetaPrompt([InputData()]), labels=["yes", "no"], verbalizer=["A"])


def test_probability_objectives_refuse_a_table_with_no_scores() -> None:
    rows = compile_program(_program()).run_sync(DATA, ScriptedRunner(default="yes"))
    assert not rows.scored
    with pytest.raises(ConfigError, match=r"label_loglik needs scored answers.*--labels"):
        LabelLogLikelihood().score(rows)


def test_several_inputs_per_call_generate_instead_of_scoring() -> None:
    """Packed inputs answer in one text: every call of the run generates (the short last batch
    too), and calibration fits no prior (it would serve no row)."""
    runner = ScriptedRunner(default="Output [1]: yes\nOutput [2]: no", label_scores=_biased)
    data = DataTable([*DATA.inputs, "clear night"], [*DATA.outputs, "yes"])
    program = _program(inputs_per_call=2, calibration="content_free")
    rows = compile_program(program).run_sync(data, runner)
    assert runner.calls == 3 and all(not r.labels for r in runner.requests)
    assert rows.predictions == ["yes", "no", "yes", "no", "yes"]
    assert rows.label_prior is None and not rows.scored


def test_rows_count_every_call_a_scored_request_made() -> None:
    """A runner that makes several calls for one request (a completions server, one per
    label) reports them; each row's program cost counts them all."""
    from sammo_core.runners import LLMResult, Runner

    class PerLabel(Runner):
        model = "per-label"

        async def generate(self, request: LLMRequest) -> LLMResult:
            return LLMResult("yes", 10, 2, calls=len(request.labels), label_logprobs=(-0.1, -2.0))

    rows = compile_program(_program()).run_sync(DATA, PerLabel())
    assert [r.calls for r in rows] == [2.0] * len(DATA)
    assert rows.calls == 2 * len(DATA) and rows.spent_calls == 2 * len(DATA)


def test_a_nested_verbalized_call_answers_with_its_label() -> None:
    inner = GenerateText(
        MetaPrompt(["Nice weather?", InputData()]), labels=["yes", "no"], verbalizer=["A", "B"]
    )
    outer = Output(GenerateText(MetaPrompt(["The first model said:", inner])), parser="raw")
    runner = ScriptedRunner(label_scores={"A": -0.1, "B": -2.0}, default="ok")
    compile_program(outer).run_sync(DataTable(["sunny"], ["yes"]), runner)
    assert runner.prompts[-1].endswith("yes")


def test_relabelling_keeps_each_labels_word() -> None:
    from sammo_core.loading import with_labels

    call = GenerateText(
        MetaPrompt([InputData()]), labels=["positive", "negative"], verbalizer=["great", "awful"]
    )
    again = with_labels(Output(call), ["negative", "positive"]).child
    assert list(again.verbalizer) == ["awful", "great"]
    other = with_labels(Output(call), ["negative", "neutral", "positive"]).child
    assert list(other.verbalizer) == []


def test_the_cache_replays_scores_exactly(tmp_path: Path) -> None:
    def lp(request: LLMRequest) -> dict[str, float]:
        return {"yes": -0.123456789012345, "no": -2.2204460492503131}

    path = tmp_path / "cache.sqlite"
    live = ScriptedRunner(label_scores=lp)
    with Cache(path) as cache:
        first = compile_program(_program()).run_sync(DATA, CachedRunner(live, cache))
    dead = ScriptedRunner()  # answers nothing: every call must come from the cache
    with Cache(path, mode="replay") as cache:
        second = compile_program(_program()).run_sync(DATA, CachedRunner(dead, cache))
    assert [r.label_logprobs for r in second] == [r.label_logprobs for r in first]
    assert all(r.cached for r in second) and dead.calls == 0


def test_a_budget_reserves_every_label_a_scored_call_evaluates() -> None:
    """A scored call evaluates all its labels' tokens, however small the request's max_tokens:
    what a budget reserves for it covers what it reports."""
    import asyncio

    labels = ("strongly agree", "strongly disagree", "neutral")
    runner = ScriptedRunner(label_scores=dict.fromkeys(labels, -1.1))
    request = LLMRequest.from_prompt("Opinion:", labels=labels, max_tokens=1)
    [planned] = runner.planned_calls(request)
    result = asyncio.run(runner.generate(request))
    assert result.completion_tokens > request.max_tokens  # type: ignore[operator]
    assert planned.max_tokens is not None and planned.max_tokens >= result.completion_tokens


def test_an_off_label_gold_scores_as_a_confident_miss_not_an_error() -> None:
    from sammo_core.objectives import UNSCORED_PROBABILITY

    data = DataTable(["sunny and warm", "rain all day", "who knows"], ["yes", "no", "maybe"])
    rows = compile_program(_program()).run_sync(data, ScriptedRunner(label_scores=_biased))
    loglik = LabelLogLikelihood().score(rows)
    assert loglik.per_item is not None
    assert loglik.per_item[2] == pytest.approx(math.log(UNSCORED_PROBABILITY))
    brier = BrierScore().score(rows)
    assert brier.per_item is not None
    assert brier.per_item[2] == pytest.approx(0.7**2 + 0.3**2 + 1.0)


def test_minus_infinity_is_stored_finite_and_replays_from_the_cache(tmp_path: Path) -> None:
    def certain(request: LLMRequest) -> dict[str, float]:
        return {"yes": 0.0, "no": -math.inf}

    path = tmp_path / "cache.sqlite"
    with Cache(path) as cache:
        live = compile_program(_program()).run_sync(
            DATA, CachedRunner(ScriptedRunner(label_scores=certain), cache)
        )
    with Cache(path, mode="replay") as cache:
        again = compile_program(_program()).run_sync(DATA, CachedRunner(ScriptedRunner(), cache))
    assert [r.label_logprobs for r in again] == [r.label_logprobs for r in live]
    first = again[0].label_logprobs
    assert first is not None and math.isfinite(first["no"]) and first["no"] < -1000
