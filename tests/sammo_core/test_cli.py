"""The CLI shell: plugins, help, exit codes."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

from sammo_core import cli


def test_help_lists_the_commands_and_loads_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from sammo_core.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('openai', 'llama_cpp', 'matplotlib', 'httpx') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    for command in ("run", "optimize", "export", "data"):
        assert command in out
    assert "HEAVY []" in out


def test_a_broken_plugin_is_reported_and_skipped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = EntryPoint("run", "sammo_core.cli_run:register", "sammo_core.commands")
    broken = EntryPoint("broken", "no_such_module:register", "sammo_core.commands")
    monkeypatch.setattr(cli, "entry_points", lambda group: [broken, good])
    parser = cli.build_parser()
    assert "run" in parser.format_help()
    assert "plugin 'broken'" in capsys.readouterr().err


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
