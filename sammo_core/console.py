"""Where the command line prints: tables on stdout, whole when piped.

>>> table_console().width >= 1
True
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["table_console"]


def table_console() -> Console:
    """The console for tables on stdout: the terminal's width, or unlimited when piped.

    Piped to a file or another program, rich would cut tables at 80 columns ("label_accura...");
    there every table is printed whole.
    """
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 10_000)
