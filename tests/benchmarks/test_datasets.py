"""Loaders on the real published files: the paper's exact splits, first items, located errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from benchmarks import datasets
from benchmarks.datasets import (
    SUITES,
    TaskSplits,
    list_tasks,
    load,
    load_bigbench_task,
    load_geoquery_rag,
    load_liar,
    load_sammo_compression,
    load_sammo_instruction_tuning,
    resolve_data_dir,
)
from sammo_core.data import DataTable
from sammo_core.errors import ConfigError, DataError

DATA = Path(
    os.environ.get("SAMMO_CORE_DATA_DIR")
    or Path(__file__).resolve().parents[2] / ".." / "shared" / "benchmarks"
)
needs_data = pytest.mark.skipif(
    not (DATA / "sammo").is_dir(),
    reason=f"benchmark data not found at {DATA}; set SAMMO_CORE_DATA_DIR to the shared "
    "benchmarks folder (or run `sammo-core data fetch all`)",
)

INSTRUCTION_TASKS = [
    "implicatures",
    "metaphor_boolean",
    "navigate",
    "presuppositions_as_nli",
    "sports_understanding",
    "vitaminc_fact_verification",
    "word_sorting",
]
COMPRESSION_TASKS = [
    "task108_contextualabusedetection_classification",
    "task204_mnli_same_genre_classification",
    "task211_logic2text_classification",
    "task212_logic2text_classification",
    "task248_dream_classification",
    "task346_hybridqa_classification",
]
PAPER_SIZES = {"incontext": 5, "train": 100, "val": 50, "test": 100}


def _tables(splits: TaskSplits) -> list[DataTable]:
    return [t for t in (splits.pool, splits.incontext, splits.train, splits.val, splits.test) if t]


# -- SAMMO instruction tuning ---------------------------------------------------------------


@needs_data
@pytest.mark.parametrize("task", INSTRUCTION_TASKS)
def test_instruction_tuning_has_the_paper_split_sizes(task: str) -> None:
    splits = load_sammo_instruction_tuning(DATA, task)
    assert splits.name == task
    assert splits.sizes() == PAPER_SIZES
    assert splits.pool is None
    assert splits.instructions.strip()
    for table in _tables(splits):
        assert table.constants["instructions"] == splits.instructions
    assert splits.metadata["source"] == ["sammo/instruction_tuning_bigbench.json"]
    assert "MIT" in splits.metadata["license"]


@needs_data
def test_instruction_tuning_first_items_and_labels() -> None:
    splits = load_sammo_instruction_tuning(DATA, "implicatures")
    assert splits.instructions == "Does Speaker 2's answer mean yes or no? "
    assert splits.labels == ("no", "yes")
    assert splits.incontext is not None
    assert splits.incontext[0].input == (
        "Speaker 1: 'You do this often?' Speaker 2: 'It's my first time.'"
    )
    assert splits.incontext[0].output == "no"
    assert splits.train[0].input == (
        "Speaker 1: 'Should we repay you?' "
        "Speaker 2: 'There is no charge for awesomeness, or attractiveness.'"
    )
    assert splits.train[0].output == "no"

    sorting = load_sammo_instruction_tuning(DATA, "word_sorting")
    assert sorting.labels is None  # free-form outputs
    assert sorting.train[0].input == "townsend half ouch flange horizontal copyright jay"
    assert sorting.train[0].output == "copyright flange half horizontal jay ouch townsend"
    assert load_sammo_instruction_tuning(DATA, "vitaminc_fact_verification").labels == (
        "False",
        "Neither",
        "True",
    )


@needs_data
def test_instruction_tuning_splits_are_disjoint() -> None:
    splits = load_sammo_instruction_tuning(DATA, "navigate")
    train, test = set(splits.train.inputs), set(splits.test.inputs)
    assert not train & test


def test_instructions_fall_back_to_the_bigbench_task_prefix(tmp_path: Path) -> None:
    records = [{"input": "q", "output": "yes"}]
    entry: dict[str, Any] = {"task_id": "toy", "instructions": ""}
    entry |= dict.fromkeys(("d_incontext", "d_train", "d_val", "d_test"), records)
    _write(tmp_path / "sammo/instruction_tuning_bigbench.json", [entry])
    _write(tmp_path / "bigbench/toy/task.json", {"task_prefix": "Answer yes.", "examples": []})
    assert load_sammo_instruction_tuning(tmp_path, "toy").instructions == "Answer yes."

    _write(tmp_path / "bigbench/toy/task.json", {"description": "Say yes", "examples": []})
    assert load_sammo_instruction_tuning(tmp_path, "toy").instructions == "Say yes"

    (tmp_path / "bigbench/toy/task.json").unlink()
    with pytest.raises(DataError, match=r"no 'instructions', and .*toy.task\.json is missing"):
        load_sammo_instruction_tuning(tmp_path, "toy")


@needs_data
def test_unknown_task_names_the_available_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown task 'nope' .*available: implicatures, "):
        load_sammo_instruction_tuning(DATA, "nope")


# -- SAMMO prompt compression ---------------------------------------------------------------


@needs_data
@pytest.mark.parametrize("task", COMPRESSION_TASKS)
def test_compression_has_the_paper_split_sizes(task: str) -> None:
    splits = load_sammo_compression(DATA, task)
    assert splits.sizes() == PAPER_SIZES
    assert splits.instructions == splits.train.constants["instructions"]
    assert splits.train.constants["task_id"] == task
    assert "Instance License" in splits.test.constants
    assert "instance license" in splits.metadata["license"]


@needs_data
def test_compression_first_item_constants_and_short_names() -> None:
    splits = load_sammo_compression(DATA, "task108")
    assert splits.name == "task108_contextualabusedetection_classification"
    assert splits.train[0].input == "cape shit is not funny even ironically man babies"
    assert splits.train[0].output == "yes"
    assert splits.labels == ("no", "yes")
    assert splits.instructions.startswith("Read the given text and if it has abusive content")
    assert splits.train.constants["Instance License"] == ["CC BY 4.0"]
    assert splits.metadata["license"].endswith("instance license: CC BY 4.0")
    assert load_sammo_compression(DATA, "task212_logic2text_classification").labels == (
        "aggregation",
        "comparative",
        "count",
        "majority",
        "ordinal",
        "superlative",
        "unique",
    )
    with pytest.raises(ConfigError, match="unknown task 'task21'"):
        load_sammo_compression(DATA, "task21")  # a prefix of two names


# -- GeoQuery RAG ---------------------------------------------------------------------------


@needs_data
def test_geoquery_rag_uses_the_paper_qids() -> None:
    splits = load_geoquery_rag(DATA)
    assert splits.sizes() == {"pool": 500, "train": 100, "val": 0, "test": 100}
    assert splits.pool is not None and splits.incontext is None
    assert splits.train[0].input == "What is the biggest state ?"
    assert splits.train[0].output == "answer(largest(state(all)))"
    assert splits.test[0].input == (
        "What is the population of the largest city in the state with the largest area ?"
    )
    assert splits.pool[0].input == "What are the major cities in New York ?"
    qids = splits.metadata["qids"]
    assert qids["train"][0] == "geo880_315" and qids["test"][0] == "geo880_542"
    assert set(qids["train"]) <= set(qids["pool"])  # the train items lie in the pool
    assert not set(qids["test"]) & set(qids["pool"])
    assert set(splits.train.constants["dsl"]) == {"full_dd", "list_of_operators", "formal"}
    assert splits.labels is None


@needs_data
def test_geoquery_val_is_carved_from_train_with_a_seed() -> None:
    full = load_geoquery_rag(DATA)
    splits = load_geoquery_rag(DATA, val_size=20, seed=3)
    assert splits.sizes() == {"pool": 500, "train": 80, "val": 20, "test": 100}
    qids = splits.metadata["qids"]
    assert sorted(qids["train"] + qids["val"]) == sorted(full.metadata["qids"]["train"])
    by_qid = dict(zip(full.metadata["qids"]["train"], full.train.inputs, strict=True))
    assert [by_qid[q] for q in qids["val"]] == list(splits.val.inputs)
    assert load_geoquery_rag(DATA, val_size=20, seed=3).val == splits.val


# -- LIAR (APO) ----------------------------------------------------------------------------


@needs_data
def test_liar_binary_labels_and_seeded_val() -> None:
    splits = load_liar(DATA)
    assert splits.sizes() == {"train": 3581, "val": 100, "test": 461}
    assert splits.labels == ("No", "Yes")
    assert splits.test[0].input.startswith(
        "Statement: Building a wall on the U.S.-Mexico border will take literally years."
    )
    assert splits.test[0].output == "No"  # label 0: a true statement
    assert set(splits.train.outputs) | set(splits.val.outputs) == {"Yes", "No"}
    assert splits.test.outputs.count("Yes") == 250  # label 1 (a lie) in liar/test.jsonl
    assert load_liar(DATA) == splits  # the default seed is fixed and explicit
    other = load_liar(DATA, val_size=50, seed=1)
    assert other.sizes() == {"train": 3631, "val": 50, "test": 461}
    assert other.val != splits.val


# -- BIG-bench ----------------------------------------------------------------------------


@needs_data
def test_bigbench_multiple_choice_task() -> None:
    splits = load_bigbench_task(DATA, "navigate", seed=0)
    assert splits.sizes() == PAPER_SIZES
    assert splits.labels == ("False", "True")
    assert splits.instructions == (
        "If you follow these instructions, do you return to the starting point?"
    )
    assert set(splits.train.outputs) <= {"False", "True"}
    assert load_bigbench_task(DATA, "navigate", seed=0) == splits
    assert load_bigbench_task(DATA, "navigate", seed=1).train != splits.train
    everything = [x for t in _tables(splits) for x in t.inputs]
    assert len(everything) == len(set(everything))  # parts never overlap


@needs_data
def test_bigbench_gold_answer_is_the_target_scored_1() -> None:
    task = json.loads((DATA / "bigbench/analytic_entailment/task.json").read_text("utf-8"))
    gold = {
        e["input"]: next(k for k, v in e["target_scores"].items() if v == 1)
        for e in task["examples"]
    }
    splits = load_bigbench_task(DATA, "analytic_entailment")
    # 70 examples: 5 in-context, the rest divided 100:50:100.
    assert splits.sizes() == {"incontext": 5, "train": 26, "val": 13, "test": 26}
    for table in _tables(splits):
        for row in table:
            assert row.output == gold[row.input]
    assert splits.metadata["sizes"] == [5, 26, 13, 26]


@needs_data
def test_bigbench_free_form_and_mixed_tasks() -> None:
    sorting = load_bigbench_task(DATA, "word_sorting")
    assert sorting.labels is None
    row = sorting.train[0]
    assert row.output == " ".join(sorted(row.input.split()))
    # strategyqa carries both: the target_scores answer wins over the explanation in "target".
    assert load_bigbench_task(DATA, "strategyqa").labels == ("No", "Yes")
    # No task_prefix: the description is used.
    assert load_bigbench_task(DATA, "strategyqa").instructions == (
        "Answer questions in which the required reasoning steps are implicit in the question"
    )
    with pytest.raises(ConfigError, match=r"unknown task 'no_such_task' .*available: "):
        load_bigbench_task(DATA, "no_such_task")
    with pytest.raises(ConfigError, match="sizes must be 4"):
        load_bigbench_task(DATA, "navigate", sizes=(5, 100))


def test_bigbench_target_lists_and_ties(tmp_path: Path) -> None:
    examples = [{"input": f"q{i}", "target": [f"a{i}", "alt"]} for i in range(20)]
    _write(tmp_path / "bigbench/toy/task.json", {"task_prefix": "Answer.", "examples": examples})
    splits = load_bigbench_task(tmp_path, "toy", sizes=(0, 10, 5, 5))
    assert splits.sizes() == {"incontext": 0, "train": 10, "val": 5, "test": 5}
    assert all(r.output == "a" + r.input[1:] for r in splits.train)
    assert splits.labels is None

    tie = [{"input": "q", "target_scores": {"a": 1, "b": 1}}]
    _write(tmp_path / "bigbench/toy/task.json", {"description": "d", "examples": tie})
    with pytest.raises(DataError, match=r"toy.task\.json: examples\[0\]\.target_scores: no single"):
        load_bigbench_task(tmp_path, "toy")


# -- catalogue and data folder ---------------------------------------------------------------


@needs_data
def test_list_tasks_finds_every_suite() -> None:
    found = list_tasks(DATA)
    assert list(found) == list(SUITES)
    assert found["instruction-tuning"] == INSTRUCTION_TASKS
    assert found["compression"] == COMPRESSION_TASKS
    assert found["rag-parsing"] == ["geo880"]
    assert found["apo"] == ["liar"]
    assert {"navigate", "word_sorting", "strategyqa"} <= set(found["bigbench"])
    assert "vitaminc_fact_verification" not in found["bigbench"]


def test_list_tasks_of_an_empty_folder(tmp_path: Path) -> None:
    assert list_tasks(tmp_path) == {suite: [] for suite in SUITES}


@needs_data
def test_load_dispatches_by_suite() -> None:
    assert load("apo", "liar", DATA).name == "liar"
    assert load("rag-parsing", "geo880", DATA).sizes()["pool"] == 500
    assert load("instruction-tuning", "navigate", DATA).sizes() == PAPER_SIZES
    assert load("bigbench", "navigate", DATA).labels == ("False", "True")
    with pytest.raises(ConfigError, match="its only task is 'liar'"):
        load("apo", "fever", DATA)
    with pytest.raises(ConfigError, match="unknown suite 'poetry'"):
        load("poetry", "x", DATA)


def test_data_dir_comes_from_argument_env_then_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAMMO_CORE_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    repo, shared = tmp_path / "repo", tmp_path / "shared" / "benchmarks"
    monkeypatch.setattr(datasets, "CHECKOUT_DATA_DIR", shared)
    repo.mkdir()
    with pytest.raises(ConfigError) as info:
        resolve_data_dir()
    message = str(info.value)
    assert "pass --data-dir DIR or set SAMMO_CORE_DATA_DIR=DIR" in message
    assert str(shared) in message
    assert str(tmp_path / "home" / ".cache" / "sammo-core" / "data") in message

    shared.mkdir(parents=True)
    assert resolve_data_dir() == shared.resolve()  # a checkout's data, as a fallback
    cache = tmp_path / "home" / ".cache" / "sammo-core" / "data"
    cache.mkdir(parents=True)
    assert resolve_data_dir() == cache.resolve()  # what `data fetch` wrote comes first

    monkeypatch.setenv("SAMMO_CORE_DATA_DIR", str(cache))
    assert resolve_data_dir() == cache
    assert resolve_data_dir(repo) == repo
    monkeypatch.setenv("SAMMO_CORE_DATA_DIR", str(tmp_path / "gone"))
    with pytest.raises(ConfigError, match=r"gone \(from \$SAMMO_CORE_DATA_DIR\)"):
        resolve_data_dir()
    with pytest.raises(ConfigError, match=r"missing \(from the data_dir argument / --data-dir\)"):
        resolve_data_dir(tmp_path / "missing")


def test_the_working_directory_plays_no_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAMMO_CORE_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    elsewhere = tmp_path / "a" / "b"
    (tmp_path / "a" / "shared" / "benchmarks").mkdir(parents=True)  # ../shared/benchmarks of cwd
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    checkout = tmp_path / "checkout" / "shared" / "benchmarks"
    checkout.mkdir(parents=True)
    monkeypatch.setattr(datasets, "CHECKOUT_DATA_DIR", checkout)
    assert resolve_data_dir() == checkout.resolve()  # not the cwd's ../shared/benchmarks
    monkeypatch.setattr(datasets, "CHECKOUT_DATA_DIR", tmp_path / "fresh-clone" / "none")
    with pytest.raises(ConfigError, match="no benchmark data folder found"):
        resolve_data_dir()


# -- malformed files -------------------------------------------------------------------------


def test_missing_file_names_it_and_the_fetch_command(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data file not found: .*liar.train\.jsonl; .*fetch liar"):
        load_liar(tmp_path)


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "sammo/instruction_tuning_bigbench.json"
    path.parent.mkdir(parents=True)
    path.write_text('[\n  {"task_id": "x",\n  oops}\n]', encoding="utf-8")
    with pytest.raises(
        DataError, match=r"instruction_tuning_bigbench\.json: invalid JSON .*line 3"
    ):
        load_sammo_instruction_tuning(tmp_path, "x")


def test_missing_key_names_file_task_and_key(tmp_path: Path) -> None:
    entry: dict[str, Any] = {
        "task_id": "x",
        "instructions": "Do.",
        "d_incontext": [],
        "d_train": [],
    }
    entry["d_val"] = [{"input": "a"}]
    _write(tmp_path / "sammo/instruction_tuning_bigbench.json", [entry])
    with pytest.raises(
        DataError, match=r"task 'x'\.d_val\[0\]: missing key 'output'; keys present: input"
    ):
        load_sammo_instruction_tuning(tmp_path, "x")
    del entry["d_val"]
    _write(tmp_path / "sammo/instruction_tuning_bigbench.json", [entry])
    with pytest.raises(DataError, match=r"task 'x': missing key 'd_val'"):
        load_sammo_instruction_tuning(tmp_path, "x")


def test_compression_dump_without_records(tmp_path: Path) -> None:
    _write(tmp_path / "sammo/prompt_compression_sni.json", {"t1_x": {"data": {"d_incontext": {}}}})
    with pytest.raises(DataError, match=r"task 't1_x'\.data\.d_incontext: missing key 'records'"):
        load_sammo_compression(tmp_path, "t1")


def test_liar_bad_line_is_located(tmp_path: Path) -> None:
    (tmp_path / "liar").mkdir()
    good = json.dumps({"label": 0, "text": "Statement: x"})
    (tmp_path / "liar/train.jsonl").write_text(f"{good}\n{good}\n", encoding="utf-8")
    (tmp_path / "liar/test.jsonl").write_text(
        f'{good}\n\n{{"label": 2, "text": "y"}}\n', encoding="utf-8"
    )
    with pytest.raises(
        DataError, match=r"test\.jsonl line 3: expected 'label' 0 or 1.*got label 2"
    ):
        load_liar(tmp_path, val_size=1)
    (tmp_path / "liar/test.jsonl").write_text(f"{good}\n{{broken\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test\.jsonl line 2: invalid JSON"):
        load_liar(tmp_path, val_size=1)


@needs_data
def test_geoquery_unknown_qid_is_located(tmp_path: Path) -> None:
    shutil.copytree(DATA / "geoquery", tmp_path / "geoquery")
    qids = json.loads((DATA / "sammo/rag_semparse_qids.json").read_text("utf-8"))
    qids["geo880"]["test"][7] = "geo880_9999"
    _write(tmp_path / "sammo/rag_semparse_qids.json", qids)
    with pytest.raises(
        DataError, match=r"geo880\.test\[7\]: qid 'geo880_9999' not in .*all\.jsonl"
    ):
        load_geoquery_rag(tmp_path)


def _write(path: Path, document: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
