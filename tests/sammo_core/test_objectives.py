"""Objectives: normalizing, per-item scores with their intervals, cost totals, lookup."""

from __future__ import annotations

import math
import random
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sammo_core.errors import ConfigError, DataError
from sammo_core.objectives import (
    F1,
    Accuracy,
    Calls,
    CompletionTokens,
    CostUSD,
    FunctionObjective,
    LabelAccuracy,
    MeanPromptTokens,
    Normalizer,
    Objective,
    PromptTokens,
    Score,
    TotalTokens,
    binomial,
    bootstrap_ci,
    evaluate,
    get_objective,
    reply_counts,
)
from sammo_core.results import ResultRow, ResultTable


def _results(pairs: list[tuple[Any, Any]]) -> ResultTable:
    """A result table of (gold output, prediction) pairs."""
    rows = [
        ResultRow(i, f"q{i}", gold, f"prompt {i}", str(pred), pred)
        for i, (gold, pred) in enumerate(pairs)
    ]
    return ResultTable(tuple(rows))


# -- Normalizer -----------------------------------------------------------------------------------


def test_normalizer_defaults() -> None:
    normalize = Normalizer()
    assert normalize("  The \t Answer.\n") == "the answer"
    assert normalize("Yes. .") == "yes"
    assert normalize(None) == ""
    assert normalize(4) == "4"
    assert normalize({"b": 1, "a": [True]}) == '{"a":[true],"b":1}'
    assert normalize({1, 2}) in ("{1, 2}", "{2, 1}")


@pytest.mark.parametrize(
    ("flag", "text", "on", "off"),
    [
        ("strip", " Yes ", "yes", " yes "),
        ("casefold", "STRASSE Straße", "strasse strasse", "STRASSE Straße"),
        ("collapse_spaces", "a  \n b", "a b", "a  \n b"),
        ("drop_trailing_period", "Paris...", "paris", "paris..."),
    ],
)
def test_normalizer_steps_toggle(flag: str, text: str, on: str, off: str) -> None:
    assert Normalizer()(text) == on
    assert Normalizer(**{flag: False})(text) == off


def test_normalizer_without_strip_keeps_space_before_period() -> None:
    assert Normalizer(strip=False)("yes. ") == "yes. "
    assert Normalizer(strip=False)(" yes.") == " yes"


@given(st.text())
def test_normalizer_is_idempotent(text: str) -> None:
    normalize = Normalizer()
    once = normalize(text)
    assert normalize(once) == once


# -- Score and bootstrap --------------------------------------------------------------------------


def test_score_str_and_dict() -> None:
    score = Score("accuracy", 0.74, 0.65, 0.82, (1.0, 0.0), 100)
    assert str(score) == "accuracy 0.740 [0.650, 0.820] (n=100)"
    assert str(Score("calls", 12.0, n=5)) == "calls 12 (n=5)"
    assert str(Score("cost_usd", 0.00012, n=5)) == "cost_usd 0.00012 (n=5)"
    assert str(Score("mean_prompt_tokens", 12.5, n=2)) == "mean_prompt_tokens 12.500 (n=2)"
    assert score.to_dict() == {
        "name": "accuracy",
        "value": 0.74,
        "ci_low": 0.65,
        "ci_high": 0.82,
        "per_item": [1.0, 0.0],
        "n": 100,
    }


def test_bootstrap_is_deterministic_and_contains_the_mean() -> None:
    items = [float(i % 4 == 0) for i in range(100)]
    low, high = bootstrap_ci(items, seed=7)
    assert bootstrap_ci(items, seed=7) == (low, high)
    assert low < 0.25 < high
    assert low > 0.1 and high < 0.4
    spread = [(i * 37 % 101) / 101 for i in range(100)]
    assert bootstrap_ci(spread, seed=7) != bootstrap_ci(spread, seed=8)


def test_bootstrap_narrows_with_more_items() -> None:
    small = [float(i % 2) for i in range(20)]
    large = small * 25
    small_low, small_high = bootstrap_ci(small)
    large_low, large_high = bootstrap_ci(large)
    assert large_high - large_low < (small_high - small_low) / 2
    assert large_low < 0.5 < large_high


def test_bootstrap_edge_cases() -> None:
    assert bootstrap_ci([0.3, 0.3, 0.3]) == (0.3, 0.3)
    assert bootstrap_ci([0.9]) == (0.9, 0.9)
    with pytest.raises(DataError, match="at least one item"):
        bootstrap_ci([])
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        bootstrap_ci([0.0, 1.0], level=1.0)
    with pytest.raises(ConfigError, match="n_resamples"):
        bootstrap_ci([0.0, 1.0], n_resamples=0)
    with pytest.raises(ConfigError, match="seed must be an int"):
        bootstrap_ci([0.0, 1.0], seed=None)  # type: ignore[arg-type]


@given(st.lists(st.floats(-100, 100), min_size=1, max_size=30), st.integers(0, 1000))
def test_bootstrap_interval_lies_within_the_items(items: list[float], seed: int) -> None:
    low, high = bootstrap_ci(items, n_resamples=200, seed=seed)
    assert min(items) - 1e-9 <= low <= high <= max(items) + 1e-9


# -- quality objectives ---------------------------------------------------------------------------


def test_accuracy_scores_normalized_exact_match() -> None:
    results = _results([("Yes", "yes."), ("No", " no "), ("No", "yes"), ("Paris", None)])
    score = Accuracy().score(results)
    assert score.name == "accuracy" and score.n == 4
    assert score.per_item == (1.0, 1.0, 0.0, 0.0)
    assert score.value == 0.5
    assert score.ci_low is not None and score.ci_high is not None
    assert score.ci_low <= 0.5 <= score.ci_high
    assert Accuracy().score(results) == score  # seeded
    strict = Accuracy(Normalizer(casefold=False), name="strict_accuracy")
    assert strict.score(results).per_item == (0.0, 0.0, 0.0, 0.0)
    assert Accuracy().direction == "maximize"


def test_accuracy_needs_gold_outputs_and_rows() -> None:
    results = _results([("a", "a"), ("b", "b"), ("c", "c"), (None, "d")])
    with pytest.raises(ConfigError, match="accuracy needs gold outputs; row 3 has none"):
        Accuracy().score(results)
    with pytest.raises(DataError, match="accuracy needs at least one row"):
        Accuracy().score(ResultTable(()))


@pytest.mark.parametrize(
    ("prediction", "label"),
    [
        ("No", "no"),
        ("yes.", "yes"),
        (" **YES!** ", "yes"),
        ("'no'.", "no"),
        ("yes AAAA", None),
        ("yes" + "A" * 10_000, None),
        ("No, because the sky is blue.", None),
        ("I would say yes, not no", None),
        ("The answer: NO", None),
        ("yesterday it rained", None),
        ("maybe", None),
        ("", None),
        (None, None),
    ],
)
def test_label_accuracy_maps_only_replies_that_are_a_label(
    prediction: Any, label: str | None
) -> None:
    assert LabelAccuracy(("yes", "no")).map_label(prediction) == label


def test_label_accuracy_matches_multi_word_labels_whole() -> None:
    objective = LabelAccuracy(("not", "not sure", "sure"))
    assert objective.map_label("Not  sure.") == "not sure"
    assert objective.map_label("Not sure, honestly") is None


def test_label_accuracy_scores_mapped_labels() -> None:
    results = _results([("yes", "Yes."), ("no", "no way"), ("no", "yes"), ("yes", "yes AAAA")])
    score = LabelAccuracy(["yes", "no"]).score(results)  # type: ignore[arg-type]
    assert score.per_item == (1.0, 0.0, 0.0, 0.0)
    assert score.name == "label_accuracy"
    with pytest.raises(ConfigError, match="non-empty sequence of strings"):
        LabelAccuracy(())


@pytest.mark.parametrize(
    ("prediction", "gold", "expected"),
    [
        ("Paris", "paris.", 1.0),
        ("the cat sat", "Cat sat down.", 0.8),
        ("a b", "c", 0.0),
        ("", "", 1.0),
        ("The", "", 1.0),
        ("x", "", 0.0),
        ("red red blue", "red blue blue", 2 / 3),
    ],
)
def test_f1_known_values(prediction: str, gold: str, expected: float) -> None:
    assert F1().token_f1(prediction, gold) == pytest.approx(expected)


def test_f1_articles_and_average() -> None:
    assert F1(drop_articles=False).token_f1("the cat", "cat") == pytest.approx(2 / 3)
    score = F1().score(_results([("cat sat down", "the cat sat"), ("dog", "dog")]))
    assert score.per_item == pytest.approx((0.8, 1.0))
    assert score.value == pytest.approx(0.9)
    assert score.n == 2


@given(st.text(max_size=30), st.text(max_size=30))
def test_f1_is_symmetric_and_bounded(a: str, b: str) -> None:
    f1 = F1()
    assert 0.0 <= f1.token_f1(a, b) <= 1.0
    assert f1.token_f1(a, b) == pytest.approx(f1.token_f1(b, a))


def test_function_objective_averages_per_item() -> None:
    objective = FunctionObjective(lambda pred, gold: len(pred), "length", "minimize")
    score = objective.score(_results([(None, "ab"), (None, "abcd")]))
    assert (score.name, score.value, score.per_item) == ("length", 3.0, (2.0, 4.0))
    assert objective.direction == "minimize"
    assert score.ci_low is not None and 2.0 <= score.ci_low <= score.ci_high <= 4.0  # type: ignore[operator]


def test_an_accuracy_on_few_rows_gets_a_wilson_interval_not_certainty() -> None:
    """Four right answers out of four: a bootstrap resamples 1.0 every time and claims
    [1.000, 1.000]; the Wilson interval of a share of rows says how little four rows show."""
    from sammo_core.stats import wilson_interval

    table = _results([("yes", "yes"), ("no", "no"), ("no", "No."), ("yes", "Yes")])
    for objective in (Accuracy(), LabelAccuracy(("yes", "no"))):
        score = objective.score(table)
        assert (score.value, score.ci_high) == (1.0, 1.0)
        assert score.ci_low == pytest.approx(0.5101, abs=1e-4)
        assert str(score).endswith("1.000 [0.510, 1.000] (n=4)")
    three_of_four = Accuracy().score(_results([("a", "a"), ("b", "b"), ("c", "c"), ("d", "x")]))
    assert (three_of_four.ci_low, three_of_four.ci_high) == wilson_interval(3, 4)
    at_90 = Accuracy(ci_level=0.9).score(table)
    assert at_90.ci_low == pytest.approx(wilson_interval(4, 4, 0.9)[0])


def test_any_mean_objective_of_zero_one_rows_is_a_share_and_others_keep_the_bootstrap() -> None:
    from sammo_core.stats import wilson_interval

    exact = FunctionObjective(lambda pred, gold: float(pred == gold), "exact")
    score = exact.score(_results([("a", "a")] * 9 + [("a", "b")]))
    assert (score.ci_low, score.ci_high) == wilson_interval(9, 10)
    # F1 with partial credit is no share of rows: a bootstrap of the items.
    partial = F1().score(_results([("the cat sat", "cat sat down"), ("a b", "a b")] * 5))
    items = partial.per_item or ()
    assert (partial.ci_low, partial.ci_high) == bootstrap_ci(items)
    # A log-likelihood of 0 on every row (certain and right) is not a proportion either.
    from sammo_core.objectives import LabelLogLikelihood

    rows = [
        ResultRow(i, "q", "yes", "p", "yes", "yes", label_logprobs={"yes": 0.0, "no": -50.0})
        for i in range(4)
    ]
    certain = LabelLogLikelihood().score(ResultTable(tuple(rows)))
    assert certain.per_item == (0.0,) * 4 and (certain.ci_low, certain.ci_high) == (0.0, 0.0)


def test_function_objective_validates() -> None:
    with pytest.raises(ConfigError, match="'maximize' or 'minimize'"):
        FunctionObjective(lambda p, g: 1.0, "x", "up")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs a callable"):
        FunctionObjective("not callable", "x")  # type: ignore[arg-type]
    bad = FunctionObjective(lambda p, g: "high", "vibe")  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigError, match="objective 'vibe' returned 'high' for row 0"):
        bad.score(_results([("a", "a")]))


# -- cost objectives ------------------------------------------------------------------------------


def _minibatched() -> ResultTable:
    """Two calls: one shared by three rows (thirds), one by a single row."""
    third = 1 / 3
    rows = [
        ResultRow(i, "q", "a", "p", "a", "a", third, 100 / 3, 10 / 3, False, 0.003)
        for i in range(3)
    ]
    rows.append(
        ResultRow(
            3,
            "q",
            "a",
            "p",
            "a",
            "a",
            calls=1.0,
            prompt_tokens=40,
            completion_tokens=5,
            cost_usd=0.001,
            cached=True,
        )
    )
    return ResultTable(tuple(rows))


def test_cost_objectives_sum_fractional_minibatch_rows() -> None:
    results = _minibatched()
    scores = evaluate(
        results,
        [Calls(), PromptTokens(), CompletionTokens(), TotalTokens(), CostUSD(), MeanPromptTokens()],
    )
    assert scores["calls"].value == 2.0
    assert scores["prompt_tokens"].value == 140.0
    assert scores["completion_tokens"].value == 15.0
    assert scores["total_tokens"].value == 155.0
    assert scores["cost_usd"].value == pytest.approx(0.01)
    assert scores["mean_prompt_tokens"].value == pytest.approx(35.0)
    assert scores["mean_prompt_tokens"].per_item == pytest.approx((100 / 3,) * 3 + (40.0,))
    for name in ("calls", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd"):
        assert scores[name].ci_low is None and scores[name].per_item is None
        assert scores[name].n == 4
    assert str(scores["calls"]) == "calls 2 (n=4)"
    assert all(
        o.direction == "minimize"
        for o in (Calls(), PromptTokens(), CompletionTokens(), TotalTokens(), CostUSD())
    )
    assert MeanPromptTokens().direction == "minimize"


def test_cost_objectives_on_an_empty_table() -> None:
    empty = ResultTable(())
    assert Calls().score(empty).value == 0.0
    assert MeanPromptTokens().score(empty).value == 0.0


# -- lookup and evaluate --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls", "score_name"),
    [
        ("accuracy", Accuracy, "accuracy"),
        ("f1", F1, "f1"),
        ("calls", Calls, "calls"),
        ("prompt_tokens", PromptTokens, "prompt_tokens"),
        ("completion_tokens", CompletionTokens, "completion_tokens"),
        ("total_tokens", TotalTokens, "total_tokens"),
        ("cost", CostUSD, "cost_usd"),
        ("cost_usd", CostUSD, "cost_usd"),
        ("mean_prompt_tokens", MeanPromptTokens, "mean_prompt_tokens"),
    ],
)
def test_get_objective_names(name: str, cls: type[Objective], score_name: str) -> None:
    objective = get_objective(name)
    assert isinstance(objective, cls) and objective.name == score_name


def test_get_objective_label_accuracy_and_unknown_names() -> None:
    objective = get_objective("label_accuracy:yes, no ,maybe")
    assert isinstance(objective, LabelAccuracy)
    assert objective.labels == ("yes", "no", "maybe")
    with pytest.raises(ConfigError, match=r"names no labels; .* 'label_accuracy:yes,no'"):
        get_objective("label_accuracy")
    with pytest.raises(ConfigError) as info:
        get_objective("acc")
    assert str(info.value) == (
        "unknown objective 'acc'; use one of: accuracy, brier, calls, completion_tokens, cost, "
        "cost_usd, f1, label_loglik, mean_prompt_tokens, prompt_tokens, total_tokens, "
        "label_accuracy:LABEL,LABEL,..."
    )


def test_evaluate_keeps_order_and_rejects_duplicate_names() -> None:
    results = _results([("a", "a"), ("b", "c")])
    scores = evaluate(results, [F1(), Accuracy(), Calls()])
    assert list(scores) == ["f1", "accuracy", "calls"]
    assert scores["accuracy"].value == 0.5
    with pytest.raises(ConfigError, match="two objectives are named 'accuracy'"):
        evaluate(results, [Accuracy(), Accuracy(Normalizer(strip=False))])
    named = evaluate(results, [Accuracy(), Accuracy(Normalizer(strip=False), name="raw")])
    assert set(named) == {"accuracy", "raw"}


def test_objectives_are_frozen_and_comparable() -> None:
    assert Accuracy() == Accuracy() and hash(Accuracy()) == hash(Accuracy())
    with pytest.raises(AttributeError):
        Accuracy().name = "x"  # type: ignore[misc]
    assert not math.isnan(Accuracy().score(_results([("a", "a")])).value)


def test_reply_counts_sort_rows_that_gave_no_answer() -> None:
    rows = [
        ResultRow(0, "q", "yes", "p", "yes", "yes"),
        ResultRow(1, "q", "no", "p", "", None),  # content: null arrives as ""
        ResultRow(2, "q", "no", "p", "{broken", None),
        ResultRow(3, "q", "no", "p", "yes AAAA", "yes AAAA"),
        ResultRow(4, "q", "no", "", "", None, calls=0, error="RunnerError: boom"),
    ]
    table = ResultTable(tuple(rows))
    counts = reply_counts(table, [Calls(), LabelAccuracy(("yes", "no"))])
    assert counts == {"failed": 1, "empty": 1, "unparsable": 1, "off_label": 1}
    assert reply_counts(table, [Accuracy()])["off_label"] is None
    assert LabelAccuracy(("yes", "no")).score(table).per_item == (1.0, 0.0, 0.0, 0.0, 0.0)


# -- bootstrap by counting ------------------------------------------------------------------------


def test_bootstrap_of_100k_zero_one_scores_is_fast_and_reproducible() -> None:
    items = [float(i % 10 < 7) for i in range(100_000)]
    start = time.process_time()
    low, high = bootstrap_ci(items, seed=5)
    assert time.process_time() - start < 0.5  # row by row: 1e8 draws, about a minute
    assert bootstrap_ci(items, seed=5) == (low, high)
    # The normal approximation: 0.7 +- 1.96 * sqrt(0.21 / 100000) = 0.7 +- 0.00284
    assert 0.6966 < low < 0.6982 and 0.7018 < high < 0.7034


def test_bootstrap_does_not_depend_on_row_order() -> None:
    items = [float(i % 3 == 0) for i in range(300)] + [0.5] * 60
    assert bootstrap_ci(items, seed=2) == bootstrap_ci(list(reversed(items)), seed=2)


def test_bootstrap_by_counting_matches_resampling_rows() -> None:
    # Partial credit (three values): the counted interval agrees with a row-by-row bootstrap.
    items = [1.0] * 120 + [0.5] * 50 + [0.0] * 30
    low, high = bootstrap_ci(items, n_resamples=4000, seed=1)
    rng = random.Random(9)
    means = sorted(sum(rng.choices(items, k=len(items))) / len(items) for _ in range(4000))
    assert abs(low - means[100]) < 0.012 and abs(high - means[3899]) < 0.012


@pytest.mark.parametrize(("n", "p"), [(1, 0.3), (40, 0.1), (1000, 0.25), (100_000, 0.7)])
def test_binomial_draws_have_the_binomial_mean_and_variance(n: int, p: float) -> None:
    rng = random.Random(4)
    draws = [binomial(rng, n, p) for _ in range(20_000)]
    mean = sum(draws) / len(draws)
    var = sum((d - mean) ** 2 for d in draws) / (len(draws) - 1)
    assert all(0 <= d <= n for d in draws)
    assert abs(mean - n * p) < 4 * math.sqrt(n * p * (1 - p) / len(draws))
    assert abs(var / (n * p * (1 - p)) - 1) < 0.05


@pytest.mark.skipif(not hasattr(random.Random, "binomialvariate"), reason="Python < 3.12")
def test_binomial_matches_the_standard_library() -> None:
    for n, p in [(5, 0.4), (50, 0.1), (500, 0.3), (500, 0.8)]:
        a, b = random.Random(3), random.Random(3)
        assert [binomial(a, n, p) for _ in range(200)] == [
            b.binomialvariate(n, p)  # type: ignore[attr-defined]
            for _ in range(200)
        ]


def test_binomial_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match=r"p=1\.5"):
        binomial(random.Random(0), 3, 1.5)


def test_bootstrap_resamples_each_distinct_count_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # A search scores many candidates whose 0/1 scores repeat the same counts: the interval
    # for a count is drawn once, and the same every time (rows in any order).
    from sammo_core import stats as objectives  # the bootstrap lives in sammo_core.stats

    objectives._counted_ci.cache_clear()
    draws = 0
    counted_mean = objectives._counted_mean

    def counting(*args: Any) -> float:
        nonlocal draws
        draws += 1
        return counted_mean(*args)

    monkeypatch.setattr(objectives, "_counted_mean", counting)
    rows = [1.0] * 30 + [0.0] * 20
    first = bootstrap_ci(rows, seed=4)
    assert draws == 1000
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    assert bootstrap_ci(shuffled, seed=4) == first
    assert draws == 1000  # before: 1,000 more resamples per candidate
    bootstrap_ci(rows, seed=5)
    assert draws == 2000  # the seed is part of the key
    # -0.0 and 0.0 are equal as keys but are kept apart, so a result's sign never leaks.
    assert bootstrap_ci([-0.0] * 20 + [1.0] * 30, seed=4) == (
        objectives._counted_ci.__wrapped__(
            ((-0.0, 20), (1.0, 30)), (-1.0, 1.0), n=50, level=0.95, n_resamples=1000, seed=4
        )
    )


def test_a_paired_interval_is_narrower_than_two_separate_ones() -> None:
    """Two programs that agree on most rows: their separate intervals overlap, yet the paired
    difference (the winner fixes 10 of 100 rows and breaks 2) excludes 0."""
    from sammo_core.objectives import paired_difference

    start = [1.0] * 50 + [0.0] * 50
    winner = list(start)
    for i in range(50, 60):
        winner[i] = 1.0
    winner[0] = winner[1] = 0.0
    diff, low, high = paired_difference(winner, start, seed=1)
    assert diff == pytest.approx(0.08)
    assert 0.0 < low < diff < high
    start_low, start_high = bootstrap_ci(start, seed=1)
    winner_low, _ = bootstrap_ci(winner, seed=1)
    assert winner_low < start_high  # the separate intervals overlap
    assert high - low < (start_high - start_low)
    with pytest.raises(DataError, match="same rows"):
        paired_difference([1.0], [1.0, 0.0])
    assert paired_difference(winner, start, seed=1) == (diff, low, high)
