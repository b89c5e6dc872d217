"""Templates render in a sandbox and name undefined variables."""

from __future__ import annotations

import time

import pytest

from sammo_core import DataTable, GenerateText, Output, ScriptedRunner, Template, TemplateError
from sammo_core.graph import compile
from sammo_core.serialization import dumps, loads
from sammo_core.templates import SandboxLimits, render_template


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


# -- the sandbox bounds what a template computes and emits -----------------------------------

BOMBS = [
    ("{{ 10**(10**9) }}", "'**' would make an integer of 3,321,928,095 bits"),
    (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "more than 1,000,000 operations",
    ),
    ("{{ 'x' * 10**10 }}", "'*' would make 10,000,000,000 characters"),
    ("{{ range(10**9)|list }}", "Range too big"),
    ("{% set s = 'x' * 900000 %}{{ s ~ s }}", "'~' would make"),
    ("{{ 'x'|center(10**9) }}", "width 1,000,000,000"),
    ("{{ 'x'.ljust(10**9) }}", "width 1,000,000,000"),
    ("{{ '{:>999999999}'.format(1) }}", "width 999999999"),
    ("{{ '%999999999d' % 1 }}", "width 999999999"),
    ("{% set s = 'x' * 100000 %}{{ s|replace('x', 'y' * 1000) }}", "100,000,000 characters"),
    ("{% set s = 'x' * 100000 %}{{ ([s] * 100)|join }}", "'*' would make 10,000,100"),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursed too deeply"),
    ("{% for i in range(100000) %}" + "x" * 200 + "{% endfor %}", "output is longer"),
]


@pytest.mark.parametrize(("text", "message"), BOMBS)
def test_a_template_bomb_stops_fast_with_an_error_naming_the_node(text: str, message: str) -> None:
    started = time.perf_counter()
    program = Output(GenerateText(Template(text, id="evil")))
    loaded = loads(dumps(program))  # loading compiles the template: it must not compute it
    assert time.perf_counter() - started < 2.0
    with pytest.raises(TemplateError, match=r"sandbox limit|recursed") as caught:
        compile(loaded).run_sync(DataTable(["x"]), ScriptedRunner(default="ok"))
    assert message in str(caught.value)
    assert str(caught.value).startswith("#evil Template(")
    assert time.perf_counter() - started < 10.0


def test_ordinary_templates_still_render() -> None:
    text = (
        "{{ 2 ** 100 }} {{ 'ab' * 3 }} {% for i in inputs %}{{ loop.index }}{% endfor %} "
        "{{ 'a' ~ 1 }} {{ '%5d' % 3 }} {{ 'x'|center(5) }}|"
    )
    assert run(text, ["q"]) == ["1267650600228229401496703205376 ababab 1 a1     3   x  |"]


def test_operation_limit_is_configurable() -> None:
    text = "{% for i in range(50) %}.{% endfor %}"
    assert render_template(text, {}) == "." * 50
    with pytest.raises(TemplateError, match="more than 10 operations"):
        render_template(text, {}, limits=SandboxLimits(max_operations=10))


def test_memory_error_while_rendering_is_a_template_error() -> None:
    class Exhausting:
        def __str__(self) -> str:
            raise MemoryError

    with pytest.raises(TemplateError, match="ran out of memory") as caught:
        render_template("{{ value }}", {"value": Exhausting()}, where="Template('v')")
    assert str(caught.value).startswith("Template('v'): ")
