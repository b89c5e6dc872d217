"""Every node type renders what a user expects, and bad options fail with clear errors."""

from __future__ import annotations

import pytest

from sammo_core import (
    ConfigError,
    DataTable,
    Examples,
    GenerateText,
    InputData,
    MetaPrompt,
    Output,
    Paragraph,
    ScriptedRunner,
    Section,
    Template,
    compile,
)

POOL = DataTable(
    ["paris is in france", "rome is in italy", "fish live in water", "cats chase mice"],
    ["yes", "yes", "no", "no"],
)


def prompts(program: Output, inputs: list[object], reply: str = "ok") -> ScriptedRunner:
    runner = ScriptedRunner(default=reply)
    compile(program).run_sync(DataTable(inputs), runner)
    return runner


def test_exact_prompt_of_a_few_shot_program() -> None:
    program = Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", ["Is the statement true?", Paragraph("Answer yes or no.")]),
                    Section("Examples", [Examples(POOL, n=2)]),
                    Section("Statement", [InputData()]),
                ]
            )
        )
    )
    assert prompts(program, ["the sun is hot"]).prompts == [
        "# Task\n\nIs the statement true?\n\nAnswer yes or no.\n\n"
        "# Examples\n\nExample 1:\nInput: paris is in france\nOutput: yes\n\n"
        "Example 2:\nInput: rome is in italy\nOutput: yes\n\n"
        "# Statement\n\nInput: the sun is hot\n\nOutput:"
    ]


def test_nested_sections_and_section_formats() -> None:
    body = [Section("Rules", [Section("Tone", ["Be kind."])]), InputData(hint=False)]
    md = prompts(Output(GenerateText(MetaPrompt(body))), ["x"]).prompts[0]
    assert md == "# Rules\n\n## Tone\n\nBe kind.\n\nInput: x"
    xml = prompts(Output(GenerateText(MetaPrompt(body, section_format="xml"))), ["x"]).prompts[0]
    assert '<section title="Rules">' in xml and '<section title="Tone">' in xml
    js = prompts(Output(GenerateText(MetaPrompt(body, section_format="json"))), ["x"]).prompts[0]
    assert '"title": "Tone"' in js


def test_data_format_is_inherited_and_overridable() -> None:
    program = Output(
        GenerateText(
            MetaPrompt(
                [Examples(POOL, n=1), InputData(data_format="plain", hint=False)],
                data_format="json",
            )
        )
    )
    prompt = prompts(program, ["q"]).prompts[0]
    assert '{"id": 1, "input": "paris is in france", "output": "yes"}' in prompt
    assert prompt.endswith("Input: q")


def test_example_selection_first_random_knn() -> None:
    def shown(selection: str, seed: int = 0) -> list[str]:
        program = Output(
            GenerateText(
                MetaPrompt([Examples(POOL, n=2, selection=selection, seed=seed), InputData()])
            )
        )
        prompt = prompts(program, ["do fish live in the water"]).prompts[0]
        return [x for x in POOL.inputs if x in prompt]

    assert shown("first") == ["paris is in france", "rome is in italy"]
    assert shown("random", 1) == shown("random", 1)
    assert {tuple(shown("random", s)) for s in range(6)} != {tuple(shown("first"))}
    assert "fish live in water" in shown("knn")


def test_template_sees_input_fields_and_all_inputs() -> None:
    program = Output(GenerateText(Template("Q: {{ input.q }} | n={{ inputs|length }}")))
    assert prompts(program, [{"q": "why?"}]).prompts == ["Q: why? | n=1"]


def test_system_message_and_call_parameters() -> None:
    program = Output(
        GenerateText(Paragraph("Hi"), system="Be terse.", temperature=0.7, max_tokens=5, seed=9)
    )
    runner = prompts(program, ["x"])
    request = runner.requests[0]
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.messages[0].content == "Be terse."
    assert (request.temperature, request.max_tokens, request.seed) == (0.7, 5, 9)


def test_nested_generate_text_feeds_its_answer_into_the_prompt() -> None:
    inner = GenerateText(Paragraph("Write a rule."))
    program = Output(GenerateText(MetaPrompt([Section("Rule", [inner]), InputData(hint=False)])))
    runner = ScriptedRunner(rules={"Write a rule": "Never guess."}, default="ok")
    compile(program).run_sync(DataTable(["a", "b", "c"]), runner)
    assert runner.prompts.count("Write a rule.") == 1  # static: one call for all inputs
    assert runner.prompts[1] == "# Rule\n\nNever guess.\n\nInput: a"


@pytest.mark.parametrize(
    ("parser", "reply", "expected"),
    [
        ("raw", "  Yes, it is.  ", "Yes, it is."),
        ("first_line", "\nyes\nbecause", "yes"),
        ("json", 'Sure: {"label": "yes"} done', {"label": "yes"}),
        ("regex:answer: (\\w+)", "the answer: blue.", "blue"),
        ("regex:answer: (\\w+)", "no idea", None),
        ("auto", "Output: yes", "yes"),
    ],
)
def test_output_parsers(parser: str, reply: str, expected: object) -> None:
    program = Output(GenerateText(MetaPrompt([InputData()])), parser=parser)
    runner = ScriptedRunner(default=reply)
    results = compile(program).run_sync(DataTable(["x"]), runner)
    assert results.predictions == [expected]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MetaPrompt([], section_format="yaml"), "unknown section format 'yaml'"),
        (lambda: MetaPrompt([], data_format="csv"), "unknown data format 'csv'"),
        (lambda: Examples(POOL, n=-1), "n must be >= 0"),
        (lambda: Examples(POOL, selection="best"), "unknown example selection 'best'"),
        (lambda: Examples([1, 2]), "needs a sammo_core.DataTable"),
        (lambda: GenerateText(Paragraph("x"), temperature=3), "temperature must be within"),
        (lambda: Output(GenerateText(Paragraph("x")), parser="yaml"), "unknown parser 'yaml'"),
        (lambda: Output(GenerateText(Paragraph("x")), parser="regex:("), "not a valid regex"),
        (lambda: Output(GenerateText(Paragraph("x")), inputs_per_call=0), "inputs_per_call"),
    ],
)
def test_bad_options_name_the_value(make: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        make()  # type: ignore[operator]


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(TypeError, match="titel"):
        Section(titel="Task")  # type: ignore[call-arg]


def test_program_prints_as_a_readable_tree() -> None:
    program = Output(
        GenerateText(MetaPrompt([Section("Task", ["Be brief."], id="t"), InputData()])),
        parser="first_line",
    )
    assert str(program) == (
        "Output(parser='first_line')\n"
        "└── GenerateText(temperature=0.0, seed=0)\n"
        "    └── MetaPrompt()\n"
        "        ├── #t Section 'Task'\n"
        "        │   └── 'Be brief.'\n"
        "        └── InputData()"
    )


# -- plain strings are Paragraph nodes -------------------------------------------------------


def test_plain_strings_become_paragraph_nodes_that_equal_written_ones() -> None:
    written = Section("Task", [Paragraph("Say yes."), Paragraph("Be brief.")])
    shorthand = Section("Task", ["Say yes.", "Be brief."])
    assert shorthand == written
    assert all(isinstance(c, Paragraph) for c in shorthand.children)
    assert [c.text for c in shorthand.children_nodes()] == ["Say yes.", "Be brief."]
    meta = MetaPrompt(["Intro.", InputData()])
    assert meta.children[0] == Paragraph("Intro.")
    program = Output(GenerateText("Hi", system="Be terse."))
    assert program.child.prompt == Paragraph("Hi")
    assert program.child.system == Paragraph("Be terse.")
    assert (
        compile(program).hash
        == compile(Output(GenerateText(Paragraph("Hi"), system=Paragraph("Be terse.")))).hash
    )


def test_strings_set_by_path_on_a_copy_become_paragraphs_too() -> None:
    import pyglove as pg

    program = Output(GenerateText(MetaPrompt([Section("Task", ["Say yes."])])))
    item = pg.clone(program, override={"child.prompt.children[0].children[0]": "Say no."})
    whole = pg.clone(program, override={"child.prompt.children[0].children": ["A.", "B."]})
    assert item.child.prompt.children[0].children == [Paragraph("Say no.")]
    assert whole.child.prompt.children[0].children == [Paragraph("A."), Paragraph("B.")]
    assert prompts(whole, ["x"]).prompts == ["# Task\n\nA.\n\nB."]
    assert program.child.prompt.children[0].children == [Paragraph("Say yes.")]


def test_search_space_choices_of_strings_become_paragraphs_when_chosen() -> None:
    import pyglove as pg

    space = Section("Task", [pg.oneof(["Say yes.", "Say no."])])
    assert [s.children for s in pg.iter(space)] == [[Paragraph("Say yes.")], [Paragraph("Say no.")]]


@pytest.mark.parametrize(
    "module", ["sammo_core.components", "sammo_core.graph", "sammo_core.selectors"]
)
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
