"""Files written by an earlier release still load: programs (with a soft prompt's tensor files
and a search space) and an export, kept as they were written in tests/fixtures/release-0.1.0
(module-path type names, before the stable names)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sammo_core.cli import main
from sammo_core.components import Component
from sammo_core.export import Manifest
from sammo_core.graph import compile
from sammo_core.serialization import dumps, load, loads
from sammo_core.testing.chat_server import ChatServer
from sammo_core.testing.synthetic import items
from tests.search.test_cli_optimize import reply

RELEASE = Path(__file__).parents[1] / "fixtures" / "release-0.1.0"
PROGRAMS = sorted((RELEASE / "programs").glob("*.json"))


def test_the_fixtures_are_there() -> None:
    assert {p.stem for p in PROGRAMS} >= {"sentiment", "soft", "space", "template", "scored"}
    assert all('"sammo_core.components.' in p.read_text() for p in PROGRAMS)  # the old names


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_a_saved_program_loads_and_saves_again(path: Path) -> None:
    program = load(path)
    assert isinstance(program, Component)
    # Written again (with today's names), it reads back as the same program.
    assert loads(dumps(program)) == program


def test_an_export_still_loads_and_runs(tmp_path: Path) -> None:
    export = RELEASE / "export"
    program = load(export / "program.json")
    for name in ("manifest-json.json", "manifest-markdown.json"):
        manifest = Manifest.from_dict(json.loads((export / name).read_text()))
        assert manifest.program_hash == compile(program).hash  # the same program, exactly
    data = tmp_path / "data.jsonl"
    items(6).save(data)
    with ChatServer(reply=reply) as server:
        args = ["run", str(export / "program.json"), "--data", str(data), "--model", "loopback"]
        assert main([*args, "--base-url", server.base_url]) == 0


def test_programs_are_saved_with_stable_type_names() -> None:
    text = dumps(load(RELEASE / "programs" / "synthetic_start.json"))
    assert '"_type": "sammo_core.Output"' in text and '"_type": "sammo_core.Section"' in text
    assert '"_type": "sammo_core.DataTable"' in text
    assert "sammo_core.components." not in text and "sammo_core.data." not in text


def test_a_subclass_does_not_take_the_stable_name() -> None:
    import pyglove as pg

    from sammo_core.data import DataTable

    class Mine(DataTable):
        pass

    assert pg.JSONConvertible.class_from_typename("sammo_core.DataTable") is DataTable
    assert Mine.__serialization_key__.endswith(".Mine")


@pytest.mark.parametrize("path", [p for p in PROGRAMS if p.stem != "soft"], ids=lambda p: p.stem)
def test_the_legacy_form_is_what_the_earlier_release_wrote(path: Path) -> None:
    # A search's checkpoint fingerprint hashes this form, so runs started before the stable
    # names resume (the soft program's file holds its tensor by reference, not inline).
    from sammo_core.serialization import legacy_json

    assert legacy_json(load(path)) == json.loads(path.read_text())
