"""The README's commands and Python quickstart work as written.

The shell blocks after the two setup blocks run in order, on a fresh clone's layout: the
examples folder and nothing else, no ``../shared`` beside it, no data folder set, a home folder
of its own. ``sammo-core data fetch all`` downloads from a loopback "upstream" that serves the
shared copies under their upstream paths (the shared SAMMO files are trimmed, so the test passes
a registry with their hashes; the shipped registry holds the real upstream figures, checked in
``tests/benchmarks/test_fetch.py``). In the fast suite a loopback model stands in for
``--model local`` and the instruments run at their smallest sizes; the slow test runs every
command as written on the embedded model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.server
import importlib.util
import json
import os
import re
import shlex
import shutil
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from benchmarks import datasets, fetch
from benchmarks.harness import (
    cache_speed,
    cli_speed,
    peer_compare,
    peer_env,
    perf,
    priors_compare,
    scored_compare,
    throughput,
)
from sammo_core import cli_cache
from sammo_core.cli import main
from sammo_core.runners.cache_store import is_postgres_url
from sammo_core.testing.chat_server import ChatServer
from sammo_core.testing.postgres_server import PostgresServer

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
DATA = Path(os.environ.get("SAMMO_CORE_DATA_DIR") or ROOT.parent / "shared" / "benchmarks")
GITHUB = "https://raw.githubusercontent.com"
# Fast-suite stand-ins: the loopback model for any --model, the instruments at their smallest.
#: The scored comparison's size in tests (as written it runs for about an hour).
SCORED_TINY = ["--tasks", "implicatures", "--candidates", "2", "--val-rows", "4",
               "--test-rows", "6"]  # fmt: skip
SMALL = {
    "benchmarks.harness.perf": ["--rows", "20", "--profile-rows", "20", "--concurrency", "1,2",
                        "--waves", "1", "--no-prefix", "--server", "thread"],
    "benchmarks.harness.throughput": ["--rows", "8", "--concurrency", "4", "--server", "thread"],
    # Our side only, against the loopback model (--model); the peers' rows say they are absent.
    "benchmarks.harness.peer_compare": ["--no-setup", "--tasks", "implicatures", "--val-rows", "2",
                                "--test-rows", "2", "--budget", "2"],
    "benchmarks.harness.scored_compare": SCORED_TINY,
    "benchmarks.harness.cache_speed": ["--n", "40", "--writers", "2"],
    "benchmarks.harness.cli_speed": ["--candidates", "4", "--optimize-rows", "30", "--rows", "40",
                                     "--latency", "0.005"],
    "benchmarks.harness.priors_compare": ["--tasks", "implicatures,navigate", "--learn-seeds", "0",
                                          "--seeds", "10", "--budget", "2", "--learn-budget", "2",
                                          "--max-rows", "4"],
}  # fmt: skip
#: The slow test's size for the peer comparison (as written it runs for hours), with the peers'
#: virtualenvs where --setup keeps them outside the test's home folder.
PEERS_TINY = ["--tasks", "implicatures", "--val-rows", "4", "--test-rows", "4", "--budget", "3",
              "--peers-dir", str(peer_env.default_peers_dir())]  # fmt: skip


def shell_commands() -> list[list[str]]:
    """Every command of the README's shell blocks after the two setup blocks, in order."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.DOTALL)[2:]
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


def test_readme_opens_with_the_two_setup_commands() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.DOTALL)
    main_job, tests = blocks[0].strip(), blocks[1].strip()
    assert "sammo-core run" in main_job and "--model local" in main_job
    assert tests.endswith('pip install -e ".[dev]" && pytest')
    ci = (README.parent / ".ci" / "run").read_text()
    assert 'pip install -q -e ".[dev]"' in ci and "\npytest\n" in ci


def test_quickstart_runs_in_an_empty_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)[0]
    monkeypatch.chdir(tmp_path)  # nothing here: the quickstart brings its own data
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "label_accuracy 0.750 [0.301, 0.954] (n=4)" in out  # as the comment says
    assert "# Task" in out and "Classify the sentiment" in out


def test_search_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)[1]
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "accuracy 0.500" in out and "-> accuracy 1.000" in out
    assert "drop section 'Style'" in out


# -- the shell blocks, in order ------------------------------------------------------------


def upstream(root: Path, base_url: str) -> dict[str, tuple[fetch.RemoteFile, ...]]:
    """Serve the shared copies under their upstream paths below ``root``; their registry."""
    registry = {}
    for name, files in fetch.SOURCES.items():
        entries = []
        for remote in files:
            body = (DATA / name / remote.relative_path).read_bytes()
            path = remote.url.removeprefix(GITHUB + "/")
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(body)
            entries.append(
                dataclasses.replace(
                    remote,
                    url=f"{base_url}/{path}",
                    sha256=hashlib.sha256(body).hexdigest(),
                    size=len(body),
                )
            )
        registry[name] = tuple(entries)
    return registry


@pytest.fixture
def fresh_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A clone's layout in a folder of its own: the examples, no ../shared, no data folder."""
    if not (DATA / "sammo").is_dir():
        pytest.skip(f"the shared benchmark copies to serve are not at {DATA}")
    clone = tmp_path / "clone"
    shutil.copytree(ROOT / "sammo_core" / "examples", clone / "sammo_core" / "examples")
    monkeypatch.chdir(clone)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SAMMO_CORE_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "CHECKOUT_DATA_DIR", tmp_path / "shared" / "benchmarks")
    requested: list[str] = []
    with serve_files(tmp_path / "upstream", requested) as base_url:
        monkeypatch.setattr(fetch, "SOURCES", upstream(tmp_path / "upstream", base_url))
        yield clone
    fetched = tmp_path / "home" / ".cache" / "sammo-core" / "data"
    assert (fetched / "sammo" / "rag_semparse_qids.json").is_file()
    assert (
        "/microsoft/sammo/2137815ba9a6fb8c86e5c18cc47ecda8ad8f5e98/examples/"
        "paper_instruction_tuning/data_splits.json"
    ) in requested


@contextlib.contextmanager
def serve_files(root: Path, requested: list[str]) -> Iterator[str]:
    """A loopback HTTP server for the files below ``root``; yields its base URL."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self) -> None:
            requested.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def needs_transformers(words: list[str]) -> bool:
    """A command of the soft-prompt section: it runs a transformers model (``hf:...``) or
    exports what such a run wrote."""
    return any(w.startswith("hf:") or "yesno-soft" in w for w in words)


HAS_TORCH = importlib.util.find_spec("torch") is not None


def needs_postgres(words: list[str]) -> bool:
    """A command of the PostgreSQL cache section: it names a database, or measures one."""
    return any(is_postgres_url(w) for w in words) or "benchmarks.harness.cache_speed" in words


def on_test_database(
    words: list[str], server: PostgresServer, stand_ins: dict[str, list[str]]
) -> list[str]:
    """``words`` with the README's URL replaced by a database of the test's server (made on
    first use), whose URL the benchmark gets too."""
    if "postgres_url" not in stand_ins:
        url = server.create_database(f"readme_{uuid.uuid4().hex[:12]}")
        stand_ins["postgres_url"] = [url]
        speed = stand_ins.get("benchmarks.harness.cache_speed", [])
        stand_ins["benchmarks.harness.cache_speed"] = [*speed, "--url", url]
    url = stand_ins["postgres_url"][0]
    return [url if is_postgres_url(w) else w for w in words]


def on_model(part: str, renamed: Mapping[str, str]) -> str:
    """One part of an --objective, its ``@MODEL`` (if any) renamed to the model's stand-in."""
    name, at, model = part.rpartition("@")
    return f"{name}@{renamed.get(model, model)}" if at else part


def execute(words: list[str], stand_ins: Mapping[str, list[str]]) -> int:
    """Run one README command in this process, as its console script or module would."""
    if words[:2] == ["sammo-core", "cache"]:  # plugin-free: the same handler the entry point names
        return cli_cache.main(words[2:])
    if words[0] == "sammo-core":
        args = words[1:]
        if "--model" in args and any(a.startswith("hf:") for a in args):
            if "hf_model" in stand_ins:
                i = args.index("--model")
                args[i : i + 2] = stand_ins["hf_model"]
        elif "--model" in args and "model" in stand_ins:
            i = args.index("--model")
            renamed = {args[i + 1]: stand_ins["model"][1]}
            args[i : i + 2] = stand_ins["model"]
            # A second --model (one program for several models): another name, same server.
            for n, j in enumerate([j for j, a in enumerate(args) if a == "--model"][1:], 2):
                renamed[args[j + 1]] = args[j + 1] = f"{stand_ins['model'][1]}-{n}"
            if "--objective" in args:  # NAME@MODEL names the stand-in model
                k = args.index("--objective") + 1
                args[k] = ",".join(on_model(part, renamed) for part in args[k].split(","))
        return main(args)
    assert words[:2] == ["python", "-m"], words
    modules = {
        "benchmarks.harness.perf": perf,
        "benchmarks.harness.throughput": throughput,
        "benchmarks.harness.cache_speed": cache_speed,
        "benchmarks.harness.cli_speed": cli_speed,
        "benchmarks.harness.priors_compare": priors_compare,
    }
    if words[2] in ("benchmarks.harness.peer_compare", "benchmarks.harness.scored_compare"):
        # The loopback model through --base-url and --model, in place of Gemma.
        model = stand_ins.get("model", [])
        compare = peer_compare if words[2] == "benchmarks.harness.peer_compare" else scored_compare
        return compare.main([*words[3:], *stand_ins.get(words[2], []), *model])
    return int(modules[words[2]].main([*words[3:], *stand_ins.get(words[2], [])]))


class YesNo:
    """A loopback model that answers the example's questions right (and Yes to the rest)."""

    def __init__(self) -> None:
        lines = (ROOT / "sammo_core" / "examples" / "yesno.jsonl").read_text().splitlines()
        self.gold = {r["input"]: r["output"] for r in map(json.loads, lines)}

    def __call__(self, request: Mapping[str, Any]) -> str:
        # A chat request, or a completion one (base-model prompts, as the peer comparison's).
        prompt = request["messages"][-1]["content"] if "messages" in request else request["prompt"]
        found = [(prompt.rfind(q), a) for q, a in self.gold.items() if q in prompt]
        return max(found)[1] if found else "Yes"


def test_every_readme_command_runs_in_order(
    fresh_clone: Path, capsys: pytest.CaptureFixture[str], postgres: PostgresServer | None
) -> None:
    commands = shell_commands()
    assert [" ".join(c[:3]) for c in commands][:3] == [
        "sammo-core optimize sammo_core/examples/yesno.py",
        "sammo-core export runs/yesno",
        "sammo-core run runs/yesno/export/program.json",
    ]
    stand_ins: dict[str, list[str]] = dict(SMALL)
    if HAS_TORCH:  # a tiny random Gemma 3 folder stands in for hf:gemma3
        from sammo_core.testing.tiny_hf import tiny_hf_folder

        folder = tiny_hf_folder(fresh_clone.parent / "tiny-hf")
        stand_ins["hf_model"] = ["--model", f"hf:{folder}"]
    with ChatServer(reply=YesNo()) as server:
        stand_ins["model"] = ["--model", "loopback", "--base-url", server.base_url]
        for words in commands:
            if needs_transformers(words) and not HAS_TORCH:
                continue  # the soft-prompt commands need the [soft] extra (the slow test has it)
            if needs_postgres(words):
                if postgres is None:
                    continue  # no server binaries here (.ci/run installs them and requires it)
                words = on_test_database(words, postgres, stand_ins)
            code = execute(words, stand_ins)
            printed = capsys.readouterr()
            assert code == 0, f"{shlex.join(words)} exited {code}: {printed.err[-2000:]}"
            if words[:2] == ["sammo-core", "run"]:
                assert "label_accuracy" in printed.out  # the run's objective travelled along
            if "--compare" in words:  # both right on every row: no difference, nothing to test
                assert "PROGRAM - OTHER on the same 20 rows" in printed.out
                same = "+0.000 [+0.000, +0.000] (n=20; 0 rows better, 0 worse; McNemar p=1.000)"
                assert same in printed.out
            if words[:3] == ["python", "-m", "benchmarks.harness.peer_compare"]:
                assert "| implicatures | sammo-core |" in printed.out
                assert printed.out.count("skipped: no virtualenv") == 2  # SAMMO's and DSPy's
            if words[:3] == ["sammo-core", "cache", "copy"]:
                assert printed.out.startswith("copied ")
                assert printed.out.rstrip().endswith("it holds 20 rows")
            if "--replay" in words and "--cache" in words:
                assert "cache hits" in printed.out
            if words[1:3] == ["bench", "list"]:
                assert "implicatures" in printed.out and "data it needs" in printed.out
    export = fresh_clone / "runs" / "yesno" / "export"
    names = sorted(p.name for p in export.iterdir())
    assert names == ["manifest-json.json", "manifest-markdown.json", "program.json", "prompt.md"]
    manifest = json.loads((export / "manifest-json.json").read_text())
    assert manifest["objective"] == "label_accuracy:yes,no,mean_prompt_tokens"
    assert (fresh_clone / "runs" / "quick-evolution" / "results.json").is_file()
    if HAS_TORCH:
        adapter = fresh_clone / "runs" / "yesno-soft" / "export" / "adapter"
        assert (adapter / "adapter_config.json").is_file()


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason='needs the embedded runner: pip install -e ".[local]"',
)
def test_every_readme_command_runs_as_written_on_the_embedded_model(
    fresh_clone: Path, postgres: PostgresServer | None
) -> None:
    tiny = {
        "benchmarks.harness.peer_compare": PEERS_TINY,
        "benchmarks.harness.scored_compare": SCORED_TINY,
        # Its own loopback model, not the embedded one: the fast suite's size says enough.
        "benchmarks.harness.priors_compare": SMALL["benchmarks.harness.priors_compare"],
    }
    for words in shell_commands():
        if needs_transformers(words) and not HAS_TORCH:
            continue  # the soft-prompt commands need the [soft] extra, which CI installs
        if needs_postgres(words):
            if postgres is None:
                continue
            words = on_test_database(words, postgres, tiny)
        assert execute(words, tiny) == 0, shlex.join(words)
    assert (fresh_clone / "runs" / "yesno" / "export" / "program.json").is_file()


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason='needs the embedded runner: pip install -e ".[local]"',
)
def test_the_main_job_is_well_above_the_majority_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's first command, as written: scored answers on Gemma 3 beat the majority
    rate by far, and the report says how answers were read."""
    block = re.findall(r"```bash\n(.*?)```", README.read_text(), re.DOTALL)[0]
    run = block[block.index("sammo-core run") :].strip()
    words = shlex.split(run)
    assert main([*words[1:], "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    accuracy = results["scores"]["label_accuracy"]
    assert results["scoring"].startswith("label likelihood")
    assert accuracy["ci_low"] > results["majority_rate"] == 0.5
