"""``sammo-core cache``: copy a completion cache between SQLite and PostgreSQL, and count it.

::

    sammo-core cache copy cache.sqlite postgresql://sammo@db:5432/sammo   # into the shared one
    sammo-core cache copy postgresql://sammo@db:5432/sammo cache.sqlite   # and back, offline
    sammo-core cache stats postgresql://sammo@db:5432/sammo

Each side is a SQLite file or a ``postgresql://`` URL (the ``postgres`` extra). Rows move
unchanged (same keys, same stored answers), in batches; a key the target holds already is
skipped (the first answer stays), so a copy may be run again or resumed after a stop. The
source is opened read-only. A URL's password is never printed.

>>> import tempfile, pathlib
>>> from sammo_core.runners import Cache, LLMRequest, LLMResult
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with Cache(folder / "a.sqlite") as cache:
...     _ = cache.put("m", LLMRequest.from_prompt("Hi"), LLMResult("Hello"))
>>> main(["copy", str(folder / "a.sqlite"), str(folder / "b.sqlite")])
copied 1 rows from ... to ...b.sqlite (0 skipped: already there); it holds 1 rows
0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["add_cache_commands", "copy_cache", "main", "register"]

_BATCH = 1000
_TARGET_HELP = "a SQLite file (cache.sqlite) or postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``cache`` (with ``copy`` and ``stats``) to the ``sammo-core`` parser."""
    parser = subparsers.add_parser(
        "cache",
        help="copy a completion cache between SQLite and PostgreSQL; count its rows",
        description="Copy a completion cache between a SQLite file and a PostgreSQL database "
        "(either way, idempotent), or count its rows by key version.",
    )
    add_cache_commands(parser)


def add_cache_commands(parser: argparse.ArgumentParser) -> None:
    """The ``copy`` and ``stats`` subcommands under ``parser``."""
    from sammo_core.cli_run import cache_path_argument

    commands = parser.add_subparsers(dest="cache_command", metavar="{copy,stats}")
    commands.required = True
    copy = commands.add_parser(
        "copy",
        help="copy every row of SRC that DST lacks into DST",
        description="Copy every row of SRC whose key DST lacks into DST (rows DST holds stay: "
        "the first answer wins). Safe to run again.",
    )
    copy.add_argument("src", type=cache_path_argument, help=f"source: {_TARGET_HELP}")
    copy.add_argument("dst", type=cache_path_argument, help=f"target (created): {_TARGET_HELP}")
    copy.set_defaults(func=_copy_command)
    stats = commands.add_parser("stats", help="rows by key version")
    stats.add_argument("src", type=cache_path_argument, help=_TARGET_HELP)
    stats.set_defaults(func=_stats_command)


def copy_cache(src: str, dst: str, *, batch: int = _BATCH) -> tuple[int, int]:
    """Copy the rows of ``src`` that ``dst`` lacks into ``dst``; ``(copied, skipped)``."""
    from sammo_core.errors import ConfigError
    from sammo_core.runners.cache_open import open_cache
    from sammo_core.runners.cache_store import is_postgres_url

    if not is_postgres_url(src) and not _exists(src):
        raise ConfigError(f"cache file {src!r} does not exist; name an existing cache to copy")
    copied = skipped = 0
    with open_cache(src, mode="replay") as source, open_cache(dst) as target:
        if source.location == target.location:
            raise ConfigError(f"SRC and DST are the same cache ({source.location}); name two")
        after = ""
        while rows := source.read_rows(after, batch):
            added = target.add_rows(rows)
            copied += added
            skipped += len(rows) - added
            after = rows[-1][0]
    return copied, skipped


def _exists(path: str) -> bool:
    from pathlib import Path

    return Path(path).is_file()


def _copy_command(args: argparse.Namespace) -> int:
    from sammo_core.runners.cache_open import open_cache
    from sammo_core.runners.cache_store import mask_url

    src, dst = str(args.src), str(args.dst)
    copied, skipped = copy_cache(src, dst)
    with open_cache(dst) as target:
        total = len(target)
    print(
        f"copied {copied} rows from {mask_url(src)} to {mask_url(dst)} ({skipped} skipped: "
        f"already there); it holds {total} rows"
    )
    return 0


def _stats_command(args: argparse.Namespace) -> int:
    from sammo_core.errors import ConfigError
    from sammo_core.runners.cache import KEY_VERSION
    from sammo_core.runners.cache_open import open_cache
    from sammo_core.runners.cache_store import is_postgres_url

    src = str(args.src)
    if not is_postgres_url(src) and not _exists(src):
        raise ConfigError(f"cache file {src!r} does not exist")
    with open_cache(src, mode="replay") as store:
        versions = store.rows_by_version()
        print(f"{store.location}: {sum(versions.values())} rows")
        for version, rows in sorted(versions.items()):
            note = "current" if version == KEY_VERSION else "older: never match, safe to drop"
            print(f"  key version {version}: {rows} rows ({note})")
        if store.stale and not is_postgres_url(src):
            print("  the file holds rows of older key versions too, which never match")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sammo_core.cli_cache copy|stats ...``: the same as ``sammo-core cache``."""
    from sammo_core.cli import _call
    from sammo_core.processes import exit_code, interruption, terminate_as_interrupt

    parser = argparse.ArgumentParser(
        prog="sammo-core cache", description="Copy or count a completion cache."
    )
    add_cache_commands(parser)
    args = parser.parse_args(argv)
    with terminate_as_interrupt():
        return exit_code(_call(args.func, args, interruption))


if __name__ == "__main__":
    sys.exit(main())
