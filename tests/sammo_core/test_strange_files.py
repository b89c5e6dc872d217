"""Files from someone else (issue 19): run folders, caches and tampered files, from the outside.

Each case plants something in a folder a careless or hostile person handed over (a link, a name
that climbs out, a tampered or oversized file), runs the command line against the loopback
server, and checks what a user sees: one ``error:`` line naming the file and what is wrong, no
traceback, and nothing written or read outside the folder. ``before`` says what the code did
before the fix (measured).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from sammo_core.cli import main
from sammo_core.runners import (
    DEFAULT_MAX_REPLY_BYTES,
    Cache,
    CachedRunner,
    LLMRequest,
    LLMResult,
    Message,
    ScriptedRunner,
)
from sammo_core.testing.chat_server import ChatServer
from sammo_core.testing.synthetic import answer, items

PROGRAM = """\
from sammo_core.testing.synthetic import start_program

program = start_program()
OBJECTIVE = "accuracy"
"""
SECRET = "the victim's own file\nnot to be touched"  # no newline at the end: a "torn" line
HUGE = 2**65


def reply(body: Mapping[str, Any]) -> str:
    messages = tuple(Message(m["role"], m["content"]) for m in body["messages"])
    return answer(LLMRequest(messages=messages))


@dataclasses.dataclass
class World:
    """What a case works with: a scratch folder, the server, a finished run and its inputs."""

    tmp: Path
    server: ChatServer
    finished: Path  # a finished optimize run (copy it before changing it)
    program: Path
    data: Path

    def optimize(self, out: Path, *extra: str) -> list[str]:
        return [
            "optimize", str(self.program), "--data", str(self.data), "--model", "loopback",
            "--base-url", self.server.base_url, "--strategy", "beam", "--budget", "4",
            "--width", "2", "--depth", "2", "--operators", "structure", "--seed", "0",
            "--out", str(out), "--timeout", "5", *extra,
        ]  # fmt: skip

    def run_args(self, program: Path, *extra: str) -> list[str]:
        return [
            "run", str(program), "--data", str(self.data), "--model", "loopback",
            "--base-url", self.server.base_url, "--timeout", "5", "--limit", "6", *extra,
        ]  # fmt: skip

    def bench(self, out: Path, *extra: str) -> list[str]:
        return [
            "bench", "run", "quick", "--tasks", "implicatures", "--model", "loopback",
            "--base-url", self.server.base_url, "--timeout", "5", "--max-rows", "2",
            "--budget", "2", "--out", str(out), *extra,
        ]  # fmt: skip

    def copy_run(self, name: str = "run") -> Path:
        target = self.tmp / name
        shutil.copytree(self.finished, target, symlinks=True)
        return target

    def victim(self, name: str = "victim.txt") -> Path:
        path = self.tmp / name
        path.write_text(SECRET)
        return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    folder = tmp_path_factory.mktemp("inputs")
    program, data = folder / "program.py", folder / "data.jsonl"
    program.write_text(PROGRAM)
    items(24).save(data)
    yield folder / "run", program, data


@pytest.fixture(scope="module")
def server() -> Iterator[ChatServer]:
    with ChatServer(reply=reply) as chat:
        yield chat


@pytest.fixture
def world(tmp_path: Path, server: ChatServer, finished: tuple[Path, Path, Path]) -> Iterator[World]:
    run, program, data = finished
    w = World(tmp_path, server, run, program, data)
    if not run.is_dir():
        assert main(w.optimize(run)) == 0
    yield w


def error_line(code: int, err: str) -> str:
    """The one error line of a command that failed cleanly."""
    assert code == 1, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


Check = Callable[[World, pytest.CaptureFixture[str]], None]


def call(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    try:
        code = main(args)
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


# -- 1. links inside a run or --out folder are never written through ---------------------------


def resume_through_a_linked_program_file(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    run, victim = w.copy_run(), w.victim()
    (run / "best_program.json").unlink()
    (run / "best_program.json").symlink_to(victim)
    line = error_line(*call(w.optimize(run, "--resume"), capsys))
    assert "best_program.json is a symbolic link" in line
    assert victim.read_text() == SECRET


def resume_through_a_linked_programs_folder(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    run, elsewhere = w.copy_run(), w.tmp / "elsewhere"
    shutil.move(run / "programs", elsewhere)
    (run / "programs").symlink_to(elsewhere, target_is_directory=True)
    before = {p.name: p.read_bytes() for p in elsewhere.iterdir()}
    line = error_line(*call(w.optimize(run, "--resume"), capsys))
    assert "programs is a symbolic link" in line
    assert {p.name: p.read_bytes() for p in elsewhere.iterdir()} == before


def resume_with_a_linked_usage_journal(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    run, victim = w.copy_run(), w.victim()
    (run / "usage.jsonl").unlink()
    (run / "usage.jsonl").symlink_to(victim)
    line = error_line(*call(w.optimize(run, "--resume"), capsys))
    assert "usage.jsonl is a symbolic link" in line
    assert victim.read_text() == SECRET  # was truncated at its last newline


def export_into_a_linked_folder(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    run, elsewhere = w.copy_run(), w.tmp / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "program.json"
    victim.write_text(SECRET)
    (run / "export").symlink_to(elsewhere, target_is_directory=True)
    line = error_line(*call(["export", str(run)], capsys))
    assert "export is a symbolic link" in line
    assert victim.read_text() == SECRET


def run_out_with_a_linked_file(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("program.json", "predictions.jsonl.tmp"):  # each was written through
        out, victim = w.tmp / f"out-{name}", w.victim(f"victim-{name}")
        out.mkdir()
        (out / name).symlink_to(victim)
        program = w.finished / "best_program.json"
        code, err = call(w.run_args(program, "--out", str(out)), capsys)
        assert victim.read_text() == SECRET, name
        if name == "program.json":
            assert "program.json is a symbolic link" in error_line(code, err)


# -- 2. names read from files stay inside their folder -----------------------------------------


def export_of_a_best_id_that_climbs_out(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    run = w.copy_run()
    outside = w.tmp / "x.json"
    shutil.copy(run / "best_program.json", outside)
    result = json.loads((run / "result.json").read_text())
    result["best"]["id"] = "../../x"
    (run / "result.json").write_text(json.dumps(result))
    line = error_line(*call(["export", str(run)], capsys))
    assert "result.json names '../../x.json'" in line and "outside" in line


def bench_resume_of_a_prompt_file_that_climbs_out(
    w: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bench run --resume`` keeps the finished records of results.json and writes the report
    from them, quoting the prompt files they name."""
    out = w.tmp / "bench"
    w.victim("passwd")
    args = w.bench(out, "--seed", "0")
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    climb = "../" * len(out.relative_to(w.tmp).parts) + "passwd"
    for task in results["tasks"].values():
        task["optimized"]["prompt_file"] = climb
    (out / "results.json").write_text(json.dumps(results))
    line = error_line(*call([*args, "--resume"], capsys))
    assert f"names {climb!r}, a path outside" in line
    assert not any("victim" in p.read_text() for p in out.glob("report.*"))


# -- 3. tampered files: one line naming the file and what is wrong ------------------------------


def resume_from_a_checkpoint_holding_zz(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    run = w.copy_run()
    (run / "checkpoint.json").write_text("zz")
    line = error_line(*call(w.optimize(run, "--resume"), capsys))
    assert "checkpoint.json" in line and "not JSON" in line


def resume_from_a_checkpoint_of_the_wrong_shape(
    w: World, capsys: pytest.CaptureFixture[str]
) -> None:
    run = w.copy_run()
    (run / "checkpoint.json").write_text("[1, 2]")
    line = error_line(*call(w.optimize(run, "--resume"), capsys))
    assert "checkpoint.json" in line


def run_beside_a_manifest_with_input_fields_5(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    run = w.copy_run()
    assert main(["export", str(run)]) == 0
    manifest = run / "export" / "manifest-json.json"
    data = json.loads(manifest.read_text())
    data["input_fields"] = 5
    manifest.write_text(json.dumps(data))
    line = error_line(*call(w.run_args(run / "export" / "program.json"), capsys))
    assert "manifest-json.json" in line and "input_fields" in line


def run_from_a_cache_row_holding_a_list(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    cache = w.tmp / "cache.sqlite"
    program = w.finished / "best_program.json"
    assert main(w.run_args(program, "--cache", str(cache))) == 0
    with sqlite3.connect(cache) as db:
        db.execute("UPDATE completions SET value = ?", (b"[1]",))
    line = error_line(*call(w.run_args(program, "--cache", str(cache)), capsys))
    assert "cache.sqlite" in line and "not a stored reply" in line


def resume_with_a_journal_id_of_2_to_the_65(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    run = w.copy_run()
    with (run / "usage.jsonl").open("a") as f:
        record = {"kind": "sent", "id": HUGE, "prompt_tokens": 1, "completion_tokens": 1}
        f.write(json.dumps(record | {"usd": 0.0}) + "\n")
    line = error_line(*call(w.optimize(run, "--resume"), capsys))
    assert "usage.jsonl" in line and "id 3.6893488147419103e+19 is not a whole number" in line


def soft_program(w: World, width: int = 16) -> tuple[Path, Path]:
    """A program with a soft prompt (2 x ``width``) saved beside it, and its tensor file."""
    from sammo_core import GenerateText, InputData, MetaPrompt, Output, SoftPrompt
    from sammo_core.serialization import save
    from sammo_core.soft import SoftTensor

    tensor = SoftTensor.from_values([[0.5] * width] * 2)
    soft = SoftPrompt(n_tokens=2, tensor=tensor)
    prompt = MetaPrompt([soft, "Answer:", InputData()])
    path = save(Output(GenerateText(prompt, mode="completion")), w.tmp / "soft.json")
    (file,) = (w.tmp / "soft.soft").iterdir()
    return path, file


def run_a_soft_tensor_with_header_a_list(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    path, file = soft_program(w)
    file.write_bytes(struct.pack("<Q", 8) + b"[]      ")
    line = error_line(*call(w.run_args(path), capsys))
    assert file.name in line and "safetensors" in line


def bench_compare_of_a_bad_results_file(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = w.tmp / "a", w.tmp / "b"
    a.mkdir(), b.mkdir()
    (a / "results.json").write_text(json.dumps({"tasks": {"t": 5}}))
    (b / "results.json").write_text(json.dumps({"tasks": {"t": {"objective": "x"}}}))
    line = error_line(*call(["bench", "compare", str(a), str(b)], capsys))
    assert "results.json" in line


# -- 4. sizes are checked before reading --------------------------------------------------------


def run_a_3_gb_soft_tensor_file(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    """A sparse file: 3 GB declared, nothing written. The command runs under a 1.5 GB address
    space limit, so reading it whole fails."""
    path, file = soft_program(w)
    with file.open("r+b") as f:
        f.truncate(3 << 30)
    script = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29)); "
        "from sammo_core.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *w.run_args(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    line = error_line(done.returncode, done.stderr)
    assert file.name in line and "3,221,225,472 bytes" in line


def run_from_a_cache_holding_a_20_mb_reply(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    cache, out = w.tmp / "cache.sqlite", w.tmp / "out"
    program = w.finished / "best_program.json"
    assert main(w.run_args(program, "--cache", str(cache), "--max-reply-bytes", "0")) == 0
    huge = orjson.dumps({"text": "yes " * (5 << 20), "prompt_tokens": 9, "completion_tokens": 9})
    with sqlite3.connect(cache) as db:
        db.execute("UPDATE completions SET value = ?", (huge,))
    code, err = call(w.run_args(program, "--cache", str(cache), "--out", str(out)), capsys)
    assert code == 0, err
    # Six rows, each with the reply at most twice (raw and parsed): 3 MB, not 6 x 40 MB.
    assert (out / "predictions.jsonl").stat().st_size < 6 * 3 * DEFAULT_MAX_REPLY_BYTES
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    assert all(len(row["raw_output"].encode()) <= DEFAULT_MAX_REPLY_BYTES for row in rows)


# -- 5. soft prompts and weights from elsewhere -------------------------------------------------


def run_a_soft_prompt_of_another_width(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from sammo_core.testing.tiny_hf import tiny_hf_folder

    model = tiny_hf_folder(w.tmp / "tiny")  # 16 wide
    path, _ = soft_program(w, width=8)
    args = ["run", str(path), "--data", str(w.data), "--model", f"hf:{model}", "--limit", "1"]
    line = error_line(*call(args, capsys))
    assert "is 2x8, but" in line and "takes 16-wide embeddings" in line


def run_a_model_folder_with_pickle_weights(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    torch = pytest.importorskip("torch")
    from sammo_core.testing.tiny_hf import tiny_hf_model

    tiny, folder = tiny_hf_model(), w.tmp / "pickled"
    tiny.model.config.save_pretrained(folder)
    tiny.tokenizer.save_pretrained(folder)
    torch.save(tiny.model, folder / "pytorch_model.bin")  # a whole pickled module
    path, _ = soft_program(w)
    args = ["run", str(path), "--data", str(w.data), "--model", f"hf:{folder}", "--limit", "1"]
    line = error_line(*call(args, capsys))
    assert "pytorch_model.bin" in line and ".safetensors files only" in line
    assert "weights_only" not in capsys.readouterr().err + line


# -- 6. seeds of any size -----------------------------------------------------------------------


def optimize_with_a_seed_of_2_to_the_64(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    args = w.optimize(w.tmp / "run")
    args[args.index("--seed") + 1] = str(2**64)
    code, err = call(args, capsys)
    assert "Traceback" not in err and "TypeError" not in err, err
    assert code == 0 or "--seed" in err, err


def bench_run_with_a_seed_of_2_to_the_64(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = call(w.bench(w.tmp / "b", "--seed", str(2**64)), capsys)
    assert "Traceback" not in err and "TypeError" not in err, err
    assert code in (0, 2) and ("--seed" in err or code == 0), err
    line = error_line(*call(w.bench(w.tmp / "b", "--seeds", f"0,{2**64}"), capsys))
    assert f"seed {2**64} is out of range" in line


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    check: Check
    before: str


CASES = [
    Case(
        "resume-linked-program",
        resume_through_a_linked_program_file,
        "exit 0; best_program.json written through the link: the file it points to overwritten",
    ),
    Case(
        "resume-linked-programs-dir",
        resume_through_a_linked_programs_folder,
        "exit 0; programs/*.json written into the folder the link points to",
    ),
    Case(
        "resume-linked-journal",
        resume_with_a_linked_usage_journal,
        "the linked file truncated at its last newline (torn-line repair), then an error",
    ),
    Case(
        "export-linked-out",
        export_into_a_linked_folder,
        "exit 0; program.json and manifest written into the folder RUN/export points to",
    ),
    Case(
        "run-out-linked-files",
        run_out_with_a_linked_file,
        "exit 0; program.json written through the link (its target overwritten)",
    ),
    Case(
        "export-best-id-climbs",
        export_of_a_best_id_that_climbs_out,
        "exit 0; RUN/programs/../../x.json, a file outside the run, exported",
    ),
    Case(
        "bench-prompt-file-climbs",
        bench_resume_of_a_prompt_file_that_climbs_out,
        "exit 0; report.md and report.html quote the file outside the run",
    ),
    Case("checkpoint-zz", resume_from_a_checkpoint_holding_zz, "traceback: orjson.JSONDecodeError"),
    Case(
        "checkpoint-list",
        resume_from_a_checkpoint_of_the_wrong_shape,
        "traceback: TypeError (list indices must be integers)",
    ),
    Case(
        "manifest-input-fields-5",
        run_beside_a_manifest_with_input_fields_5,
        "traceback: TypeError ('int' object is not iterable)",
    ),
    Case(
        "cache-row-list",
        run_from_a_cache_row_holding_a_list,
        "traceback: AttributeError ('list' object has no attribute 'items')",
    ),
    Case(
        "journal-id-2^65",
        resume_with_a_journal_id_of_2_to_the_65,
        "traceback: TypeError (Integer exceeds 64-bit range)",
    ),
    Case(
        "safetensors-header-list",
        run_a_soft_tensor_with_header_a_list,
        "traceback: AttributeError ('list' object has no attribute 'items')",
    ),
    Case(
        "bench-compare-bad-input",
        bench_compare_of_a_bad_results_file,
        "traceback: KeyError 'optimized'",
    ),
    Case(
        "soft-file-3-gb",
        run_a_3_gb_soft_tensor_file,
        "the 3 GB read whole (under a 1.5 GB limit: 'error: out of memory')",
    ),
    Case(
        "cache-20-mb-reply",
        run_from_a_cache_holding_a_20_mb_reply,
        "exit 0; predictions.jsonl 251,661,525 bytes: the cached 20 MB reply, uncut",
    ),
    Case(
        "soft-prompt-other-width",
        run_a_soft_prompt_of_another_width,
        "traceback: RuntimeError (Sizes of tensors must match)",
    ),
    Case(
        "pickle-weights",
        run_a_model_folder_with_pickle_weights,
        "traceback: UnpicklingError suggesting weights_only=False",
    ),
    Case(
        "optimize-seed-2^64",
        optimize_with_a_seed_of_2_to_the_64,
        "traceback: TypeError (Integer exceeds 64-bit range) writing run.json",
    ),
    Case(
        "bench-seed-2^64",
        bench_run_with_a_seed_of_2_to_the_64,
        "traceback: TypeError (Integer exceeds 64-bit range) in the search",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_strange_files(case: Case, world: World, capsys: pytest.CaptureFixture[str]) -> None:
    case.check(world, capsys)


def test_a_reply_stored_before_the_cap_is_returned_cut_and_flagged(tmp_path: Path) -> None:
    request = LLMRequest.from_prompt("hi")
    with Cache(tmp_path / "c.sqlite") as cache:
        cache.put("scripted", request, LLMResult("y" * 10_000))  # stored whole, no cap then
        inner = ScriptedRunner(default="n")
        again = CachedRunner(inner, cache, max_reply_bytes=100).generate_sync(request)
    assert (again.text, again.truncated, again.cached, inner.calls) == ("y" * 100, True, True, 0)
