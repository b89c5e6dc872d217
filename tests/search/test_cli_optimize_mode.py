"""``optimize --mode completion --stop ...``: every candidate prompts the base model in completion
mode, and the exported winner carries its mode and stops, so ``run`` on it prompts the same way."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sammo_core import loads
from sammo_core.cli import main
from sammo_core.graph import compile
from sammo_core.runners import LLMRequest, Message
from sammo_core.testing.chat_server import ChatServer
from sammo_core.testing.synthetic import answer, items

PROGRAM = """\
from sammo_core.testing.synthetic import start_program

program = start_program()
OBJECTIVE = "accuracy"
"""


def reply(body: Mapping[str, Any]) -> str:
    """The synthetic model, reading a completion prompt as one user message."""
    if "prompt" in body:
        return answer(LLMRequest(messages=(Message("user", body["prompt"]),)))
    messages = tuple(Message(m["role"], m["content"]) for m in body["messages"])
    return answer(LLMRequest(messages=messages))


def test_optimize_with_mode_completion_exports_a_completion_program(tmp_path: Path) -> None:
    program, data = tmp_path / "program.py", tmp_path / "data.jsonl"
    program.write_text(PROGRAM)
    items(24).save(data)
    run_dir, export_dir = tmp_path / "run", tmp_path / "export"
    with ChatServer(reply=reply) as server:
        args = ["optimize", str(program), "--data", str(data), "--model", "loopback"]
        args += ["--base-url", server.base_url, "--budget", "6", "--width", "2", "--depth", "2"]
        args += ["--operators", "structure", "--out", str(run_dir), "--timeout", "5"]
        assert main([*args, "--mode", "completion", "--stop", "\\n\\n"]) == 0
        assert {record.path for record in server.records} == {"/v1/completions"}
        assert main(["export", str(run_dir), "--format", "json", "--out", str(export_dir)]) == 0

        exported = loads((export_dir / "program.json").read_bytes())
        assert exported.child.mode == "completion" and list(exported.child.stop) == ["\n\n"]
        manifest = json.loads((export_dir / "manifest-json.json").read_text())
        assert manifest["program_hash"] == compile(exported).hash

        # The export runs as it was optimized, with no flags: completion mode, same stops.
        server.reset()
        rerun = ["run", str(export_dir / "program.json"), "--data", str(data)]
        rerun += ["--model", "loopback", "--base-url", server.base_url, "--limit", "3"]
        assert main(rerun) == 0
        assert {record.path for record in server.records} == {"/v1/completions"}
