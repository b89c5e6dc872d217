"""Fuzzing the readers of run files (issue 19): checkpoints, result/run/manifest JSON, usage
journals, cache rows, safetensors headers and bench results.

Each reader gets valid files mutated (a subtree replaced, deleted or buried deep, numbers made
huge), random bytes, deep nesting and huge numbers. The only outcomes allowed are a load or the
project's own error (:class:`~sammo_core.errors.SammoError`): never another exception, never
past a deadline, never past a memory bound. The default suite runs a few dozen examples per
reader; the slow suite (``pytest -m slow``) runs many more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
import struct
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import cli_bench
from benchmarks.report import write_report
from mutators.mixture import Mixture
from mutators.structure import DropSection, ReorderSections
from sammo_core.cli import main
from sammo_core.errors import SammoError
from sammo_core.loading import load_program
from sammo_core.runners import Cache, CachedRunner, LLMRequest, ScriptedRunner
from sammo_core.runners.accounting import UsageJournal
from sammo_core.runners.cache import stored_result
from sammo_core.soft import SoftTensor
from sammo_core.testing.synthetic import items, start_program, synthetic_model
from search import BeamSearch, SearchBudget

FAST = 25  # examples per reader in the default suite
SLOW = 600  # and in the slow suite
DEADLINE_MS = 10_000  # per example: a reader that hangs fails here
MEMORY_BOUND = 64 << 20  # bytes a reader may allocate on the way (tracemalloc's peak)
VAL, TEST = items(6), items(6, start=100)


def fuzz(examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return settings(
        max_examples=examples,
        deadline=DEADLINE_MS,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=examples == FAST,  # the default suite sees the same examples every run
    )


def allowed(read: Callable[[], object]) -> None:
    """Run a reader: it may load or raise a SammoError, within the memory bound."""
    tracemalloc.start()
    try:
        read()
    except SammoError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"a reader took {peak:,} bytes"


# -- what the files are made of ---------------------------------------------------------------

HUGE = st.sampled_from([2**63, 2**64 + 1, -(2**63) - 1, 2**200, 10**400, 1e308, -1e308])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    HUGE,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["../../x", "/etc/passwd", "..", "", "a\0b", "0", "best"]),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def encode(value: Any) -> bytes:
    """JSON text of ``value``; integers beyond 64 bits and 1e400 written as Python would."""
    return json.dumps(value).encode()


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from paths(value, (*prefix, i))


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> bytes:
    """``doc`` with one or a few of its subtrees replaced, deleted, made huge or buried deep."""
    doc = json.loads(json.dumps(doc))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(list(paths(doc))))
        action = draw(st.sampled_from(["replace", "delete", "huge", "deep", "type"]))
        if not where:
            doc = draw(JSON_VALUES)
            continue
        parent = doc
        for key in where[:-1]:
            parent = parent[key]
        key = where[-1]
        if action == "delete":
            del parent[key]
        elif action == "huge":
            parent[key] = draw(HUGE)
        elif action == "deep":
            parent[key] = json.loads("[" * 200 + "1" + "]" * 200)
        elif action == "type":
            parent[key] = draw(st.sampled_from([[], {}, "x", 5, None, True, -1, 0.5]))
        else:
            parent[key] = draw(JSON_VALUES)
    return encode(doc)


RAW = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [b"[" * 100_000, b'{"a":' * 50_000, b"9" * 5000, b"1e999999", b"\xff\xfe", b"", b"nul"]
    ),
)


class Blob(bytes):
    """File bytes with a short repr, so a failing example is reported quickly."""

    def __repr__(self) -> str:
        return f"Blob({bytes(self[:300])!r}{'...' if len(self) > 300 else ''}, {len(self)} bytes)"


def blobs(valid: bytes) -> st.SearchStrategy[bytes]:
    """Files a reader may meet: ``valid`` mutated, random bytes, deep nesting, huge numbers."""
    doc = orjson.loads(valid)
    near = mutated(doc)  # mostly near-valid files
    return st.one_of(near, near, near, RAW).map(Blob)


# -- a finished run to start from -------------------------------------------------------------


def beam() -> BeamSearch:
    ops = Mixture([DropSection(), ReorderSections()])
    return BeamSearch(ops, width=2, depth=2, budget=SearchBudget(calls=60), seed=1)


def search(out: Path, resume: bool) -> None:
    asyncio.run(
        beam().run(
            start_program(), val=VAL, test=TEST, runner=synthetic_model(), out_dir=out,
            resume=resume,
        )
    )  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished search folder, with run.json, an export and its manifest beside it."""
    out = tmp_path_factory.mktemp("fuzz") / "run"
    search(out, resume=False)
    (out / "run.json").write_text(json.dumps({"model": "m", "data_hash": {"val": "x"}}))
    assert main(["export", str(out)]) == 0
    return out


@contextlib.contextmanager
def scratch(finished: Path) -> Iterator[Path]:
    """A copy of the finished run, to spoil."""
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        shutil.copytree(finished, run)
        yield run


def check_checkpoint(finished: Path, blob: bytes) -> None:
    with scratch(finished) as run:
        (run / "checkpoint.json").write_bytes(blob)
        allowed(lambda: search(run, resume=True))


def check_result(finished: Path, blob: bytes) -> None:
    with scratch(finished) as run:
        (run / "result.json").write_bytes(blob)
        allowed(lambda: _export(run))


def check_run_meta(finished: Path, blob: bytes) -> None:
    with scratch(finished) as run:
        (run / "run.json").write_bytes(blob)
        allowed(lambda: _export(run))


def _export(run: Path) -> None:
    if main(["export", str(run), "--out", str(run / "again")]) != 0:
        raise SammoError("export failed cleanly")  # its one line went to stderr


def check_manifest(finished: Path, blob: bytes) -> None:
    with scratch(finished) as run:
        (run / "export" / "manifest-json.json").write_bytes(blob)
        allowed(lambda: load_program(run / "export" / "program.json"))


def check_journal(finished: Path, blob: bytes) -> None:
    with scratch(finished) as run:
        valid = (run / "usage.jsonl").read_bytes()
        tag = orjson.loads(valid.splitlines()[0])["tag"]
        (run / "usage.jsonl").write_bytes(valid + blob.replace(b"\n", b" ") + b"\n")
        allowed(lambda: UsageJournal(run / "usage.jsonl", tag=tag, fsync=False).close())


def check_cache_row(finished: Path, blob: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.sqlite"
        request = LLMRequest.from_prompt("hi")
        with Cache(path) as cache:
            CachedRunner(ScriptedRunner(default="yes"), cache).generate_sync(request)
        with sqlite3.connect(path) as db:
            db.execute("UPDATE completions SET value = ?", (blob,))
        with Cache(path) as cache:
            runner = CachedRunner(ScriptedRunner(default="yes"), cache)
            allowed(lambda: runner.generate_sync(request))
        allowed(lambda: stored_result(blob, path))


def check_safetensors(finished: Path, blob: bytes) -> None:
    header = blob  # a header, behind a length that says it is whole
    data = struct.pack("<Q", len(header)) + header + b"\0" * 32
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "t.safetensors"
        file.write_bytes(data)
        allowed(lambda: SoftTensor.from_file(file))
        allowed(lambda: SoftTensor.from_safetensors(data))
        file.write_bytes(blob)  # and the bytes as a whole file
        allowed(lambda: SoftTensor.from_file(file))


def check_bench_results(finished: Path, blob: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        (out / "results.json").write_bytes(blob)
        allowed(lambda: cli_bench._load_results(out))
        allowed(lambda: write_report(out))


VALID_SAFETENSORS_HEADER = SoftTensor.from_values([[1.0] * 8] * 1).to_safetensors()[8:-32]
VALID_ROW = orjson.dumps({"text": "yes", "prompt_tokens": 3, "completion_tokens": 1, "calls": 1})
VALID_BENCH = encode(
    {
        "suite": "quick",
        "model": "m",
        "options": {"seed": 0, "strategy": None, "budget": None},
        "tasks": {
            "t": {
                "task": "t",
                "objective": "accuracy",
                "run_dir": "t",
                "baseline": {"test": {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6},
                             "prompt_tokens": 9, "prompt_file": "t/prompts/baseline.txt"},
                "optimized": {"test": {"value": 0.7, "ci_low": 0.6, "ci_high": 0.8},
                              "prompt_tokens": 8, "prompt_file": "t/prompts/optimized.txt"},
                "calls": 10,
                "seconds": 1.5,
                "search": {"strategy": "BeamSearch", "candidates": 2, "steps": 1,
                           "stopped": "budget"},
            }
        },
        "errors": {},
    }
)  # fmt: skip


def _valid(finished: Path, name: str) -> bytes:
    return (finished / name).read_bytes()


READERS: dict[str, tuple[Callable[[Path], bytes], Callable[[Path, bytes], None]]] = {
    "checkpoint": (lambda f: _valid(f, "checkpoint.json"), check_checkpoint),
    "result": (lambda f: _valid(f, "result.json"), check_result),
    "run-meta": (lambda f: _valid(f, "run.json"), check_run_meta),
    "manifest": (lambda f: _valid(f, "export/manifest-json.json"), check_manifest),
    "journal": (lambda f: b'{"kind": "done", "id": 3, "usage": {"calls": 1}}', check_journal),
    "cache-row": (lambda f: VALID_ROW, check_cache_row),
    "safetensors-header": (lambda f: VALID_SAFETENSORS_HEADER, check_safetensors),
    "bench-results": (lambda f: VALID_BENCH, check_bench_results),
}


def run_fuzz(finished: Path, name: str, examples: int) -> None:
    valid, check = READERS[name]

    @fuzz(examples)
    @given(blob=blobs(valid(finished)))
    def property_(blob: bytes) -> None:
        check(finished, blob)

    property_()


@pytest.mark.parametrize("name", list(READERS))
def test_a_reader_loads_or_says_what_is_wrong(name: str, finished: Path) -> None:
    run_fuzz(finished, name, FAST)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(READERS))
def test_a_reader_loads_or_says_what_is_wrong_long(name: str, finished: Path) -> None:
    run_fuzz(finished, name, SLOW)


def test_the_valid_files_load(finished: Path) -> None:
    """The seeds of the fuzzers are valid: each reader loads them."""
    for name, (valid, _) in READERS.items():
        blob = valid(finished)
        assert orjson.loads(blob) is not None, name
    assert SoftTensor.from_safetensors(
        struct.pack("<Q", len(VALID_SAFETENSORS_HEADER)) + VALID_SAFETENSORS_HEADER + b"\0" * 32
    ).shape == (1, 8)
    assert stored_result(VALID_ROW, Path("c.sqlite")).text == "yes"
    assert main(["export", str(finished), "--out", str(finished.parent / "again")]) == 0


# -- what the long fuzzers found (kept as plain cases) ------------------------------------------


def test_a_checkpoint_candidate_without_its_score_is_one_line(finished: Path) -> None:
    # Found by the slow fuzzer: a candidate whose scores were emptied loaded, then the search
    # crashed with KeyError 'accuracy' while ranking.
    state = json.loads(READERS["checkpoint"][0](finished))
    state["candidates"][1]["scores"] = {}
    check_checkpoint(finished, json.dumps(state).encode())


def test_a_bench_run_dir_too_long_for_the_file_system_is_one_line(finished: Path) -> None:
    # Found by the slow fuzzer: run_dir a deeply nested list became a 600-character file name,
    # and reading it raised OSError (File name too long).
    results = json.loads(READERS["bench-results"][0](finished))
    for task in results["tasks"].values():
        task["run_dir"] = [[[[1]]]] * 200
    check_bench_results(finished, json.dumps(results).encode())
