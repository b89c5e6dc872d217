"""Sandboxed jinja2 templates with strict undefined variables and bounded work.

>>> render_template("Hello {{ name }}!", {"name": "Ada"})
'Hello Ada!'
>>> render_template("Hello {{ nme }}!", {"name": "Ada"})
Traceback (most recent call last):
...
sammo_core.errors.TemplateError: template variable 'nme' is undefined; defined: name

A template may come from a stranger (a program JSON loads without running code), so rendering
one is bounded as well as sandboxed. :class:`SandboxLimits` caps:

- **operations**: loop iterations, calls, filters, intercepted operators and output chunks
  together (nested ``range(100000)`` loops stop after ``max_operations``);
- **size**: no string, list or rendered output may exceed ``max_size`` characters (or
  items); ``*``, ``+``, ``~``, ``%``, ``join``, ``replace``, ``center``, ``indent``, width
  arguments and format specs are checked *before* they allocate; loop bodies count their
  literal text towards ``max_written`` characters per render;
- **integers**: ``**`` and ``*`` may not make integers over ``max_int_bits`` bits, so
  ``{{ 10**(10**9) }}`` fails at once instead of computing for hours.

Constant expressions are never folded at compile time, so compiling (and loading) a template
does no unbounded work. Going over a limit, ``MemoryError`` and ``RecursionError`` raise
:class:`~sammo_core.errors.TemplateError` naming the template:

>>> render_template("{{ 'x' * 10**10 }}", {}, where="Template('big')")
Traceback (most recent call last):
...
sammo_core.errors.TemplateError: Template('big'): template exceeds the sandbox limit: \
'*' would make 10,000,000,000 characters (limit 1,000,000); make the template compute less
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from sammo_core.errors import TemplateError

if TYPE_CHECKING:
    import jinja2
    from jinja2 import nodes

__all__ = [
    "SandboxLimits",
    "compile_template",
    "render_template",
    "template_variables",
]


@dataclasses.dataclass(frozen=True)
class SandboxLimits:
    """What one render of a template may compute and emit.

    >>> SandboxLimits().max_operations
    1000000
    """

    max_operations: int = 1_000_000
    max_size: int = 1_000_000
    max_written: int = 10_000_000
    max_int_bits: int = 10_000


DEFAULT_LIMITS = SandboxLimits()


def _limit(what: str) -> TemplateError:
    """The error for a template that went over a :class:`SandboxLimits` bound."""
    return TemplateError(
        f"template exceeds the sandbox limit: {what}; make the template compute less"
    )


class _Budget:
    __slots__ = ("limits", "operations", "written")

    def __init__(self, limits: SandboxLimits) -> None:
        self.limits = limits
        self.operations = 0
        self.written = 0

    def spend(self, operations: int = 1, written: int = 0) -> None:
        self.operations += operations
        self.written += written
        if self.operations > self.limits.max_operations:
            raise _limit(
                f"more than {self.limits.max_operations:,} operations (loop iterations, calls, "
                "filters)"
            )
        if self.written > self.limits.max_written:
            raise _limit(f"loops wrote more than {self.limits.max_written:,} characters of text")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "sammo_template_budget", default=None
)


def _limits() -> SandboxLimits:
    budget = _BUDGET.get()
    return DEFAULT_LIMITS if budget is None else budget.limits


def _spend(operations: int = 1, written: int = 0) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend(operations, written)


def _size(value: Any, limit: int) -> int:
    """Characters (or items) ``value`` would take as text, counted up to just past ``limit``."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, Mapping):
        total = len(value)
        for key, item in value.items():
            total += _size(key, limit) + _size(item, limit)
            if total > limit:
                return total
        return total
    if isinstance(value, list | tuple | set | frozenset):
        total = len(value)
        for item in value:
            total += _size(item, limit)
            if total > limit:
                return total
        return total
    if isinstance(value, int) and not isinstance(value, bool):
        return max(1, math.ceil(abs(value).bit_length() * 0.30103))
    return 1


def _check_size(value: Any, what: str) -> Any:
    limit = _limits().max_size
    size = _size(value, limit)
    if size > limit:
        raise _limit(f"{what} would make {size:,} characters (limit {limit:,})")
    return value


def _check_width(value: Any, what: str) -> None:
    limit = _limits().max_size
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > limit:
        raise _limit(f"{what} asks for width {value:,} (limit {limit:,})")


_SPEC_NUMBER = re.compile(r"\d+")


def _check_format_spec(text: Any, what: str) -> None:
    """A width or precision in a format string may not exceed the size limit."""
    if isinstance(text, str):
        for number in _SPEC_NUMBER.findall(text):
            if len(number) > 7 or int(number) > _limits().max_size:
                raise _limit(
                    f"{what} format string asks for width {number} (limit {_limits().max_size:,})"
                )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_binop(op: str, left: Any, right: Any) -> None:
    limits = _limits()
    if op == "**" and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
        bits = right * math.log2(abs(left))
        if bits > limits.max_int_bits:
            raise _limit(
                f"'**' would make an integer of {bits:,.0f} bits (limit {limits.max_int_bits:,})"
            )
    elif op == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and _is_int(times):
                size = _size(seq, limits.max_size) * max(times, 0)
                if size > limits.max_size:
                    raise _limit(f"'*' would make {size:,} characters (limit {limits.max_size:,})")
        if _is_int(left) and _is_int(right):
            bits = abs(left).bit_length() + abs(right).bit_length()
            if bits > limits.max_int_bits:
                raise _limit(
                    f"'*' would make an integer of {bits:,} bits (limit {limits.max_int_bits:,})"
                )
    elif op == "+" and not (_is_int(left) or isinstance(left, float)):
        _check_size([left, right], "'+'")
    elif op == "%" and isinstance(left, str):
        _check_format_spec(left, "'%'")


# str methods (and their jinja filter twins) whose output grows with an integer argument.
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_WIDTH_FILTERS = frozenset({"center", "indent", "wordwrap", "truncate", "batch", "slice"})


def _replace_size(text: Any, old: Any, new: Any) -> int:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        return len(text) + text.count(old) * max(len(new) - len(old), 0)
    return 0


def _precheck(name: str, target: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse a call that would allocate more than the size limit, before it runs."""
    what = f"{name}()"
    for value in (*args, *kwargs.values()):
        _check_size(value, what)
    if isinstance(target, str):
        _check_size(target, what)
        if name in _WIDTH_METHODS:
            for value in (*args, *kwargs.values()):
                _check_width(value, what)
        elif name in ("format", "format_map"):
            _check_format_spec(target, what)
        elif name == "replace" and len(args) >= 2:
            size = _replace_size(target, args[0], args[1])
            if size > _limits().max_size:
                raise _limit(f"{what} would make {size:,} characters")
        elif name == "join":
            _check_size(list(args[0]) if args else [], what)
    elif name == "generate_lorem_ipsum":
        for value in (*args, *kwargs.values()):
            _check_width(value, what)


def _guard_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a jinja filter) with an operation charged and its sizes checked."""
    context_args = 1 if getattr(fn, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _spend()
        value, extra = args[context_args : context_args + 1], args[context_args + 1 :]
        what = f"filter {name!r}"
        for item in (*value, *extra, *kwargs.values()):
            _check_size(item, what)
        if name in _WIDTH_FILTERS:
            for item in (*extra, *kwargs.values()):
                _check_width(item, what)
            if name == "indent" and value:
                width = extra[0] if extra else kwargs.get("width", 4)
                text = str(value[0])
                per_line = len(width) if isinstance(width, str) else int(width)
                size = len(text) + (text.count("\n") + 1) * max(per_line, 0)
                if size > _limits().max_size:
                    raise _limit(f"{what} would make {size:,} characters")
        elif name == "replace" and value and len(extra) >= 2:
            size = _replace_size(str(value[0]), extra[0], extra[1])
            if size > _limits().max_size:
                raise _limit(f"{what} would make {size:,} characters")
        elif name == "format" and value:
            _check_format_spec(value[0], what)
        elif name == "join" and value:
            _check_size(list(value[0]), what)
        return _check_size(fn(*args, **kwargs), what)

    return guarded


def _counted(context: Any, iterable: Any, written: int) -> Iterator[Any]:
    """Each loop iteration costs an operation, plus the literal text its body holds."""
    del context
    for item in iterable:
        _spend(1, written)
        yield item


def _concat(context: Any, parts: list[Any]) -> str:
    """The ``~`` operator, with its size checked before joining."""
    del context
    _spend()
    _check_size(parts, "'~'")
    return "".join(str(p) for p in parts)


def _finalize(value: Any) -> Any:
    _spend()
    return _check_size(value, "an output expression")


_counted.jinja_pass_arg = _concat.jinja_pass_arg = None  # type: ignore[attr-defined]


def _literal_size(node: nodes.Node) -> int:
    from jinja2 import nodes

    return sum(len(str(data.data)) for data in node.find_all(nodes.TemplateData))


def _bound(tree: nodes.Template) -> nodes.Template:
    """Route every loop and ``~`` through the counting filters."""
    from jinja2 import nodes

    for loop in list(tree.find_all(nodes.For)):
        written = sum(_literal_size(child) for child in loop.body)
        loop.iter = nodes.Filter(
            loop.iter, "_sammo_counted", [nodes.Const(written)], [], None, None
        )
    for concat in list(tree.find_all(nodes.Concat)):
        parts = nodes.List(list(concat.nodes))
        concat.nodes = [nodes.Filter(parts, "_sammo_concat", [], [], None, None)]
    return tree


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.utils import pass_context

    class BoundedSandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "+", "%"})

        def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
            _spend()
            _check_binop(operator_, left, right)
            return _check_size(super().call_binop(context, operator_, left, right), operator_)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            _spend()
            target = getattr(__obj, "__wrapped__", __obj)
            name = str(getattr(target, "__name__", "call"))
            _precheck(name, getattr(target, "__self__", None), args, kwargs)
            result = super().call(__context, __obj, *args, **kwargs)
            return _check_size(result, f"{name}()")

    env = BoundedSandbox(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=_finalize,
    )
    env.filters = {name: _guard_filter(name, fn) for name, fn in env.filters.items()}
    env.filters["_sammo_counted"] = pass_context(_counted)
    env.filters["_sammo_concat"] = pass_context(_concat)
    return env


@functools.lru_cache(maxsize=1024)
def compile_template(text: str) -> jinja2.Template:
    """Compile ``text``; a syntax error raises TemplateError with the line."""
    import jinja2

    env = _environment()
    try:
        return env.from_string(_bound(_parse(text)))
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error on line {exc.lineno}: {exc.message}") from exc
    except (RecursionError, MemoryError, SyntaxError) as exc:
        # jinja parses and compiles recursively, then Python compiles the generated code.
        raise _too_complex(exc) from exc


@functools.lru_cache(maxsize=1024)
def template_variables(text: str) -> frozenset[str]:
    """The undeclared variables ``text`` reads; a syntax error raises TemplateError."""
    import jinja2
    from jinja2 import meta

    try:
        return frozenset(meta.find_undeclared_variables(_parse(text)))
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error on line {exc.lineno}: {exc.message}") from exc
    except (RecursionError, MemoryError) as exc:
        raise _too_complex(exc) from exc


#: Templates whose syntax tree is deeper than this are refused before jinja compiles them: its
#: compiler takes time quadratic in the depth of nested loops (minutes for a few hundred), and
#: Python could not compile the code it makes of them anyway.
MAX_TEMPLATE_DEPTH = 100


def _parse(text: str) -> nodes.Template:
    """jinja's syntax tree of ``text``, refused when nested past :data:`MAX_TEMPLATE_DEPTH`."""
    tree = _environment().parse(text)
    stack: list[tuple[nodes.Node, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_TEMPLATE_DEPTH:
            raise TemplateError(
                f"template is nested more than {MAX_TEMPLATE_DEPTH} levels deep (loops, "
                "conditions, expressions); use fewer nested blocks, brackets or parentheses"
            )
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    return tree


def _too_complex(exc: BaseException) -> TemplateError:
    return TemplateError(
        f"template is nested too deeply to compile ({type(exc).__name__}); use fewer nested "
        "blocks, brackets or parentheses"
    )


def render_template(
    text: str,
    variables: Mapping[str, Any],
    *,
    where: str | None = None,
    limits: SandboxLimits = DEFAULT_LIMITS,
) -> str:
    """Render ``text`` with ``variables`` within ``limits``; errors raise TemplateError.

    ``where`` names the template in errors (e.g. the component's label).

    >>> render_template("{% for i in range(3) %}{{ i }}{% endfor %}", {})
    '012'
    >>> render_template("{% for i in range(9) %}{{ i }}{% endfor %}", {},
    ...                 limits=SandboxLimits(max_operations=5))
    Traceback (most recent call last):
    ...
    sammo_core.errors.TemplateError: template exceeds the sandbox limit: more than 5 operations \
(loop iterations, calls, filters); make the template compute less
    """
    try:
        return _render(text, variables, limits)
    except TemplateError as exc:
        if where is None:
            raise
        raise TemplateError(f"{where}: {exc}") from exc


def _render(text: str, variables: Mapping[str, Any], limits: SandboxLimits) -> str:
    import jinja2

    template = compile_template(text)
    budget = _Budget(limits)
    token = _BUDGET.set(budget)
    try:
        parts: list[str] = []
        size = 0
        for chunk in template.generate(**variables):
            budget.spend()
            size += len(chunk)
            if size > limits.max_size:
                raise _limit(f"the output is longer than {limits.max_size:,} characters")
            parts.append(chunk)
        return "".join(parts)
    except jinja2.UndefinedError as exc:
        missing = sorted(template_variables(text) - set(variables))
        name = missing[0] if missing else str(exc.message)
        defined = ", ".join(sorted(variables)) or "(none)"
        raise TemplateError(f"template variable {name!r} is undefined; defined: {defined}") from exc
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"template tried an unsafe operation: {exc}") from exc
    except OverflowError as exc:  # jinja's own range() cap, or float overflow
        raise TemplateError(
            f"template exceeds the sandbox limit: {str(exc).rstrip('.')}; make the template "
            "compute less"
        ) from exc
    except MemoryError as exc:
        raise TemplateError(
            "template ran out of memory while rendering; make the template compute less"
        ) from exc
    except RecursionError as exc:
        raise TemplateError(
            "template recursed too deeply (a macro calling itself?); make the template compute less"
        ) from exc
    except TemplateError:
        raise
    except Exception as exc:  # the template's own code failed: 1/0, "a" - 1, x.y() on a str
        raise TemplateError(
            f"template raised {type(exc).__name__} while rendering: {exc}; fix the template"
        ) from exc
    finally:
        _BUDGET.reset(token)
