"""Running a coroutine from synchronous code.

:func:`run_keeping` is ``asyncio.run`` for work whose result is large: on exit ``asyncio.run``
formats its main task's repr (while restoring the SIGINT handler), and a task's repr includes
its result, so returning a result table or a search result from the main task formats every row
or every candidate's program (0.4 s of a 48-candidate search). Here the result is kept outside
the task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_keeping"]

T = TypeVar("T")


def run_keeping(work: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(work)``, its result kept out of the main task's repr.

    >>> async def answer() -> int:
    ...     return 42
    >>> run_keeping(answer())
    42
    """
    kept: list[T] = []

    async def keep() -> None:
        kept.append(await work)

    asyncio.run(keep())
    return kept[0]
