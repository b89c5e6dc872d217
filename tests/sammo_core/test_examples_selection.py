"""Examples: label-balanced draws and the order of the rows shown."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from sammo_core import (
    ConfigError,
    DataTable,
    Examples,
    GenerateText,
    InputData,
    MetaPrompt,
    Output,
    ScriptedRunner,
    compile,
    dumps,
    loads,
)
from sammo_core.graph import content_hash

# 6 yes, 3 no, 1 maybe, in table order; inputs name their row.
POOL = DataTable(
    [f"row {i}" for i in range(10)],
    ["yes", "yes", "no", "yes", "yes", "no", "maybe", "yes", "no", "yes"],
)


def shown(examples: Examples, query: str = "row 3") -> list[str]:
    """The example inputs of the prompt sent, in order."""
    runner = ScriptedRunner(default="yes")
    program = Output(GenerateText(MetaPrompt([examples, InputData()])))
    compile(program).run_sync(DataTable([query]), runner)
    return re.findall(r"^Input: (row \d+)$", runner.prompts[0].rsplit("\n\n", 2)[0], re.M)


BINARY = DataTable([f"row {i}" for i in range(9)], ["yes"] * 6 + ["no"] * 3)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(
    ("pool", "n"), [(POOL, 1), (POOL, 2), (POOL, 3), *((BINARY, n) for n in (2, 4, 5, 6))]
)
def test_balanced_label_counts_differ_by_at_most_one(pool: DataTable, n: int, seed: int) -> None:
    rows = Examples(pool, n=n, selection="balanced", seed=seed).selected()
    counts = Counter(rows.outputs)
    assert len(rows) == n == len(set(rows.inputs))
    assert max(counts.values()) - min(counts.values()) <= 1
    assert len(counts) == min(n, len(set(pool.outputs)))  # each label before any repeats


def test_balanced_keeps_drawing_the_other_labels_once_one_runs_out() -> None:
    counts = Counter(Examples(POOL, n=8, selection="balanced", seed=4).selected().outputs)
    assert counts == {"yes": 4, "no": 3, "maybe": 1}


def test_balanced_goes_round_robin_in_first_appearance_order() -> None:
    rows = Examples(POOL, n=7, selection="balanced", seed=0).selected()
    # yes, no, maybe, yes, no, yes, no: "maybe" runs out after one row.
    assert rows.outputs == ("yes", "no", "maybe", "yes", "no", "yes", "no")


def test_balanced_rendering_shows_the_drawn_rows_the_same_for_every_input() -> None:
    examples = Examples(POOL, n=4, selection="balanced", seed=3)
    expected = list(examples.selected().inputs)
    assert shown(examples, "row 1") == shown(examples, "row 8") == expected
    draws = {
        tuple(Examples(POOL, n=4, selection="balanced", seed=s).selected().inputs) for s in range(6)
    }
    assert len(draws) > 1  # the seed draws the rows


def test_balanced_with_n_none_shows_every_row() -> None:
    rows = Examples(POOL, selection="balanced").selected()
    assert sorted(rows.inputs) == sorted(POOL.inputs)


@pytest.mark.parametrize("selection", ["first", "random", "balanced", "knn"])
def test_shuffled_is_a_permutation_of_the_selection(selection: str) -> None:
    base = Examples(POOL, n=5, selection=selection, seed=2)
    selected = shown(base)
    reversed_ = shown(base.clone(override={"order": "reversed"}))
    orders = {
        tuple(shown(base.clone(override={"order": "shuffled", "order_seed": s}))) for s in range(6)
    }
    assert reversed_ == selected[::-1]
    assert all(sorted(order) == sorted(selected) for order in orders)
    assert len(orders) > 1


def test_knn_reversed_puts_the_most_similar_row_last() -> None:
    knn = Examples(POOL, n=3, selection="knn", order="reversed")
    assert shown(knn, "row 7")[-1] == "row 7"


def test_order_and_balanced_fields_hash_serialize_and_label() -> None:
    base = Examples(POOL, n=4, selection="balanced", seed=1)
    shuffled = base.clone(override={"order": "shuffled", "order_seed": 5})
    variants = [
        base,
        shuffled,
        shuffled.clone(override={"order_seed": 6}),
        base.clone(override={"order": "reversed"}),
        base.clone(override={"seed": 2}),
    ]
    hashes = {content_hash(Output(GenerateText(MetaPrompt([v, InputData()])))) for v in variants}
    assert len(hashes) == len(variants)
    for v in variants:
        program = Output(GenerateText(MetaPrompt([v, InputData()])))
        assert loads(dumps(program)) == program
    assert shuffled.label() == (
        "Examples(n=4, selection='balanced', seed=1, order='shuffled', order_seed=5, rows=10)"
    )
    assert base.clone(override={"order": "reversed"}).label() == (
        "Examples(n=4, selection='balanced', seed=1, order='reversed', rows=10)"
    )
    assert Examples(POOL, n=2).label() == "Examples(n=2, selection='first', rows=10)"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Examples(POOL, order="random"), "unknown example order 'random'; use one of"),
        (
            lambda: Examples(POOL, order_seed=3),
            "order_seed=3 is used only by order='shuffled'; got order='as_selected'",
        ),
        (lambda: Examples(POOL, selection="stratified"), "use one of: balanced, first, knn"),
    ],
)
def test_bad_order_options_name_the_value_and_the_fix(make: object, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        make()  # type: ignore[operator]
