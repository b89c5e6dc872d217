"""Data formats: how examples and current inputs are written, and how answers are read back.

Each format is a pair of pairs. ``render_examples``/``parse_examples`` round trip few-shot
examples; ``render_outputs``/``parse_outputs`` round trip answers, and ``parse_outputs`` is also
what reads a real model's answer: it never raises, and maps each requested id to its answer or
to ``None``. Several inputs packed into one call (minibatching) each carry their id, and
``answer_hint`` tells the model how to answer them.

Values are JSON-like: usually strings; an input may be a dict of named fields. Every format
writes a string exactly as the data holds it, leading and trailing whitespace included: the
prompt is the one the user meant. The JSON format round trips values exactly. The text formats
(xml, markdown, plain) write leaves as text, so they read back
:meth:`DataFormat.normalize_value` of what they wrote: strings stripped (reading a model's
answer is tolerant), other leaves as their JSON text (``3`` -> ``"3"``), an empty dict as
``""``; and ids through :meth:`DataFormat.normalize_record` (a string id like ``"3"`` comes
back as the int ``3``).

>>> fmt = get_data_format("json")
>>> print(fmt.render_inputs([Record(1, "2+2"), Record(2, "3+3")]))
{"id": 1, "input": "2+2"}
{"id": 2, "input": "3+3"}
>>> fmt.parse_outputs('Sure! {"id": 2, "output": "6"} {"id": 1, "output": "4"}', [1, 2])
{1: '4', 2: '6'}
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from renderers import _xml
from renderers._text import (
    FENCE,
    Answers,
    LineEscaper,
    dumps,
    json_output_objects,
    leaf_text,
    normalize_id,
    parse_id,
    strip_fences,
)
from renderers.errors import RenderError, UnknownFormatError
from renderers.registry import Registry

__all__ = [
    "DATA_FORMATS",
    "DataFormat",
    "JSONDataFormat",
    "MarkdownDataFormat",
    "PlainDataFormat",
    "QADataFormat",
    "Record",
    "SentenceDataFormat",
    "XMLDataFormat",
    "get_data_format",
]


@dataclass(frozen=True, slots=True)
class Record:
    """One example or input: an id, an input and (for examples and answers) an output.

    >>> Record(1, {"question": "2+2?", "context": "Arithmetic."}, "4")
    Record(id=1, input={'question': '2+2?', 'context': 'Arithmetic.'}, output='4')
    """

    id: int | str
    input: Any
    output: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int | str):
            raise TypeError(f"Record.id must be an int or a str, got {self.id!r}")


class DataFormat(ABC):
    """Writes records into prompts and reads a model's answers back.

    Subclasses set ``name`` and implement the six methods below. Contracts, for records with
    distinct ids: ``parse_examples(render_examples(rs)) == [normalize_record(r) for r in rs]``
    and ``parse_outputs(render_outputs(rs), ids) == {r.id: normalize_value(r.output)}``.

    >>> fmt = PlainDataFormat()
    >>> records = [Record(1, "2+2", "4"), Record(2, "3+3", "6")]
    >>> fmt.parse_outputs(fmt.render_outputs(records), [1, 2])
    {1: '4', 2: '6'}
    """

    name: ClassVar[str]

    @abstractmethod
    def render_examples(self, records: Sequence[Record]) -> str:
        """Few-shot examples: inputs with their outputs (an output of ``None`` is left out)."""

    @abstractmethod
    def parse_examples(self, text: str) -> list[Record]:
        """The records that :meth:`render_examples` wrote (see :meth:`normalize_record`)."""

    @abstractmethod
    def render_inputs(self, records: Sequence[Record]) -> str:
        """The current input(s); with several, each carries its id."""

    @abstractmethod
    def answer_hint(self, ids: Sequence[int | str]) -> str:
        """One sentence telling the model how to write its answers for ``ids`` ("" if none)."""

    @abstractmethod
    def parse_outputs(self, text: str, ids: Sequence[int | str]) -> dict[int | str, Any | None]:
        """Map each id to its answer in ``text``, or to ``None``; never raises.

        Ids match across types (``3`` and ``"3"``); for a repeated id the first answer wins;
        answers for ids not requested are ignored. With a single id, an answer without an id
        (or with another id) is accepted.
        """

    @abstractmethod
    def render_outputs(self, records: Sequence[Record]) -> str:
        """The answer a perfect model would write for ``records`` (``None`` outputs left out)."""

    def answer_cue(self) -> str:
        """The text that, ending a prompt, cues one answer (``"Output:"``); ``""`` if none.

        A base model in completion mode continues the prompt: it answers only where the prompt
        ends with such a cue, as after each in-context example. Formats whose answer hint is an
        instruction (JSON, XML) have none.

        >>> PlainDataFormat().answer_cue(), JSONDataFormat().answer_cue()
        ('Output:', '')
        """
        return ""

    def normalize_value(self, value: Any) -> Any:
        """A value as this format reads it back (the JSON format: the value itself)."""
        return value

    def normalize_record(self, record: Record) -> Record:
        """A record as :meth:`parse_examples` reads it back."""
        return record

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))


def _count(ids: Sequence[int | str]) -> int:
    return len(dict.fromkeys(ids))


# -- JSON --------------------------------------------------------------------------------------


class JSONDataFormat(DataFormat):
    """JSON lines: one object per record with keys ``id``, ``input`` and ``output``.

    A single input is written without its id. Values round trip exactly.

    >>> fmt = JSONDataFormat()
    >>> print(fmt.render_examples([Record(1, "I loved it.", "positive")]))
    {"id": 1, "input": "I loved it.", "output": "positive"}
    >>> print(fmt.render_inputs([Record(1, "Terrible.")]))
    {"input": "Terrible."}
    >>> fmt.answer_hint([1])
    'Answer with one JSON object: {"output": <answer>}.'
    >>> fmt.parse_outputs('```json\\n{"output": "negative"}\\n```', [1])
    {1: 'negative'}
    """

    name = "json"

    def render_examples(self, records: Sequence[Record]) -> str:
        lines = []
        for r in records:
            item = {"id": r.id, "input": r.input}
            if r.output is not None:
                item["output"] = r.output
            lines.append(dumps(item))
        return "\n".join(lines)

    def parse_examples(self, text: str) -> list[Record]:
        """Read JSON lines back; raises :class:`RenderError` naming a malformed line."""
        records = []
        for number, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise RenderError(f"example line {number} is not valid JSON: {exc}") from exc
            if not isinstance(item, dict) or "input" not in item or "id" not in item:
                raise RenderError(
                    f'example line {number} needs an object with "id" and "input": {line!r}'
                )
            try:
                records.append(Record(item["id"], item["input"], item.get("output")))
            except TypeError as exc:
                raise RenderError(f"example line {number}: {exc}") from exc
        return records

    def render_inputs(self, records: Sequence[Record]) -> str:
        if len(records) == 1:
            return dumps({"input": records[0].input})
        return "\n".join(dumps({"id": r.id, "input": r.input}) for r in records)

    def answer_hint(self, ids: Sequence[int | str]) -> str:
        count = _count(ids)
        if count == 0:
            return ""
        if count == 1:
            return 'Answer with one JSON object: {"output": <answer>}.'
        return (
            f"Answer each of the {count} inputs with one JSON object per line: "
            '{"id": <id>, "output": <answer>}.'
        )

    def parse_outputs(self, text: str, ids: Sequence[int | str]) -> dict[int | str, Any | None]:
        answers = Answers(ids)
        for item in json_output_objects(text):
            answers.add(item.get("id"), item["output"])
        return answers.finish()

    def render_outputs(self, records: Sequence[Record]) -> str:
        if len(records) == 1:
            return dumps({"output": records[0].output})
        return "\n".join(dumps({"id": r.id, "output": r.output}) for r in records)


# -- text formats ------------------------------------------------------------------------------


class _TextDataFormat(DataFormat):
    """Formats that write leaves as text; ``_DICT_DEPTH`` levels of dicts are kept as fields."""

    _DICT_DEPTH: ClassVar[int] = 1

    def normalize_value(self, value: Any) -> Any:
        """Strings stripped; dicts as fields (an empty one as ""); other leaves as JSON text.

        This is what parsing reads back, not what is written: :meth:`written_value` keeps
        the whitespace of strings.

        >>> PlainDataFormat().normalize_value({"n": 3, "q": " 2+2? "})
        {'n': '3', 'q': '2+2?'}
        """
        return None if value is None else _normalize(value, self._DICT_DEPTH, strip=True)

    def written_value(self, value: Any) -> Any:
        """A value as written into a prompt: like :meth:`normalize_value`, strings unstripped.

        >>> PlainDataFormat().written_value({"n": 3, "q": " 2+2? "})
        {'n': '3', 'q': ' 2+2? '}
        """
        return None if value is None else _normalize(value, self._DICT_DEPTH, strip=False)

    def normalize_record(self, record: Record) -> Record:
        value = self.normalize_value(record.input)
        return Record(
            normalize_id(record.id),
            "" if value is None else value,
            self.normalize_value(record.output),
        )


def _normalize(value: Any, depth: int, *, strip: bool) -> Any:
    if isinstance(value, dict) and depth > 0:
        return {k: _normalize(v, depth - 1, strip=strip) for k, v in value.items()} if value else ""
    text = leaf_text(value)
    return text.strip() if strip else text


def _field_name(key: object, fmt: str) -> str:
    if isinstance(key, str):
        return key
    raise RenderError(f"field names must be strings to render in the {fmt} format, got {key!r}")


_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


class XMLDataFormat(_TextDataFormat):
    """XML tags: ``<example id="..">`` holding ``<input>`` and ``<output>``.

    Several inputs are written ``<input id="..">`` and answered ``<output id="..">``. Dict
    values become nested elements named by their keys (``<field name="..">`` for keys that are
    not XML names), nested dicts included. Text is escaped minimally (``<`` only before a tag
    name, ``&`` only before an entity name) so prompts stay readable; answers are read with a
    tolerant reader (unclosed or stray tags, chatter around the tags).

    >>> fmt = XMLDataFormat()
    >>> print(fmt.render_examples([Record(1, {"question": "2+2?", "context": "Math."}, "4")]))
    <example id="1">
    <input>
    <question>2+2?</question>
    <context>Math.</context>
    </input>
    <output>4</output>
    </example>
    >>> fmt.parse_outputs('<output id="2">6</output> and <output id="1">4', [1, 2])
    {1: None, 2: '6'}
    """

    name = "xml"
    _DICT_DEPTH = _xml.MAX_VALUE_DEPTH

    def _element(self, tag: str, value: Any, attrs: str = "") -> str:
        if isinstance(value, dict):
            fields = [self._field(key, item) for key, item in value.items()]
            return "\n".join([f"<{tag}{attrs}>", *fields, f"</{tag}>"])
        return f"<{tag}{attrs}>{_xml.escape_text(value or '')}</{tag}>"

    def _field(self, key: object, value: Any) -> str:
        name = _field_name(key, self.name)
        if _XML_NAME.fullmatch(name):
            return self._element(name, value)
        return self._element("field", value, f' name="{_xml.escape_attr(name)}"')

    def _value(self, tag: str, value: Any, id_: int | str | None = None) -> str:
        attrs = "" if id_ is None else f' id="{_xml.escape_attr(str(id_))}"'
        return self._element(tag, self.written_value(value), attrs)

    def render_examples(self, records: Sequence[Record]) -> str:
        blocks = []
        for r in records:
            parts = [f'<example id="{_xml.escape_attr(str(r.id))}">', self._value("input", r.input)]
            if r.output is not None:
                parts.append(self._value("output", r.output))
            blocks.append("\n".join([*parts, "</example>"]))
        return "\n".join(blocks)

    def parse_examples(self, text: str) -> list[Record]:
        records = []
        for number, example in enumerate(_xml.find_all(_xml.parse_elements(text), "example"), 1):
            raw_id = example.attrs.get("id")
            values: dict[str, Any] = {}
            for child in example.children:
                tag = child.tag.lower()
                if tag in ("input", "output") and child.closed and tag not in values:
                    values[tag] = _xml.element_value(child, text)
            record_id = number if raw_id is None else parse_id(raw_id)
            records.append(Record(record_id, values.get("input", ""), values.get("output")))
        return records

    def render_inputs(self, records: Sequence[Record]) -> str:
        if len(records) == 1:
            return self._value("input", records[0].input)
        return "\n".join(self._value("input", r.input, r.id) for r in records)

    def answer_hint(self, ids: Sequence[int | str]) -> str:
        count = _count(ids)
        if count == 0:
            return ""
        if count == 1:
            return "Write your answer inside <output></output> tags."
        return (
            f'Answer each of the {count} inputs as <output id="ID">ANSWER</output>, '
            "using the id of its input."
        )

    def parse_outputs(self, text: str, ids: Sequence[int | str]) -> dict[int | str, Any | None]:
        answers = Answers(ids)
        for output in _xml.find_all(_xml.parse_elements(text), "output"):
            answers.add(output.attrs.get("id"), _xml.element_value(output, text))
        return answers.finish()

    def render_outputs(self, records: Sequence[Record]) -> str:
        if len(records) == 1:
            output = records[0].output
            return "" if output is None else self._value("output", output)
        return "\n".join(
            self._value("output", r.output, r.id) for r in records if r.output is not None
        )


# -- labelled text: markdown and plain ---------------------------------------------------------


def _label_syntax(
    input_name: str, output_name: str, header: str, field: str, key: str
) -> tuple[re.Pattern[str], LineEscaper, LineEscaper]:
    """The label reader and line escapers of a labelled format with these label names.

    A label, as written by these formats and leniently as models write it: ``Output [3]:``,
    ``**Output [3]:**``, ``**output [3]**:``, ``Input:`` ... ``header`` and ``field`` are the
    regex sources of the format's example headers and dict fields (``{key}``: a field name).
    """
    names = f"{re.escape(input_name)}|{re.escape(output_name)}"
    lenient = rf"(?:\*\*|__)?(?i:{names})(?:[ \t]*\[[^\]\n]*\])?[ \t]*(?:\*\*|__)?:"
    label = re.compile(
        rf"(?:\*\*|__)?(?P<kind>{names})(?:[ \t]*\[(?P<id>[^\]\n]*)\])?[ \t]*(?:\*\*|__)?:"
        r"(?:\*\*|__)?",
        re.I,
    )
    fields = field.format(key=key)
    return label, LineEscaper(f"{lenient}|{header}"), LineEscaper(f"{lenient}|{header}|{fields}")


_KEY = r"[^\s:](?:[^:\n]*[^\s:])?"
_LABEL_ID = re.compile(r"[^\s\]](?:[^\]\n]*[^\s\]])?")


@dataclass(slots=True)
class _Segment:
    kind: str  # "example", "input" or "output"
    id: str | None
    rest: str  # the label line after the label
    lines: list[str] = field(default_factory=list)


class _LabelledDataFormat(_TextDataFormat):
    """Records as labelled lines (``Input:``, ``Output [3]:``) under ``Example <id>`` headers.

    A value starts on its label's line and runs until the next label or header. Its later lines
    that would read as a label or header get a leading backslash (see :class:`LineEscaper`).
    A dict value leaves the label line empty and lists its fields as ``- key: value`` lines;
    inside a field, lines that would read as a field are escaped too.
    """

    _KIND_NAMES: ClassVar[dict[str, str]] = {"input": "Input", "output": "Output"}
    _LABEL_FORMAT: ClassVar[str]  # with {kind}; the id goes in brackets after the kind
    _HEADER_FORMAT: ClassVar[str]  # with {id}
    _HEADER: ClassVar[re.Pattern[str]]
    _FIELD_FORMAT: ClassVar[str]  # with {key}
    _FIELD: ClassVar[re.Pattern[str]]
    _LABEL: ClassVar[re.Pattern[str]]  # reads a label: groups ``kind`` and ``id``
    _TEXT_ESCAPER: ClassVar[LineEscaper]
    _FIELD_ESCAPER: ClassVar[LineEscaper]
    _PART_BREAK: ClassVar[str]  # between the header, input and output of an example

    def _label(self, kind: str, id_: int | str | None = None) -> str:
        name = self._KIND_NAMES[kind]
        if id_ is not None:
            name += f" [{self._id_text(id_)}]"
        return self._LABEL_FORMAT.format(kind=name)

    def _id_text(self, id_: int | str) -> str:
        text = str(id_)
        if isinstance(id_, str) and not _LABEL_ID.fullmatch(text):
            raise RenderError(
                f"id {id_!r} cannot be written in the {self.name} format: use an int or a "
                "one-line string without ']' or surrounding spaces"
            )
        return text

    def _render_value(self, head: str, value: Any) -> str:
        if isinstance(value, str) and "\n" not in value:  # the common case, no lines to escape
            return f"{head} {value}" if value else head
        value = self.written_value(value)
        if not isinstance(value, dict):
            text = value or ""
            # A text whose first line is blank must not read as a dict's field list below it.
            blank_first = not text.split("\n", 1)[0].strip()
            return self._join(
                head, text, self._FIELD_ESCAPER if blank_first else self._TEXT_ESCAPER
            )
        lines = [head]
        for key, item in value.items():
            name = _field_name(key, self.name)
            if not re.fullmatch(_KEY, name):
                raise RenderError(
                    f"field name {name!r} cannot be written in the {self.name} format: use a "
                    "one-line name without ':' or surrounding spaces"
                )
            lines.append(self._join(self._FIELD_FORMAT.format(key=name), item, self._FIELD_ESCAPER))
        return "\n".join(lines)

    @staticmethod
    def _join(head: str, text: str, escaper: LineEscaper) -> str:
        if not text:
            return head
        first, *rest = text.split("\n")
        return "\n".join([f"{head} {first}", *map(escaper.escape, rest)])

    def _segments(self, lines: list[str]) -> list[_Segment]:
        segments: list[_Segment] = []
        for line in lines:
            header = self._HEADER.fullmatch(line)
            label = None if header else self._LABEL.match(line)
            if header:
                segments.append(_Segment("example", header.group("id"), ""))
            elif label:
                is_input = label.group("kind").lower() == self._KIND_NAMES["input"].lower()
                kind = "input" if is_input else "output"
                segments.append(_Segment(kind, label.group("id"), line[label.end() :]))
            elif segments:
                segments[-1].lines.append(line)
        return segments

    def _parse_value(self, segment: _Segment) -> Any:
        lines = segment.lines
        if segment.rest.strip():
            text = [segment.rest, *map(self._TEXT_ESCAPER.unescape, lines)]
            return "\n".join(text).strip()
        first = next((line for line in lines if line.strip()), "")
        if not self._FIELD.match(first):
            return "\n".join(map(self._FIELD_ESCAPER.unescape, lines)).strip()
        fields: dict[str, list[str]] = {}
        current: list[str] = []
        for line in lines:
            match = self._FIELD.match(line)
            if match:
                current = [line[match.end() :]]
                fields.setdefault(match.group("key"), current)
            else:
                current.append(self._FIELD_ESCAPER.unescape(line))
        return {key: "\n".join(value).strip() for key, value in fields.items()}

    def render_examples(self, records: Sequence[Record]) -> str:
        blocks = []
        for r in records:
            parts = [
                self._HEADER_FORMAT.format(id=self._id_text(r.id)),
                self._render_value(self._label("input"), r.input),
            ]
            if r.output is not None:
                parts.append(self._render_value(self._label("output"), r.output))
            blocks.append(self._PART_BREAK.join(parts))
        return "\n\n".join(blocks)

    def parse_examples(self, text: str) -> list[Record]:
        examples: list[tuple[str, dict[str, Any]]] = []
        for segment in self._segments(text.split("\n")):
            if segment.kind == "example":
                examples.append((segment.id or "", {}))
            elif examples and segment.kind not in examples[-1][1]:
                examples[-1][1][segment.kind] = self._parse_value(segment)
        return [
            Record(parse_id(id_), values.get("input", ""), values.get("output"))
            for id_, values in examples
        ]

    def render_inputs(self, records: Sequence[Record]) -> str:
        if len(records) == 1:
            return self._render_value(self._label("input"), records[0].input)
        return "\n\n".join(self._render_value(self._label("input", r.id), r.input) for r in records)

    def answer_hint(self, ids: Sequence[int | str]) -> str:
        count = _count(ids)
        if count == 0:
            return ""
        if count == 1:
            # The bare label cues the answer, as after each in-context example.
            return self.answer_cue()
        example = self._LABEL_FORMAT.format(kind=f"{self._KIND_NAMES['output']} [<id>]")
        return f'Answer each of the {count} inputs on its own line as "{example} <answer>".'

    def answer_cue(self) -> str:
        return self._LABEL_FORMAT.format(kind=self._KIND_NAMES["output"])

    def parse_outputs(self, text: str, ids: Sequence[int | str]) -> dict[int | str, Any | None]:
        if len(ids) == 1 and "\n" not in text and not self._LABEL.match(text):
            # One input, one line, no label (the common case): the answer is the stripped line.
            return {ids[0]: text.strip() or None}
        answers = Answers(ids)
        segments = self._segments(_unwrap_fence(text.split("\n"), self._LABEL))
        outputs = [s for s in segments if s.kind == "output"]
        for segment in outputs:
            answers.add(segment.id, self._parse_value(segment))
        if not outputs and len(answers.result) == 1:
            answers.add(None, strip_fences(text) or None)
        return answers.finish()

    def render_outputs(self, records: Sequence[Record]) -> str:
        if len(records) == 1:
            output = records[0].output
            return "" if output is None else self._render_value(self._label("output"), output)
        return "\n".join(
            self._render_value(self._label("output", r.id), r.output)
            for r in records
            if r.output is not None
        )


def _unwrap_fence(lines: list[str], label: re.Pattern[str]) -> list[str]:
    """Drop the closing fence when the labelled answers were wrapped in a code fence."""
    first = next((i for i, line in enumerate(lines) if label.match(line)), None)
    if first is None or not any(FENCE.fullmatch(line) for line in lines[:first]):
        return lines
    last = max(i for i, line in enumerate(lines) if line.strip())
    return lines[:last] if last > first and FENCE.fullmatch(lines[last]) else lines


class PlainDataFormat(_LabelledDataFormat):
    """Plain text: ``Input: ...`` / ``Output: ...`` lines; ``Input [3]: ...`` with several.

    Examples are headed ``Example <id>:``. Multi-line values continue on the following lines;
    a later line that would read as a label (``Output:``, ``Input [2]:``, any case, optionally
    in bold) or as a header gets a leading backslash. A dict input leaves the label line empty
    and lists its fields as ``- name: value``. With one input and no ``Output:`` label in the
    answer, the whole answer (unwrapped from a code fence) is the output; answer text after the
    last labelled answer stays in that answer.

    >>> fmt = PlainDataFormat()
    >>> print(fmt.render_examples([Record(1, "I loved it.", "positive"),
    ...                            Record(2, {"question": "2+2?", "context": "Math."}, "4")]))
    Example 1:
    Input: I loved it.
    Output: positive
    <BLANKLINE>
    Example 2:
    Input:
    - question: 2+2?
    - context: Math.
    Output: 4
    >>> fmt.parse_outputs("The answer is positive.", [7])
    {7: 'The answer is positive.'}
    """

    name = "plain"
    _LABEL_FORMAT = "{kind}:"
    _HEADER_FORMAT = "Example {id}:"
    _HEADER = re.compile(r"Example (?P<id>.+):")
    _FIELD_FORMAT = "- {key}:"
    _FIELD = re.compile(rf"- (?P<key>{_KEY}):")
    _LABEL, _TEXT_ESCAPER, _FIELD_ESCAPER = _label_syntax(
        "Input", "Output", header=r"Example .+:\Z", field="- {key}:", key=_KEY
    )
    _PART_BREAK = "\n"


class QADataFormat(PlainDataFormat):
    """Like :class:`PlainDataFormat`, labelled ``Q:`` / ``A:`` (``Q [3]:`` with several inputs).

    The question-and-answer layout that base models saw most in training; one input's prompt
    ends with ``A:``, which the model continues.

    >>> fmt = QADataFormat()
    >>> print(fmt.render_examples([Record(1, "2+2?", "4")]))
    Example 1:
    Q: 2+2?
    A: 4
    >>> print(fmt.render_inputs([Record(1, "3+3?")]), fmt.answer_hint([1]), sep="\\n")
    Q: 3+3?
    A:
    >>> fmt.parse_outputs("A [2]: 6\\nA [1]: 4", [1, 2])
    {1: '4', 2: '6'}
    """

    name = "qa"
    _KIND_NAMES: ClassVar[dict[str, str]] = {"input": "Q", "output": "A"}
    _LABEL, _TEXT_ESCAPER, _FIELD_ESCAPER = _label_syntax(
        "Q", "A", header=r"Example .+:\Z", field="- {key}:", key=_KEY
    )


class SentenceDataFormat(PlainDataFormat):
    """Like :class:`PlainDataFormat`, labelled ``Sentence:`` / ``Label:``: for classifying text.

    >>> fmt = SentenceDataFormat()
    >>> print(fmt.render_examples([Record(1, "I loved it.", "positive")]))
    Example 1:
    Sentence: I loved it.
    Label: positive
    >>> fmt.answer_cue(), fmt.parse_outputs("Label: negative", [1])
    ('Label:', {1: 'negative'})
    """

    name = "sentence"
    _KIND_NAMES: ClassVar[dict[str, str]] = {"input": "Sentence", "output": "Label"}
    _LABEL, _TEXT_ESCAPER, _FIELD_ESCAPER = _label_syntax(
        "Sentence", "Label", header=r"Example .+:\Z", field="- {key}:", key=_KEY
    )


class MarkdownDataFormat(_LabelledDataFormat):
    """Markdown: ``**Input:**`` / ``**Output:**`` in bold, examples headed ``**Example <id>**``.

    Like :class:`PlainDataFormat` (same escaping and dict layout, fields as ``- **name:**``),
    with blank lines between the parts of an example, as markdown paragraphs. It uses no ``#``
    headings, so it nests inside a markdown section without clashing with its headings.

    >>> fmt = MarkdownDataFormat()
    >>> print(fmt.render_examples([Record(1, "I loved it.", "positive")]))
    **Example 1**
    <BLANKLINE>
    **Input:** I loved it.
    <BLANKLINE>
    **Output:** positive
    >>> print(fmt.render_inputs([Record(1, "Great!"), Record(2, "Awful.")]))
    **Input [1]:** Great!
    <BLANKLINE>
    **Input [2]:** Awful.
    """

    name = "markdown"
    _LABEL_FORMAT = "**{kind}:**"
    _HEADER_FORMAT = "**Example {id}**"
    _HEADER = re.compile(r"\*\*Example (?P<id>.+)\*\*")
    _FIELD_FORMAT = "- **{key}:**"
    _FIELD = re.compile(rf"- \*\*(?P<key>{_KEY}):\*\*")
    _LABEL, _TEXT_ESCAPER, _FIELD_ESCAPER = _label_syntax(
        "Input", "Output", header=r"\*\*Example .+\*\*\Z", field=r"- \*\*{key}:\*\*", key=_KEY
    )
    _PART_BREAK = "\n\n"


#: Data format name -> class: the entry points of group ``sammo_core.data_formats`` (the six
#: above are sammo-core's own; a plugin package adds more).
DATA_FORMATS: Registry[type[DataFormat]] = Registry(
    "sammo_core.data_formats", "data format", error=RenderError
)


def get_data_format(name: str) -> DataFormat:
    """The data format registered under ``name`` (see :data:`DATA_FORMATS`).

    >>> get_data_format("plain")
    PlainDataFormat()
    >>> try:
    ...     get_data_format("csv")
    ... except UnknownFormatError as exc:
    ...     print(exc)
    unknown data format 'csv'; use one of: json, markdown, plain, qa, sentence, xml
    """
    if not isinstance(name, str) or name not in DATA_FORMATS:
        raise UnknownFormatError("data format", name, DATA_FORMATS)
    return DATA_FORMATS[name]()
