"""The program model: prompt components as immutable pyglove symbolic objects.

A program is a tree rooted at :class:`Output`, whose child :class:`GenerateText` makes the LLM
call with a prompt built from :class:`MetaPrompt`, :class:`Section`, :class:`Paragraph`,
:class:`Examples`, :class:`InputData` and :class:`Template` nodes. Every node may carry an ``id``
for selectors; ids label nodes and do not change behaviour.

A plain string may stand for a :class:`Paragraph` wherever a child component goes: it becomes
one when the node is built, rebound or loaded (old files that stored strings load the same
way). So every piece of text a program renders is a node that hashing, diffs, selectors and
mutators see alike, and ``Section("T", ["x"])`` equals ``Section("T", [Paragraph("x")])``.

>>> from sammo_core.data import DataTable
>>> program = Output(GenerateText(MetaPrompt([
...     Section("Task", ["Answer yes or no."]),
...     Section("Input", [InputData()]),
... ])))
>>> print(program)
Output()
└── GenerateText(temperature=0.0, seed=0)
    └── MetaPrompt()
        ├── Section 'Task'
        │   └── 'Answer yes or no.'
        └── Section 'Input'
            └── InputData()

Each component implements one coroutine, ``build(ctx)``, returning document blocks (see
:mod:`renderers.document`). Whether a node depends on the current input is declared by
``depends_on_input()``; the compiler uses it to render static parts once per program.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from typing import Any, cast

import orjson
import pyglove as pg

from renderers import (
    DATA_FORMATS,
    SECTION_FORMATS,
    Block,
    Record,
    SectionBlock,
    Text,
    get_data_format,
    get_section_format,
)
from sammo_core.context import RunContext, Slot
from sammo_core.data import DataTable
from sammo_core.errors import ConfigError
from sammo_core.runners.base import MODES, LLMRequest, Message, Mode

__all__ = [
    "CALIBRATIONS",
    "OUTPUT_PARSERS",
    "Component",
    "Examples",
    "GenerateText",
    "InputData",
    "MetaPrompt",
    "Output",
    "Paragraph",
    "Section",
    "Template",
    "stable_type_name",
]

Blocks = tuple[Block, ...]
#: How :class:`Examples` picks its rows (see there).
EXAMPLE_SELECTIONS = ("first", "random", "balanced", "knn")
#: How :class:`Examples` orders the rows it picked: as picked, reversed, or shuffled.
EXAMPLE_ORDERS = ("as_selected", "reversed", "shuffled")
OUTPUT_PARSERS = ("auto", "raw", "first_line", "json")
#: ``none``: labels are decided by the model's scores as they are. ``content_free``: the label
#: prior the model shows on content-free inputs (Zhao et al. 2021) is divided out first.
CALIBRATIONS = ("none", "content_free")
#: The most inputs one call may pack (``Output.inputs_per_call``): more would not fit any
#: model's context, and a larger number read from a damaged file must not reach ``islice``.
MAX_INPUTS_PER_CALL = 10_000


def balanced_draw(labels: Sequence[Any], n: int, seed: int) -> list[int]:
    """Indices of ``n`` rows whose ``labels`` are as equally represented as possible.

    Round robin over the distinct labels in the order they first appear; each label's rows
    are shuffled by ``seed`` and taken in that order. Label counts differ by at most one
    until a label runs out of rows.

    >>> balanced_draw(["yes", "yes", "yes", "no"], 3, seed=0)
    [0, 3, 2]
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an int; got {seed!r}")
    groups: dict[bytes, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(orjson.dumps(label, option=orjson.OPT_SORT_KEYS), []).append(index)
    rng = random.Random(seed)
    pools = []
    for rows in groups.values():
        rng.shuffle(rows)
        pools.append(rows)
    picked: list[int] = []
    for depth in range(max(map(len, pools), default=0)):
        picked.extend(rows[depth] for rows in pools if depth < len(rows))
    return picked[:n]


def _check_choice(kind: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {kind} {value!r}; use one of: {', '.join(sorted(choices))}")


def _check_data_format(value: str | None) -> None:
    if value is not None:
        _check_choice("data format", value, tuple(DATA_FORMATS))


def _has_hyper_fields(node: pg.Object) -> bool:
    """Whether a field holds a search-space choice (``pg.oneof``...), checked once concrete."""
    return any(isinstance(v, pg.hyper.HyperValue) for v in node.sym_init_args.values())


def _as_node(value: Any) -> Any:
    """A plain string given for a child component becomes a :class:`Paragraph`."""
    return Paragraph(value) if isinstance(value, str) else value


def _strings_as_paragraphs(spec: Any) -> Any:
    """``spec`` with every place that takes a :class:`Component` storing strings as Paragraphs.

    Lists are rewritten item by item, so ``rebind({"children[0]": "text"})`` converts too.
    """
    if isinstance(spec, pg.typing.List):
        return pg.typing.List(_strings_as_paragraphs(spec.element.value), default=spec.default)
    options = spec.candidates if isinstance(spec, pg.typing.Union) else [spec]
    if not any(isinstance(o, pg.typing.Object) and o.cls is Component for o in options):
        return spec  # e.g. Output.child: a GenerateText, never a paragraph
    node = pg.typing.Object(Component, transform=_as_node)
    return node.noneable() if spec.is_noneable else node


def _short(text: str, limit: int = 48) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def stable_type_name(cls: type) -> str:
    """The name a saved program gives a built-in class: ``sammo_core.`` and the class name.

    >>> stable_type_name(Section)
    'sammo_core.Section'
    """
    return f"sammo_core.{cls.__name__}"


class Component(pg.Object):  # type: ignore[misc]  # pyglove ships no type stubs
    """Base class of every program node.

    Subclasses declare typed fields (pyglove annotations) and implement :meth:`build`. Nodes
    are immutable by convention: edit a copy with ``pg.clone(node, override={path: value})``.
    """

    id: str | None = None

    #: Field names holding child components (or lists of them), in render order. Not
    #: annotated on purpose: pyglove turns annotated class attributes into fields. A string
    #: given for one of these fields (or one of its items) is stored as a :class:`Paragraph`.
    child_fields = cast("tuple[str, ...]", ())
    #: Whether this node is a soft prompt (learned embeddings sent with its call, see
    #: :mod:`sammo_core.soft`); such a node answers :meth:`soft_values`. Not annotated, so
    #: not a field.
    is_soft_prompt = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Saved programs name the built-in components by a stable name, "sammo_core.Section",
        # not by the module that happens to define them: moving a class between modules
        # breaks no file. Files written with the module path still load (an alias).
        if cls.__module__.startswith("sammo_core.") and not cls.__name__.startswith("_"):
            cls.register_for_deserialization(
                stable_type_name(cls), additional_keys=[f"{cls.__module__}.{cls.__qualname__}"]
            )

    @classmethod
    def _end_annotation_inference(cls, fields: list[Any]) -> list[Any]:
        # pyglove's hook for editing the fields inferred from annotations: child fields get
        # value specs that turn plain strings into Paragraph nodes before type checking.
        fields = super()._end_annotation_inference(fields)
        return [
            pg.typing.Field(f.key, _strings_as_paragraphs(f.value), f.description, f.metadata)
            if f.key in cls.child_fields
            else f
            for f in fields
        ]

    async def build(self, ctx: RunContext) -> Blocks:
        """Return the document blocks this node contributes for ``ctx.inputs``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement build()")

    def depends_on_input(self) -> bool:
        """Whether this node itself (children aside) renders differently per input."""
        return False

    def slot(self, data_format: str) -> Slot | None:
        """For a node that depends on the input: a function from the call to its text.

        A node whose :meth:`build` returns one ``Text`` for every input may return the
        function that computes that text, with its parameters read once here, so compiled
        programs fill it in per call without building the node (see :mod:`sammo_core.plan`).
        ``data_format`` is the one inherited at the node. ``None`` (the default): not possible.
        """
        return None

    def soft_values(self) -> Any:
        """The learned values a soft prompt node sends with its call (see ``is_soft_prompt``)."""
        raise ConfigError(f"{type(self).__name__} is not a soft prompt")

    def children_nodes(self) -> Iterator[Component]:
        """Direct child components in render order."""
        for name in self.child_fields:
            value = self.sym_getattr(name)
            if isinstance(value, Component):
                yield value
            elif isinstance(value, list):
                yield from (v for v in value if isinstance(v, Component))

    def label(self) -> str:
        """A one-line description for trees, graphs and diffs."""
        schema = type(self).__schema__
        params = ", ".join(
            f"{k}={v!r}"
            for k, v in self.sym_init_args.items()
            if k not in self.child_fields
            and k != "id"
            and not isinstance(v, DataTable)
            and v != schema.get_field(k).default_value
        )
        ident = f"#{self.id} " if self.id else ""
        return f"{ident}{type(self).__name__}({params})"

    def __str__(self) -> str:
        return "\n".join(_tree_lines(self))


def _tree_lines(node: Component | str, prefix: str = "", last: bool = True, root: bool = True):  # type: ignore[no-untyped-def]
    text = repr(_short(node)) if isinstance(node, str) else node.label()
    if root:
        yield text
    else:
        yield f"{prefix}{'└── ' if last else '├── '}{text}"
    if isinstance(node, str):
        return
    children: list[Component | str] = []
    for name in node.child_fields:
        value = node.sym_getattr(name)
        if isinstance(value, list):
            children.extend(value)
        elif isinstance(value, (Component, str)) and value is not None:
            children.append(value)
    child_prefix = "" if root else prefix + ("    " if last else "│   ")
    for i, child in enumerate(children):
        yield from _tree_lines(child, child_prefix, i == len(children) - 1, root=False)


async def _build_children(children: Sequence[Component], ctx: RunContext) -> Blocks:
    blocks: list[Block] = []
    for child in children:
        blocks.extend(await ctx.render(child))
    return tuple(blocks)


def _render(section_format: str, blocks: Blocks, ctx: RunContext) -> str:
    fmt = get_section_format(section_format)
    text = fmt.render(blocks)
    if ctx.state.planning is not None:
        ctx.state.planning.rendered(fmt, text)
    return text


def _blocks_to_text(blocks: Blocks, ctx: RunContext) -> str:
    if len(blocks) == 1 and isinstance(blocks[0], Text):
        return blocks[0].text
    return _render("markdown", blocks, ctx)


@pg.use_init_args(["text"])
class Paragraph(Component):
    """A paragraph of fixed text.

    >>> Paragraph("Be brief.", id="tone").label()
    "#tone 'Be brief.'"
    """

    text: str

    async def build(self, ctx: RunContext) -> Blocks:
        return (Text(self.text),)

    def label(self) -> str:
        return f"{'#' + self.id + ' ' if self.id else ''}{_short(self.text)!r}"


@pg.use_init_args(["title", "children"])
class Section(Component):
    """A titled section; children are components (a plain string becomes a Paragraph).

    >>> rules = Section("Rules", ["Be brief.", "Be polite."], id="rules")
    >>> rules.label(), rules.children[0]
    ("#rules Section 'Rules'", Paragraph(id=None, text='Be brief.'))
    """

    title: str | None
    children: list[Component] = []

    child_fields = ("children",)

    async def build(self, ctx: RunContext) -> Blocks:
        return (SectionBlock(self.title, await _build_children(self.children, ctx)),)

    def label(self) -> str:
        return f"{'#' + self.id + ' ' if self.id else ''}Section {self.title!r}"


@pg.use_init_args(["children", "section_format", "data_format"])
class MetaPrompt(Component):
    """The prompt document: renders its children in a section format.

    ``data_format`` is inherited by :class:`Examples` and :class:`InputData` below that do not
    set their own.
    """

    children: list[Component] = []
    section_format: str = "markdown"
    data_format: str = "plain"

    child_fields = ("children",)

    def _on_bound(self) -> None:
        super()._on_bound()
        if _has_hyper_fields(self):
            return
        _check_choice("section format", self.section_format, tuple(SECTION_FORMATS))
        _check_data_format(self.data_format)

    async def build(self, ctx: RunContext) -> Blocks:
        # Soft prompts that open the prompt stay ahead of it in every section format (a JSON
        # document would put them inside a list), where a runner expects them.
        children = list(self.children)
        lead = 0
        while lead < len(children) and children[lead].is_soft_prompt:
            lead += 1
        blocks = await _build_children(children[lead:], ctx.with_data_format(self.data_format))
        text = _render(self.section_format, blocks, ctx)
        placeholders = [
            "".join(b.text for b in await ctx.render(c) if isinstance(b, Text))
            for c in children[:lead]
        ]
        return (Text("\n\n".join([*placeholders, text]) if placeholders else text),)


@pg.use_init_args(["data", "n", "selection", "seed", "data_format", "order", "order_seed"])
class Examples(Component):
    """In-context examples taken from a data table.

    ``selection``: ``first`` (the first ``n`` rows), ``random`` (``n`` rows drawn with
    ``seed``, the same for every input), ``balanced`` (``n`` rows drawn with ``seed`` so that
    the gold labels, the rows' outputs, are as equally represented as possible: round robin
    over the labels in the order they first appear in the table, each label's rows drawn by
    ``seed``; rows without an output count as one label; the same for every input) or
    ``knn`` (the ``n`` rows most similar to the current input by BM25, best first; dynamic).
    ``n=None`` takes every row.

    ``order``: ``as_selected`` (the order above), ``reversed`` (for ``knn``: the most similar
    row last, next to the input) or ``shuffled`` (a permutation drawn with ``order_seed``, the
    same for every input): the order of examples alone moves a small model's accuracy.

    >>> from sammo_core.data import DataTable
    >>> pool = DataTable(["a", "b", "c", "d", "e", "f"], ["yes", "yes", "yes", "yes", "no", "no"])
    >>> shots = Examples(pool, n=4, selection="balanced", seed=1)
    >>> shots.selected().outputs
    ('yes', 'no', 'yes', 'no')
    >>> shots.clone(override={"order": "shuffled", "order_seed": 3}).label()
    "Examples(n=4, selection='balanced', seed=1, order='shuffled', order_seed=3, rows=6)"
    """

    data: Any
    n: int | None = None
    selection: str = "first"
    seed: int = 0
    data_format: str | None = None
    order: str = "as_selected"
    order_seed: int = 0

    def _on_bound(self) -> None:
        super()._on_bound()
        if _has_hyper_fields(self):
            return
        if not isinstance(self.data, DataTable):
            raise ConfigError(
                f"Examples(data=...) needs a sammo_core.DataTable; got {type(self.data).__name__}"
                " (build one with DataTable.from_records(...) or DataTable.load(path))"
            )
        if self.n is not None and self.n < 0:
            raise ConfigError(f"Examples n must be >= 0 or None; got {self.n}")
        _check_choice("example selection", self.selection, EXAMPLE_SELECTIONS)
        _check_data_format(self.data_format)
        _check_choice("example order", self.order, EXAMPLE_ORDERS)
        if self.order_seed != 0 and self.order != "shuffled":
            raise ConfigError(
                f"Examples order_seed={self.order_seed} is used only by order='shuffled'; got "
                f"order={self.order!r} (set order='shuffled', or leave order_seed at 0)"
            )

    def depends_on_input(self) -> bool:
        return self.selection == "knn"

    def label(self) -> str:
        n = "all" if self.n is None else self.n
        seed = f", seed={self.seed}" if self.selection in ("random", "balanced") else ""
        order = f", order={self.order!r}" if self.order != "as_selected" else ""
        order += f", order_seed={self.order_seed}" if self.order == "shuffled" else ""
        fmt = f", data_format={self.data_format!r}" if self.data_format else ""
        ident = f"#{self.id} " if self.id else ""
        return (
            f"{ident}Examples(n={n}, selection={self.selection!r}{seed}{order}, "
            f"rows={len(self.data)}{fmt})"
        )

    def selected(self, query: Sequence[Any] = ()) -> DataTable:
        """The rows shown, in the order shown, for the given current inputs (used by ``knn``)."""
        table: DataTable = self.data
        n = len(table) if self.n is None else min(self.n, len(table))
        if self.selection == "first":
            rows = table[:n]
        elif self.selection == "random":
            rows = table.sample(n, seed=self.seed)
        elif self.selection == "balanced":
            rows = table.select(balanced_draw(table.outputs, n, self.seed))
        else:
            from sammo_core.retrieval import BM25Index

            rows = table.select(BM25Index.for_table(table).top_k(query, n))
        if self.order == "reversed":
            return rows.select(range(len(rows) - 1, -1, -1))
        if self.order == "shuffled":
            return rows.shuffle(seed=self.order_seed)
        return rows

    def slot(self, data_format: str) -> Slot:
        fmt = get_data_format(self.data_format or data_format)
        selected = self.selected

        def text(ctx: RunContext) -> str:
            rows = selected([r.input for r in ctx.inputs])
            records = [Record(i + 1, r.input, r.output) for i, r in enumerate(rows)]
            return fmt.render_examples(records)

        return text

    async def build(self, ctx: RunContext) -> Blocks:
        return (Text(self.slot(ctx.data_format)(ctx)),)


@pg.use_init_args(["data_format", "hint"])
class InputData(Component):
    """The current input(s). With several inputs per call each carries an id.

    ``hint`` appends the data format's one-line answer instruction when it has one.
    """

    data_format: str | None = None
    hint: bool = True

    def _on_bound(self) -> None:
        super()._on_bound()
        if _has_hyper_fields(self):
            return
        _check_data_format(self.data_format)

    def depends_on_input(self) -> bool:
        return True

    def slot(self, data_format: str) -> Slot:
        fmt = get_data_format(self.data_format or data_format)
        with_hint = self.hint
        hints: dict[int, str] = {}  # by inputs per call: a hint names only the ids 1..k

        def text(ctx: RunContext) -> str:
            if not ctx.inputs:
                raise ConfigError(
                    "InputData rendered with no current input: run the program on data"
                )
            records = [Record(i + 1, row.input) for i, row in enumerate(ctx.inputs)]
            body = fmt.render_inputs(records)
            hint = hints.get(len(records)) if with_hint else ""
            if hint is None:
                hint = hints[len(records)] = fmt.answer_hint([r.id for r in records])
            # One block, the hint a paragraph below: section formats strip the ends of blocks,
            # and whitespace ending the input (e.g. "Is it? ") is part of the prompt meant.
            return f"{body}\n\n{hint}" if hint else body

        return text

    async def build(self, ctx: RunContext) -> Blocks:
        return (Text(self.slot(ctx.data_format)(ctx)),)


_INPUT_VARS = frozenset({"input", "inputs"})


@pg.use_init_args(["text"])
class Template(Component):
    """A jinja2 template, rendered in a sandbox.

    Variables: ``input`` (the current input, when one per call), ``inputs`` (the list of
    current inputs) and ``constants`` (the data table's constants). An undefined variable
    raises :class:`~sammo_core.errors.TemplateError` naming it.
    """

    text: str

    def _on_bound(self) -> None:
        super()._on_bound()
        if _has_hyper_fields(self):
            return
        from sammo_core.templates import compile_template

        compile_template(self.text)  # fail at construction on syntax errors

    def depends_on_input(self) -> bool:
        from sammo_core.templates import template_variables

        return bool(template_variables(self.text) & _INPUT_VARS)

    def slot(self, data_format: str) -> Slot:
        from sammo_core.templates import render_template

        source, where = self.text, self.label()

        def text(ctx: RunContext) -> str:
            variables: dict[str, Any] = {"constants": dict(ctx.constants)}
            if ctx.inputs:
                variables["inputs"] = [r.input for r in ctx.inputs]
                if len(ctx.inputs) == 1:
                    variables["input"] = ctx.inputs[0].input
            return render_template(source, variables, where=where)

        return text

    async def build(self, ctx: RunContext) -> Blocks:
        return (Text(self.slot(ctx.data_format)(ctx)),)

    def label(self) -> str:
        return f"{'#' + self.id + ' ' if self.id else ''}Template({_short(self.text)!r})"


@pg.use_init_args(["prompt", "system", "temperature", "max_tokens", "seed"])
class GenerateText(Component):
    """One LLM call. Inside another prompt, it contributes the model's answer as text.

    ``max_tokens`` caps the answer. Left at ``None``, the call is sent uncapped when run on its
    own; a search caps it per input it packs (``Search(max_tokens=...)``, by default sized to
    the longest gold output), so its budget can bound every call. Set it on a call whose
    answer is longer than the gold output, such as a nested call or one that reasons first.

    ``mode="chat"`` (the default) sends the system and user messages through the model's chat
    template: for instruction-tuned models. ``mode="completion"`` sends the rendered text as it
    is, for the model to continue: for base models such as ``local:gemma3``, which never saw a
    chat template in training. The mode is a field of the program, not a guess from the model's
    metadata: it changes the prompt the model sees, so it belongs in the content hash, in exports
    and in cache keys, and the same program must send the same prompt to the embedded runner
    and to a vLLM server (whose API does not show a model's metadata). ``stop`` lists sequences
    the answer ends before: a base model that answers "yes" goes on writing the next example
    unless stopped.

    ``labels`` lists the answers to choose from, as the gold outputs write them (e.g.
    ``["yes", "no"]``): a runner that can score them (the embedded and transformers runners,
    OpenAI-compatible servers with log-probabilities, :class:`~sammo_core.ScriptedRunner` with
    ``label_scores``) returns the one most likely after the prompt with every label's
    log-probability (rank classification); other runners generate as usual. ``verbalizer``,
    when set, gives the word shown and scored for each label, in the same order (e.g.
    ``["true", "false"]`` for ``["yes", "no"]``): the model is asked to choose among those
    words and its choice is mapped back to the label. The learned embeddings of
    :class:`~sammo_core.soft.SoftPrompt` nodes in the prompt travel with the request
    (``LLMRequest.soft_prompts``).

    >>> call = GenerateText(MetaPrompt(["Q: 2+2?", "A:"]), mode="completion", stop=["\\n"])
    >>> call.label()
    "GenerateText(temperature=0.0, seed=0, mode='completion', stop=['\\\\n'])"
    """

    prompt: Component
    system: Component | str | None = None
    temperature: float = 0.0
    max_tokens: int | None = None
    seed: int = 0
    mode: str = "chat"
    stop: list[str] = []
    labels: list[str] = []
    verbalizer: list[str] = []

    child_fields = ("system", "prompt")

    def _on_bound(self) -> None:
        super()._on_bound()
        if _has_hyper_fields(self):
            return
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"temperature must be within [0, 2]; got {self.temperature}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1 or None; got {self.max_tokens}")
        _check_choice("GenerateText mode", self.mode, MODES)
        if any(not stop for stop in self.stop):
            raise ConfigError(f"stop sequences must be non-empty strings; got {list(self.stop)}")
        if any(not label for label in self.labels):
            raise ConfigError(f"labels must be non-empty strings; got {list(self.labels)}")
        if len(set(self.labels)) != len(self.labels):
            raise ConfigError(f"labels must be distinct; got {list(self.labels)}")
        if self.verbalizer:
            words = list(self.verbalizer)
            if len(words) != len(self.labels) or len(set(words)) != len(words) or not all(words):
                raise ConfigError(
                    f"verbalizer {words} must give one distinct non-empty word per label "
                    f"{list(self.labels)}, in the same order"
                )

    def label(self) -> str:
        extra = f", max_tokens={self.max_tokens}" if self.max_tokens else ""
        extra += f", mode={self.mode!r}" if self.mode != "chat" else ""
        extra += f", stop={list(self.stop)!r}" if self.stop else ""
        extra += f", labels={list(self.labels)!r}" if self.labels else ""
        extra += f", verbalizer={list(self.verbalizer)!r}" if self.verbalizer else ""
        ident = f"#{self.id} " if self.id else ""
        return f"{ident}GenerateText(temperature={self.temperature}, seed={self.seed}{extra})"

    async def request(self, ctx: RunContext) -> LLMRequest:
        """Render the messages of this call for ``ctx.inputs``."""
        messages: list[Message] = []
        if self.system is not None:
            system = (
                self.system
                if isinstance(self.system, str)
                else _blocks_to_text(await ctx.render(self.system), ctx)
            )
            messages.append(Message("system", system))
        messages.append(Message("user", _blocks_to_text(await ctx.render(self.prompt), ctx)))
        return LLMRequest(
            messages=tuple(messages),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=self.seed,
            stop=tuple(self.stop),
            mode=cast("Mode", self.mode),
            labels=self.scored_labels,
            soft_prompts=self._soft_tensors(),
        )

    @property
    def scored_labels(self) -> tuple[str, ...]:
        """The words the model chooses among: the verbalizer's, else the labels.

        >>> call = GenerateText(MetaPrompt(["x"]), labels=["yes", "no"], verbalizer=["A", "B"])
        >>> call.scored_labels
        ('A', 'B')
        """
        return tuple(self.verbalizer or self.labels)

    def gold_label(self, answer: Any) -> Any:
        """The label a verbalizer's word stands for, matched up to case and surrounding spaces;
        any other answer (and every answer without a verbalizer) as it is.

        >>> call = GenerateText(MetaPrompt(["x"]), labels=["yes", "no"], verbalizer=["A", "B"])
        >>> call.gold_label("B"), call.gold_label(" a "), call.gold_label("maybe")
        ('no', 'yes', 'maybe')
        """
        if not self.verbalizer or not isinstance(answer, str):
            return answer
        key = answer.strip().casefold()
        for word, label in zip(self.verbalizer, self.labels, strict=True):
            if key == str(word).strip().casefold():
                return str(label)
        return answer

    def _soft_tensors(self) -> tuple[Any, ...]:
        """The tensors of the soft prompts this call renders, in render order."""
        found: list[Any] = []
        # Depth first, in render order: the system message, then the prompt.
        stack = [c for c in (self.prompt, self.system) if isinstance(c, Component)]
        while stack:
            node = stack.pop()
            if node.is_soft_prompt:
                found.append(node.soft_values())
            elif not isinstance(node, GenerateText):  # a nested call sends its own
                stack.extend(reversed(list(node.children_nodes())))
        return tuple(found)

    async def build(self, ctx: RunContext) -> Blocks:
        result = await ctx.call(await self.request(ctx))
        if result.scored and self.verbalizer:  # a nested call answers with the label
            return (Text(self.gold_label(result.text)),)
        return (Text(result.text),)


@pg.use_init_args(["child", "parser", "inputs_per_call"])
class Output(Component):
    """The program's root: runs its :class:`GenerateText` and parses predictions.

    ``parser``: ``auto`` (the data format of the program's input, reading several answers
    back by id), ``raw`` (the stripped text), ``first_line``, ``json`` (the first JSON value
    in the text), or ``regex:PATTERN`` (group 1 if present, else the whole match). A missing
    or malformed answer becomes ``None``, scored as wrong; it never stops the run.
    ``inputs_per_call`` packs several inputs into one call (minibatching).

    ``calibration="content_free"`` (for a call with ``labels``, on a runner that scores them)
    first runs the program on content-free inputs (``"N/A"``, ``""``, ``"[MASK]"``), takes the
    mean of their label distributions as the model's prior, and divides it out of every row's
    label probabilities before choosing the most likely label ("Calibrate Before Use", Zhao et
    al. 2021). The fitted prior is a result of the run (``ResultTable.label_prior``); a
    ``label_prior`` given here (one probability per label, in the call's label order, as an
    export writes it) is used as it is, with no calls.
    """

    child: GenerateText
    parser: str = "auto"
    inputs_per_call: int = 1
    calibration: str = "none"
    label_prior: list[float] = []

    child_fields = ("child",)

    def _on_bound(self) -> None:
        super()._on_bound()
        if _has_hyper_fields(self):
            return
        if self.parser.startswith("regex:"):
            try:
                re.compile(self.parser[len("regex:") :])
            except re.error as exc:
                raise ConfigError(f"parser {self.parser!r} is not a valid regex: {exc}") from exc
        else:
            _check_choice("parser", self.parser, OUTPUT_PARSERS)
        if not 1 <= self.inputs_per_call <= MAX_INPUTS_PER_CALL:
            raise ConfigError(
                f"inputs_per_call must be between 1 and {MAX_INPUTS_PER_CALL}; "
                f"got {self.inputs_per_call}"
            )
        _check_choice("calibration", self.calibration, CALIBRATIONS)
        if self.calibration != "none" and not self.child.labels:
            raise ConfigError(
                f"calibration={self.calibration!r} needs the call's labels: give "
                "GenerateText(..., labels=[...]) (on the command line, --labels yes,no)"
            )
        prior = list(self.label_prior)
        if prior and (
            len(prior) != len(self.child.labels) or any(not 0.0 < p <= 1.0 for p in prior)
        ):
            raise ConfigError(
                f"label_prior {prior} must hold one probability in (0, 1] per label "
                f"{list(self.child.labels)}"
            )

    def parse(self, text: str, n_inputs: int, data_format: str) -> list[Any]:
        """Read ``n_inputs`` predictions from the model's ``text``."""
        from sammo_core.parsing import parse_output

        return parse_output(self.parser, text, n_inputs, data_format)

    async def build(self, ctx: RunContext) -> Blocks:
        return await self.child.build(ctx)
