"""Files of a run folder that may come from someone else: written never through a link, read
with a bound, and named only inside their folder.

Run, ``--out`` and bench folders travel (archives, shared drives, a colleague's results), so
nothing in them is trusted:

- :func:`write_file` and :func:`open_append` write inside a folder and refuse a symbolic link
  at the file or at any folder between it and the run folder: a link planted there must never
  make sammo-core overwrite or truncate a file elsewhere.
- :func:`inside` checks a name read from a file (``best.id``, a ``prompt_file``) before it is
  joined to the folder: no absolute path, no ``..``, no link out.
- :func:`read_json` reads a JSON file no larger than a bound, and says in one line which file is
  bad and why.

>>> import tempfile
>>> run = Path(tempfile.mkdtemp())
>>> write_file(run, "programs/3.json", b"{}").relative_to(run).as_posix()
'programs/3.json'
>>> read_json(run / "programs" / "3.json", what="program file")
{}
>>> inside(run, "../x.json", source=run / "result.json")
Traceback (most recent call last):
...
sammo_core.errors.DataError: ...result.json names '../x.json', a path outside ...: \
only names inside the folder are read (the file was edited?)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO, Any

from sammo_core.errors import ConfigError, DataError, SammoError

__all__ = [
    "MAX_JSON_BYTES",
    "check_not_linked",
    "damaged_file",
    "inside",
    "open_append",
    "read_json",
    "write_file",
]

#: The largest JSON file of a run folder read (result, checkpoint, manifest, bench results).
MAX_JSON_BYTES = 256 << 20


def check_not_linked(folder: Path, relative: str | os.PathLike[str]) -> Path:
    """``folder / relative``, after checking that neither it nor any folder between is a link.

    ``folder`` itself may be a link (the user named it); what is inside it may not.
    """
    path = Path(folder)
    for part in Path(relative).parts:
        path = path / part
        if path.is_symlink():
            raise ConfigError(
                f"{path} is a symbolic link (to {os.readlink(path)}); sammo-core never writes "
                f"through a link in a run folder: remove the link, or pass another folder"
            )
    return path


def write_file(
    folder: Path, relative: str | os.PathLike[str], data: bytes | str, *, fsync: bool = False
) -> Path:
    """Write ``data`` to ``folder / relative`` atomically (a new file renamed over the old),
    creating the folders between; a symbolic link on the way is refused, never followed.
    ``fsync`` makes the bytes durable before the rename."""
    path = check_not_linked(folder, relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_not_linked(folder, relative)  # a link could have appeared while the folders were made
    blob = data.encode("utf-8") if isinstance(data, str) else data
    # mkstemp opens with O_EXCL: the temporary file is new, never a link someone planted.
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(handle, 0o666 & ~_umask())  # mkstemp creates 0o600; run files are shared
        with os.fdopen(handle, "wb") as out:
            out.write(blob)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(temporary, path)  # replaces a link that appeared since, never writes to it
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def open_append(folder: Path, relative: str | os.PathLike[str]) -> IO[bytes]:
    """``folder / relative`` opened to append bytes (created if missing), never through a link."""
    path = check_not_linked(folder, relative)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        handle = os.open(path, flags, 0o666)
    except OSError as exc:
        raise ConfigError(
            f"cannot open {path} to append ({exc.strerror}): remove it if it is a link, or "
            "pass another folder"
        ) from exc
    return os.fdopen(handle, "ab")


def inside(folder: Path, name: Any, *, source: Path) -> Path:
    """``folder / name`` for a ``name`` read from the file ``source``, checked to stay inside
    ``folder``: a relative path of plain parts, with no link on the way."""
    if not isinstance(name, str) or not name or "\0" in name:
        raise DataError(
            f"{source} names {name!r} where a file name inside {folder} belongs "
            "(the file was edited?)"
        )
    plain = PurePosixPath(name.replace("\\", "/"))
    if plain.is_absolute() or PureWindowsPath(name).drive or ".." in plain.parts:
        raise DataError(
            f"{source} names {name!r}, a path outside {folder}: only names inside the folder "
            "are read (the file was edited?)"
        )
    if any(len(part.encode("utf-8", "surrogatepass")) > 255 for part in plain.parts):
        raise DataError(
            f"{source} names {name[:80]!r}..., a file name longer than any file system takes "
            "(the file was edited?)"
        )
    path = Path(folder)
    for part in plain.parts:
        path = path / part
        try:
            linked = path.is_symlink()
        except OSError as exc:  # a name the file system refuses
            raise DataError(f"{source} names {name[:80]!r}, which cannot be read: {exc}") from None
        if linked:
            raise DataError(
                f"{source} names {name!r}, but {path} is a symbolic link (to "
                f"{os.readlink(path)}): only files inside {folder} are read; remove the link"
            )
    return path


def read_json(path: Path, *, what: str, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The JSON document in ``path`` (at most ``max_bytes``), or a :class:`DataError` naming
    the file, what it should be, and what is wrong."""
    import orjson

    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise DataError(
                    f"{path} is {size:,} bytes, more than the {max_bytes:,} a {what} may have: "
                    "is it the right file?"
                )
            blob = handle.read(size + 1)  # read(n) allocates n bytes up front: n is small
    except OSError as exc:
        raise DataError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc
    if len(blob) > max_bytes:
        raise DataError(f"{path} is more than the {max_bytes:,} bytes a {what} may have")
    try:
        return orjson.loads(blob)
    except orjson.JSONDecodeError as exc:
        raise DataError(f"{path} is not a {what}: not JSON ({exc})") from exc
    except RecursionError as exc:
        raise DataError(f"{path} is not a {what}: nested too deeply") from exc


@contextlib.contextmanager
def damaged_file(path: Path, what: str) -> Iterator[None]:
    """Turn a ``KeyError``, ``TypeError``... raised while reading the parsed JSON of ``path``
    (a field missing or of the wrong type) into one :class:`DataError` naming the file.

    >>> with damaged_file(Path("run/result.json"), "an optimize result"):
    ...     {"best": 5}["best"]["id"]
    Traceback (most recent call last):
    ...
    sammo_core.errors.DataError: run/result.json is not an optimize result (TypeError: 'int' \
object is not subscriptable); was it edited? Restore it, or pass another file
    """
    try:
        yield
    except SammoError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise DataError(
            f"{path} is not {what} ({type(exc).__name__}: {detail[:200]}); was it edited? "
            "Restore it, or pass another file"
        ) from exc


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def make_folder(folder: Path, flag: str) -> bool:
    """Make ``folder`` (parents too) for the command-line option ``flag``; whether it was made
    here. A file in its place, or a folder that cannot be made, is a one-line ConfigError.

    >>> import tempfile
    >>> make_folder(Path(tempfile.mkstemp()[1]), "--out")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: --out '...' is a file; pass a directory (created if missing)
    """
    from sammo_core.errors import ConfigError

    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            f"{flag} {str(folder)!r} is a file; pass a directory (created if missing)"
        )
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"{flag} {str(folder)!r} cannot be created ({exc.strerror}); pass a writable directory"
        ) from None
    return created
