"""The answer slot of a completion-mode program: its prompt must end with the answer cue.

A base model prompted in completion mode (``GenerateText(mode="completion")``) continues the
rendered text: it answers only where the prompt ends with the cue that follows every
in-context example (``Output:``, ``A:``, ``Label:``). A section format that closes what it
opened (a JSON list, an XML tag) writes after the cue, so the model writes the closing text
on, stops at the first newline and every reply is empty; a data format without a cue (JSON,
XML) or several inputs per call end the prompt with an instruction instead.
:func:`answer_slot_problem` says why a program's prompt does not end with its cue, before any
call; operators refuse children that it finds broken where their parent was not.

>>> from sammo_core import GenerateText, InputData, MetaPrompt, Output, Section
>>> def program(section_format):
...     prompt = MetaPrompt([Section("Input", [InputData()])], section_format=section_format)
...     return Output(GenerateText(prompt, mode="completion", stop=["\\n"]))
>>> answer_slot_problem(program("markdown")) is None
True
>>> print(answer_slot_problem(program("json")))
section format 'json' writes '"\\n    ]\\n  }\\n]' after the answer cue 'Output:', which must \
end a completion-mode prompt (a base model continues the closing text): use section format \
markdown or plain
"""

from __future__ import annotations

from renderers import get_data_format, get_section_format
from sammo_core.components import Component, Examples, GenerateText, InputData, MetaPrompt, Output
from sammo_core.selectors import find

__all__ = ["answer_slot_problem"]

#: The section format of sections that no MetaPrompt lays out (see ``components._render``).
_DEFAULT_SECTION_FORMAT = "markdown"


def _shows_nothing(node: Component) -> bool:
    return isinstance(node, Examples) and node.n == 0


def _tail(node: Component) -> list[Component]:
    """``node`` and its last rendered descendants, outermost first (the prompt's last part)."""
    chain = [node]
    while True:
        children = [c for c in chain[-1].children_nodes() if not _shows_nothing(c)]
        if "children" not in chain[-1].child_fields or not children:
            return chain
        chain.append(children[-1])


def answer_slot_problem(program: Output) -> str | None:
    """Why ``program``'s completion-mode prompt does not end with its answer cue; ``None``: it
    does, or the call is in chat mode, or the prompt's last part is the author's own text (a
    :class:`~sammo_core.components.Template` or paragraph ending in its own cue).

    Only the program's own call is judged; a nested call's prompt is the author's affair.
    """
    call = program.child
    if not isinstance(call, GenerateText) or call.mode != "completion":
        return None
    chain = _tail(call.prompt)
    leaf = chain[-1]
    data_format = next(
        (n.data_format for n in reversed(chain) if isinstance(n, MetaPrompt)), "plain"
    )
    if isinstance(leaf, InputData):
        data_format = leaf.data_format or data_format
        cue = get_data_format(data_format).answer_cue()
        last = f"the answer cue {cue!r}" if cue and leaf.hint else "the input"
    else:
        last = "the prompt's last text"
    # Each document (MetaPrompt) on the way down must end with the text of the next one.
    layouts: list[tuple[str, int]] = [(_DEFAULT_SECTION_FORMAT, 0)]
    for node in chain[:-1]:
        if isinstance(node, MetaPrompt):
            layouts.append((node.section_format, 0))
        else:
            layouts[-1] = (layouts[-1][0], layouts[-1][1] + 1)  # a Section around the tail
    for section_format, depth in layouts:
        after = get_section_format(section_format).text_after_last(depth)
        if after:
            return (
                f"section format {section_format!r} writes {after!r} after {last}, which must "
                "end a completion-mode prompt (a base model continues the closing text): use "
                "section format markdown or plain"
            )
    if isinstance(leaf, InputData):
        return _input_problem(program, leaf, data_format)
    for match in find(call.prompt, "InputData"):
        node = match.node
        if isinstance(node, InputData) and node.hint and not _in_nested_call(call, match.path):
            cue = get_data_format(node.data_format or data_format).answer_cue()
            if cue:
                return (
                    f"the prompt ends with {leaf.label()} after the input and its answer cue "
                    f"{cue!r}, which must end a completion-mode prompt: move the input last"
                )
    return None


def _in_nested_call(call: GenerateText, path: str) -> bool:
    return any(path.startswith(m.path + ".") for m in find(call.prompt, "GenerateText") if m.path)


def _input_problem(program: Output, node: InputData, data_format: str) -> str | None:
    cue = get_data_format(data_format).answer_cue()
    if not cue:
        return (
            f"data format {data_format!r} has no answer cue to end a completion-mode prompt "
            "(it asks for the answer in words, which a base model continues instead of "
            "answering): use a labelled data format such as plain, qa or sentence"
        )
    if not node.hint:
        return (
            f"InputData(hint=False) leaves out the answer cue {cue!r}, which must end a "
            "completion-mode prompt: set hint=True"
        )
    if program.inputs_per_call > 1:
        return (
            f"inputs_per_call={program.inputs_per_call} ends the prompt with an instruction "
            f"instead of the answer cue {cue!r}, which a completion-mode prompt needs: use "
            "inputs_per_call=1"
        )
    return None
