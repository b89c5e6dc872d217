"""POML's ``{{ }}`` expressions (JavaScript) as jinja2 ones, and values as JavaScript writes them.

:func:`jinja_expression` translates the subset both languages share (names, literals,
``. [] + - * / %``, comparisons, ``&& || !``); :func:`js_environment` evaluates it with
JavaScript's ``+`` on strings; :func:`js_string` writes a value into text as JavaScript does and
:func:`jinja_literal` writes it back as a jinja2 literal.

>>> jinja_expression("n === 1 && !done", "x.poml")
'n == 1 and  not done'
>>> js_environment().compile_expression("'n' + n")(n=2.0)
'n2'
>>> js_string([1.0, None, True])
'1,,true'
>>> jinja_literal({"n": [1, None]})
'{"n": [1, none]}'
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sammo_core.errors import ConfigError

__all__ = ["EXPRESSION", "jinja_expression", "jinja_literal", "js_environment", "js_string"]

#: A ``{{ }}`` expression in POML text or attributes.
EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_JS_TOKEN = re.compile(
    r"""\s+|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|===|!==|==|!=|&&|\|\||<=|>=|"""
    r"""[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|[-+*/%<>!.,()\[\]{}:]"""
)
_JS_WORDS = {"&&": " and ", "||": " or ", "!": " not ", "===": "==", "!==": "!=", "null": "none"}
_JS_WORDS["undefined"] = "none"


def jinja_expression(js: str, where: str) -> str:
    """A POML (JavaScript) expression as a jinja2 one, for the subset both share."""
    out: list[str] = []
    pos = 0
    while pos < len(js):
        match = _JS_TOKEN.match(js, pos)
        if match is None:
            raise ConfigError(
                f"{where}: the expression {{{{ {js.strip()} }}}} uses {js[pos]!r}, which is "
                "not read here (names, literals, . [] + - * / %, comparisons, && || !); "
                "compute the value before the prompt and pass it as a field"
            )
        token = match.group(0)
        out.append(_JS_WORDS.get(token, token))
        pos = match.end()
    return "".join(out).strip()


def js_environment() -> Any:
    """A sandboxed jinja2 environment whose ``+`` joins strings as JavaScript does."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class JSLike(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"+"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "+" and (isinstance(left, str) or isinstance(right, str)):
                return js_string(left) + js_string(right)
            return super().call_binop(context, operator, left, right)

    import jinja2

    return JSLike(undefined=jinja2.StrictUndefined)


def js_string(value: Any) -> str:
    """``value`` as JavaScript writes it into a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return ",".join("" if v is None else js_string(v) for v in value)
    if isinstance(value, Mapping):
        return "[object Object]"
    return str(value)


def jinja_literal(value: Any) -> str:
    """``value`` as a jinja2 literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(jinja_literal(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k))}: {jinja_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return repr(value)
