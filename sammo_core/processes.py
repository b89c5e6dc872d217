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
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from sammo_core.errors import ConfigError
from sammo_core.run_files import make_folder

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
    if len(command) > 300:
        command = command[:300] + "..."
    return f"process {pid}" + (f" ({command})" if command else "")


@contextlib.contextmanager
def lock_folder(folder: Path, flag: str = "--out") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if missing) for the ``with`` block.

    Raises :class:`~sammo_core.errors.ConfigError` naming the other process when one holds it.
    The lock is an ``flock`` on ``folder / LOCK_FILE``, released when the block ends or the
    process dies; the block's end also removes the lock file (and the folder, if the block
    created it and left it empty). Where ``flock`` is missing (not POSIX), nothing is locked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield folder
        return
    created = make_folder(folder, flag)
    path = folder / LOCK_FILE
    fd = _take(path, folder, flag, fcntl)
    try:
        command = shlex.join(["sammo-core", *sys.argv[1:]]).replace("\n", " ")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command}\n".encode(errors="replace"), 0)
        yield folder
    finally:
        # Unlinked while still held: a process that opened it meanwhile finds it gone (_take).
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)  # closing the descriptor drops the lock
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty: a command refused before writing leaves nothing


def _take(path: Path, folder: Path, flag: str, fcntl: Any) -> int:
    """Open and lock ``path``; the descriptor, or ConfigError naming the holder."""
    while True:
        try:
            # O_NOFOLLOW: a lock file planted as a link must not make us write elsewhere.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise ConfigError(
                f"{flag} {str(folder)!r}: cannot create its lock file {LOCK_FILE} "
                f"({exc.strerror}); pass a writable folder that holds no link named {LOCK_FILE}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigError(
                f"{flag} {str(folder)!r} is in use by {_holder(path)}; wait for it to finish "
                "or pass another folder"
            ) from None
        try:
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed this file as it finished: lock the new one


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
    """Within the block, SIGTERM interrupts like Ctrl-C (see :func:`exit_code`, which tells
    the two apart inside the block only).

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
        _received.clear()


def interruption() -> str:
    """What stopped the command: ``"SIGTERM"`` after one, else ``"Ctrl-C"``.

    >>> interruption()
    'Ctrl-C'
    """
    return "SIGTERM" if _received else "Ctrl-C"


def exit_code(code: int) -> int:
    """``code``, with the 130 of an interrupted command turned into 143 after a SIGTERM."""
    return _TERMINATED if code == _INTERRUPTED and _received else code
