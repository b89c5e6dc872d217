"""The compiler: content hashes, render-once, running, minibatching, diffs and drawings."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

import pyglove as pg
import pytest

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
    compile,
    find_one,
)
from sammo_core.graph import YOUNG_GC_THRESHOLD
from sammo_core.results import ResultTable
from sammo_core.runners import LLMResult

EXAMPLES = DataTable(
    ["the sky is blue", "fish can fly", "water is wet", "fire is cold"],
    ["yes", "no", "yes", "no"],
)


def program(
    task: str = "Answer yes or no.",
    n: int = 2,
    selection: str = "first",
    inputs_per_call: int = 1,
    data_format: str = "plain",
) -> Output:
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", [task], id="task"),
                    Section("Examples", [Examples(EXAMPLES, n=n, selection=selection)]),
                    Section("Input", [InputData()]),
                ],
                data_format=data_format,
            )
        ),
        inputs_per_call=inputs_per_call,
    )


def test_equal_programs_hash_equal_and_ids_do_not_count() -> None:
    assert compile(program()).hash == compile(program()).hash
    relabelled = pg.clone(program(), override={"child.prompt.children[0].id": "other"})
    assert compile(relabelled).hash == compile(program()).hash


@pytest.mark.parametrize(
    "variant",
    [
        program(task="Answer Yes or No."),
        program(n=3),
        program(selection="random"),
        program(inputs_per_call=2),
        program(data_format="json"),
    ],
)
def test_any_parameter_change_changes_the_hash(variant: Output) -> None:
    assert compile(variant).hash != compile(program()).hash


def test_hash_covers_example_data() -> None:
    other = DataTable(["the sky is blue"], ["no"])
    changed = pg.clone(program(), override={"child.prompt.children[1].children[0].data": other})
    assert compile(changed).hash != compile(program()).hash


def test_static_flags() -> None:
    graph = compile(program())
    assert graph.is_static("child.prompt.children[0]")
    assert graph.is_static("child.prompt.children[1]")
    assert not graph.is_static("child.prompt.children[2]")
    assert not graph.is_static("child.prompt")
    knn = compile(program(selection="knn"))
    assert not knn.is_static("child.prompt.children[1]")


def test_static_parts_render_once_per_run() -> None:
    graph = compile(program())
    data = DataTable([f"question {i}" for i in range(25)])
    results = graph.run_sync(data, ScriptedRunner(default="yes"))
    assert len(results) == 25
    assert graph.renders("child.prompt.children[0]") == 1  # the Task section
    assert graph.renders("child.prompt.children[1]") == 1  # the Examples section
    assert graph.renders("child.prompt.children[2]") == 25  # the Input section is dynamic
    assert graph.render_counts["Examples"] == 1
    assert graph.render_counts["InputData"] == 25
    assert graph.render_counts["MetaPrompt"] == 25


def test_prompts_differ_only_in_the_input() -> None:
    runner = ScriptedRunner(default="yes")
    compile(program()).run_sync(DataTable(["q one", "q two"]), runner)
    first, second = runner.prompts
    assert first.replace("q one", "q two") == second
    assert "Answer yes or no." in first
    assert "the sky is blue" in first and "fish can fly" in first
    assert "water is wet" not in first  # n=2 takes the first two examples


def test_results_keep_input_order_under_concurrency() -> None:
    def reply(request: LLMRequest) -> str:
        return request.prompt_text.rsplit("number ", 1)[1].split()[0]

    runner = ScriptedRunner(rules={r"number \d+": reply}, latency=0.001)
    data = DataTable([f"number {i}" for i in range(40)], [str(i) for i in range(40)])
    results = compile(program()).run_sync(data, runner, max_concurrency=8)
    assert [r.prediction for r in results] == [str(i) for i in range(40)]
    assert [r.index for r in results] == list(range(40))


def test_minibatching_packs_inputs_and_reads_answers_by_id() -> None:
    def reply(request: object) -> str:
        # A model that answers the first input right and omits the third.
        return "Output [1]: yes\nOutput [2]: no"

    runner = ScriptedRunner(default=reply)
    data = DataTable(["a", "b", "c", "d", "e"], ["yes", "no", "no", "yes", "no"])
    results = compile(program(inputs_per_call=3)).run_sync(data, runner)
    assert runner.calls == 2
    assert results.predictions == ["yes", "no", None, "yes", "no"]
    assert results.calls == 2
    assert all(r.prompt == runner.prompts[0] for r in results.rows[:3])
    assert results.prompt_tokens == sum(r.prompt_tokens for r in results)


def test_missing_runner_and_wrong_root_are_clear() -> None:
    with pytest.raises(ConfigError, match="no runner was given"):
        asyncio.run(compile(program()).run(DataTable(["x"]), None))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"needs an Output at the root"):
        compile(MetaPrompt(["hi"]))


def test_diff_names_changed_added_and_removed_nodes() -> None:
    a = compile(program())
    edited = pg.clone(program(), override={"child.prompt.children[0].children[0]": "Say yes."})
    edited = pg.clone(edited, override={"child.prompt.children[1].children[0].n": 3})
    changes = a.diff(compile(edited))
    assert [c.path for c in changes] == [
        "child.prompt.children[0].children[0]",
        "child.prompt.children[1].children[0]",
    ]
    assert "n=2" in changes[1].before and "n=3" in changes[1].after  # type: ignore[operator]

    grown = program()
    grown = pg.clone(
        grown,
        override={"child.prompt.children[0].children": ["Answer yes or no.", Paragraph("Hi")]},
    )
    kinds = [(c.kind, c.path) for c in a.diff(compile(grown))]
    assert kinds == [("added", "child.prompt.children[0].children[1]")]
    assert [(c.kind) for c in compile(grown).diff(a)] == ["removed"]


def test_drawings_name_every_node() -> None:
    graph = compile(program())
    dot = graph.to_dot()
    assert dot.startswith("digraph program {") and dot.rstrip().endswith("}")
    assert dot.count("->") == len(graph) - 1
    assert "Section 'Task'" in dot
    mermaid = graph.to_mermaid()
    assert mermaid.startswith("flowchart BT")
    assert mermaid.count("-->") == len(graph) - 1
    assert '("InputData(' in mermaid  # dynamic nodes are rounded


def test_find_then_clone_changes_the_prompt() -> None:
    base = program()
    match = find_one(base, "#task")
    edited = pg.clone(base, override={f"{match.path}.children[0]": "Reply with one word."})
    runner = ScriptedRunner(default="yes")
    compile(edited).run_sync(DataTable(["x"]), runner)
    assert "Reply with one word." in runner.prompts[0]
    assert "Answer yes or no." not in runner.prompts[0]


def test_diff_sees_a_changed_plain_string() -> None:
    before = compile(program(task="Answer yes or no."))
    after = compile(program(task="Reply Yes or No."))
    assert before.hash != after.hash
    assert [str(c) for c in before.diff(after)] == [
        "~ child.prompt.children[0].children[0]: 'Answer yes or no.' -> 'Reply Yes or No.'"
    ]


def test_diff_sees_a_changed_system_string() -> None:
    a = compile(Output(GenerateText(Paragraph("Hi"), system="Be terse.")))
    b = compile(Output(GenerateText(Paragraph("Hi"), system="Be kind.")))
    assert [str(c) for c in a.diff(b)] == ["~ child.system: 'Be terse.' -> 'Be kind.'"]


def test_every_rendered_text_is_a_graph_node() -> None:
    graph = compile(program())
    texts = [
        d["node"].text for _, d in graph.graph.nodes(data=True) if isinstance(d["node"], Paragraph)
    ]
    assert texts == ["Answer yes or no."]
    assert graph.is_static("child.prompt.children[0].children[0]")


def test_compile_hashes_each_node_once_and_agrees_with_content_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sammo_core import graph as graph_module
    from sammo_core.graph import _walk, content_hash, own_hash

    prog = program(n=3)
    digests = 0
    digest = graph_module._digest

    def counting(obj: object) -> str:
        nonlocal digests
        digests += 1
        return digest(obj)

    monkeypatch.setattr(graph_module, "_digest", counting)
    compiled = compile(prog)
    # Two hashes per node (with and without children); before, each node's subtree was
    # hashed again for every ancestor.
    assert digests == 2 * len(compiled)
    monkeypatch.setattr(graph_module, "_digest", digest)
    for path, node, _ in _walk(prog):
        assert compiled.graph.nodes[path]["hash"] == content_hash(node)
        assert compiled.graph.nodes[path]["own_hash"] == own_hash(node)
    assert compiled.hash == content_hash(prog)


def test_a_run_takes_rows_from_the_data_as_calls_need_them() -> None:
    # No list of every row and batch is built up front (memory at 100,000 rows: 134 -> 123 MiB).
    taken: list[int] = []

    class Counted(DataTable):
        def __iter__(self):  # type: ignore[no-untyped-def]
            for row in super().__iter__():
                taken.append(row.index)
                yield row

    seen_at_call: list[int] = []

    def reply(request: LLMRequest) -> str:
        seen_at_call.append(len(taken))
        return "yes"

    data = Counted([f"q{i}" for i in range(50)], ["yes"] * 50)
    results = compile(program(inputs_per_call=2)).run_sync(
        data, ScriptedRunner(default=reply), max_concurrency=3
    )
    assert [r.index for r in results] == list(range(50)) and len(seen_at_call) == 25
    assert seen_at_call[0] <= 3 * 2  # before: all 50 rows were read before the first call
    assert taken == list(range(50))


def test_a_ranked_label_is_the_answer_in_every_data_format() -> None:
    """A rank-classifying runner (``--model hf:gemma3``) replies with the bare label: under the
    JSON or XML data format that reply is the answer when the call lists its labels, and stays
    unparsable when it does not."""
    from sammo_core import DataTable, GenerateText, InputData, MetaPrompt, Output, ScriptedRunner
    from sammo_core.graph import compile as compile_program

    data = DataTable(["Is it wet?", "Is it dry?"], ["yes", "no"])
    for data_format in ("json", "xml", "plain"):
        predictions = {}
        for labels in ([], ["yes", "no"]):
            program = Output(
                GenerateText(MetaPrompt([InputData()], data_format=data_format), labels=labels)
            )
            runner = ScriptedRunner(rules={"wet": "yes", "dry": "no"})
            rows = compile_program(program).run_sync(data, runner)
            predictions[bool(labels)] = [row.prediction for row in rows]
        assert predictions[True] == ["yes", "no"], data_format
        if data_format != "plain":
            assert predictions[False] == [None, None], data_format


def _young_collections(work: Callable[[], object]) -> int:
    """How many times the garbage collector collected its youngest generation during work."""
    seen = [0]

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 0:
            seen[0] += 1

    gc.callbacks.append(count)
    try:
        work()
    finally:
        gc.callbacks.remove(count)
    return seen[0]


def test_a_long_run_keeps_the_garbage_collector_out_of_the_way() -> None:
    # Every row allocates dozens of short-lived containers: at CPython's default threshold
    # (700) the collector ran every few rows, and swept the finished rows again and again.
    program = Output(GenerateText(MetaPrompt([Section("Task", ["Say hi."]), InputData()])))
    data = DataTable([f"q{i}" for i in range(20_000)])
    graph = compile(program)
    before = gc.get_threshold()
    results: list[ResultTable] = []
    runs = _young_collections(
        lambda: results.append(graph.run_sync(data, ScriptedRunner(default="hi")))
    )
    assert len(results[0]) == 20_000
    assert runs <= 20_000 * 40 // YOUNG_GC_THRESHOLD  # at most 40 allocations a row apart
    assert gc.get_threshold() == before  # the process's setting is back as it was


def test_overlapping_runs_restore_the_collector_setting_once_all_end() -> None:
    program = Output(GenerateText(MetaPrompt([Section("Task", ["Say hi."]), InputData()])))
    graph = compile(program)
    before = gc.get_threshold()
    seen: list[int] = []

    class Watch(ScriptedRunner):
        async def generate(self, request: LLMRequest) -> LLMResult:
            seen.append(gc.get_threshold()[0])
            return await super().generate(request)

    async def both() -> None:
        await asyncio.gather(
            graph.run(DataTable(["a", "b"]), Watch(default="x", latency=0.01)),
            graph.run(DataTable(["c"] * 5), Watch(default="y", latency=0.002)),
        )

    asyncio.run(both())
    assert min(seen) >= YOUNG_GC_THRESHOLD and len(seen) == 7
    assert gc.get_threshold() == before
