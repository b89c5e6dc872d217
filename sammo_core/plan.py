"""Render plans: a call's prompt compiled once per run into static text and per-call slots.

Walking the component tree for every call costs far more than the text it makes: most of a
prompt is the same for every input. A :class:`RenderPlan` renders the tree once, with a
placeholder in place of each node that depends on the input (:class:`InputData`, ``knn``
:class:`Examples`, a :class:`Template` that reads the input); the text around the placeholders
is kept as strings, and each call only computes the slots (functions that the nodes hand out
with their parameters read once, see :meth:`Component.slot`) and joins.

The prompts are byte-identical to rendering the tree. A slot's text is written the way the
section format around it writes a paragraph: stripped, then
:meth:`~renderers.SectionFormat.escape_text`; a slot directly at the top of a message is
written as it is. A call whose slot text is blank (which a section format drops, changing the
layout) is rendered by walking the tree instead. Programs a plan cannot cover are rendered by
walking the tree for every call: nested calls, components other than the built-in ones on the
path to an input-dependent node, a slot inside two section formats (nested
:class:`MetaPrompt`), or placeholder characters in the program's own text.

>>> import asyncio
>>> from sammo_core import DataTable, GenerateText, InputData, MetaPrompt, Output, Section
>>> from sammo_core import ScriptedRunner, compile
>>> call = GenerateText(MetaPrompt([Section("Task", ["Say hi."]), Section("Q", [InputData()])]))
>>> graph = compile(Output(call))
>>> asyncio.run(graph.render_plan())
RenderPlan(messages=1, slots=1)
>>> runner = ScriptedRunner(default="hi")
>>> _ = graph.run_sync(DataTable(["who?"]), runner)
>>> print(runner.prompts[0])
# Task
<BLANKLINE>
Say hi.
<BLANKLINE>
# Q
<BLANKLINE>
Input: who?
<BLANKLINE>
Output:
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from sammo_core.components import GenerateText
from sammo_core.context import NotPlannable, Planning, RunContext, Slot
from sammo_core.runners.base import LLMRequest, Message, Role

__all__ = ["RenderPlan", "compile_plan"]


@dataclasses.dataclass(frozen=True, slots=True)
class _Fill:
    """A slot in a message, and how its text is written there (``None``: as it is)."""

    slot: Slot
    escape: Callable[[str], str] | None


Part = str | _Fill


class RenderPlan:
    """The messages of one call as static strings and slots; see the module docstring."""

    def __init__(
        self,
        messages: tuple[tuple[Role, tuple[Part, ...]], ...],
        template: LLMRequest,
        dynamic_ids: tuple[int, ...],
    ) -> None:
        self.messages = messages
        #: the request the planning render made: every field but the messages (temperature,
        #: max_tokens, seed, stop, mode, ...) is taken from it as it is
        self.template = template
        #: ids of the input-dependent nodes each planned call stands for (render counters)
        self.dynamic_ids = dynamic_ids
        # Per message: its role, its first static text, then each fill with the static text
        # after it, so a call joins strings without testing what each part is.
        self._layout = tuple((role, *_split(parts)) for role, parts in messages)
        # Every field but the messages is the template's, checked when it was built: a
        # planned request is the template with other messages, set without checking again
        # (a third of a call's cost). The shortcut is used only if it builds the template
        # itself equal, so a field that LLMRequest derives or checks differently keeps the
        # constructor.
        self._others = tuple(
            (f.name, getattr(template, f.name))
            for f in dataclasses.fields(template)
            if f.name != "messages"
        )
        self._fast = self._with_messages(template.messages) == template

    def __repr__(self) -> str:
        slots = sum(isinstance(p, _Fill) for _, parts in self.messages for p in parts)
        return f"RenderPlan(messages={len(self.messages)}, slots={slots})"

    def _with_messages(self, messages: tuple[Message, ...]) -> LLMRequest:
        request = object.__new__(LLMRequest)
        for name, value in self._others:
            object.__setattr__(request, name, value)
        object.__setattr__(request, "messages", messages)
        return request

    def request(self, ctx: RunContext) -> LLMRequest | None:
        """The request for ``ctx.inputs``, or ``None`` when the tree must render this call."""
        messages: list[Message] = []
        for role, first, fills in self._layout:
            if not fills:
                messages.append(Message(role, first))
                continue
            out = [first]
            for fill, static in fills:
                text = fill.slot(ctx)
                if fill.escape is not None:
                    text = text.strip()
                    if not text:
                        return None  # a blank paragraph is dropped: the layout changes
                    text = fill.escape(text)
                out.append(text)
                out.append(static)
            messages.append(Message(role, "".join(out)))
        if self._fast:
            return self._with_messages(tuple(messages))
        return LLMRequest(messages=tuple(messages), **dict(self._others))


def _split(parts: tuple[Part, ...]) -> tuple[str, tuple[tuple[_Fill, str], ...]]:
    """A message's parts ``s0 f1 s1 ... fn sn`` as ``(s0, ((f1, s1), ..., (fn, sn)))``."""
    first = ""
    fills: list[tuple[_Fill, str]] = []
    for part in parts:
        if isinstance(part, str):
            if fills:
                fills[-1] = (fills[-1][0], fills[-1][1] + part)
            else:
                first += part
        else:
            fills.append((part, ""))
    return first, tuple(fills)


async def compile_plan(call: GenerateText, ctx: RunContext) -> RenderPlan | None:
    """Render ``call`` once with placeholders into a :class:`RenderPlan`; ``None`` if it can't.

    Static parts are rendered (once per run, through ``ctx.state``) as the tree would; nothing
    is sent to a model.
    """
    state = ctx.state
    planning = Planning()
    state.planning = planning
    try:
        request = await call.request(ctx)
        messages = tuple((m.role, planning.split(m.content)) for m in request.messages)
        seen = [p for _, parts in messages for p in parts if isinstance(p, int)]
        if sorted(seen) != list(range(len(planning.slots))):
            raise NotPlannable("a placeholder went missing or was repeated while rendering")
        fills = [_fill(planning, i) for i in range(len(planning.slots))]
    except NotPlannable:
        return None
    finally:
        state.planning = None
    planned = tuple(
        (role, tuple(fills[p] if isinstance(p, int) else p for p in parts))
        for role, parts in messages
    )
    return RenderPlan(planned, request, tuple(planning.dynamic_ids))


def _fill(planning: Planning, index: int) -> _Fill:
    formats = planning.formats[index]
    if not formats:
        return _Fill(planning.slots[index], None)
    if len(formats) > 1:
        raise NotPlannable("a slot inside nested section formats")
    fmt = formats[0]
    try:
        fmt.escape_text("probe")
    except NotImplementedError:
        raise NotPlannable(f"{fmt!r} does not implement escape_text()") from None
    return _Fill(planning.slots[index], fmt.escape_text)
