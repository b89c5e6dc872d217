"""``sammo-core data``: download the benchmark data and list the tasks found.

::

    sammo-core data fetch liar                      # into $SAMMO_CORE_DATA_DIR or ~/.cache/...
    sammo-core data fetch all --data-dir data/ --base-url http://mirror.local/benchmarks
    sammo-core data list --data-dir ../shared/benchmarks

Registered through the ``sammo_core.commands`` entry-point group
(``data = "benchmarks.cli_data:register"``). Handlers import their modules lazily.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]

_NAMES = ("sammo", "bigbench", "geoquery", "liar", "all")  # benchmarks.fetch.NAMES, kept light


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``data`` subcommand with its ``fetch`` and ``list`` actions.

    >>> parser = argparse.ArgumentParser()
    >>> register(parser.add_subparsers())
    >>> args = parser.parse_args(["data", "fetch", "liar", "--data-dir", "/tmp/d"])
    >>> args.name, args.data_dir, args.func.__name__
    ('liar', PosixPath('/tmp/d'), '_fetch_command')
    """
    parser = subparsers.add_parser(
        "data",
        help="download benchmark data and list its tasks",
        description="Download the benchmark data sets (verified by SHA-256) and list the "
        "suites and tasks a data folder holds.",
    )
    actions = parser.add_subparsers(dest="data_action", metavar="ACTION")

    fetch = actions.add_parser(
        "fetch",
        help="download a data set",
        description="Download NAME into DEST/NAME/, skipping files already there with the "
        "right hash and resuming interrupted downloads.",
    )
    fetch.add_argument("name", choices=_NAMES, help="data set to download")
    fetch.add_argument(
        "--data-dir",
        "--dest",
        dest="data_dir",
        type=Path,
        help="target folder (default: $SAMMO_CORE_DATA_DIR, else ~/.cache/sammo-core/data, "
        "where the benchmark commands look without --data-dir)",
    )
    fetch.add_argument(
        "--base-url",
        help="mirror to download from instead of the canonical addresses: each file is read "
        "from BASE_URL/NAME/RELATIVE_PATH (the data folder's layout)",
    )
    fetch.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    fetch.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    fetch.set_defaults(func=_fetch_command)

    listing = actions.add_parser("list", help="list the suites and tasks found")
    listing.add_argument(
        "--data-dir",
        type=Path,
        help="data folder (default: $SAMMO_CORE_DATA_DIR, else ~/.cache/sammo-core/data, "
        "else ../shared/benchmarks beside a source checkout)",
    )
    listing.set_defaults(func=_list_command)

    def show_help(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=show_help)


def _fetch_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from benchmarks.fetch import default_dest, fetch

    dest = args.data_dir if args.data_dir is not None else default_dest()
    results = fetch(
        args.name, dest, base_url=args.base_url, timeout=args.timeout, progress=not args.quiet
    )
    counts = {s: sum(r.status == s for r in results) for s in ("downloaded", "resumed", "skipped")}
    size = sum(r.transferred for r in results)
    Console().print(
        f"{args.name}: {counts['downloaded']} downloaded, {counts['resumed']} resumed, "
        f"{counts['skipped']} already present ({size / 1e6:.1f} MB) in {dest}",
        soft_wrap=True,
    )
    return 0


def _list_command(args: argparse.Namespace) -> int:
    from rich.table import Table

    from benchmarks.datasets import SUITES, list_tasks, resolve_data_dir
    from sammo_core.console import table_console
    from sammo_core.errors import ConfigError

    try:
        root: Path | None = resolve_data_dir(args.data_dir)
    except ConfigError:
        if args.data_dir is not None:
            raise
        root = None  # nothing fetched yet: list what each suite needs
    found = list_tasks(root) if root is not None else {s: [] for s in SUITES}
    hints = {
        "instruction-tuning": "sammo",
        "compression": "sammo",
        "rag-parsing": "sammo + geoquery",
        "apo": "liar",
        "bigbench": "bigbench",
    }
    where = root if root is not None else "no data folder yet (sammo-core data fetch all)"
    table = Table(title=f"Benchmark tasks in {where}")
    table.add_column("suite", style="bold")
    table.add_column("tasks", justify="right")
    table.add_column("names", overflow="fold")
    for suite, tasks in found.items():
        names = ", ".join(tasks) if tasks else f"(missing: sammo-core data fetch {hints[suite]})"
        table.add_row(suite, str(len(tasks)), names)
    table_console().print(table)
    return 0
