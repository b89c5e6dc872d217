"""The compiler: a program becomes a content-addressed function graph.

``compile(program)`` walks the component tree into a networkx ``DiGraph`` whose nodes are the
components (keyed by their path in the program) and whose edges are data dependencies (child
-> parent: a child's text flows into its parent). Each node carries a content hash covering its
parameters and its children's hashes, so equal programs hash equal, and a flag saying whether it
depends on the current input. Static nodes render once per run, however many inputs there are;
a :class:`~sammo_core.context.RenderCache` passed to several runs keeps them across programs.
Each run compiles the call into a :class:`~sammo_core.plan.RenderPlan` (static text and per-call
slots), so a call's prompt is filled in without walking the tree.

>>> import asyncio
>>> from sammo_core import DataTable, ScriptedRunner, Output, GenerateText, MetaPrompt
>>> from sammo_core import Section, InputData
>>> program = Output(GenerateText(MetaPrompt([Section("Task", ["Say hi."]), InputData()])))
>>> graph = compile(program)
>>> results = graph.run_sync(DataTable(["a", "b"]), ScriptedRunner(default="hi"))
>>> results.predictions
['hi', 'hi']
>>> graph.render_counts["Section"]
1
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import hashlib
import itertools
import math
import re
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

import orjson

from renderers import Block, Text
from sammo_core.aio import run_keeping
from sammo_core.components import Component, GenerateText, InputData, MetaPrompt, Output, Section
from sammo_core.context import NotPlannable, Planning, RenderCache, RunContext, RunState
from sammo_core.data import DataTable, Row
from sammo_core.errors import ConfigError, RunnerError, TemplateError
from sammo_core.results import ResultRow, ResultTable
from sammo_core.runners.base import LLMResult, Runner
from sammo_core.runners.pricing import estimate_cost
from sammo_core.scoring import (
    CONTENT_FREE_INPUTS,
    content_free_input,
    fit_prior,
    label_distribution,
    most_likely,
)
from sammo_core.soft_tensor import SoftTensor

if TYPE_CHECKING:
    import networkx as nx

    from sammo_core.plan import RenderPlan

__all__ = ["Change", "FunctionGraph", "compile", "content_hash", "render_node"]

#: What a run reports as rows finish: (rows done, rows in all). A search reports its own
#: progress (:data:`search.base.ProgressCallback`).
RowProgress = Callable[[int, int], None]


def _canonical(value: Any, memo: dict[int, str] | None = None) -> Any:
    """``value`` as JSON-ready data for hashing; ``memo`` holds hashes of nodes done already."""
    if isinstance(value, DataTable):
        return {"DataTable": value.content_hash()}
    if isinstance(value, SoftTensor):
        return {"SoftTensor": value.digest}
    if isinstance(value, Component):
        known = None if memo is None else memo.get(id(value))
        return {"node": known if known is not None else _content_hash(value, memo)}
    if isinstance(value, (list, tuple)):
        return [_canonical(v, memo) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v, memo) for k, v in value.items()}
    return value


def _params(node: Component) -> dict[str, Any]:
    return {k: v for k, v in node.sym_init_args.items() if k != "id" and k not in node.child_fields}


def _digest(obj: Any) -> str:
    return hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def own_hash(node: Component) -> str:
    """Hash of a node's own parameters (children and id excluded)."""
    return _digest([type(node).__name__, _canonical(_params(node))])


def content_hash(node: Component) -> str:
    """Hash of a node's parameters and its children's hashes; ids are labels and excluded.

    >>> from sammo_core import Section
    >>> content_hash(Section("A", ["x"])) == content_hash(Section("A", ["x"], id="other"))
    True
    """
    return _content_hash(node, None)


def _content_hash(node: Component, memo: dict[int, str] | None) -> str:
    children = {name: _canonical(node.sym_getattr(name), memo) for name in node.child_fields}
    return _digest([type(node).__name__, _canonical(_params(node), memo), children])


def _hashes(node: Component, memo: dict[int, str]) -> tuple[str, str]:
    """``(content_hash(node), own_hash(node))``, children's hashes read from ``memo``."""
    params = _canonical(_params(node), memo)
    children = {name: _canonical(node.sym_getattr(name), memo) for name in node.child_fields}
    name = type(node).__name__
    return _digest([name, params, children]), _digest([name, params])


@dataclasses.dataclass(frozen=True)
class Change:
    """One difference between two graphs, by node path."""

    kind: str  # "added" | "removed" | "changed"
    path: str
    before: str | None
    after: str | None

    def __str__(self) -> str:
        if self.kind == "changed":
            return f"~ {self.path or '<root>'}: {self.before} -> {self.after}"
        sign = "+" if self.kind == "added" else "-"
        return f"{sign} {self.path or '<root>'}: {self.after or self.before}"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _walk(
    node: Component, path: str = "", parent: str | None = None
) -> Iterator[tuple[str, Component, str | None]]:
    """Yield ``(path, node, parent_path)`` depth-first, parents before children."""
    yield path, node, parent
    for name in node.child_fields:
        value = node.sym_getattr(name)
        if isinstance(value, list):
            for i, child in enumerate(value):
                if isinstance(child, Component):
                    yield from _walk(child, f"{_join(path, name)}[{i}]", path)
        elif isinstance(value, Component):
            yield from _walk(value, _join(path, name), path)


class FunctionGraph:
    """A compiled program: nodes, dependencies, hashes, and the ability to run."""

    def __init__(self, program: Output) -> None:
        if not isinstance(program, Output):
            raise ConfigError(
                f"compile() needs an Output at the root of the program; got "
                f"{type(program).__name__} (wrap it: Output(GenerateText(prompt)))"
            )
        import networkx  # deferred: keeps `import sammo_core` light

        self.program = program
        self.graph: nx.DiGraph = networkx.DiGraph()
        self._hash_by_id: dict[int, str] = {}
        static: set[int] = set()
        calling: set[int] = set()  # nodes that make LLM calls, or hold one that does
        nodes = list(_walk(program))
        for path, node, parent in reversed(nodes):  # children before parents
            # Children are hashed before their parents, so each node's subtree is hashed once.
            digest, own = _hashes(node, self._hash_by_id)
            self._hash_by_id[id(node)] = digest
            children = list(node.children_nodes())
            dynamic = node.depends_on_input() or any(id(c) not in static for c in children)
            if not dynamic:
                static.add(id(node))
            if isinstance(node, GenerateText) or any(id(c) in calling for c in children):
                calling.add(id(node))
            self.graph.add_node(path, node=node, hash=digest, own_hash=own, static=not dynamic)
            if parent is not None:
                self.graph.add_edge(path, parent)
        self.static_ids = frozenset(static)
        self._calling_ids = frozenset(calling)
        self.hash = self._hash_by_id[id(program)]
        self.input_format = self._input_format()
        self._renders: dict[int, int] = {}

    def _input_format(self) -> str:
        inherited: dict[int, str] = {}
        for path, node, parent in _walk(self.program):
            fmt = "plain" if parent is None else inherited[id(self.graph.nodes[parent]["node"])]
            if isinstance(node, (MetaPrompt, InputData)) and node.data_format:
                fmt = node.data_format
            inherited[id(node)] = fmt
            if isinstance(node, InputData) and path.startswith("child.prompt"):
                return fmt
        return "plain"

    # -- inspection -------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.graph.number_of_nodes())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FunctionGraph) and other.hash == self.hash

    def __hash__(self) -> int:
        return hash(self.hash)

    def __repr__(self) -> str:
        return f"FunctionGraph(hash={self.hash!r}, nodes={len(self)})"

    def node_hash(self, node: Component) -> str:
        return self._hash_by_id[id(node)]

    @property
    def render_counts(self) -> dict[str, int]:
        """How often nodes of each type were built in the last run."""
        counts: dict[str, int] = {}
        for path, data in self.graph.nodes(data=True):
            name = type(data["node"]).__name__
            counts[name] = counts.get(name, 0) + self.renders(path)
        return counts

    def renders(self, path: str) -> int:
        """How often the node at ``path`` was built in the last run."""
        return self._renders.get(id(self.graph.nodes[path]["node"]), 0)

    def is_static(self, path: str) -> bool:
        return bool(self.graph.nodes[path]["static"])

    def diff(self, other: FunctionGraph) -> list[Change]:
        """Nodes added, removed or changed (own parameters) from ``self`` to ``other``.

        >>> from sammo_core import Output, GenerateText, MetaPrompt, Section
        >>> a = compile(Output(GenerateText(MetaPrompt([Section("A", ["x"])]))))
        >>> b = compile(Output(GenerateText(MetaPrompt([Section("B", ["x"])]))))
        >>> [str(c) for c in a.diff(b)]
        ["~ child.prompt.children[0]: Section 'A' -> Section 'B'"]
        """
        mine, theirs = self.graph.nodes, other.graph.nodes
        changes: list[Change] = []
        for path in sorted(set(mine) | set(theirs), key=_path_key):
            if path not in theirs:
                changes.append(Change("removed", path, mine[path]["node"].label(), None))
            elif path not in mine:
                changes.append(Change("added", path, None, theirs[path]["node"].label()))
            elif mine[path]["own_hash"] != theirs[path]["own_hash"]:
                before, after = mine[path]["node"], theirs[path]["node"]
                changes.append(Change("changed", path, before.label(), after.label()))
        return changes

    def to_dot(self) -> str:
        """Graphviz DOT; edges point along the data flow (child -> parent)."""
        ids = {path: f"n{i}" for i, path in enumerate(self.graph.nodes)}
        lines = ["digraph program {", "  rankdir=BT;", "  node [shape=box];"]
        for path, data in self.graph.nodes(data=True):
            label = data["node"].label().replace("\\", "\\\\").replace('"', '\\"')
            style = "" if data["static"] else ", style=bold"
            lines.append(f'  {ids[path]} [label="{label}"{style}];')
        lines.extend(f"  {ids[a]} -> {ids[b]};" for a, b in self.graph.edges)
        lines.append("}")
        return "\n".join(lines)

    def to_mermaid(self) -> str:
        """Mermaid flowchart source; dynamic nodes are drawn with rounded corners."""
        ids = {path: f"n{i}" for i, path in enumerate(self.graph.nodes)}
        lines = ["flowchart BT"]
        for path, data in self.graph.nodes(data=True):
            label = data["node"].label().replace('"', "#quot;")
            left, right = ('["', '"]') if data["static"] else ('("', '")')
            lines.append(f"  {ids[path]}{left}{label}{right}")
        lines.extend(f"  {ids[a]} --> {ids[b]}" for a, b in self.graph.edges)
        return "\n".join(lines)

    # -- running ----------------------------------------------------------------------------

    def _state(self, runner: Runner | None, cache: RenderCache | None = None) -> RunState:
        return RunState(
            runner,
            self.static_ids,
            self._hash_by_id,
            cache,
            no_share=self._calling_ids,
            render=render_node,
        )

    async def render_plan(self, constants: Mapping[str, Any] | None = None) -> RenderPlan | None:
        """The :class:`~sammo_core.plan.RenderPlan` a run fills in, or ``None`` if the tree is
        walked for every call instead (nested calls, custom components; see the plan module).
        """
        from sammo_core.plan import compile_plan

        ctx = RunContext(self._state(None), (), "plain", constants or {})
        return await compile_plan(self.program.child, ctx)

    async def requests_digest(
        self, data: DataTable, render_cache: RenderCache | None = None
    ) -> str | None:
        """A digest of everything a run of this program on ``data`` depends on, made without
        a call: every request it would send, and how answers become predictions (parser,
        verbalizer, calibration). Programs with equal digests give equal result tables, even
        when they differ as trees (say, two section formats that render the same text).

        ``None`` when the requests cannot be known before calling: a program whose prompt
        holds the answer of another call, or one the render plan cannot cover.
        """
        from sammo_core.plan import compile_plan

        program, call, constants = self.program, self.program.child, data.constants
        if self._calling_ids - {id(program), id(call)}:
            return None  # nested calls: later prompts hold earlier answers
        state = self._state(None, render_cache)
        render_plan = await compile_plan(call, RunContext(state, (), "plain", constants))
        if render_plan is None:
            return None
        digest = hashlib.sha256()
        head = {
            "parser": program.parser,
            "inputs_per_call": program.inputs_per_call,
            "calibration": program.calibration,
            "label_prior": list(program.label_prior),
            "verbalizer": list(call.verbalizer),
            "labels": [str(x) for x in call.labels],
            "input_format": self.input_format,
        }
        digest.update(orjson.dumps(head))
        for batch in _batches(data, program.inputs_per_call):
            request = render_plan.request(RunContext(state, batch, "plain", constants))
            if request is None:
                return None  # the tree would render this row differently: not known cheaply
            digest.update(orjson.dumps(request.to_dict(), option=orjson.OPT_SORT_KEYS))
        return digest.hexdigest()

    async def run(  # noqa: PLR0915 - one run's steps, each short
        self,
        data: DataTable,
        runner: Runner,
        *,
        max_concurrency: int = 32,
        on_progress: RowProgress | None = None,
        on_rows: Callable[[list[ResultRow]], None] | None = None,
        on_error: Literal["fail", "skip"] = "fail",
        render_cache: RenderCache | None = None,
        plan: bool = True,
    ) -> ResultTable:
        """Render, call and parse every row of ``data``; rows come back in input order.

        Inputs are packed ``inputs_per_call`` to a call; at most ``max_concurrency`` calls
        are in flight (runners may limit further). ``on_rows`` is told about each call's rows
        as soon as they are done, so a caller keeps them even if a later row fails. A call
        that fails for good (:class:`~sammo_core.errors.RunnerError` after its retries, or a
        :class:`~sammo_core.errors.TemplateError`) stops the run with ``on_error="fail"``;
        with ``"skip"`` its rows are kept with ``error`` set and no prediction.

        ``render_cache`` keeps rendered static parts across runs (give one to the runs of
        related programs). Prompts are filled in from a compiled
        :class:`~sammo_core.plan.RenderPlan`; ``plan=False`` walks the component tree for every
        call instead (the same prompts, byte for byte; slower).
        """
        from sammo_core.parsing import parse_output
        from sammo_core.plan import compile_plan

        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be >= 1; got {max_concurrency}")
        if on_error not in ("fail", "skip"):
            raise ConfigError(f"on_error must be 'fail' or 'skip'; got {on_error!r}")
        program, call, constants = self.program, self.program.child, data.constants
        parser, input_format = program.parser, self.input_format
        state = self._state(runner, render_cache)
        total, size = len(data), program.inputs_per_call
        count = -(-total // size)  # batches of ``size`` rows, the last one maybe shorter
        render_plan = None
        if plan and count:
            render_plan = await compile_plan(call, RunContext(state, (), "plain", constants))
        planned = done = 0
        # Several inputs per call answer in one text: none is one label, so they generate.
        scored = _Scoring.of(program) if program.inputs_per_call == 1 else None
        if scored is not None and scored.calibrate and not scored.prior and count:
            like = data[0].input
            scored.prior = await _fit_prior(call, state, constants, render_plan, like)

        async def run_batch(batch: tuple[Row, ...]) -> list[ResultRow]:
            nonlocal done, planned
            ctx = RunContext(state, batch, "plain", constants)
            prompt = ""
            try:
                request = None if render_plan is None else render_plan.request(ctx)
                if request is None:
                    request = await call.request(ctx)
                else:
                    planned += 1
                if request.labels and scored is None:  # several answers: none is one label
                    request = dataclasses.replace(request, labels=())
                prompt = request.prompt_text
                result = await ctx.call(request)
            except (RunnerError, TemplateError) as exc:
                if on_error == "fail":
                    raise
                done_rows = _failed_rows(batch, prompt, ctx.results, f"{exc}")
            else:
                distribution = None
                if result.scored and scored is not None and len(batch) == 1:
                    # Rank classification: the label itself is the answer, in no data
                    # format's wrapping (JSON, XML); with calibration, the prior's share too.
                    distribution = scored.distribution(request.labels, result.label_logprobs)
                    predictions = [most_likely(distribution)]
                else:
                    predictions = parse_output(parser, result.text, len(batch), input_format)
                    if len(batch) == 1 and predictions[0] is None and result.text in request.labels:
                        predictions = [result.text]  # a bare label, outside any data format
                    if call.verbalizer:
                        predictions = [call.gold_label(p) for p in predictions]
                done_rows = _rows_for(batch, prompt, result, ctx.results, predictions, distribution)
            done += len(batch)
            if on_rows is not None:
                on_rows(done_rows)
            if on_progress is not None:
                on_progress(done, total)
            return done_rows

        try:
            with young_collections_every(YOUNG_GC_THRESHOLD):
                per_batch = await _run_pool(_batches(data, size), count, run_batch, max_concurrency)
        finally:
            if render_plan is not None:
                for node_id in render_plan.dynamic_ids:
                    state.render_counts[node_id] += planned
            self._renders = dict(state.render_counts)
        prior = None if scored is None or not scored.calibrate else scored.prior
        return ResultTable.from_rows([r for rows_ in per_batch for r in rows_], prior)

    def run_sync(self, data: DataTable, runner: Runner, **kwargs: Any) -> ResultTable:
        """Blocking :meth:`run`, for scripts without an event loop."""
        return run_keeping(self.run(data, runner, **kwargs))


#: Allocations between two collections of the garbage collector's youngest generation while a
#: run is on (CPython's default: 700). Each row of a run allocates dozens of short-lived
#: containers; at the default the collector runs every few rows and, as the finished rows pile
#: up, its older generations grow: at 100,000 rows about 4 µs of CPU per row, against 1 µs here.
YOUNG_GC_THRESHOLD = 10_000
_young_gc_lock = threading.Lock()
_young_gc_users = 0
_young_gc_saved: tuple[int, int, int] | None = None


@contextlib.contextmanager
def young_collections_every(allocations: int) -> Iterator[None]:
    """Collect the youngest generation at most every ``allocations`` allocations in this block.

    The threshold is the process's; blocks may nest and overlap (the runs of a search): the
    first raises it (never lowers it), the last one out restores the one it found, unless
    someone set another meanwhile.

    >>> before = gc.get_threshold()
    >>> with young_collections_every(50_000):
    ...     inside = gc.get_threshold()[0]
    >>> inside >= 50_000, gc.get_threshold() == before
    (True, True)
    """
    global _young_gc_users, _young_gc_saved
    with _young_gc_lock:
        if _young_gc_users == 0:
            current = gc.get_threshold()
            if current[0] < allocations:
                _young_gc_saved = current
                gc.set_threshold(allocations, current[1], current[2])
        _young_gc_users += 1
    try:
        yield
    finally:
        with _young_gc_lock:
            _young_gc_users -= 1
            saved, ours = _young_gc_saved, gc.get_threshold()
            if _young_gc_users == 0 and saved is not None:
                _young_gc_saved = None
                if ours == (allocations, saved[1], saved[2]):  # nobody changed it since
                    gc.set_threshold(*saved)


def _batches(data: DataTable, size: int) -> Iterator[tuple[Row, ...]]:
    """The rows of ``data`` in tuples of ``size``, made as they are taken: a run holds no
    list of all rows or batches, which would only keep the garbage collector busy."""
    rows = iter(data)
    while batch := tuple(itertools.islice(rows, size)):
        yield batch


async def _run_pool(
    batches: Iterator[tuple[Row, ...]],
    count: int,
    run_batch: Callable[[tuple[Row, ...]], Awaitable[list[ResultRow]]],
    max_concurrency: int,
) -> list[list[ResultRow]]:
    """Run the ``count`` batches, at most ``max_concurrency`` at a time; results in order.

    A fixed pool of workers takes the batches in order, rather than a task per batch, so
    memory stays flat however many rows there are. A TaskGroup cancels the other calls as soon
    as one fails (say, on a budget); the first failure is raised as it is.
    """
    per_batch: list[list[ResultRow]] = [[]] * count  # each slot replaced by its batch's rows
    queue = enumerate(batches)

    async def worker() -> None:
        for i, batch in queue:
            per_batch[i] = await run_batch(batch)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(max_concurrency, count)):
                group.create_task(worker())
    except BaseExceptionGroup as failure:
        raise failure.exceptions[0] from None
    return per_batch


def _rows_for(  # noqa: PLR0917 - the batch's parts, in the order a run has them
    batch: tuple[Row, ...],
    prompt: str,
    result: LLMResult,
    results: list[LLMResult],
    predictions: list[Any],
    distribution: dict[str, float] | None = None,
) -> list[ResultRow]:
    """One row per input of ``batch``, each with a 1/k share of the batch's calls."""
    shares = _shares(results, len(batch))
    text, cached, cut_off = result.text, result.cached, result.cut_off
    estimated = result.usage_estimated
    return [
        ResultRow(
            row.index,
            row.input,
            row.output,
            prompt,
            text,
            prediction,
            *shares[:3],
            cached,
            *shares[3:],
            None,
            distribution,
            cut_off,
            estimated,
        )
        for row, prediction in zip(batch, predictions, strict=True)
    ]


@dataclasses.dataclass
class _Scoring:
    """How a call with labels turns scores into a label distribution: verbalizer words back to
    labels, and the calibration prior (fitted once per run, or given by the program)."""

    call: GenerateText
    calibrate: bool
    prior: dict[str, float] | None

    @classmethod
    def of(cls, program: Output) -> _Scoring | None:
        call = program.child
        if not call.labels:
            return None
        labels = [str(x) for x in call.labels]
        given = list(program.label_prior)
        prior = dict(zip(labels, given, strict=True)) if given else None
        return cls(call, program.calibration != "none", prior)

    def distribution(self, words: tuple[str, ...], logprobs: tuple[float, ...]) -> dict[str, float]:
        labels = [self.call.gold_label(w) for w in words]
        return label_distribution(labels, logprobs, self.prior if self.calibrate else None)


async def _fit_prior(
    call: GenerateText,
    state: RunState,
    constants: Mapping[str, Any],
    render_plan: RenderPlan | None,
    like: Any,
) -> dict[str, float]:
    """The label prior: the mean label distribution of the content-free inputs, run through
    the program as any row is (their calls are counted as the run's spending)."""
    scored: list[tuple[float, ...]] = []
    words: tuple[str, ...] = ()
    for i, text in enumerate(CONTENT_FREE_INPUTS):
        ctx = RunContext(
            state, (Row(-1 - i, content_free_input(text, like), None),), "plain", constants
        )
        request = None if render_plan is None else render_plan.request(ctx)
        if request is None:
            request = await call.request(ctx)
        result = await ctx.call(request)
        if not result.scored:
            raise ConfigError(
                f"calibration needs scored answers, but model {result.model or 'unknown'!r} "
                f"generated text ({result.text[:40]!r}) instead of scoring the labels "
                f"{list(request.labels)}; use a runner that scores labels (local, local:gemma3, "
                "hf:..., a completions server with log-probabilities) or calibration='none'"
            )
        words, scored = request.labels, [*scored, result.label_logprobs]
    return fit_prior([call.gold_label(w) for w in words], scored)


def _failed_rows(
    batch: tuple[Row, ...], prompt: str, results: list[LLMResult], error: str
) -> list[ResultRow]:
    """Rows of a batch whose call failed for good, charged what its finished calls cost."""
    shares = _shares(results, len(batch))
    return [
        ResultRow(
            row.index,
            row.input,
            row.output,
            prompt,
            "",
            None,
            *shares[:3],
            False,
            *shares[3:],
            error=error,
        )
        for row in batch
    ]


_Shares = tuple[float, float, float, float, float, float, float, float]


def _shares(results: list[LLMResult], k: int) -> _Shares:
    """One row's 1/k share of ``results``: calls, prompt and completion tokens, dollars (the
    program's cost, cache hits included: a hit carries the token counts of the call it stands
    for), then the same four for what was spent (only the calls that reached the model).
    """
    if len(results) == 1 and not any(results[0].overhead):  # the common case: one call
        [only] = results
        tokens = (only.prompt_tokens / k, only.completion_tokens / k)
        cost = (only.calls / k, *tokens, _price(only) / k)
        return (*cost, 0.0, 0.0, 0.0, 0.0) if only.cached else (*cost, *cost)
    spent = [r for r in results if not r.cached]
    # What was spent adds the runners' own overhead (a probe), which the program's cost leaves out.
    extra = [sum(r.overhead[i] for r in spent) for i in range(3)]
    return (
        sum(r.calls for r in results) / k,
        sum(r.prompt_tokens for r in results) / k,
        sum(r.completion_tokens for r in results) / k,
        math.fsum(_price(r) for r in results) / k,
        (sum(r.calls for r in spent) + extra[0]) / k,
        (sum(r.prompt_tokens for r in spent) + extra[1]) / k,
        (sum(r.completion_tokens for r in spent) + extra[2]) / k,
        math.fsum(_price(r) for r in spent) / k,
    )


def _price(result: LLMResult) -> float:
    """The result's dollars: the runner's figure, else the price list's (0 when unpriced)."""
    if result.cost_usd:
        return result.cost_usd
    return estimate_cost(result.model, result.prompt_tokens, result.completion_tokens) or 0.0


def _path_key(path: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path)]


async def render_node(node: Component, ctx: RunContext) -> tuple[Block, ...]:
    """Build ``node``'s blocks, once per run for static nodes (keyed by content hash)."""
    state = ctx.state
    node_id = id(node)
    static = node_id in state.static_ids
    if state.planning is not None and not static:
        return await _plan_node(node, ctx, state.planning)

    async def build() -> tuple[Block, ...]:
        state.render_counts[node_id] += 1
        return await node.build(ctx)

    if static and not isinstance(node, Output):
        key = (state.hashes[node_id], ctx.data_format)
        return await state.once(key, build, share=node_id not in state.no_share)
    return await build()


# Containers whose build a plan may run with placeholders: they only lay out their children.
_LAYOUT_BUILDS = (Section.build, MetaPrompt.build)


async def _plan_node(node: Component, ctx: RunContext, planning: Planning) -> tuple[Block, ...]:
    """While planning: a placeholder for an input-dependent node, its layout for a container."""
    if node.depends_on_input():
        slot = node.slot(ctx.data_format)
        if slot is None:
            raise NotPlannable(f"{type(node).__name__} has no slot")
        planning.dynamic_ids.append(id(node))
        return (Text(planning.placeholder(slot)),)
    if type(node).build not in _LAYOUT_BUILDS:
        raise NotPlannable(f"{type(node).__name__} is not a layout node")
    planning.dynamic_ids.append(id(node))
    return await node.build(ctx)


def compile(program: Output) -> FunctionGraph:
    """Compile ``program`` into a :class:`FunctionGraph`."""
    return FunctionGraph(program)
