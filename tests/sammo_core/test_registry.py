"""Extension points as entry points: a plugin package installed beside sammo-core adds an
operator group that the command line offers and uses, without touching this repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from mutators.groups import OPERATOR_GROUPS
from sammo_core.errors import ConfigError
from sammo_core.testing.chat_server import ChatServer
from sammo_core.testing.synthetic import items
from tests.search.test_cli_optimize import PROGRAM, reply

PLUGIN = {
    "pyproject.toml": """\
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "sammo-polite"
        version = "0.1"

        [project.entry-points."sammo_core.operators"]
        polite = "sammo_polite:operators"
        structure = "sammo_polite:operators"
        broken = "sammo_polite:missing"

        [project.entry-points."sammo_core.section_formats"]
        shout = "sammo_polite:ShoutFormat"

        [project.entry-points."sammo_core.runners"]
        always = "sammo_polite:always"

        [project.entry-points."sammo_core.objectives"]
        answer_length = "sammo_polite:AnswerLength"

        [project.entry-points."sammo_core.strategies"]
        greedy = "sammo_polite:greedy"

        [project.entry-points."sammo_core.suites"]
        tiny = "sammo_polite:TINY"
        """,
    "sammo_polite/__init__.py": """\
        from mutators.structure import DropSection
        from renderers.sections import MarkdownFormat
        from sammo_core.runners import ScriptedRunner


        class PoliteDrop(DropSection):
            \"\"\"A third party's operator (drops sections, under its own name).\"\"\"


        def operators():
            return [PoliteDrop()]


        class ShoutFormat(MarkdownFormat):
            \"\"\"A third party's section format: markdown, shouted.\"\"\"

            name = "shout"

            def render(self, blocks):
                return super().render(blocks).upper()


        import dataclasses

        from benchmarks.suites import Suite
        from sammo_core.objectives import FunctionObjective
        from search.strategies import StrategySettings, beam


        def AnswerLength():
            return FunctionObjective(lambda prediction, gold: len(str(prediction)), "answer_length")


        class _Greedy:
            needs_mutator = True

            def __call__(self, mutator, settings, **common):
                return beam(mutator, dataclasses.replace(settings, width=1), **common)


        greedy = _Greedy()
        TINY = Suite("tiny", "a plugin's suite of one task", lambda data_dir: ["t"], None)


        def always(name, options):
            \"\"\"A third party's model scheme: --model always:WORD answers WORD.\"\"\"
            return ScriptedRunner(default=name, model=f"always:{name}")
        """,
}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin package installed into a folder of its own, laid out as ``pip install
    --target`` lays it out (the package and its ``.dist-info`` with the entry points); built
    here rather than by pip, which needs the ``wheel`` package a fresh venv may lack."""
    target = tmp_path_factory.mktemp("plugin") / "site"
    project = tomllib.loads(textwrap.dedent(PLUGIN["pyproject.toml"]))["project"]
    for name, text in PLUGIN.items():
        if name != "pyproject.toml":
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_text(textwrap.dedent(text))
    info = target / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    (info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) + "\n"
            for group, entries in project["entry-points"].items()
        )
    )
    (info / "INSTALLER").write_text("sammo-core tests\n")
    return target


def cli(plugin: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([str(plugin), os.environ.get("PYTHONPATH", ""), os.getcwd()])
    env = {**os.environ, "PYTHONPATH": path, "OPENAI_API_KEY": "sk-loopback"}
    command = [sys.executable, "-m", "sammo_core.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def test_the_built_in_groups_come_from_the_entry_points() -> None:
    assert {"structure", "examples", "format", "scoring"} <= set(OPERATOR_GROUPS)
    assert OPERATOR_GROUPS.origin("structure") == "sammo-core"
    with pytest.raises(ConfigError, match="unknown operator group 'polite'; use: ape, apo"):
        OPERATOR_GROUPS.pick("polite")


def test_a_plugin_operator_is_offered_and_used(plugin: Path, tmp_path: Path) -> None:
    helped = cli(plugin, "optimize", "--help")
    assert helped.returncode == 0
    assert "polite (PoliteDrop)" in " ".join(helped.stdout.split())
    # It may not replace a built-in: the second 'structure' is skipped with a warning.
    assert "operator group 'structure' of sammo-polite is skipped" in helped.stderr

    program, data = tmp_path / "program.py", tmp_path / "data.jsonl"
    program.write_text(PROGRAM)
    items(40).save(data)
    with ChatServer(reply=reply) as server:
        args = ["optimize", str(program), "--data", str(data), "--model", "loopback"]
        args += ["--base-url", server.base_url, "--budget", "6", "--operators", "polite"]
        done = cli(plugin, *args, "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    trace = [json.loads(x) for x in (tmp_path / "run" / "trace.jsonl").read_text().splitlines()]
    assert {c["operator"] for c in trace[1:]} == {"PoliteDrop"}


def test_a_plugin_that_fails_to_load_is_one_line(plugin: Path, tmp_path: Path) -> None:
    program, data = tmp_path / "program.py", tmp_path / "data.jsonl"
    program.write_text(PROGRAM)
    items(20).save(data)
    args = ["optimize", str(program), "--data", str(data), "--model", "loopback"]
    args += ["--base-url", "http://127.0.0.1:9/v1", "--budget", "4", "--operators", "broken"]
    done = cli(plugin, *args, "--out", str(tmp_path / "run"))
    assert done.returncode == 1, done.stderr  # as any other bad setting found while running
    assert "Traceback" not in done.stderr
    assert done.stderr.count("'broken'") == 2  # the help's warning, once; then the error
    assert "operator group 'broken' (sammo_polite:missing, from sammo-polite) failed to load" in (
        done.stderr
    )


def test_a_plugin_section_format_renders_a_program(plugin: Path) -> None:
    script = (
        "from sammo_core import MetaPrompt, Section, InputData\n"
        "from sammo_core.components import Output, GenerateText\n"
        "p = MetaPrompt([Section('Task', ['say hi']), InputData()], section_format='shout')\n"
        "from renderers import SECTION_FORMATS\n"
        "print(sorted(SECTION_FORMATS))\n"
        "from sammo_core.testing.synthetic import items\n"
        "from sammo_core.runners import ScriptedRunner\n"
        "r = ScriptedRunner(default='ok')\n"
        "from sammo_core.graph import compile\n"
        "compile(Output(GenerateText(p))).run_sync(items(1), r)\n"
        "print(r.prompts[0])\n"
    )
    path = os.pathsep.join([str(plugin), os.environ.get("PYTHONPATH", ""), os.getcwd()])
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "['json', 'markdown', 'plain', 'shout', 'xml']" in done.stdout
    assert "# TASK\n\nSAY HI" in done.stdout


def test_a_plugin_model_scheme_runs_a_program(plugin: Path, tmp_path: Path) -> None:
    program, data = tmp_path / "program.py", tmp_path / "data.jsonl"
    program.write_text(PROGRAM)
    items(10).save(data)  # half "yes", half "no"
    out = tmp_path / "out"
    done = cli(
        plugin, "run", str(program), "--data", str(data), "--model", "always:yes", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["raw_output"] for r in rows] == ["yes"] * 10
    gold = [r["output"] for r in rows]
    accuracy = json.loads((out / "results.json").read_text())["scores"]["accuracy"]["value"]
    assert accuracy == gold.count("yes") / 10


def test_plugin_objectives_strategies_and_suites_are_offered(plugin: Path, tmp_path: Path) -> None:
    helped = " ".join(cli(plugin, "optimize", "--help").stdout.split())
    assert "greedy" in helped and "answer_length" in helped
    listed = cli(plugin, "bench", "list")
    assert listed.returncode == 0, listed.stderr
    assert "tiny" in listed.stdout and "a plugin's suite" in " ".join(listed.stdout.split())

    program, data = tmp_path / "program.py", tmp_path / "data.jsonl"
    program.write_text(PROGRAM)
    items(6).save(data)
    args = ["run", str(program), "--data", str(data), "--model", "always:yes"]
    done = cli(plugin, *args, "--objective", "answer_length", "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    scores = json.loads((tmp_path / "o" / "results.json").read_text())["scores"]
    assert scores["answer_length"]["value"] == 3.0  # "yes" on every row
