"""LLM-based content operators: exact proposal prompts, exact edits, seeds and reply cleaning."""

from __future__ import annotations

import asyncio
import json
import random
import string
from typing import Any

import pytest

import sammo_core
from mutators.base import Mutation, MutationContext, Mutator, ScoredProgram
from mutators.content import (
    CRITIQUE_PROMPT,
    FIX_PROMPT,
    INDUCE_PROMPT,
    PARAPHRASE_PROMPT,
    PROPOSE_PROMPT,
    REWRITE_PROMPT,
    SHORTEN_PROMPT,
    InduceInstructions,
    Paraphrase,
    ProposeFromHistory,
    Rewrite,
    Shorten,
    TextGradient,
    clean_reply,
    section_text,
)
from sammo_core import (
    ConfigError,
    DataTable,
    Examples,
    GenerateText,
    InputData,
    LLMRequest,
    MetaPrompt,
    Output,
    Paragraph,
    ScriptedRunner,
    Section,
    Template,
)

EXAMPLES = DataTable(["good"], ["pos"])


def make_program(task: list[Any] | None = None) -> Output:
    if task is None:
        task = ["Classify the review.", Examples(EXAMPLES), Paragraph("Be brief.", id="brief")]
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", task),
                    Section("Input", ["Review:", InputData()]),
                ]
            )
        )
    )


def run_mutate(
    op: Mutator,
    program: Output,
    runner: ScriptedRunner | None,
    *,
    seed: int = 0,
    n: int = 1,
    **context: Any,
) -> list[Mutation]:
    ctx = MutationContext(runner=runner, **context)
    return asyncio.run(op.mutate(program, random.Random(seed), n=n, context=ctx))


def texts(items: list[Any]) -> list[Any]:
    """Items with each Paragraph replaced by its text (strings are stored as Paragraphs)."""
    return [item.text if isinstance(item, Paragraph) else item for item in items]


def task_children(child: Mutation) -> list[Any]:
    return texts(child.program.child.prompt.children[0].children)


def as_json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def rendered(program: Output) -> str:
    runner = ScriptedRunner(default="x")
    sammo_core.compile(program).run_sync(DataTable(["q"]), runner)
    return runner.prompts[0]


# -- Paraphrase ----------------------------------------------------------------------------------


def test_paraphrase_exact_prompt_and_edit() -> None:
    program = make_program()
    before = sammo_core.dumps(program)
    runner = ScriptedRunner(rules={r"^Paraphrase the text below": "Judge the review. Be short."})
    [child] = run_mutate(Paraphrase(), program, runner)

    assert runner.prompts == [
        "Paraphrase the text below. Keep its meaning and every instruction and constraint in "
        "it; change only the wording.\n"
        "Reply with the new text only.\n\n"
        "Text:\n"
        "Classify the review.\n\nBe brief."
    ]
    assert runner.requests[0].temperature == 0.9
    assert child.description == "paraphrase section 'Task'"
    assert child.operator == "Paraphrase"
    children = task_children(child)
    assert children[0] == "Judge the review. Be short."
    assert isinstance(children[1], Examples), "non-text children keep their place"
    assert len(children) == 2
    assert rendered(child.program) == (
        "# Task\n\nJudge the review. Be short.\n\n"
        "Example 1:\nInput: good\nOutput: pos\n\n"
        "# Input\n\nReview:\n\nInput: q\n\nOutput:"
    )
    assert sammo_core.dumps(program) == before, "the argument is untouched"


def test_text_goes_where_the_first_text_child_was() -> None:
    program = make_program([Examples(EXAMPLES), Paragraph("One."), "Two."])
    runner = ScriptedRunner(default="Both.")
    [child] = run_mutate(Paraphrase(), program, runner)
    children = task_children(child)
    assert isinstance(children[0], Examples)
    assert children[1:] == ["Both."]


def test_no_runner_names_the_operator_and_the_fix() -> None:
    with pytest.raises(ConfigError) as info:
        run_mutate(Paraphrase(), make_program(), None)
    assert str(info.value) == (
        "Paraphrase asks an LLM to propose text but the mutation context has no runner: "
        "pass proposer=... (or the task runner) to the search"
    )


def test_n_children_are_separate_proposals_with_seeds_from_rng() -> None:
    def reply(request: LLMRequest) -> str:
        return f"Variant {request.seed}."

    runner = ScriptedRunner(default=reply)
    children = run_mutate(Paraphrase(), make_program(), runner, seed=7, n=3)
    seeds = [r.seed for r in runner.requests]
    rng = random.Random(7)
    rng.shuffle([0])  # the operator shuffles its one target first
    assert seeds == [rng.randrange(2**31) for _ in range(3)]
    assert len(set(seeds)) == 3
    assert [task_children(c)[0] for c in children] == [f"Variant {s}." for s in seeds]


def test_same_seed_same_children() -> None:
    def reply(request: LLMRequest) -> str:
        return f"Variant {request.seed}."

    def texts(seed: int) -> list[str]:
        return [
            sammo_core.dumps(c.program)
            for c in run_mutate(
                Paraphrase(), make_program(), ScriptedRunner(default=reply), n=2, seed=seed
            )
        ]

    assert texts(3) == texts(3)
    assert texts(3) != texts(4)


def test_empty_unchanged_and_repeated_replies_give_no_extra_child() -> None:
    program = make_program()
    assert run_mutate(Paraphrase(), program, ScriptedRunner(default="  ")) == []
    unchanged = ScriptedRunner(default="```\nClassify the review.\n\nBe   brief.\n```")
    assert run_mutate(Paraphrase(), program, unchanged) == []
    same = ScriptedRunner(default="Rate it.")
    children = run_mutate(Paraphrase(), program, same, n=3)
    assert len(same.requests) == 3
    assert [task_children(c)[0] for c in children] == ["Rate it."]


def test_targets_skip_input_sections_and_sections_without_text() -> None:
    program = Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Shots", [Examples(EXAMPLES)]),
                    Section("Rules", ["Be kind."], id="rules"),
                    Section("Input", ["Review:", InputData()]),
                ]
            )
        )
    )
    assert [m.node.title for m in Paraphrase().targets(program)] == ["Rules"]
    assert not Paraphrase("#nothing").applicable(program)
    runner = ScriptedRunner(default="Be nice.")
    [child] = run_mutate(Paraphrase("#rules"), program, runner)
    assert texts(child.program.child.prompt.children[1].children) == ["Be nice."]


def test_targets_skip_sections_whose_template_reads_the_input() -> None:
    program = Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Rules", ["Be kind."]),
                    Section("Question", ["Answer this:", Template("Q: {{ input }}")]),
                ]
            )
        )
    )
    assert [m.node.title for m in Paraphrase().targets(program)] == ["Rules"]


def test_children_spread_over_targets() -> None:
    program = Output(
        GenerateText(MetaPrompt([Section("A", ["Alpha."]), Section("B", ["Beta."]), InputData()]))
    )
    runner = ScriptedRunner(default=lambda r: r.prompt_text.rsplit("\n", 1)[1].upper())
    children = run_mutate(Paraphrase(), program, runner, n=2)
    assert sorted(c.description for c in children) == [
        "paraphrase section 'A'",
        "paraphrase section 'B'",
    ]
    by_title = {c.description[-2]: c.program.child.prompt.children for c in children}
    assert section_text(by_title["A"][0]) == "ALPHA."
    assert section_text(by_title["B"][1]) == "BETA."
    assert section_text(by_title["A"][1]) == "Beta.", "each child edits one section"


# -- Rewrite -------------------------------------------------------------------------------------


def test_rewrite_exact_prompt_and_description() -> None:
    runner = ScriptedRunner(rules={r"^Rewrite the text below": "Classify. Be brief."})
    [child] = run_mutate(Rewrite("Make it more concise."), make_program(), runner)
    assert runner.prompts == [
        "Rewrite the text below following this instruction: Make it more concise.\n"
        "Keep every constraint in the text that the instruction does not ask you to change.\n"
        "Reply with the new text only.\n\n"
        "Text:\n"
        "Classify the review.\n\nBe brief."
    ]
    assert runner.requests[0].temperature == 0.7
    assert child.description == "rewrite section 'Task': make it more concise"
    assert task_children(child)[0] == "Classify. Be brief."
    assert rendered(child.program).startswith("# Task\n\nClassify. Be brief.\n\nExample 1:")


# -- InduceInstructions --------------------------------------------------------------------------

TRAIN = DataTable(
    ["great", "awful", "fine", {"text": "meh"}, "bad", "superb"],
    ["pos", "neg", "pos", "neg", None, "pos"],
)


def test_induce_exact_prompt_from_sampled_rows() -> None:
    runner = ScriptedRunner(rules={r"^I gave a friend an instruction": "Label the sentiment."})
    op = InduceInstructions(n_examples=2)
    [child] = run_mutate(op, make_program(), runner, seed=1, train=TRAIN)

    rng = random.Random(1)
    rng.shuffle([0])
    rows = op.sample(MutationContext(train=TRAIN), rng.randrange(2**31))
    assert len(rows) == 2
    examples = "\n\n".join(f"Input: {as_json(r.input)}\nOutput: {r.output}" for r in rows)
    assert runner.prompts == [
        "I gave a friend an instruction and some inputs. The friend read the instruction and "
        "wrote an output for every one of the inputs. Here are the input-output pairs:\n\n"
        f"{examples}\n\n"
        "What was the instruction? Reply with the instruction only."
    ]
    assert task_children(child)[0] == "Label the sentiment."
    assert child.description == "induce instructions for section 'Task' from 2 examples"


def test_induce_formats_dict_inputs_as_json_and_skips_unlabelled_rows() -> None:
    runner = ScriptedRunner(default="Label it.")
    run_mutate(InduceInstructions(n_examples=10), make_program(), runner, train=TRAIN)
    prompt = runner.prompts[0]
    assert 'Input: {"text":"meh"}\nOutput: neg' in prompt
    assert "Input: bad" not in prompt, "rows without a gold output are not shown"
    assert prompt.count("Input: ") == 5


def test_induce_sample_is_deterministic_per_seed() -> None:
    def shown(seed: int) -> list[str]:
        runner = ScriptedRunner(default="Label it.")
        run_mutate(InduceInstructions(n_examples=3), make_program(), runner, seed=seed, train=TRAIN)
        return runner.prompts

    assert shown(5) == shown(5)
    assert any(shown(5) != shown(s) for s in range(6, 12))


def test_induce_without_train_data_returns_nothing() -> None:
    runner = ScriptedRunner(default="Label it.")
    assert run_mutate(InduceInstructions(), make_program(), runner) == []
    unlabelled = DataTable(["a", "b"])
    assert run_mutate(InduceInstructions(), make_program(), runner, train=unlabelled) == []
    assert runner.requests == []


# -- TextGradient --------------------------------------------------------------------------------


TRAIN_CASES = [
    # input, gold, what the task model answers
    ("loved it", "pos", "Pos."),  # right after normalizing
    ("so great, not", "neg", "pos"),
    ("fine", "pos", "pos"),
    ("terrible", "neg", ""),  # no prediction
    ("no gold", None, "pos"),
]
GRADIENT_TRAIN = DataTable([c[0] for c in TRAIN_CASES], [c[1] for c in TRAIN_CASES])


def task_model() -> ScriptedRunner:
    return ScriptedRunner(rules={rf"Input: {inp}\n": reply for inp, _, reply in TRAIN_CASES})


def test_text_gradient_runs_the_parent_on_training_rows_and_critiques_its_errors() -> None:
    runner = ScriptedRunner(
        rules={
            r"Give one reason why": "The prompt does not say how to treat sarcasm.",
            r"Edit the prompt text to fix": "Classify the review; sarcasm flips praise.",
        }
    )
    task = task_model()
    op = TextGradient(n_errors=4)
    [child] = run_mutate(op, make_program(), runner, train=GRADIENT_TRAIN, task=task)

    # the parent ran on every labelled training row, through the task runner
    assert sorted(p.rsplit("Input: ", 1)[1].split("\n")[0] for p in task.prompts) == sorted(
        ["loved it", "so great, not", "fine", "terrible"]
    )
    assert len(runner.requests) == 2
    assert runner.requests[0].seed == runner.requests[1].seed
    critique_prompt, fix_prompt = runner.prompts
    shown = critique_prompt.split("gets these examples wrong:\n\n")[1].split("\n\nGive one")[0]
    assert sorted(shown.split("\n\n")) == [
        "Input: so great, not\nExpected: neg\nGot: pos",
        "Input: terrible\nExpected: neg\nGot: ",
    ]
    text = "Classify the review.\n\nBe brief."
    assert critique_prompt == (
        "I am writing a prompt for a task. The current prompt text is:\n\n"
        f"{text}\n\n"
        "With it, the model gets these examples wrong:\n\n"
        f"{shown}\n\n"
        "Give one reason why the prompt text could have led to these mistakes. Reply with the "
        "reason only, in one or two sentences."
    )
    assert fix_prompt == (
        "I am writing a prompt for a task. The current prompt text is:\n\n"
        f"{text}\n\n"
        "With it, the model gets these examples wrong:\n\n"
        f"{shown}\n\n"
        "The problem is: The prompt does not say how to treat sarcasm.\n\n"
        "Edit the prompt text to fix this problem. Reply with the new text only."
    )
    assert child.description == (
        "text gradient on 'Task': the prompt does not say how to treat sarcasm"
    )
    assert task_children(child)[0] == "Classify the review; sarcasm flips praise."
    for right in ("loved it", "Input: fine", "no gold"):
        assert all(right not in p for p in runner.prompts)


def test_text_gradient_minibatch_is_seeded_and_one_per_call() -> None:
    train = DataTable([f"review {i}" for i in range(40)], ["pos"] * 40)
    proposer = ScriptedRunner(
        rules={r"Give one reason why": "Too vague.", r"Edit the prompt": lambda r: f"V{r.seed}."}
    )
    op = TextGradient(minibatch=5)
    runs = []
    for _ in range(2):
        task = ScriptedRunner(default="neg")
        children = run_mutate(op, make_program(), proposer, seed=7, n=3, train=train, task=task)
        runs.append(sorted(p.rsplit("Input: ", 1)[1].split("\n")[0] for p in task.prompts))
        assert len(children) == 3
    expected = op.minibatch_rows(MutationContext(train=train), random.Random(7).randrange(2**31))
    assert runs[0] == runs[1] == sorted(expected.inputs)  # 5 rows, once for all 3 children
    other = op.minibatch_rows(MutationContext(train=train), random.Random(8).randrange(2**31))
    assert list(other.inputs) != list(expected.inputs)


def test_text_gradient_samples_n_errors_and_makes_two_calls_per_child() -> None:
    runner = ScriptedRunner(
        rules={r"Give one reason why": "Too vague.", r"Edit the prompt": lambda r: f"V{r.seed}."}
    )
    children = run_mutate(
        TextGradient(n_errors=1), make_program(), runner, n=2, train=GRADIENT_TRAIN,
        task=task_model(),
    )  # fmt: skip
    assert len(runner.requests) == 4
    assert len(children) == 2
    for prompt in runner.prompts:
        assert prompt.count("Expected: ") == 1


def test_text_gradient_without_training_rows_or_errors_returns_nothing() -> None:
    runner, task = ScriptedRunner(default="x"), ScriptedRunner(default="pos")
    assert run_mutate(TextGradient(), make_program(), runner, task=task) == []
    unlabelled = DataTable(["a", "b"])
    assert run_mutate(TextGradient(), make_program(), runner, train=unlabelled, task=task) == []
    assert task.requests == []
    right = DataTable(["a", "b"], ["pos", "pos"])
    assert run_mutate(TextGradient(), make_program(), runner, train=right, task=task) == []
    assert len(task.requests) == 2
    assert runner.requests == []


def test_text_gradient_needs_the_task_runner() -> None:
    runner = ScriptedRunner(default="x")
    with pytest.raises(ConfigError, match=r"no task runner: pass MutationContext\(task=\.\.\.\)"):
        run_mutate(TextGradient(), make_program(), runner, train=GRADIENT_TRAIN)


def test_text_gradient_empty_critique_gives_no_child() -> None:
    runner = ScriptedRunner(rules={r"Give one reason why": '""'})
    children = run_mutate(
        TextGradient(), make_program(), runner, train=GRADIENT_TRAIN, task=task_model()
    )
    assert children == []
    assert len(runner.requests) == 1


# -- ProposeFromHistory --------------------------------------------------------------------------


def history() -> tuple[ScoredProgram, ...]:
    moved = Output(
        GenerateText(
            MetaPrompt([Section("Intro", ["Hi."]), Section("Task", ["Rate it."]), InputData()])
        )
    )
    return (
        ScoredProgram(make_program(["Say pos or neg."]), 0.8),
        ScoredProgram(moved, 0.5),  # found by title, not path
        ScoredProgram(make_program(["Classify the review.", "Be brief."]), 0.6),
        ScoredProgram(make_program(["Say pos or neg."]), 0.7),  # a duplicate keeps its best
        ScoredProgram(make_program([Examples(EXAMPLES)]), 0.9),  # no text: skipped
    )


def test_propose_from_history_exact_prompt_sorted_ascending() -> None:
    runner = ScriptedRunner(rules={r"^Below are earlier versions": "Answer pos or neg only."})
    [child] = run_mutate(ProposeFromHistory(), make_program(), runner, history=history())
    assert runner.prompts == [
        "Below are earlier versions of an instruction with their scores (higher is better), "
        "from worst to best:\n\n"
        "Text:\nRate it.\nScore: 0.500\n\n"
        "Text:\nClassify the review.\n\nBe brief.\nScore: 0.600\n\n"
        "Text:\nSay pos or neg.\nScore: 0.800\n\n"
        "Write a new instruction that is different from all of the above and scores higher "
        "than all of them. Reply with the instruction only."
    ]
    assert runner.requests[0].temperature == 1.0
    assert task_children(child)[0] == "Answer pos or neg only."
    assert child.description == "propose from history for section 'Task' (3 versions)"


def test_propose_from_history_keeps_the_best_max_history() -> None:
    runner = ScriptedRunner(default="New.")
    run_mutate(ProposeFromHistory(max_history=2), make_program(), runner, history=history())
    assert "Rate it." not in runner.prompts[0]
    assert runner.prompts[0].count("Score: ") == 2


def test_propose_from_history_needs_history_and_a_new_text() -> None:
    runner = ScriptedRunner(default="Say pos or neg.")
    assert run_mutate(ProposeFromHistory(), make_program(), runner) == []
    assert runner.requests == []
    assert run_mutate(ProposeFromHistory(), make_program(), runner, history=history()) == []
    assert len(runner.requests) == 1, "a reply repeating a shown version gives no child"


# -- Shorten -------------------------------------------------------------------------------------

LONG = "Classify the sentiment of the review as positive or negative, and answer in one word."


def test_shorten_exact_prompt_and_accepts_shorter() -> None:
    runner = ScriptedRunner(rules={r"^Shorten the text below": "Sentiment: positive/negative."})
    [child] = run_mutate(Shorten(ratio=0.5), make_program([LONG]), runner)
    assert runner.prompts == [
        "Shorten the text below to about 8 tokens (it has 17 now). Keep every instruction, "
        "constraint and required output format in it.\n"
        "Reply with the shortened text only.\n\n"
        f"Text:\n{LONG}"
    ]
    assert task_children(child) == ["Sentiment: positive/negative."]
    assert child.description == "shorten section 'Task': 17 -> 6 tokens"


@pytest.mark.parametrize("reply", [LONG + " Please.", LONG.replace("one", "a")])
def test_shorten_rejects_replies_that_are_not_shorter(reply: str) -> None:
    runner = ScriptedRunner(default=reply)
    assert run_mutate(Shorten(), make_program([LONG]), runner) == []
    assert len(runner.requests) == 1


# -- reply cleaning, configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("  Be brief.  ", "Be brief."),
        ("```\nBe brief.\n```", "Be brief."),
        ("```text\nLine one.\nLine two.\n```", "Line one.\nLine two."),
        ("Here is the paraphrased text:\n\nBe brief.", "Be brief."),
        ("Sure! Here's a shorter version: Be brief.", "Be brief."),
        ("Certainly, here is the new instruction:\n```\n'Be brief.'\n```", "Be brief."),
        ('"Be brief."', "Be brief."),
        ("'Be brief.'", "Be brief."),
        ("\u201cBe brief.\u201d", "Be brief."),
        ('"""Be brief."""', "Be brief."),
        ('"yes" or "no"', '"yes" or "no"'),
        ("Here is a review: rate it.", "Here is a review: rate it."),
        ("Use ```json``` blocks.", "Use ```json``` blocks."),
        ("", ""),
    ],
)
def test_clean_reply(reply: str, expected: str) -> None:
    assert clean_reply(reply) == expected


def test_replies_are_cleaned_before_use() -> None:
    runner = ScriptedRunner(default='Here is the rewritten text:\n```\n"Be short."\n```')
    [child] = run_mutate(Rewrite("Shorter"), make_program(), runner)
    assert task_children(child)[0] == "Be short."


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Paraphrase(temperature=3.0), "temperature must be within [0, 2]; got 3.0"),
        (lambda: Rewrite(""), "Rewrite needs instructions"),
        (lambda: InduceInstructions(n_examples=0), "n_examples must be an integer >= 1; got 0"),
        (lambda: TextGradient(n_errors=0), "n_errors must be an integer >= 1; got 0"),
        (lambda: TextGradient(minibatch=0), "minibatch must be an integer >= 1; got 0"),
        (lambda: ProposeFromHistory(max_history=0), "max_history must be an integer >= 1"),
        (lambda: Shorten(ratio=1.0), "ratio must be within (0, 1), e.g. 0.5; got 1.0"),
    ],
)
def test_bad_configuration_is_rejected(make: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    assert message in str(info.value)


def test_repr_shows_parameters() -> None:
    assert repr(Shorten(ratio=0.3)) == "Shorten(selector='Section', temperature=0.7, ratio=0.3)"
    assert repr(TextGradient("#task")) == (
        "TextGradient(selector='#task', temperature=0.7, n_errors=4, minibatch=16)"
    )


def test_templates_are_module_constants() -> None:
    for template, fields in [
        (PARAPHRASE_PROMPT, {"text"}),
        (REWRITE_PROMPT, {"instructions", "text"}),
        (INDUCE_PROMPT, {"examples"}),
        (CRITIQUE_PROMPT, {"text", "errors"}),
        (FIX_PROMPT, {"text", "errors", "critique"}),
        (PROPOSE_PROMPT, {"history"}),
        (SHORTEN_PROMPT, {"target", "tokens", "text"}),
    ]:
        found = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        assert found == fields
