"""Examples written into a prompt file, as an :class:`Examples` node the search can work on.

A prompt file's few-shot examples are text: ``Input: ...`` / ``Output: ...`` pairs (or ``Q:`` /
``A:``, ``Sentence:`` / ``Label:``), one or more to a paragraph, optionally headed
``Example N:``. Left as text, the examples operators have nothing to change and the training
rows are never shown. :func:`extract_examples` finds a run of paragraphs that hold nothing but
such pairs and replaces it with one :class:`Examples` node in the matching data format whose
pool is the written examples followed by the training rows: it starts by showing the written
ones (``n`` of them, ``selection="first"``), and the operators can then change how many are
shown and which (balanced draws, by similarity, ...).

>>> from sammo_core import GenerateText, MetaPrompt, Output, Paragraph, Section, Template
>>> meta = MetaPrompt([
...     Section("Task", ["Is it hot?"]),
...     Section("Examples", ["Input: fire\\nOutput: yes", "Input: ice\\nOutput: no"]),
...     Section("Item", [Template("Input: {{ input }}\\nOutput:")]),
... ])
>>> program, note = extract_examples(Output(GenerateText(meta)), DataTable(["sun"], ["yes"]))
>>> print(note)
2 written examples (Input:/Output:) became an Examples node over them and 1 training rows
>>> shots = program.child.prompt.children[1].children[0]
>>> shots.n, shots.data.inputs, shots.data_format
(2, ('fire', 'ice', 'sun'), 'plain')
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyglove as pg

from sammo_core.components import Component, Examples, Output, Paragraph
from sammo_core.data import DataTable

__all__ = ["EXAMPLE_PREFIXES", "extract_examples", "parse_pairs"]

#: Data format -> (input prefix, output prefix) of the pairs a prompt file may write.
EXAMPLE_PREFIXES: dict[str, tuple[str, str]] = {
    "plain": ("Input:", "Output:"),
    "qa": ("Q:", "A:"),
    "sentence": ("Sentence:", "Label:"),
}
_HEADER = re.compile(r"\s*(\*\*)?Example\s+\d+:?(\*\*)?:?\s*")


def parse_pairs(text: str) -> tuple[str, list[tuple[str, str]]] | None:
    """The data format and the ``(input, output)`` pairs ``text`` consists of, or ``None``
    when it holds anything else (one-line values only; ``Example N:`` headers are skipped).

    >>> parse_pairs("Q: 2+2?\\nA: 4\\n\\nQ: 3+3?\\nA: 6")
    ('qa', [('2+2?', '4'), ('3+3?', '6')])
    >>> parse_pairs("Input: x\\nOutput:") is None, parse_pairs("Answer briefly.") is None
    (True, True)
    """
    lines = [line for line in text.splitlines() if line.strip() and not _HEADER.fullmatch(line)]
    if not lines or len(lines) % 2:
        return None
    for data_format, (first, second) in EXAMPLE_PREFIXES.items():
        pairs = []
        for question, answer in zip(lines[::2], lines[1::2], strict=True):
            if not (question.startswith(first) and answer.startswith(second)):
                break
            value, label = question[len(first) :].strip(), answer[len(second) :].strip()
            if not value or not label:
                break
            pairs.append((value, label))
        else:
            return data_format, pairs
    return None


def _paragraph_text(node: object) -> str | None:
    return node.text if isinstance(node, Paragraph) else node if isinstance(node, str) else None


def extract_examples(program: Output, pool: DataTable | None) -> tuple[Output, str | None]:
    """``program`` with its first run of written example paragraphs as an :class:`Examples`
    node over them and ``pool`` (see the module docstring), and a note saying so; the program
    itself and ``None`` when it has none (or already has an Examples node)."""
    from sammo_core.selectors import find

    if find(program, "Examples"):
        return program, None
    for match in find(program, "MetaPrompt, Section"):
        path, node = match.path, match.node
        found = _first_run(list(node.children))
        if found is None:
            continue
        start, end, data_format, pairs = found
        inputs = [x for x, _ in pairs] + ([] if pool is None else list(pool.inputs))
        outputs = [y for _, y in pairs] + ([] if pool is None else list(pool.outputs))
        examples = Examples(
            DataTable(inputs, outputs),
            n=len(pairs),
            selection="first",
            data_format=data_format,
            id="examples",
        )
        children: list[Component | str] = list(node.children)
        children[start:end] = [examples]
        where = f"{path}.children" if path else "children"
        copy: Output = pg.clone(program, deep=True, override={where: children})
        first, second = EXAMPLE_PREFIXES[data_format]
        rows = 0 if pool is None else len(pool)
        note = (
            f"{len(pairs)} written examples ({first}/{second}) became an Examples node over "
            f"them and {rows} training rows"
        )
        return copy, note
    return program, None


def _first_run(children: Sequence[object]) -> tuple[int, int, str, list[tuple[str, str]]] | None:
    """The first run of consecutive paragraphs that are example pairs in one format."""
    i = 0
    while i < len(children):
        text = _paragraph_text(children[i])
        parsed = None if text is None else parse_pairs(text)
        if parsed is None:
            i += 1
            continue
        data_format, pairs = parsed
        j = i + 1
        while j < len(children):
            more_text = _paragraph_text(children[j])
            more = None if more_text is None else parse_pairs(more_text)
            if more is None or more[0] != data_format:
                break
            pairs.extend(more[1])
            j += 1
        return i, j, data_format, pairs
    return None
