"""Templates render in a sandbox and name undefined variables."""

from __future__ import annotations

import pytest

from sammo_core import DataTable, GenerateText, Output, ScriptedRunner, Template, TemplateError
from sammo_core.graph import compile


def run(
    template: str, inputs: list[object], constants: dict[str, object] | None = None
) -> list[str]:
    runner = ScriptedRunner(default="ok")
    program = Output(GenerateText(Template(template)))
    compile(program).run_sync(DataTable(inputs, constants=constants), runner)
    return runner.prompts


def test_renders_input_fields_and_constants() -> None:
    prompts = run(
        "Q: {{ input.question }} ({{ constants.style }})",
        [{"question": "Why?"}],
        {"style": "terse"},
    )
    assert prompts == ["Q: Why? (terse)"]


def test_undefined_variable_is_named() -> None:
    with pytest.raises(TemplateError, match=r"'questoin' is undefined"):
        run("Q: {{ questoin }}", ["x"])


def test_syntax_error_at_construction() -> None:
    with pytest.raises(TemplateError, match="line 1"):
        Template("{% if %}")


def test_sandbox_blocks_attribute_escape() -> None:
    with pytest.raises(TemplateError, match="unsafe"):
        run("{{ input.__class__.__mro__[1].__subclasses__() }}", ["x"])
