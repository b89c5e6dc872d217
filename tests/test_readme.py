"""The README's commands and Python quickstart work as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"
REVIEWS = [
    '{"input": "A wonderful, moving story", "output": "positive"}',
    '{"input": "Great acting and a clever plot", "output": "positive"}',
    '{"input": "Boring from start to end", "output": "negative"}',
    '{"input": "Not great, not terrible", "output": "negative"}',
]


def test_readme_opens_with_the_two_setup_commands() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.DOTALL)
    main_job, tests = blocks[0].strip(), blocks[1].strip()
    assert "sammo-core run" in main_job and "--model local" in main_job
    assert tests.endswith('pip install -e ".[dev]" && pytest')
    ci = (README.parent / ".ci" / "run").read_text()
    assert 'pip install -q -e ".[dev]"' in ci and "\npytest\n" in ci


def test_quickstart_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)[0]
    (tmp_path / "reviews.jsonl").write_text("\n".join(REVIEWS) + "\n")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "label_accuracy 0.750" in out
    assert "# Task" in out and "Classify the sentiment" in out


def test_search_example_runs(capsys) -> None:  # type: ignore[no-untyped-def]
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)[1]
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "accuracy 0.500" in out and "-> accuracy 1.000" in out
    assert "drop section 'Style'" in out
