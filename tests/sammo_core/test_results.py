"""Result rows: built like any frozen dataclass (their faster construction is measured by
``python -m benchmarks.harness.perf``, not asserted)."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from sammo_core.results import ResultRow

# What ``@dataclass(frozen=True, slots=True)`` writes for ResultRow's declared fields (names,
# types, defaults): ResultRow's own __init__ must build the same rows.
DataclassRow = dataclasses.make_dataclass(
    "DataclassRow",
    [(f.name, f.type, f) for f in dataclasses.fields(ResultRow)],
    frozen=True,
    slots=True,
)


ARGS = (3, "q", "a", "p", "a", "a", 1.0, 12.0, 1.0, False, 0.0, 1.0, 12.0, 1.0, 0.0, None)


def test_a_row_is_built_like_the_dataclass_it_is() -> None:
    row = ResultRow(3, "q", "a", "p", "a", "a", prompt_tokens=12.0, cached=True)
    same = DataclassRow(3, "q", "a", "p", "a", "a", prompt_tokens=12.0, cached=True)
    assert dataclasses.astuple(row) == dataclasses.astuple(same)
    assert [f.name for f in dataclasses.fields(ResultRow)] == [
        f.name for f in dataclasses.fields(DataclassRow)
    ]
    assert ResultRow(*ARGS) == ResultRow(*ARGS) and hash(ResultRow(*ARGS)) == hash(ResultRow(*ARGS))
    assert dataclasses.replace(row, error="timeout").error == "timeout"
    assert pickle.loads(pickle.dumps(row)) == row
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.index = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        ResultRow(3, "q")  # type: ignore[call-arg]
