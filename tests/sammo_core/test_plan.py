"""Render plans: prompts filled in from a plan are byte-identical to walking the tree."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renderers import DATA_FORMATS, SECTION_FORMATS
from sammo_core import (
    DataTable,
    Examples,
    GenerateText,
    InputData,
    MetaPrompt,
    Output,
    ScriptedRunner,
    Section,
    Template,
)
from sammo_core.context import RenderCache
from sammo_core.graph import compile
from sammo_core.plan import RenderPlan

# Texts that exercise every format's escaping and the normalization around a paragraph: blank
# and padded text, headings, underlines, section tags, quotes, JSON escapes, several lines.
_TRICKY = st.sampled_from(
    [
        "",
        "  ",
        " padded ",
        "# heading",
        "## two\n# one",
        "===",
        "---\ntext",
        '<section title="x">',
        "&lt;section",
        "a & b < c",
        'say "hi" \\ back',
        "tab\tand\nnewline\n\nparagraphs",
        "Input: 3",
        "Output [2]: x",
        "\\# escaped",
        "ünïcödé ✓",
    ]
)
_TEXT = st.one_of(_TRICKY, st.text(max_size=20))
_POOL = DataTable(["the sky is blue", "# fish fly", "water is wet  "], ["yes", "no", "yes"])


@st.composite
def programs(draw: st.DrawFn) -> Output:
    """A program with static sections, input-dependent parts and one of every format."""
    dynamic = [
        InputData(
            data_format=draw(st.sampled_from([None, *DATA_FORMATS])), hint=draw(st.booleans())
        ),
        Examples(_POOL, n=2, selection="knn"),
        Template("Q: {{ input | default('') }}!"),
        Template("{{ inputs | join(' ') }}"),  # blank for blank inputs: the tree renders it
    ]
    children: list[object] = []
    for _ in range(draw(st.integers(0, 3))):
        title = draw(st.one_of(st.none(), _TEXT))
        children.append(Section(title, draw(st.lists(_TEXT, max_size=2))))
    for node in draw(st.lists(st.sampled_from(range(4)), min_size=1, max_size=2, unique=True)):
        part = dynamic[node]
        if draw(st.booleans()):
            part = Section(draw(_TEXT), [draw(_TEXT), part, draw(_TEXT)])
        children.insert(draw(st.integers(0, len(children))), part)
    if draw(st.booleans()):
        children.append(Examples(_POOL, n=1))  # static
    prompt = MetaPrompt(
        children,
        section_format=draw(st.sampled_from(sorted(SECTION_FORMATS))),
        data_format=draw(st.sampled_from(sorted(DATA_FORMATS))),
    )
    system = draw(st.sampled_from([None, "Be brief.", Template("Sys {{ input | default('') }}")]))
    return Output(GenerateText(prompt, system=system), inputs_per_call=draw(st.integers(1, 3)))


def _prompts(program: Output, data: DataTable, plan: bool) -> list[tuple[str, ...]]:
    runner = ScriptedRunner(default="x")
    compile(program).run_sync(data, runner, plan=plan)
    return [tuple(m.content for m in r.messages) for r in runner.requests]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.lists(_TEXT, min_size=1, max_size=5))
def test_plan_renders_the_same_bytes_as_the_tree(program: Output, inputs: list[str]) -> None:
    data = DataTable(inputs)
    assert _prompts(program, data, plan=True) == _prompts(program, data, plan=False)


def _program() -> Output:
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", ["Answer yes or no."]),
                    Section("Rules", ["Be brief."]),
                    Section("Input", [InputData()]),
                ]
            ),
            system="You are terse.",
        )
    )


def test_a_run_renders_from_a_plan_and_counts_renders_per_call() -> None:
    graph = compile(_program())
    plan = asyncio.run(graph.render_plan())
    assert isinstance(plan, RenderPlan)
    assert repr(plan) == "RenderPlan(messages=2, slots=1)"
    runner = ScriptedRunner(default="yes")
    graph.run_sync(DataTable(["# q1", "", "q3"]), runner)
    assert runner.prompts[1].endswith("# Input\n\nInput:\n\nOutput:")
    assert runner.requests[0].messages[1].content.endswith("# Input\n\nInput: # q1\n\nOutput:")
    assert graph.render_counts["InputData"] == 3
    assert graph.render_counts["Section"] == 2 + 3  # static ones once, the input one per call


def test_a_blank_slot_is_rendered_by_walking_the_tree() -> None:
    # markdown drops a blank paragraph, and the section's layout with it
    program = Output(GenerateText(MetaPrompt([Section("Q", [Template("{{ input }}")])])))
    runner = ScriptedRunner(default="yes")
    compile(program).run_sync(DataTable(["#x", " ", "y"]), runner)
    assert runner.prompts == ["# Q\n\n#x", "# Q", "# Q\n\ny"]


def test_nested_calls_are_rendered_by_walking_the_tree() -> None:
    inner = GenerateText(MetaPrompt([Section("Rephrase", [InputData()])]))
    program = Output(GenerateText(MetaPrompt([Section("Draft", [inner])])))
    graph = compile(program)
    assert asyncio.run(graph.render_plan()) is None
    runner = ScriptedRunner(default="ok")
    results = graph.run_sync(DataTable(["a", "b"]), runner)
    assert results.predictions == ["ok", "ok"] and runner.calls == 4
    assert results[0].calls == 2


def test_a_render_cache_renders_only_the_changed_section_of_a_child() -> None:
    cache = RenderCache()
    parent = compile(_program())
    parent.run_sync(DataTable(["q"]), ScriptedRunner(default="yes"), render_cache=cache)
    child_program = _program().clone(deep=True)
    child_program.rebind({"child.prompt.children[1].children[0]": "Be very brief."})
    child = compile(child_program)
    runner = ScriptedRunner(default="yes")
    child.run_sync(DataTable(["q"]), runner, render_cache=cache)
    assert child.renders("child.prompt.children[0]") == 0  # Task: from the parent's run
    assert child.renders("child.prompt.children[1]") == 1  # Rules changed: rendered
    assert "Be very brief." in runner.prompts[0]


def test_planned_requests_equal_the_trees_in_every_field() -> None:
    # A planned request is the planning render's request with other messages: temperature,
    # max_tokens, seed, stop and mode come through as they are, and the requests compare,
    # hash and print the same as those the tree builds.
    data = DataTable(["2+2", "3+3", "  padded  "])
    for params in (
        {},
        {"temperature": 0.7, "max_tokens": 5, "seed": 3},
        {"mode": "completion", "stop": ["\n", "Q:"]},
    ):
        program = Output(
            GenerateText(
                MetaPrompt([Section("Task", ["Add."]), Section("Q", [InputData()])]),
                system="Be brief.",
                **params,
            )
        )
        planned, walked = ScriptedRunner(default="4"), ScriptedRunner(default="4")
        compile(program).run_sync(data, planned, plan=True)
        compile(program).run_sync(data, walked, plan=False)
        assert planned.requests == walked.requests
        assert [hash(r) for r in planned.requests] == [hash(r) for r in walked.requests]
        assert [repr(r) for r in planned.requests] == [repr(r) for r in walked.requests]
