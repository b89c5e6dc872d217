"""DataTable: construction, rows, loading with located errors, seeded operations, JSON."""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import os
import pickle
import subprocess
import sys
import typing
from pathlib import Path

import pyglove as pg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sammo_core.data import DataTable, Row
from sammo_core.errors import ConfigError, DataError, SerializationError


class _Holder(pg.Object):  # type: ignore[misc]
    data: typing.Any
    note: str = ""


class _TypedHolder(pg.Object):  # type: ignore[misc]
    data: DataTable


def _table(n: int) -> DataTable:
    return DataTable([f"q{i}" for i in range(n)], [f"a{i}" for i in range(n)])


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- construction and rows -----------------------------------------------------------------------


def test_outputs_default_to_none_and_constants_are_read_only() -> None:
    table = DataTable(["a", "b"], constants={"task": "Answer."})
    assert table.outputs == (None, None)
    assert table.inputs == ("a", "b")
    assert table.constants == {"task": "Answer."}
    with pytest.raises(TypeError):
        table.constants["task"] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError, match="immutable"):
        table._inputs = ()


def test_length_mismatch_names_both_lengths() -> None:
    with pytest.raises(DataError, match="3 inputs, 2 outputs"):
        DataTable(["a", "b", "c"], ["x", "y"])


def test_non_json_values_are_rejected_naming_the_row() -> None:
    with pytest.raises(DataError, match=r"input of row 1 is not JSON-like"):
        DataTable(["a", {"tags": {1, 2}}])
    with pytest.raises(DataError, match=r"constant 'when'"):
        DataTable(["a"], constants={"when": object()})
    with pytest.raises(DataError, match="constant names must be strings"):
        DataTable(["a"], constants={1: "x"})  # type: ignore[dict-item]


def test_rows_iteration_indexing_and_slicing() -> None:
    table = _table(4)
    assert len(table) == 4
    assert list(table)[1] == Row(1, "q1", "a1")
    assert table[0] == Row(0, "q0", "a0")
    assert table[-1] == Row(3, "q3", "a3")
    with pytest.raises(IndexError):
        table[4]
    part = table[1:3]
    assert isinstance(part, DataTable)
    assert part.inputs == ("q1", "q2") and part.outputs == ("a1", "a2")
    assert table[::-2].inputs == ("q3", "q1")
    with pytest.raises(AttributeError):
        table[0].input = "x"  # type: ignore[misc]


def test_select_keeps_the_given_order_and_checks_range() -> None:
    table = DataTable(["a", "b", "c"], constants={"k": 1})
    chosen = table.select([2, 0, 2])
    assert chosen.inputs == ("c", "a", "c")
    assert chosen.constants == {"k": 1}
    with pytest.raises(DataError, match="index 3 is out of range for a table of 3 rows"):
        table.select([0, 3])
    with pytest.raises(DataError, match="index -1"):
        table.select([-1])


def test_equality_and_hash_follow_content() -> None:
    a = DataTable([{"x": 1, "y": 2}], ["o"], {"t": "T"})
    b = DataTable([{"y": 2, "x": 1}], ["o"], {"t": "T"})
    assert a == b and hash(a) == hash(b)
    assert a.content_hash() == b.content_hash()
    assert a != DataTable([{"x": 1, "y": 2}], ["o"])
    assert a != DataTable([{"x": 1, "y": 3}], ["o"], {"t": "T"})
    assert a != "not a table"
    assert len({a, b, _table(2)}) == 2


def test_content_hash_is_sha256_of_canonical_json() -> None:
    table = DataTable(["a"], ["b"], {"t": 1})
    canonical = b'{"constants":{"t":1},"inputs":["a"],"outputs":["b"]}'
    assert table.content_hash() == hashlib.sha256(canonical).hexdigest()


def test_hash_and_sample_are_identical_in_a_fresh_process() -> None:
    code = (
        "from sammo_core.data import DataTable; "
        "t = DataTable([str(i) for i in range(50)], constants={'k': 'v'}); "
        "print(t.content_hash(), t.sample(7, seed=11).inputs, t.split(0.5, seed=3)[0].inputs)"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    table = DataTable([str(i) for i in range(50)], constants={"k": "v"})
    expected = f"{table.content_hash()} {table.sample(7, seed=11).inputs} "
    assert other.stdout == expected + f"{table.split(0.5, seed=3)[0].inputs}\n"


def test_repr_shows_count_first_rows_truncated_and_constants() -> None:
    assert repr(DataTable([])) == "DataTable(0 rows)"
    assert repr(DataTable(["a"], ["b"])) == "DataTable(1 row: 'a' -> 'b')"
    long = DataTable(["x" * 100, "b", "c", "d", "e"], constants={"task": "T"})
    text = repr(long)
    assert text.startswith("DataTable(5 rows: 'xxxxxxxx")
    assert "..." in text and "x" * 50 not in text
    assert text.endswith("'c' -> None, ... 2 more; constants: task)")


def test_copies_and_pickling_keep_the_table() -> None:
    table = DataTable([{"q": "a"}], ["b"], {"t": "T"})
    assert copy.copy(table) is table
    assert copy.deepcopy(table) is table
    assert pickle.loads(pickle.dumps(table)) == table


# -- from_records ------------------------------------------------------------------------------


def test_from_records_picks_named_fields() -> None:
    records: list[dict[str, object]] = [
        {"text": "hi", "label": "greet", "id": 1},
        {"text": "bye", "label": "leave"},
    ]
    table = DataTable.from_records(records, input_field="text", output_field="label")
    assert table.inputs == ("hi", "bye") and table.outputs == ("greet", "leave")


def test_from_records_input_fields_make_dict_inputs() -> None:
    records = [{"q": "x", "ctx": "y", "a": "z"}]
    table = DataTable.from_records(records, input_fields=["ctx", "q"], output_field="a")
    assert table[0] == Row(0, {"ctx": "y", "q": "x"}, "z")
    assert list(table[0].input) == ["ctx", "q"]


def test_from_records_without_outputs() -> None:
    table = DataTable.from_records([{"input": "a"}], output_field=None, constants={"k": "v"})
    assert table.outputs == (None,) and table.constants == {"k": "v"}


def test_from_records_missing_field_names_record_and_field() -> None:
    records = [{"input": "a", "output": "b"}, {"input": "c", "answer": "d"}]
    with pytest.raises(DataError) as info:
        DataTable.from_records(records)
    message = str(info.value)
    assert message.startswith("record 1: missing field 'output'; fields present: input, answer")
    assert "output_field=None" in message
    with pytest.raises(DataError, match="record 0: missing field 'q'; fields present: input"):
        DataTable.from_records([{"input": "a", "output": "b"}], input_fields=["q"])
    with pytest.raises(DataError, match="record 0: expected an object with named fields, got a"):
        DataTable.from_records(["just text"])  # type: ignore[list-item]


# -- load -------------------------------------------------------------------------------------


def test_load_jsonl_skips_blank_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "data.jsonl",
        '{"input": "a", "output": "x"}\n\n  \n{"input": "b", "output": null}\n',
    )
    table = DataTable.load(path)
    assert table == DataTable(["a", "b"], ["x", None])


def test_load_jsonl_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    lines = ['{"input": "a", "output": "x"}'] * 6 + ['{"input": 1 "output": 2}']
    path = _write(tmp_path, "data.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        DataTable.load(path)
    assert str(info.value) == (
        f"{path} line 7: invalid JSON (Expecting ',' delimiter: line 1 column 13)"
    )
    assert "data.jsonl line 7" in str(info.value)


def test_load_jsonl_missing_field_and_non_object(tmp_path: Path) -> None:
    path = _write(tmp_path, "data.jsonl", '{"input": "a", "output": "x"}\n{"text": "b"}\n')
    with pytest.raises(
        DataError, match=r"data\.jsonl line 2: missing field 'input'; fields present: text"
    ):
        DataTable.load(path)
    path = _write(tmp_path, "list.jsonl", '["a", "b"]\n')
    with pytest.raises(DataError, match=r"list\.jsonl line 1: expected an object .* got a list"):
        DataTable.load(path)


def test_load_jsonl_keeps_unicode_line_separators_inside_strings(tmp_path: Path) -> None:
    path = _write(tmp_path, "data.jsonl", '{"input": "a\u2028b", "output": "x"}\n')
    assert DataTable.load(path).inputs == ("a\u2028b",)


@pytest.mark.parametrize(
    "document",
    [
        [{"text": "a", "label": "x"}],
        {"examples": [{"text": "a", "label": "x"}]},
        {"data": [{"text": "a", "label": "x"}], "meta": "ignored"},
    ],
)
def test_load_json_shapes(tmp_path: Path, document: object) -> None:
    path = _write(tmp_path, "data.json", json.dumps(document))
    assert DataTable.load(path, "text", "label") == DataTable(["a"], ["x"])


def test_load_json_errors_name_element_and_field(tmp_path: Path) -> None:
    records = [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}, {"text": "c"}]
    path = _write(tmp_path, "data.json", json.dumps(records))
    with pytest.raises(
        DataError, match=r"data\.json element 2: missing field 'label'; fields present: text"
    ):
        DataTable.load(path, "text", "label")
    path = _write(tmp_path, "bad.json", '[{"text": "a",}]')
    with pytest.raises(DataError, match=r"bad\.json: invalid JSON \(.*: line 1 column 15\)"):
        DataTable.load(path)
    path = _write(tmp_path, "obj.json", '{"rows": []}')
    with pytest.raises(DataError, match=r"obj\.json: expected a list of objects.*keys: rows"):
        DataTable.load(path)


def test_load_csv(tmp_path: Path) -> None:
    path = _write(tmp_path, "data.csv", "text,answer,label\nhi,h,greet\nbye,b,leave\n")
    table = DataTable.load(path, input_field="text", output_field="label")
    assert table == DataTable(["hi", "bye"], ["greet", "leave"])
    table = DataTable.load(path, input_fields=["text", "answer"], output_field=None)
    assert table.inputs == ({"text": "hi", "answer": "h"}, {"text": "bye", "answer": "b"})


def test_load_csv_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "data.csv", "text,answer\nhi,h\n")
    with pytest.raises(DataError) as info:
        DataTable.load(path, input_field="text", output_field="label")
    assert str(info.value) == (
        f"{path} line 1: missing field 'label' in the header; fields present: text, answer"
    )
    # A quoted field spanning lines moves the line count on; a short row lacks a value.
    path = _write(tmp_path, "short.csv", 'text,label\n"two\nlines",x\nonly-text\n')
    with pytest.raises(
        DataError, match=r"short\.csv line 4: missing field 'label'; fields present: text"
    ):
        DataTable.load(path, input_field="text", output_field="label")
    path = _write(tmp_path, "long.csv", "text,label\na,b\nc,d,e\n")
    with pytest.raises(DataError, match=r"long\.csv line 3: 3 values but the header has 2 columns"):
        DataTable.load(path, input_field="text", output_field="label")


def test_load_missing_file_unknown_suffix_and_format_override(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(DataError, match=f"data file not found: {missing}"):
        DataTable.load(missing)
    path = _write(tmp_path, "data.txt", '{"input": "a", "output": "b"}\n')
    with pytest.raises(ConfigError, match="format='jsonl'"):
        DataTable.load(path)
    assert DataTable.load(path, format="jsonl") == DataTable(["a"], ["b"])
    assert len(DataTable.load(_write(tmp_path, "empty.csv", ""))) == 0


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    table = DataTable([{"q": "a", "ctx": [1, 2]}, "b"], ["x", None])
    path = tmp_path / "out.jsonl"
    table.save(path)
    assert DataTable.load(path) == table
    assert table.to_records()[0] == {"input": {"q": "a", "ctx": [1, 2]}, "output": "x"}
    assert DataTable.from_records(table.to_records()) == table


# -- pyglove JSON -------------------------------------------------------------------------------


def test_pyglove_round_trip_inside_any_field() -> None:
    table = DataTable([{"q": "a", "b": [1, 2]}, "x"], ["1", None], {"task": "T"})
    holder = _Holder(data=table, note="n")
    restored = pg.from_json(pg.to_json(holder))
    assert restored == holder
    assert isinstance(restored.data, DataTable) and restored.data == table
    assert list(restored.data.inputs[0]) == ["q", "b"]  # key order kept for rendering
    assert pg.from_json_str(pg.to_json_str(holder)) == holder
    typed = _TypedHolder(data=table)
    assert pg.from_json(pg.to_json(typed)) == typed
    assert pg.from_json(pg.to_json([table, (table,)])) == [table, (table,)]


def test_pyglove_round_trip_keeps_data_that_looks_like_a_type() -> None:
    table = DataTable([{"_type": "os.system"}], ["x"])
    json_value = pg.to_json(_Holder(data=table))
    assert isinstance(json_value["data"]["json"], str)
    assert pg.from_json(json_value).data == table


def test_to_json_is_plain_and_from_json_is_strict() -> None:
    table = DataTable(["a"], ["b"], {"k": 1})
    json_value = table.to_json()
    assert json_value == {
        "_type": "sammo_core.DataTable",
        "inputs": ["a"],
        "outputs": ["b"],
        "constants": {"k": 1},
    }
    assert DataTable.from_json(json_value) == table
    with pytest.raises(SerializationError, match="unexpected keys: rows"):
        DataTable.from_json({"inputs": ["a"], "rows": []})


def test_pyglove_clone_shares_the_immutable_table() -> None:
    holder = _Holder(data=_table(3))
    clone = pg.clone(holder, deep=True)
    assert clone == holder and clone.data is holder.data


# -- seeded operations --------------------------------------------------------------------------


def test_shuffle_is_seeded_and_a_permutation() -> None:
    table = _table(20)
    assert table.shuffle(1) == table.shuffle(1)
    assert table.shuffle(1) != table.shuffle(2)
    assert sorted(table.shuffle(1).inputs) == sorted(table.inputs)
    assert table == _table(20)  # unchanged
    with pytest.raises(ConfigError, match="seed must be an int"):
        table.shuffle("1")  # type: ignore[arg-type]


def test_sample_is_seeded_distinct_and_bounded() -> None:
    table = _table(20)
    sample = table.sample(5, seed=3)
    assert sample == table.sample(5, seed=3)
    assert sample != table.sample(5, seed=4)
    assert len(set(sample.inputs)) == 5
    assert set(sample.inputs) <= set(table.inputs)
    assert len(table.sample(0, seed=0)) == 0
    assert sorted(table.sample(20, seed=0).inputs) == sorted(table.inputs)
    with pytest.raises(DataError, match="cannot sample 21 rows from a table of 20 rows"):
        table.sample(21, seed=0)
    with pytest.raises(ConfigError, match="non-negative int"):
        table.sample(-1, seed=0)


@pytest.mark.parametrize(
    ("sizes", "lengths"),
    [
        ((3,), [3, 7]),
        ((3, 3), [3, 3, 4]),
        ((4, 6), [4, 6]),
        ((4, 6, None), [4, 6, 0]),
        ((2, None), [2, 8]),
        ((None,), [10]),
        ((0.8,), [8, 2]),
        ((0.5, 0.5), [5, 5]),
        ((0.7, 0.2, 0.1), [7, 2, 1]),
        ((0.25, 0.25), [3, 2, 5]),
        ((0.3, 0.3, None), [3, 3, 4]),
        ((1.0,), [10]),
        ((0.0,), [0, 10]),
    ],
)
def test_split_part_lengths(sizes: tuple[int | float | None, ...], lengths: list[int]) -> None:
    parts = _table(10).split(*sizes)
    assert [len(p) for p in parts] == lengths


def test_split_without_seed_keeps_order_and_with_seed_equals_shuffle() -> None:
    table = _table(10)
    first, rest = table.split(3)
    assert first.inputs == ("q0", "q1", "q2")
    assert rest.inputs == tuple(f"q{i}" for i in range(3, 10))
    assert table.split(3, 2, seed=5) == table.shuffle(5).split(3, 2)
    assert table.split(3, seed=5) == table.split(3, seed=5)
    assert table.split(3, seed=5) != table.split(3, seed=6)


def test_split_rejects_bad_sizes() -> None:
    table = _table(10)
    with pytest.raises(DataError, match="ask for 11 rows but the table has 10 rows"):
        table.split(5, 6)
    with pytest.raises(ConfigError, match=r"sum to 1\.2, more than 1\.0"):
        table.split(0.6, 0.6)
    with pytest.raises(ConfigError, match=r"all ints .* or all floats"):
        table.split(0.5, 3)
    with pytest.raises(ConfigError, match="only the last split size may be None"):
        table.split(None, 3)
    with pytest.raises(ConfigError, match="at least one size"):
        table.split()
    with pytest.raises(ConfigError, match=">= 0"):
        table.split(-1)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        table.split(1.5)


@given(
    n=st.integers(0, 40),
    fractions=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4),
    counts=st.lists(st.integers(0, 15), min_size=1, max_size=4),
    seed=st.none() | st.integers(0, 2**32),
    use_counts=st.booleans(),
)
def test_split_partitions_the_table(
    n: int, fractions: list[float], counts: list[int], seed: int | None, use_counts: bool
) -> None:
    table = _table(n)
    sizes: list[int | float]
    if use_counts:
        sizes = list(counts)
        while sum(sizes) > n:
            sizes[sizes.index(max(sizes))] -= 1
    else:
        total = sum(fractions)
        sizes = [f / total for f in fractions] if total > 1 else list(fractions)
    parts = table.split(*sizes, seed=seed)
    assert len(parts) in (len(sizes), len(sizes) + 1)
    joined = [x for part in parts for x in part.inputs]
    assert sorted(joined) == sorted(table.inputs)  # disjoint and covering
    if use_counts:
        assert [len(p) for p in parts[: len(sizes)]] == sizes
    assert parts == table.split(*sizes, seed=seed)


# -- outputs ---------------------------------------------------------------------------------------


def test_with_outputs_and_unique_outputs() -> None:
    table = DataTable(["a", "b", "c", "d"], constants={"k": 1})
    labeled = table.with_outputs(["yes", "no", None, "yes"])
    assert labeled.outputs == ("yes", "no", None, "yes") and labeled.constants == {"k": 1}
    assert labeled.unique_outputs() == ("no", "yes")
    assert DataTable(["a"] * 4, [10, 9, "b", 9]).unique_outputs() == ("b", 9, 10)
    with pytest.raises(DataError, match="4 inputs, 1 outputs"):
        table.with_outputs(["x"])


def test_csv_keeps_line_breaks_inside_quoted_fields_as_given(tmp_path: Path) -> None:
    inputs = ["crlf:\r\nend", "cr:\rend", "lf:\nend", "plain"]
    path = tmp_path / "breaks.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(["input", "output"])
        writer.writerows([value, str(i)] for i, value in enumerate(inputs))
    table = DataTable.load(path)
    assert table.inputs == tuple(inputs)
    assert table.outputs == ("0", "1", "2", "3")
