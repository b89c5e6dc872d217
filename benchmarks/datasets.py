"""Loaders for the benchmark suites, reading the public files exactly as they are published.

Every loader returns a :class:`TaskSplits` of :class:`~sammo_core.data.DataTable` s. The data
folder holds one sub-folder per source, laid out as at the source (``sammo/``, ``bigbench/``,
``geoquery/``, ``liar/``; ``sammo-core data fetch all`` downloads them). It is found by
:func:`resolve_data_dir`: the ``data_dir`` argument (``--data-dir``), else
``$SAMMO_CORE_DATA_DIR``, else the user's data folder ``~/.cache/sammo-core/data`` (where
``sammo-core data fetch`` writes), else, for developers, ``../shared/benchmarks`` beside a
source checkout (found from this package's location, never from the working directory). Data is
never copied into the repository.

========================  ==============================================  ======================
suite                     file(s)                                         splits
========================  ==============================================  ======================
``instruction-tuning``    sammo/instruction_tuning_bigbench.json          5 / 100 / 50 / 100
``compression``           sammo/prompt_compression_sni.json               5 / 100 / 50 / 100
``rag-parsing``           geoquery/all.jsonl + sammo/rag_semparse_qids    pool 500, 100 / 0 / 100
``apo``                   liar/train.jsonl, liar/test.jsonl               3581 / 100 / 461
``bigbench``              bigbench/<task>/task.json                       seeded, 5 / 100 / 50 / 100
========================  ==============================================  ======================

(splits: in-context / train / val / test.) Malformed files raise
:class:`~sammo_core.errors.DataError` naming the file and the key or line; an unknown task or a
missing data folder raises :class:`~sammo_core.errors.ConfigError` saying how to fix it.

>>> splits = load_sammo_instruction_tuning(None, "implicatures")  # doctest: +SKIP
>>> [len(t) for t in (splits.incontext, splits.train, splits.val, splits.test)]  # doctest: +SKIP
[5, 100, 50, 100]
>>> splits.labels  # doctest: +SKIP
('no', 'yes')
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sammo_core.data import DataTable
from sammo_core.errors import ConfigError, DataError

__all__ = [
    "BIGBENCH_SIZES",
    "CHECKOUT_DATA_DIR",
    "DATA_DIR_ENV",
    "SUITES",
    "TaskSplits",
    "default_cache_dir",
    "list_tasks",
    "load",
    "load_bigbench_task",
    "load_geoquery_rag",
    "load_liar",
    "load_sammo_compression",
    "load_sammo_instruction_tuning",
    "resolve_data_dir",
]

DATA_DIR_ENV = "SAMMO_CORE_DATA_DIR"
#: A developer convenience: the data folder beside a source checkout (``../shared/benchmarks``
#: from the repository root), resolved from this file, so the working directory never matters.
CHECKOUT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
SUITES = ("instruction-tuning", "compression", "rag-parsing", "apo", "bigbench")
# In-context / train / val / test sizes of the SAMMO paper, reused for seeded BIG-bench splits.
BIGBENCH_SIZES = (5, 100, 50, 100)

INSTRUCTION_TUNING_FILE = "sammo/instruction_tuning_bigbench.json"
COMPRESSION_FILE = "sammo/prompt_compression_sni.json"
RAG_QIDS_FILE = "sammo/rag_semparse_qids.json"
GEOQUERY_FILE = "geoquery/all.jsonl"
LIAR_FILES = ("liar/train.jsonl", "liar/test.jsonl")

# Outputs with at most this many distinct strings are treated as a closed label set.
_MAX_LABELS = 20
_SAMMO_SPLITS = (
    ("incontext", "d_incontext"),
    ("train", "d_train"),
    ("val", "d_val"),
    ("test", "d_test"),
)
# The paper publishes no instructions for these two suites; these are ours (LIAR: the initial
# prompt of the APO paper, LMOps prompt_optimization/prompts/liar.md).
GEOQUERY_INSTRUCTIONS = (
    "Translate the question into a FunQL program that answers it from the GeoQuery database."
)
LIAR_INSTRUCTIONS = (
    "Determine whether the Statement is a lie (Yes) or not (No) based on the Context and other "
    "information."
)


@dataclass(frozen=True)
class TaskSplits:
    """The splits of one benchmark task, with its instructions and label set.

    ``incontext`` holds the few-shot examples published with a split (else ``None``); ``pool``
    the retrieval pool of a RAG task (else ``None``). ``labels`` is the sorted closed label set
    of a classification task, ``None`` for free-form outputs. ``metadata`` names the source
    files (relative to the data folder), the license and how seeded splits were drawn.

    >>> t = DataTable(["a"], ["x"])
    >>> s = TaskSplits("toy", train=t, val=t, test=t, instructions="Say x.", labels=("x",))
    >>> s.sizes()
    {'train': 1, 'val': 1, 'test': 1}
    """

    name: str
    train: DataTable
    val: DataTable
    test: DataTable
    incontext: DataTable | None = None
    pool: DataTable | None = None
    instructions: str = ""
    labels: tuple[str, ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def sizes(self) -> dict[str, int]:
        """Row counts of the splits present, in the order pool, incontext, train, val, test."""
        named = [("pool", self.pool), ("incontext", self.incontext), ("train", self.train)]
        named += [("val", self.val), ("test", self.test)]
        return {name: len(table) for name, table in named if table is not None}


# -- the data folder -------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where ``sammo-core data fetch`` stores files when neither ``--dest`` nor the env var is set.

    >>> default_cache_dir().parts[-3:]
    ('.cache', 'sammo-core', 'data')
    """
    return Path.home() / ".cache" / "sammo-core" / "data"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The benchmark data folder: ``data_dir``, else ``$SAMMO_CORE_DATA_DIR``, else a default.

    The defaults, tried in order, are :func:`default_cache_dir` (where ``sammo-core data fetch``
    writes) and :data:`CHECKOUT_DATA_DIR` (beside a source checkout). The working directory
    plays no part. A folder named explicitly (by the argument or the env var) must exist.

    >>> resolve_data_dir("/no/such/folder")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: benchmark data folder not found: /no/such/folder (from the data_dir argument / --data-dir); pass --data-dir DIR or set SAMMO_CORE_DATA_DIR=DIR to a folder holding sammo/, bigbench/, geoquery/, liar/ (download them with `sammo-core data fetch all`)
    """  # noqa: E501
    fix = (
        f"pass --data-dir DIR or set {DATA_DIR_ENV}=DIR to a folder holding sammo/, bigbench/, "
        "geoquery/, liar/ (download them with `sammo-core data fetch all`)"
    )
    explicit: list[tuple[str, str]] = []
    if data_dir is not None:
        explicit.append((os.fspath(data_dir), "the data_dir argument / --data-dir"))
    elif os.environ.get(DATA_DIR_ENV):
        explicit.append((os.environ[DATA_DIR_ENV], f"${DATA_DIR_ENV}"))
    for given, origin in explicit:
        path = Path(given).expanduser()
        if not path.is_dir():
            raise ConfigError(f"benchmark data folder not found: {given} (from {origin}); {fix}")
        return path
    candidates = [default_cache_dir(), CHECKOUT_DATA_DIR]
    for path in candidates:
        if path.is_dir():
            return path.resolve()
    tried = ", ".join(str(p) for p in candidates)
    raise ConfigError(
        f"no benchmark data folder found: --data-dir not given, ${DATA_DIR_ENV} not set, "
        f"and none of {tried} exists; {fix}"
    )


# -- SAMMO paper splits ----------------------------------------------------------------------


def load_sammo_instruction_tuning(data_dir: str | os.PathLike[str] | None, task: str) -> TaskSplits:
    """One BIG-bench task of the SAMMO instruction-tuning experiment, split as published.

    The file is a JSON list of ``{task_id, instructions, d_incontext, d_train, d_val, d_test}``
    with ``{input, output}`` records (5 / 100 / 50 / 100). The instructions come from the file,
    else from ``bigbench/<task>/task.json`` (``task_prefix``, else ``description``); every
    table carries them as ``constants["instructions"]``.

    >>> s = load_sammo_instruction_tuning(None, "navigate")  # doctest: +SKIP
    >>> s.instructions, s.labels  # doctest: +SKIP
    ('If you follow these instructions, do you return to the starting point?', ('False', 'True'))
    """
    root = resolve_data_dir(data_dir)
    path = root / INSTRUCTION_TUNING_FILE
    document = _read_json(path)
    if not isinstance(document, list):
        raise DataError(f"{path}: expected a JSON list of tasks, got {_kind(document)}")
    names: list[str] = []
    for i, entry in enumerate(document):
        task_id = _get(entry, "task_id", f"{path}: [{i}]")
        names.append(str(task_id))
        if task_id != task:
            continue
        where = f"{path}: task {task!r}"
        instructions = entry.get("instructions") or _bigbench_instructions(root, task, where)
        if not isinstance(instructions, str):
            raise DataError(f"{where}: 'instructions' must be a string, got {_kind(instructions)}")
        constants = {"instructions": instructions}
        tables = {
            split: _records_table(_get(entry, key, where), f"{where}.{key}", constants)
            for split, key in _SAMMO_SPLITS
        }
        return TaskSplits(
            name=task,
            incontext=tables["incontext"],
            train=tables["train"],
            val=tables["val"],
            test=tables["test"],
            instructions=instructions,
            labels=_labels(tables.values()),
            metadata={
                "suite": "instruction-tuning",
                "source": [INSTRUCTION_TUNING_FILE],
                "license": "splits MIT (microsoft/sammo); examples Apache-2.0 (BIG-bench)",
            },
        )
    raise _unknown_task(task, names, path)


def load_sammo_compression(data_dir: str | os.PathLike[str] | None, task: str) -> TaskSplits:
    """One Super-NaturalInstructions task of the SAMMO prompt-compression experiment.

    The file is a JSON object ``task_name -> {task_id, data: {d_incontext, d_train, d_val,
    d_test}}``, each split a DataTable dump ``{"_type": "DataTable", "records": [{input,
    output}], "constants": {...}, "seed": ...}``. The constants (task definition as
    ``"instructions"``, ``"Instance License"``, categories, ...) are kept as they are. ``task``
    is the full name or its unique ``taskNNN`` prefix.

    >>> s = load_sammo_compression(None, "task108")  # doctest: +SKIP
    >>> s.name, s.labels, s.test.constants["Instance License"]  # doctest: +SKIP
    ('task108_contextualabusedetection_classification', ('no', 'yes'), ['CC BY 4.0'])
    """
    root = resolve_data_dir(data_dir)
    path = root / COMPRESSION_FILE
    document = _read_json(path)
    if not isinstance(document, dict):
        raise DataError(f"{path}: expected a JSON object of tasks, got {_kind(document)}")
    matches = [n for n in document if n == task] or [
        n for n in document if n.startswith(task + "_")
    ]
    if len(matches) != 1:
        raise _unknown_task(task, list(document), path)
    name = matches[0]
    where = f"{path}: task {name!r}"
    data = _get(document[name], "data", where)
    tables: dict[str, DataTable] = {}
    for split, key in _SAMMO_SPLITS:
        dump = _get(data, key, f"{where}.data")
        here = f"{where}.data.{key}"
        records = _get(dump, "records", here)
        constants = dump.get("constants") or {}
        if not isinstance(constants, dict):
            raise DataError(f"{here}.constants: expected an object, got {_kind(constants)}")
        tables[split] = _records_table(records, f"{here}.records", constants)
    instructions = tables["train"].constants.get("instructions")
    if not isinstance(instructions, str):
        raise DataError(f"{where}.data.d_train.constants: missing string key 'instructions'")
    instance_license = tables["train"].constants.get("Instance License", ["unstated"])
    return TaskSplits(
        name=name,
        incontext=tables["incontext"],
        train=tables["train"],
        val=tables["val"],
        test=tables["test"],
        instructions=instructions,
        labels=_labels(tables.values()),
        metadata={
            "suite": "compression",
            "source": [COMPRESSION_FILE],
            "license": "splits MIT (microsoft/sammo); examples Apache-2.0 "
            f"(Super-NaturalInstructions); instance license: {_join(instance_license)}",
        },
    )


def load_geoquery_rag(
    data_dir: str | os.PathLike[str] | None = None, *, val_size: int = 0, seed: int = 0
) -> TaskSplits:
    """GeoQuery (geo880) semantic parsing as in SAMMO's RAG experiment: question -> FunQL.

    ``sammo/rag_semparse_qids.json`` holds ``{"geo880": {"train": [100 qids], "test": [100],
    "incontext": [500], "dsl": {"full_dd", "list_of_operators", "formal"}}}``; train is a subset
    of the in-context pool, test is disjoint from it. The texts come from ``geoquery/all.jsonl``
    (``qid``, ``query``, ``funql``, ...). Inputs are the questions, outputs the FunQL programs,
    in qid-file order; ``constants["dsl"]`` holds the three DSL descriptions. The paper has no
    validation split: ``val`` is empty unless ``val_size > 0``, which carves it from train as
    ``train.split(val_size, None, seed=seed)``. ``metadata["qids"]`` lists each split's qids.

    >>> s = load_geoquery_rag()  # doctest: +SKIP
    >>> s.sizes()  # doctest: +SKIP
    {'pool': 500, 'train': 100, 'val': 0, 'test': 100}
    >>> s.train[0].input, s.train[0].output  # doctest: +SKIP
    ('What is the biggest state ?', 'answer(largest(state(all)))')
    """
    root = resolve_data_dir(data_dir)
    qids_path = root / RAG_QIDS_FILE
    geo = _get(_read_json(qids_path), "geo880", str(qids_path))
    dsl = _get(geo, "dsl", f"{qids_path}: geo880")
    if not isinstance(dsl, dict):
        raise DataError(f"{qids_path}: geo880.dsl: expected an object, got {_kind(dsl)}")
    rows_path = root / GEOQUERY_FILE
    by_qid: dict[str, tuple[str, str]] = {}
    for number, record in _read_jsonl(rows_path):
        here = f"{rows_path} line {number}"
        query, funql = (_get(record, k, here) for k in ("query", "funql"))
        by_qid[str(_get(record, "qid", here))] = (str(query), str(funql))
    constants = {"instructions": GEOQUERY_INSTRUCTIONS, "dsl": dsl}
    qids: dict[str, list[str]] = {}
    tables: dict[str, DataTable] = {}
    for split, key in (("pool", "incontext"), ("train", "train"), ("test", "test")):
        ids = _get(geo, key, f"{qids_path}: geo880")
        if not isinstance(ids, list):
            raise DataError(f"{qids_path}: geo880.{key}: expected a list of qids")
        for i, qid in enumerate(ids):
            if qid not in by_qid:
                raise DataError(f"{qids_path}: geo880.{key}[{i}]: qid {qid!r} not in {rows_path}")
        qids[split] = [str(q) for q in ids]
        tables[split] = DataTable(
            [by_qid[q][0] for q in ids], [by_qid[q][1] for q in ids], constants
        )
    train, val = tables["train"], tables["train"][:0]
    qids["val"] = []
    if val_size:
        order = DataTable(qids["train"]).split(val_size, None, seed=seed)
        val, train = train.split(val_size, None, seed=seed)
        qids["val"], qids["train"] = list(order[0].inputs), list(order[1].inputs)
    return TaskSplits(
        name="geo880",
        pool=tables["pool"],
        train=train,
        val=val,
        test=tables["test"],
        instructions=GEOQUERY_INSTRUCTIONS,
        labels=None,
        metadata={
            "suite": "rag-parsing",
            "source": [GEOQUERY_FILE, RAG_QIDS_FILE],
            "license": "GeoQuery data GPL-2.0; code-semparse Apache-2.0; "
            "qids MIT (microsoft/sammo)",
            "qids": qids,
            "val_size": val_size,
            "seed": seed,
        },
    )


def load_liar(
    data_dir: str | os.PathLike[str] | None = None, *, val_size: int = 100, seed: int = 0
) -> TaskSplits:
    """LIAR as binarised by the APO paper: is the statement a lie? ``"Yes"`` / ``"No"``.

    Each line of ``liar/train.jsonl`` (3681 rows) and ``liar/test.jsonl`` (461 rows) is
    ``{"label": 0|1, "text": "Statement: ...\\nJob title: ...\\nState: ...\\nParty: ...\\n
    Context: ..."}``; label 1 (a false statement) becomes ``"Yes"``, 0 becomes ``"No"``. The
    validation split is carved from train as ``train.split(val_size, None, seed=seed)``: with
    the defaults, 3581 train / 100 val / 461 test rows.

    >>> s = load_liar()  # doctest: +SKIP
    >>> s.sizes(), s.labels  # doctest: +SKIP
    ({'train': 3581, 'val': 100, 'test': 461}, ('No', 'Yes'))
    """
    root = resolve_data_dir(data_dir)
    constants = {"instructions": LIAR_INSTRUCTIONS}
    tables = []
    for relative in LIAR_FILES:
        path = root / relative
        texts, answers = [], []
        for number, record in _read_jsonl(path):
            here = f"{path} line {number}"
            text, label = _get(record, "text", here), _get(record, "label", here)
            if label not in (0, 1) or isinstance(label, bool) or not isinstance(text, str):
                raise DataError(
                    f"{here}: expected 'label' 0 or 1 and a string 'text'; got label {label!r}"
                )
            texts.append(text)
            answers.append("Yes" if label == 1 else "No")
        tables.append(DataTable(texts, answers, constants))
    full_train, test = tables
    val, train = full_train.split(val_size, None, seed=seed)
    return TaskSplits(
        name="liar",
        train=train,
        val=val,
        test=test,
        instructions=LIAR_INSTRUCTIONS,
        labels=("No", "Yes"),
        metadata={
            "suite": "apo",
            "source": list(LIAR_FILES),
            "license": "LMOps MIT; LIAR (PolitiFact, Wang 2017) has no stated license: "
            "research use",
            "val_size": val_size,
            "seed": seed,
        },
    )


def load_bigbench_task(
    data_dir: str | os.PathLike[str] | None,
    name: str,
    *,
    seed: int = 0,
    sizes: Sequence[int] = BIGBENCH_SIZES,
) -> TaskSplits:
    """Any ``bigbench/<name>/task.json``, shuffled with ``seed``, split in-context/train/val/test.

    An example's output is the key of its ``target_scores`` with the highest score (the one
    scored 1), else its ``target`` (the first one when it is a list). ``labels`` is the sorted
    set of ``target_scores`` keys (``None`` for free-form tasks); the instructions are the
    ``task_prefix``, else the ``description``. ``sizes`` = (in-context, train, val, test) are
    honoured when the task has enough examples; a smaller task keeps ``min(sizes[0], n // 10)``
    in-context examples and divides the rest in the ratio of the other three sizes.

    >>> s = load_bigbench_task(None, "analytic_entailment")  # doctest: +SKIP
    >>> s.sizes()  # 70 examples  # doctest: +SKIP
    {'incontext': 5, 'train': 26, 'val': 13, 'test': 26}
    """
    if len(sizes) != 4 or any(
        isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in sizes
    ):
        raise ConfigError(
            f"sizes must be 4 non-negative ints (incontext, train, val, test); got {sizes!r}"
        )
    root = resolve_data_dir(data_dir)
    path = root / "bigbench" / name / "task.json"
    if not path.is_file():
        raise _unknown_task(name, _bigbench_names(root), path)
    document = _read_json(path)
    examples = _get(document, "examples", str(path))
    if not isinstance(examples, list):
        raise DataError(f"{path}: 'examples' must be a list, got {_kind(examples)}")
    inputs: list[Any] = []
    outputs: list[str] = []
    label_set: set[str] = set()
    multiple_choice = True
    for i, example in enumerate(examples):
        here = f"{path}: examples[{i}]"
        inputs.append(_get(example, "input", here))
        scores = example.get("target_scores")
        if isinstance(scores, dict) and scores:
            best = max(scores.values())
            winners = [k for k, v in scores.items() if v == best]
            if len(winners) != 1 or best <= 0:
                raise DataError(f"{here}.target_scores: no single best answer in {scores!r}")
            outputs.append(winners[0])
            label_set.update(scores)
        elif "target" in example:
            target = example["target"]
            if isinstance(target, list) and target:
                target = target[0]
            if not isinstance(target, str):
                raise DataError(f"{here}.target: expected a string, got {_kind(target)}")
            outputs.append(target)
            multiple_choice = False
        else:
            raise DataError(f"{here}: missing key 'target_scores' or 'target'")
    instructions = _bigbench_instructions(root, name, str(path), document)
    table = DataTable(inputs, outputs, {"instructions": instructions})
    counts = _fit_sizes(list(sizes), len(table))
    incontext, train, val, test = table.split(*counts, None, seed=seed)[:4]
    return TaskSplits(
        name=name,
        incontext=incontext,
        train=train,
        val=val,
        test=test,
        instructions=instructions,
        labels=tuple(sorted(label_set)) if multiple_choice and label_set else None,
        metadata={
            "suite": "bigbench",
            "source": [f"bigbench/{name}/task.json"],
            "license": "Apache-2.0 (BIG-bench); keeps the BIG-bench canary: never train on it",
            "seed": seed,
            "sizes": counts,
        },
    )


# -- the catalogue ---------------------------------------------------------------------------


def list_tasks(data_dir: str | os.PathLike[str] | None = None) -> dict[str, list[str]]:
    """The tasks of each suite found in the data folder; a suite whose files are absent is empty.

    >>> list_tasks()["apo"]  # doctest: +SKIP
    ['liar']
    """
    root = resolve_data_dir(data_dir)
    found: dict[str, list[str]] = {suite: [] for suite in SUITES}
    path = root / INSTRUCTION_TUNING_FILE
    if path.is_file():
        document = _read_json(path)
        if not isinstance(document, list):
            raise DataError(f"{path}: expected a JSON list of tasks, got {_kind(document)}")
        found["instruction-tuning"] = [
            str(_get(e, "task_id", f"{path}: [{i}]")) for i, e in enumerate(document)
        ]
    path = root / COMPRESSION_FILE
    if path.is_file():
        document = _read_json(path)
        if not isinstance(document, dict):
            raise DataError(f"{path}: expected a JSON object of tasks, got {_kind(document)}")
        found["compression"] = list(document)
    path = root / RAG_QIDS_FILE
    if path.is_file() and (root / GEOQUERY_FILE).is_file():
        document = _read_json(path)
        if not isinstance(document, dict):
            raise DataError(f"{path}: expected a JSON object, got {_kind(document)}")
        found["rag-parsing"] = [name for name in document if name == "geo880"]
    if all((root / f).is_file() for f in LIAR_FILES):
        found["apo"] = ["liar"]
    found["bigbench"] = _bigbench_names(root)
    return found


def load(suite: str, task: str, data_dir: str | os.PathLike[str] | None = None) -> TaskSplits:
    """Load ``task`` of ``suite`` (one of :data:`SUITES`) with each loader's defaults.

    >>> load("apo", "liar").name  # doctest: +SKIP
    'liar'
    >>> load("poetry", "x")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: unknown suite 'poetry'; use one of: instruction-tuning, compression, rag-parsing, apo, bigbench
    """  # noqa: E501
    loaders: dict[str, Callable[[], TaskSplits]] = {
        "instruction-tuning": lambda: load_sammo_instruction_tuning(data_dir, task),
        "compression": lambda: load_sammo_compression(data_dir, task),
        "rag-parsing": lambda: _only(task, "geo880", lambda: load_geoquery_rag(data_dir)),
        "apo": lambda: _only(task, "liar", lambda: load_liar(data_dir)),
        "bigbench": lambda: load_bigbench_task(data_dir, task),
    }
    if suite not in loaders:
        raise ConfigError(f"unknown suite {suite!r}; use one of: {', '.join(SUITES)}")
    return loaders[suite]()


# -- helpers ---------------------------------------------------------------------------------


def _only(task: str, expected: str, loader: Callable[[], TaskSplits]) -> TaskSplits:
    if task != expected:
        raise ConfigError(f"unknown task {task!r} for this suite; its only task is {expected!r}")
    return loader()


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"data file not found: {path}; {_fetch_hint(path)}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(
            f"{path}: invalid JSON ({e.msg}: line {e.lineno} column {e.colno})"
        ) from None


def _read_jsonl(path: Path) -> list[tuple[int, Any]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"data file not found: {path}; {_fetch_hint(path)}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    rows = []
    # Split on "\n" only: str.splitlines would also break at U+2028 inside JSON strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError as e:
                raise DataError(f"{path} line {number}: invalid JSON ({e.msg})") from None
    return rows


def _fetch_hint(path: Path) -> str:
    source = path.parent.name if path.parent.name in ("sammo", "geoquery", "liar") else "bigbench"
    return f"download it with `sammo-core data fetch {source}` or pass another --data-dir"


def _get(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, Mapping):
        raise DataError(f"{where}: expected an object with key {key!r}, got {_kind(obj)}")
    if key not in obj:
        present = ", ".join(map(str, obj)) or "(none)"
        raise DataError(f"{where}: missing key {key!r}; keys present: {present}")
    return obj[key]


def _records_table(records: Any, where: str, constants: Mapping[str, Any]) -> DataTable:
    if not isinstance(records, list):
        raise DataError(
            f"{where}: expected a list of {{input, output}} records, got {_kind(records)}"
        )
    inputs = [_get(r, "input", f"{where}[{i}]") for i, r in enumerate(records)]
    outputs = [_get(r, "output", f"{where}[{i}]") for i, r in enumerate(records)]
    return DataTable(inputs, outputs, constants)


def _labels(tables: Any) -> tuple[str, ...] | None:
    outputs = [out for table in tables for out in table.outputs]
    distinct = set(outputs)
    if outputs and all(isinstance(o, str) for o in outputs) and len(distinct) <= _MAX_LABELS:
        return tuple(sorted(distinct))
    return None


def _bigbench_instructions(root: Path, task: str, where: str, document: Any | None = None) -> str:
    path = root / "bigbench" / task / "task.json"
    if document is None:
        if not path.is_file():
            raise DataError(f"{where}: no 'instructions', and {path} is missing to take them from")
        document = _read_json(path)
    for key in ("task_prefix", "description"):
        value = document.get(key) if isinstance(document, Mapping) else None
        if isinstance(value, str) and value.strip():
            return value
    raise DataError(f"{path}: no 'task_prefix' or 'description' to use as instructions")


def _bigbench_names(root: Path) -> list[str]:
    folder = root / "bigbench"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / "task.json").is_file())


def _fit_sizes(sizes: list[int], n: int) -> list[int]:
    if sum(sizes) <= n:
        return sizes
    incontext = min(sizes[0], n // 10)
    rest, weights = n - incontext, sizes[1:]
    total = sum(weights) or 1
    train = round(rest * weights[0] / total)
    val = min(round(rest * weights[1] / total), rest - train)
    return [incontext, train, val, rest - train - val]


def _unknown_task(task: str, names: Sequence[str], path: Path) -> ConfigError:
    available = ", ".join(names) or "(none)"
    return ConfigError(f"unknown task {task!r} in {path}; available: {available}")


def _join(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    if value is None:
        return "null"
    return type(value).__name__
