"""Reading predictions out of a model's text.

>>> parse_output("first_line", "yes\\nbecause...", 1, "plain")
['yes']
>>> parse_output("regex:answer is (\\\\w+)", "I think the answer is blue.", 1, "plain")
['blue']
"""

from __future__ import annotations

import json
import re
from typing import Any

from renderers import get_data_format

__all__ = ["parse_output"]

_DECODER = json.JSONDecoder()


def _first_json(text: str) -> Any:
    for match in re.finditer(r"[\[{\"0-9tfn-]", text):
        try:
            return _DECODER.raw_decode(text, match.start())[0]
        except ValueError:
            continue
    return None


def parse_output(parser: str, text: str, n_inputs: int, data_format: str) -> list[Any]:
    """Return ``n_inputs`` predictions (``None`` where an answer is missing or malformed).

    ``auto`` defers to the data format's parser, which matches answers to inputs by id
    (ids are 1..n within a call); the other parsers read one answer and need ``n_inputs == 1``
    (with more, the answer goes to the first input and the rest count as missing).
    """
    if parser == "auto":
        ids = list(range(1, n_inputs + 1))
        parsed = get_data_format(data_format).parse_outputs(text, ids)
        return [parsed.get(i) for i in ids]
    value: Any
    if parser == "raw":
        value = text.strip()
    elif parser == "first_line":
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        value = lines[0] if lines else None
    elif parser == "json":
        value = _first_json(text)
    else:  # regex:PATTERN, validated by Output
        match = re.search(parser[len("regex:") :], text, re.DOTALL)
        value = None if match is None else (match.group(1) if match.groups() else match.group(0))
    return [value] + [None] * (n_inputs - 1)
