"""One process per output folder, and SIGTERM handled like Ctrl-C.

:func:`lock_folder` takes an exclusive ``flock`` on a lock file inside a run or ``--out``
folder for as long as a command writes there; a second process that asks for the same folder is
refused at once with a message naming the holder (its pid and command line). The operating
system drops the lock when the process ends, however it ends, so a crash never leaves a stale
lock behind.

:func:`terminate_as_interrupt` makes SIGTERM (what ``kill``, ``timeout`` and job schedulers
send) take the path of Ctrl-C: the commands that keep partial work on Ctrl-C keep it on
SIGTERM too, and :func:`exit_code` turns their 130 into 143 (128 + SIGTERM).

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> with lock_folder(folder, "--out"):
...     (folder / LOCK_FILE).is_file()
True
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from sammo_core.errors import ConfigError

__all__ = [
    "LOCK_FILE",
    "exit_code",
    "interruption",
    "lock_folder",
    "terminate_as_interrupt",
]

#: The lock file a command holds inside the folder it writes.
LOCK_FILE = ".sammo.lock"
_INTERRUPTED = 130
_TERMINATED = 128 + signal.SIGTERM
_received: list[int] = []


def _holder(path: Path) -> str:
    """Who holds the lock, as its lock file says (best effort: the file may be mid-write)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return "another process"
    pid, _, command = text.partition(" ")
    if not pid.isdigit():
        return "another process"
    return f"process {pid}" + (f" ({command[:200]})" if command else "")


@contextlib.contextmanager
def lock_folder(folder: Path, flag: str = "--out") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if missing) for the ``with`` block.

    Raises :class:`~sammo_core.errors.ConfigError` naming the other process when one holds it.
    The lock is an ``flock`` on ``folder / LOCK_FILE``, released when the block ends or the
    process dies. Where ``flock`` is missing (not POSIX), nothing is locked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield folder
        return
    path = folder / LOCK_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # O_NOFOLLOW: a lock file planted as a link must not make us write elsewhere.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ConfigError(
            f"{flag} {str(folder)!r}: cannot create its lock file {LOCK_FILE} "
            f"({exc.strerror}); pass a writable folder that holds no link named {LOCK_FILE}"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(
                f"{flag} {str(folder)!r} is in use by {_holder(path)}; wait for it to finish "
                "or pass another folder"
            ) from None
        command = " ".join(sys.argv).replace("\n", " ")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command}\n".encode(errors="replace"), 0)
        yield folder
    finally:
        os.close(fd)  # closing the descriptor drops the lock


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Do what Ctrl-C would do now: call the SIGINT handler in place (asyncio's cancels the
    main task; Python's default raises KeyboardInterrupt)."""
    _received.append(signum)
    handler: Any = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:  # SIGINT ignored or default (a background job): interrupt all the same
        raise KeyboardInterrupt


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM interrupts like Ctrl-C (see :func:`exit_code`).

    Only the main thread can install signal handlers; elsewhere the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interruption() -> str:
    """What stopped the command: ``"SIGTERM"`` after one, else ``"Ctrl-C"``.

    >>> interruption()
    'Ctrl-C'
    """
    return "SIGTERM" if _received else "Ctrl-C"


def exit_code(code: int) -> int:
    """``code``, with the 130 of an interrupted command turned into 143 after a SIGTERM."""
    return _TERMINATED if code == _INTERRUPTED and _received else code
