"""What importing a module pulls in, seen from a fresh interpreter.

Heavy dependencies (the ``openai`` client, llama.cpp, torch) load only when a feature uses
them; a test checks that by importing modules in a new Python process, whose ``sys.modules``
starts empty, and asking which of the heavy ones came along.

>>> loaded_by_importing(["sqlite3"], ["sqlite3", "tkinter"])
['sqlite3']
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence

__all__ = ["loaded_by_importing"]


def loaded_by_importing(modules: Sequence[str], watched: Sequence[str]) -> list[str]:
    """The ``watched`` modules (sorted) that a fresh interpreter holds after importing
    ``modules``; it sees this process's ``sys.path``, so it imports the same code."""
    code = (
        f"import json, sys, {', '.join(modules)}\n"
        f"print(json.dumps(sorted(m for m in {list(watched)!r} if m in sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing {', '.join(modules)} failed:\n{done.stderr}")
    loaded: list[str] = json.loads(done.stdout)
    return loaded
