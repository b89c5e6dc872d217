"""Who pays for a call: per-candidate tabs on a shared ledger, for work done concurrently.

A search evaluates many candidates at once on one :class:`~sammo_core.runners.accounting.Ledger`,
so the ledger's usage before and after an evaluation no longer tells what that evaluation
spent. A :class:`Tab` collects what the calls of one piece of work spent: the work runs inside
:func:`charging` (in its own task, or as the only work of the current one), and the
:class:`TabLedger` adds each call's settled usage to the tab of the task that made it. Tasks
started inside inherit the tab (``contextvars`` are copied into new tasks), so the rows a
program's graph runs concurrently are all charged to it.

>>> import asyncio
>>> from sammo_core.runners import AccountingRunner, LLMRequest, ScriptedRunner
>>> ledger = TabLedger()
>>> runner = AccountingRunner(ScriptedRunner(default="ok"), ledger=ledger)
>>> a, b = Tab(), Tab()
>>> async def work(tab: Tab, calls: int) -> None:
...     with charging(tab):
...         await runner.generate_many([LLMRequest.from_prompt(f"q{i}") for i in range(calls)])
>>> async def both() -> None:
...     await asyncio.gather(work(a, 2), work(b, 3))
>>> asyncio.run(both())
>>> (a.usage.calls, b.usage.calls, ledger.usage.calls)
(2, 3, 5)
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from sammo_core.runners.accounting import Ledger, Usage
from sammo_core.runners.base import LLMResult

__all__ = ["Tab", "TabLedger", "charging"]


class Tab:
    """The usage of the calls made while this tab was open (see :func:`charging`)."""

    __slots__ = ("usage",)

    def __init__(self) -> None:
        self.usage = Usage()

    def __repr__(self) -> str:
        return f"Tab({self.usage.summary()})"


_OPEN: contextvars.ContextVar[Tab | None] = contextvars.ContextVar("search_tab", default=None)


@contextlib.contextmanager
def charging(tab: Tab) -> Iterator[Tab]:
    """Charge the calls made in this block (and in tasks it starts) to ``tab``.

    Use it as the only work of a task when other work runs beside it: the tab follows the
    task's context, not the order in which calls settle.
    """
    token = _OPEN.set(tab)
    try:
        yield tab
    finally:
        _OPEN.reset(token)


class TabLedger(Ledger):
    """A :class:`~sammo_core.runners.accounting.Ledger` that also charges each settled call to
    the :class:`Tab` open in the task that made it (calls made under no tab are only counted
    on the ledger)."""

    def settle(
        self,
        ticket: int,
        result: LLMResult | None,
        error: BaseException | None = None,
        model: str = "",
    ) -> Usage:
        delta = super().settle(ticket, result, error, model)
        tab = _OPEN.get()
        if tab is not None:
            tab.usage = tab.usage + delta
        return delta
