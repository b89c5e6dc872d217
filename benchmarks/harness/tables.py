"""The harness's rich tables: a label column on the left, the figures right-aligned.

>>> table = figures_table("speeds", ["run", "rows", "wall s"])
>>> [c.justify for c in table.columns]
['left', 'right', 'right']
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

__all__ = ["figures_table"]


def figures_table(title: str, columns: Sequence[str]) -> Table:
    """A table titled ``title``: the first of ``columns`` names the rows, the rest are figures."""
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="right" if i else "left")
    return table
