"""POML files in and out: Microsoft's Prompt Orchestration Markup Language as a program file.

:func:`parse_poml` reads a ``.poml`` file into the same model of a prompt as the other prompt
files (:mod:`sammo_core.prompt_files`): a :class:`MetaPrompt` in the ``markdown`` section
format, whose rendering equals the ``poml`` package's (its default ``chat`` rendering, which
holds one human message for the files read here).
:func:`sammo_core.poml_export.program_to_poml` writes a program back as POML whose rendering
by the ``poml`` package (context ``{"input": X}``) is the prompt the program sends for ``X``.

Read (tag names as POML spells them, case and dashes aside):

* components with a header caption (``<role>``, ``<task>``, ``<output-format>``,
  ``<stepwise-instructions>``, ``<examples>``, ``<cp caption="...">``, and any captioned
  component given ``captionStyle="header"``) become :class:`Section` nodes titled by the
  caption; ``bold``/``plain`` captions (``<hint>``, ``<qa>``) are written into the paragraph
  as POML writes them (``**Hint:** ...``); ``hidden`` ones keep the content only;
* text, ``<p>``, ``<list>``/``<item>``, ``<b>``, ``<i>``, ``<s>``, ``<u>``, ``<span>``,
  ``<code>``, ``<br>`` become paragraphs; ``<h>`` followed by ``<section>`` a section;
* ``<examples chat="false">``/``<example>``/``<input>``/``<output>`` become a section of
  examples as POML writes them (``**Input:** ...``). Chat examples (POML's default) are sent
  by POML as separate human and AI messages, which a program does not hold: refused;
* ``<let>`` (a value or a literal), ``for=`` and ``if=`` are evaluated when the file is read;
  ``{{ }}`` expressions that read a name no ``<let>`` sets stay :class:`Template` nodes:
  ``{{ input }}`` is the input, ``{{ question }}`` the field ``question`` of a dict input (a
  single such name takes a non-dict input whole), as in the other prompt files.

Anything else (``<img>``, ``<document>``, ``<table>``, ``<stylesheet>``, ``<include>``,
``<tool-definition>``, messages and speakers, syntaxes other than markdown, ...) raises
:class:`ConfigError` naming the tag, its line and what to do.

Whitespace: POML documents whitespace in its default ``filter`` mode as insignificant (runs
collapse to one space, content is trimmed) and leaves blank lines to the writer. Renderings are
compared after :func:`normalize_poml`: each line trimmed and its runs of spaces and tabs made
one, runs of blank lines made one, blank lines at either end dropped. Line breaks and paragraph
breaks count; only the spaces POML's filter leaves at element boundaries (``text \\n\\n- item``)
and its blank-line runs do not.

(The XML tree and the items read from it are in :mod:`sammo_core.poml_tree`; expressions in
:mod:`sammo_core.poml_expressions`.)

>>> meta = parse_poml("<poml><role>You are terse.</role><p>Q: {{ input }}</p></poml>")
>>> from sammo_core.prompt_files import render_prompt
>>> print(render_prompt(meta, "Why?"))
# Role
<BLANKLINE>
You are terse.
<BLANKLINE>
Q: Why?
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sammo_core.components import Component, MetaPrompt, Section, Template
from sammo_core.errors import ConfigError
from sammo_core.jinja_text import escape_jinja
from sammo_core.poml_expressions import (
    EXPRESSION,
    jinja_expression,
    jinja_literal,
    js_environment,
    js_string,
)
from sammo_core.poml_tree import Dyn, Item, Node, Para, Sec, read_tree, strip_parts

__all__ = ["normalize_poml", "parse_poml"]

_RESERVED = frozenset({"input", "inputs", "constants"})
_FOR = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s+in\s+(.+)", re.DOTALL)

#: Captioned components: default caption and caption style.
_CAPTIONED = {
    "role": ("Role", "header"), "task": ("Task", "header"),
    "outputformat": ("Output Format", "header"),
    "stepwiseinstructions": ("Stepwise Instructions", "header"),
    "hint": ("Hint", "bold"), "introducer": ("Introducer", "hidden"), "cp": (None, "header"),
    "examples": ("Examples", "header"), "example": ("Example", "hidden"),
    "input": ("Input", "bold"), "output": ("Output", "bold"),
}  # fmt: skip
_INLINE = {"b": "**", "i": "*", "s": "~~", "u": "__", "span": ""}
_BULLETS = {"dash": "- ", "star": "* ", "plus": "+ "}
_CAPTION_ATTRS = {
    "caption", "captionstyle", "captiontexttransform", "captionending", "captioncolon",
    "captionserialized",
}  # fmt: skip
_COMMON_ATTRS = {"for", "if", "whitespace", "blankline", "classname", "name", "type"}
_ATTRS: dict[str, set[str]] = {
    "poml": {"syntax", "whitespace", "classname"},
    "p": set(), "section": set(), "h": set(), "span": set(), "b": set(), "i": set(),
    "s": set(), "u": set(), "item": set(),
    "list": {"liststyle"}, "code": {"inline", "lang"}, "br": {"newlinecount"},
    "let": {"value", "default"}, "examples": {"chat", "introducer"}, "example": {"chat"},
    "qa": {"questioncaption", "answercaption"},
}  # fmt: skip
_REFUSED = {
    "img": "images", "image": "images", "audio": "audio", "video": "video",
    "document": "documents", "doc": "documents", "table": "tables", "obj": "data objects",
    "object": "data objects", "dataobj": "data objects", "webpage": "web pages",
    "folder": "folders", "tree": "trees", "conversation": "conversations",
    "msgcontent": "messages", "systemmsg": "messages", "systemmessage": "messages",
    "humanmsg": "messages", "humanmessage": "messages", "usermsg": "messages",
    "aimsg": "messages", "aimessage": "messages", "toolrequest": "tool calls",
    "toolresponse": "tool calls", "tooldefinition": "tools", "tool": "tools",
    "outputschema": "output schemas", "runtime": "runtime parameters",
    "stylesheet": "stylesheets", "include": "includes", "meta": "meta settings",
}  # fmt: skip


def normalize_poml(text: str) -> str:
    """A rendering "up to whitespace" (see the module docstring).

    >>> normalize_poml("# Task\\n\\n\\nDo it. \\n\\n  More   text.\\n")
    '# Task\\n\\nDo it.\\n\\nMore text.'
    """
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


# -- components --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Scope:
    values: Mapping[str, Any]
    chat: bool | None = None  # the chat setting of the enclosing <examples>
    in_example: bool = False
    in_list: bool = False

    def bind(self, **values: Any) -> _Scope:
        return dataclasses.replace(self, values={**self.values, **values})


class _Reader:
    def __init__(self, where: str) -> None:
        self.where = where
        self.env = js_environment()

    def at(self, node: Node) -> str:
        return f"{self.where}, line {node.line}"

    def refuse(self, node: Node, what: str, fix: str) -> ConfigError:
        return ConfigError(f"{self.at(node)}: <{node.written}> {what}; {fix}")

    # expressions

    def parts(self, text: str, scope: _Scope, node: Node) -> list[str | Dyn]:
        """The text with its ``{{ }}`` expressions evaluated, or kept where they read input."""
        import jinja2
        from jinja2 import meta

        parts: list[str | Dyn] = []
        pos = 0
        for match in EXPRESSION.finditer(text):
            parts.append(text[pos : match.start()])
            expr = jinja_expression(match.group(1), self.at(node))
            try:
                names = meta.find_undeclared_variables(self.env.parse(f"{{{{ {expr} }}}}"))
            except jinja2.TemplateSyntaxError as exc:
                raise ConfigError(
                    f"{self.at(node)}: cannot read the expression {match.group(0)!r} "
                    f"({exc.message}); write names, literals and simple operators"
                ) from None
            if names <= set(scope.values):
                parts.append(js_string(self.evaluate(expr, scope, node)))
            else:
                static = tuple((n, scope.values[n]) for n in sorted(names) if n in scope.values)
                parts.append(Dyn(expr, frozenset(names), static))
            pos = match.end()
        parts.append(text[pos:])
        return [p for p in parts if p != ""]

    def evaluate(self, expr: str, scope: _Scope, node: Node) -> Any:
        import jinja2

        try:
            value = self.env.compile_expression(expr, undefined_to_none=False)(**scope.values)
            if isinstance(value, jinja2.Undefined):
                value._fail_with_undefined_error()
            return value
        except jinja2.UndefinedError as exc:
            raise ConfigError(
                f"{self.at(node)}: {exc.message} in {expr!r}, which is evaluated when the file "
                "is read; set it with <let> (conditions and loops cannot read the input)"
            ) from None
        except (jinja2.TemplateError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise ConfigError(
                f"{self.at(node)}: cannot evaluate {expr!r} ({exc}); simplify the expression"
            ) from None

    def static(self, text: str, scope: _Scope, node: Node, what: str) -> str:
        parts = self.parts(text, scope, node)
        if any(isinstance(p, Dyn) for p in parts):
            raise self.refuse(
                node, f"{what} {text!r} reads the input", "only text may read the input"
            )
        return "".join(str(p) for p in parts)

    # elements

    def element(self, node: Node, scope: _Scope) -> list[Item] | list[str | Dyn]:
        if "for" in node.attrs:
            match = _FOR.fullmatch(node.attrs["for"])
            if match is None:
                raise self.refuse(node, f"has for={node.attrs['for']!r}", 'write for="x in xs"')
            items = self.evaluate(jinja_expression(match[2], self.at(node)), scope, node)
            if not isinstance(items, list | tuple):
                raise self.refuse(node, f"loops over {items!r}", "loop over a list")
            once = dataclasses.replace(
                node, attrs={k: v for k, v in node.attrs.items() if k != "for"}
            )
            out: list[Any] = []
            for i, item in enumerate(items):
                loop = {
                    "index": i,
                    "length": len(items),
                    "first": i == 0,
                    "last": i == len(items) - 1,
                }
                out.extend(self.element(once, scope.bind(**{match[1]: item, "loop": loop})))
            return out
        if "if" in node.attrs:
            condition = node.attrs["if"]
            inner = EXPRESSION.fullmatch(condition.strip())
            value = self.evaluate(
                jinja_expression(inner[1] if inner else condition, self.at(node)), scope, node
            )
            if value in (False, None, 0, "") or (isinstance(value, float) and math.isnan(value)):
                return []
        self.check_attrs(node)
        if node.tag in _INLINE or node.tag == "br" or self.inline_code(node):
            return self.inline(node, scope)
        return self.block(node, scope)

    def check_attrs(self, node: Node) -> None:
        if node.tag in _REFUSED:
            raise self.refuse(
                node,
                f"({_REFUSED[node.tag]}) has no counterpart in a sammo program",
                "remove it, or write its content as text (a program reads one input per row)",
            )
        if node.tag not in _ATTRS and node.tag not in _CAPTIONED:
            raise self.refuse(
                node,
                "is not a POML component read here",
                "use <role>, <task>, <cp caption=...>, <p>, <list>, <examples> ... (see "
                "sammo_core.poml_files)",
            )
        allowed = _COMMON_ATTRS | _ATTRS.get(node.tag, set())
        if node.tag in _CAPTIONED:
            allowed |= _CAPTION_ATTRS
        for name in node.attrs:
            if name not in allowed:
                raise self.refuse(
                    node,
                    f"has the attribute {name!r}, which is not read here",
                    "remove it (speakers, stylesheets and writer options have no counterpart)",
                )
        space = node.attrs.get("whitespace", "filter")
        if space not in ("filter", "pre", "trim"):
            raise self.refuse(node, f"has whiteSpace={space!r}", "use filter, pre or trim")

    def inline_code(self, node: Node) -> bool:
        return node.tag == "code" and node.attrs.get("inline", "true") != "false"

    def inline(self, node: Node, scope: _Scope) -> list[str | Dyn]:
        if node.tag == "br":
            return ["\n" * int(node.attrs.get("newlinecount", "1"))]
        mark = "`" if node.tag == "code" else _INLINE[node.tag]
        parts: list[str | Dyn] = [mark]
        for child in node.children:
            if isinstance(child, str):
                parts += self.text(child, node, scope)
                continue
            inner = self.element(child, scope)
            if any(isinstance(x, Para | Sec) for x in inner):
                raise self.refuse(
                    child, f"is a block inside <{node.written}>", "move it out of the inline tag"
                )
            parts += inner  # type: ignore[arg-type]
        return [*parts, mark]

    def text(self, text: str, node: Node, scope: _Scope) -> list[str | Dyn]:
        if node.attrs.get("whitespace", "filter") == "filter":
            text = re.sub(r"\s+", " ", text)
        return self.parts(text, scope, node)

    def block(self, node: Node, scope: _Scope) -> list[Item]:
        tag = node.tag
        if tag == "let":
            raise self.refuse(node, "is misplaced", "put <let> directly in a container")
        if tag == "list":
            return [self.list_(node, scope)]
        if tag == "item":
            if not scope.in_list:
                raise self.refuse(node, "is outside a <list>", "put it in <list>...</list>")
            inner = dataclasses.replace(scope, in_list=False)
            return [Para(self.inline_parts(node, inner), inline=False)]
        if tag == "code":
            lang = node.attrs.get("lang", "")
            body = self.inline_parts(node, scope)
            return [Para([f"```{lang}\n", *body, "\n```"], inline=False)]
        if tag in ("h", "section"):
            raise self.refuse(
                node,
                "is read only as <h>Title</h> directly followed by <section>...</section>",
                'or write <cp caption="Title">...</cp>',
            )
        if tag == "poml":
            raise self.refuse(node, "is nested", "remove the inner <poml>")
        if tag == "examples":
            return self.examples(node, scope)
        if tag == "qa":
            return self.qa(node, scope)
        if tag in ("example", "input", "output"):
            return self.example_part(node, scope)
        items = self.children(node, scope)
        if tag == "p":
            return [Para(i.parts, inline=False) if isinstance(i, Para) else i for i in items]
        return self.captioned(node, scope, items)

    def example_part(self, node: Node, scope: _Scope) -> list[Item]:
        chat = node.attrs.get("chat")
        if node.tag == "example":
            in_chat = scope.chat if chat is None else chat != "false"
            if in_chat is None or in_chat:
                raise self.refuse(
                    node,
                    "is a chat example (POML's default), which POML sends as separate human "
                    "and AI messages that a sammo program does not hold",
                    'add chat="false" to <examples> (or <example>) to write it inline as '
                    "**Input:** ... **Output:** ...",
                )
            inner = dataclasses.replace(scope, chat=False, in_example=True)
            return self.captioned(node, scope, self.children(node, inner))
        if not scope.in_example:
            raise self.refuse(node, "is outside an <example>", "put it in <example>")
        return self.captioned(node, scope, self.children(node, scope))

    def examples(self, node: Node, scope: _Scope) -> list[Item]:
        if node.attrs.get("chat", "true") != "false":
            raise self.refuse(
                node,
                "holds chat examples (POML's default), which POML sends as separate human and "
                "AI messages that a sammo program does not hold",
                'add chat="false" to write them inline as **Input:** ... **Output:** ...',
            )
        items: list[Item] = []
        if node.attrs.get("introducer"):
            text = self.static(node.attrs["introducer"], scope, node, "introducer")
            items.append(Para([text], inline=False))
        items += self.children(node, dataclasses.replace(scope, chat=False))
        return self.captioned(node, scope, items)

    def qa(self, node: Node, scope: _Scope) -> list[Item]:
        style = node.attrs.get("captionstyle", "bold")
        if style not in ("bold", "plain"):
            raise self.refuse(node, f"has captionStyle={style!r}", "use bold or plain")
        question = node.attrs.get("questioncaption", "Question")
        answer = self.caption_text(node, node.attrs.get("answercaption", "Answer"), style, True)
        items = self.children(node, scope)
        return [
            *self.with_caption(node, scope, items, question, style),
            Para([answer], inline=False),
        ]

    def list_(self, node: Node, scope: _Scope) -> Para:
        style = node.attrs.get("liststyle", "dash")
        if style not in (*_BULLETS, "decimal", "latin"):
            raise self.refuse(
                node, f"has listStyle={style!r}", "use dash, star, plus, decimal or latin"
            )
        parts: list[str | Dyn] = []
        index = 0
        for child in node.children:
            if isinstance(child, str):
                if child.strip():
                    raise self.refuse(node, "holds text outside <item>", "put it in an <item>")
                continue
            in_list = dataclasses.replace(scope, in_list=True)
            for item in self.element(child, in_list) if child.tag == "item" else [child]:
                if not isinstance(item, Para):
                    raise self.refuse(child, "is not an <item>", "a <list> holds <item>s")
                marker = _BULLETS.get(style) or (
                    f"{index + 1}. " if style == "decimal" else f"{chr(97 + index % 26)}. "
                )
                parts += ["\n" if index else "", marker, *strip_parts(item.parts)]
                index += 1
        return Para(parts, inline=False)

    def inline_parts(self, node: Node, scope: _Scope) -> list[str | Dyn]:
        items = self.children(node, scope)
        if len(items) > 1 or any(isinstance(i, Sec) for i in items):
            raise self.refuse(node, "holds blocks", "write text and inline tags only in it")
        return strip_parts(items[0].parts) if items else []  # type: ignore[union-attr]

    def children(self, node: Node, scope: _Scope) -> list[Item]:
        """The paragraphs and sections of ``node``'s content."""
        items: list[Item] = []
        run: list[str | Dyn] = []
        heading: tuple[Node, str] | None = None

        def flush() -> None:
            parts = strip_parts(run)
            if parts:
                items.append(Para(parts, inline=True))
            run.clear()

        for child in node.children:
            if isinstance(child, str):
                if heading is None:
                    run += self.text(child, node, scope)
                elif child.strip():
                    raise self.refuse(heading[0], "is not followed by <section>", "add one")
                continue
            if heading is not None:
                if child.tag != "section":
                    raise self.refuse(heading[0], "is not followed by <section>", "add one")
                self.check_attrs(child)
                items.append(Sec(heading[1], self.children(child, scope)))
                heading = None
                continue
            if child.tag == "let":
                scope = self.let(child, scope)
                continue
            if child.tag == "h":
                flush()
                self.check_attrs(child)
                title = "".join(str(p) for p in self.inline_parts(child, scope))
                heading = (child, title)
                continue
            out = self.element(child, scope)
            if out and isinstance(out[0], Para | Sec):
                flush()
                items += out
            else:
                run += out  # type: ignore[arg-type]
        if heading is not None:
            raise self.refuse(heading[0], "is not followed by <section>", "add one")
        flush()
        return items

    def let(self, node: Node, scope: _Scope) -> _Scope:
        self.check_attrs(node)
        if "src" in node.attrs:
            raise self.refuse(node, "reads a file", "write the value inline")
        name = node.attrs.get("name")
        if name is None:
            raise self.refuse(node, "has no name", 'write <let name="x" value="..."/>')
        if node.attrs.get("default") == "true" and name in scope.values:
            return scope
        if "value" in node.attrs:
            raw = node.attrs["value"].strip()
            inner = EXPRESSION.fullmatch(raw)
            value = self.evaluate(
                jinja_expression(inner[1] if inner else raw, self.at(node)), scope, node
            )
        else:
            text = "".join(c for c in node.children if isinstance(c, str)).strip()
            try:
                value = json.loads(text)
            except ValueError:
                value = text
        return scope.bind(**{name: value})

    def caption_text(self, node: Node, caption: str, style: str, colon: bool) -> str:
        transform = node.attrs.get("captiontexttransform", "none")
        if transform == "upper":
            caption = caption.upper()
        elif transform == "lower":
            caption = caption.lower()
        elif transform == "capitalize":
            caption = caption[:1].upper() + caption[1:]
        elif transform != "none":
            raise self.refuse(
                node,
                f"has captionTextTransform={transform!r}",
                "use upper, lower, capitalize or none",
            )
        caption += ":" if colon else ""
        return f"**{caption}**" if style == "bold" else caption

    def captioned(self, node: Node, scope: _Scope, items: list[Item]) -> list[Item]:
        default, style = _CAPTIONED[node.tag]
        caption = node.attrs.get("caption", default)
        if caption is None:
            raise self.refuse(node, "has no caption", 'write <cp caption="Title">')
        style = node.attrs.get("captionstyle", style)
        return self.with_caption(node, scope, items, caption, style)

    def with_caption(
        self, node: Node, scope: _Scope, items: list[Item], caption: str, style: str
    ) -> list[Item]:
        if style == "hidden":
            return items
        if style not in ("header", "bold", "plain"):
            raise self.refuse(
                node, f"has captionStyle={style!r}", "use header, bold, plain or hidden"
            )
        caption = self.static(caption, scope, node, "caption")
        ending = node.attrs.get("captionending")
        if ending is None:
            colon = node.attrs.get("captioncolon", str(style != "header").lower()) == "true"
            ending = "colon" if colon else "none"
        if ending not in ("colon", "newline", "colon-newline", "none"):
            raise self.refuse(
                node, f"has captionEnding={ending!r}", "use colon, newline, colon-newline or none"
            )
        title = self.caption_text(node, caption, style, ending.startswith("colon"))
        if style == "header":
            return [Sec(title, items)]
        if items and isinstance(items[0], Para) and items[0].inline:
            sep = "\n" if ending.endswith("newline") else " "
            return [Para([title + sep, *items[0].parts], inline=False), *items[1:]]
        return [Para([title], inline=False), *items]


# -- to components -----------------------------------------------------------------------------


def _fields(items: Sequence[Item]) -> set[str]:
    names: set[str] = set()
    for item in items:
        if isinstance(item, Sec):
            names |= _fields(item.items)
        else:
            for part in item.parts:
                if isinstance(part, Dyn):
                    names |= part.names - {n for n, _ in part.static}
    return names - _RESERVED


def _component(item: Item, single_field: bool) -> Component | str:
    if isinstance(item, Sec):
        return Section(item.title, [_component(i, single_field) for i in item.items])
    parts = strip_parts(item.parts)
    if not any(isinstance(p, Dyn) for p in parts):
        return "".join(str(p) for p in parts)
    sets: dict[str, str] = {}
    body: list[str] = []
    for i, part in enumerate(parts):
        if isinstance(part, str):
            body.append(escape_jinja(part, final=i == len(parts) - 1))
            continue
        for name, value in part.static:
            sets[name] = jinja_literal(value)
        for name in sorted(part.names - _RESERVED - {n for n, _ in part.static}):
            field = f"input[{json.dumps(name)}]"
            sets[name] = f"{field} if input is mapping else input" if single_field else field
        body.append(f"{{{{ {part.expr} }}}}")
    prefix = "".join(f"{{% set {name} = {value} %}}" for name, value in sorted(sets.items()))
    return Template(prefix + "".join(body))


def parse_poml(text: str, *, where: str = "POML file") -> MetaPrompt:
    """Read POML markup into a :class:`MetaPrompt` (see the module docstring).

    >>> meta = parse_poml('<poml><hint>Be brief.</hint><task>Sum {{ a }} and {{ b }}.</task></poml>')
    >>> from sammo_core.prompt_files import render_prompt
    >>> print(render_prompt(meta, {"a": 1, "b": 2}))
    **Hint:** Be brief.
    <BLANKLINE>
    # Task
    <BLANKLINE>
    Sum 1 and 2.
    >>> parse_poml('<poml>\\n<img src="cat.png"/></poml>', where="x.poml")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: x.poml, line 2: <img> (images) has no counterpart in a sammo program; ...
    """  # noqa: E501
    root = read_tree(text, where)
    reader = _Reader(where)
    reader.check_attrs(root)
    syntax = root.attrs.get("syntax", "markdown")
    if syntax != "markdown":
        raise reader.refuse(root, f"has syntax={syntax!r}", 'only syntax="markdown" is read')
    items = reader.children(root, _Scope({}))
    fields = _fields(items)
    return MetaPrompt([_component(i, len(fields) == 1) for i in items], "markdown")
