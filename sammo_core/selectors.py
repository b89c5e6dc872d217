"""Finding nodes in a program by id, by type, or by a CSS-like path.

Grammar (a small CSS subset)::

    selector  := compound ((" " | " > ") compound)* ("," selector)*
    compound  := (TYPE | "*")? ("#" ID)? ("[" FIELD OP VALUE "]")* (":nth(" N ")")?
    OP        := "=" (equals) | "*=" (contains) | "^=" (starts with)

``TYPE`` matches the class name or any base class name (``Component`` matches all). A space
means "descendant", ``>`` means "direct child". ``:nth(N)`` keeps the N-th match (0-based)
of that compound among its parent's matching children.

>>> from sammo_core import MetaPrompt, Section, Paragraph
>>> prompt = MetaPrompt([Section("Task", ["Do it."], id="task"), Section("Rules", [
...     Paragraph("Be brief.", id="brief")])])
>>> [m.path for m in find(prompt, "Section")]
['children[0]', 'children[1]']
>>> [m.node.text for m in find(prompt, "Section[title='Rules'] > Paragraph")]
['Be brief.']
>>> find_one(prompt, "#task").node.title
'Task'
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

from sammo_core.components import Component
from sammo_core.errors import ConfigError

__all__ = ["Match", "find", "find_one", "parse_selector"]


@dataclasses.dataclass(frozen=True)
class Match:
    """A node found by a selector, with its path for ``pg.clone(..., override={path: v})``."""

    path: str
    node: Component


@dataclasses.dataclass(frozen=True)
class _Attr:
    field: str
    op: str
    value: str

    def test(self, node: Component) -> bool:
        if self.field not in node.sym_init_args:
            return False
        actual = node.sym_getattr(self.field)
        if actual is None:
            return False
        text = str(actual)
        if self.op == "=":
            return text == self.value
        if self.op == "*=":
            return self.value in text
        return text.startswith(self.value)


@dataclasses.dataclass(frozen=True)
class _Compound:
    type_name: str | None
    node_id: str | None
    attrs: tuple[_Attr, ...]
    nth: int | None

    def test(self, node: Component) -> bool:
        if self.type_name is not None and self.type_name not in {
            cls.__name__ for cls in type(node).__mro__
        }:
            return False
        if self.node_id is not None and node.id != self.node_id:
            return False
        return all(a.test(node) for a in self.attrs)


# A compiled selector: alternatives, each a list of (combinator, compound).
Selector = tuple[tuple[tuple[str, _Compound], ...], ...]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<child>>)
    | (?P<comma>,)
    | (?P<compound>
        (?:[A-Za-z_]\w*|\*)?
        (?:\#[\w\-]+)?
        (?:\[\s*\w+\s*(?:=|\*=|\^=)\s*(?:'[^']*'|"[^"]*"|[^\]\s]+)\s*\])*
        (?::nth\(\d+\))?
      )
    )""",
    re.VERBOSE,
)
_COMPOUND = re.compile(
    r"(?P<type>[A-Za-z_]\w*|\*)?(?:\#(?P<id>[\w\-]+))?(?P<attrs>(?:\[[^\]]*\])*)"
    r"(?::nth\((?P<nth>\d+)\))?$"
)
_ATTR = re.compile(r"\[\s*(\w+)\s*(=|\*=|\^=)\s*('[^']*'|\"[^\"]*\"|[^\]\s]+)\s*\]")


def _compound(text: str, selector: str) -> _Compound:
    m = _COMPOUND.match(text)
    if not m or not text:
        raise ConfigError(f"cannot parse {text!r} in selector {selector!r}")
    attrs = tuple(
        _Attr(f, op, v[1:-1] if v[:1] in "'\"" else v) for f, op, v in _ATTR.findall(m["attrs"])
    )
    type_name = None if m["type"] in (None, "*") else m["type"]
    return _Compound(type_name, m["id"], attrs, int(m["nth"]) if m["nth"] else None)


def parse_selector(selector: str) -> Selector:
    """Compile a selector string; a syntax error names the selector and the position."""
    alternatives: list[tuple[tuple[str, _Compound], ...]] = []
    steps: list[tuple[str, _Compound]] = []
    combinator = " "
    pos = 0
    stripped = selector.strip()
    if not stripped:
        raise ConfigError("empty selector; use a type like 'Section', an id like '#task', or '*'")
    while pos < len(stripped):
        m = _TOKEN.match(stripped, pos)
        if not m or m.end() == pos:
            raise ConfigError(
                f"cannot parse selector {selector!r} at position {pos}: {stripped[pos:]!r}"
            )
        pos = m.end()
        if m["child"]:
            if not steps or combinator == ">":
                raise ConfigError(f"selector {selector!r} has '>' without a node before it")
            combinator = ">"
        elif m["comma"]:
            if not steps or combinator == ">":
                raise ConfigError(f"selector {selector!r} has an empty alternative")
            alternatives.append(tuple(steps))
            steps, combinator = [], " "
        elif m["compound"]:
            steps.append((combinator, _compound(m["compound"], selector)))
            combinator = " "
    if not steps or combinator == ">":
        raise ConfigError(f"selector {selector!r} ends without a node to match")
    alternatives.append(tuple(steps))
    return tuple(alternatives)


def _children(node: Component, path: str) -> Iterator[tuple[str, Component]]:
    for name in node.child_fields:
        value = node.sym_getattr(name)
        base = f"{path}.{name}" if path else name
        if isinstance(value, list):
            for i, child in enumerate(value):
                if isinstance(child, Component):
                    yield f"{base}[{i}]", child
        elif isinstance(value, Component):
            yield base, value


def _descendants(node: Component, path: str) -> Iterator[tuple[str, Component]]:
    for child_path, child in _children(node, path):
        yield child_path, child
        yield from _descendants(child, child_path)


def _apply_nth(
    candidates: list[tuple[str, Component]], nth: int | None
) -> list[tuple[str, Component]]:
    if nth is None:
        return candidates
    return candidates[nth : nth + 1]


def _match(
    root: Component, steps: tuple[tuple[str, _Compound], ...]
) -> list[tuple[str, Component]]:
    # The first step may match the root itself or any descendant.
    first = steps[0][1]
    current = [(p, n) for p, n in [("", root), *_descendants(root, "")] if first.test(n)]
    current = _apply_nth(current, first.nth)
    for combinator, compound in steps[1:]:
        found: dict[str, Component] = {}
        for path, node in current:
            pool = _children(node, path) if combinator == ">" else _descendants(node, path)
            hits = [(p, n) for p, n in pool if compound.test(n)]
            found.update(_apply_nth(hits, compound.nth))
        current = list(found.items())
    return current


def find(program: Component, selector: str) -> list[Match]:
    """All nodes of ``program`` matching ``selector``, in document order, without repeats."""
    compiled = parse_selector(selector)
    seen: dict[str, Component] = {}
    for steps in compiled:
        for path, node in _match(program, steps):
            seen.setdefault(path, node)
    order = {path: i for i, (path, _) in enumerate([("", program), *_descendants(program, "")])}
    return [Match(p, n) for p, n in sorted(seen.items(), key=lambda item: order[item[0]])]


def find_one(program: Component, selector: str) -> Match:
    """The single node matching ``selector``; none or several raise ConfigError."""
    matches = find(program, selector)
    if len(matches) != 1:
        where = ", ".join(m.path or "<root>" for m in matches[:5])
        raise ConfigError(
            f"selector {selector!r} matched {len(matches)} nodes"
            + (f" ({where})" if matches else "")
            + "; make it more specific, e.g. with an id ('#my-id') or ':nth(0)'"
        )
    return matches[0]
