"""A throwaway PostgreSQL server for tests: Debian's server binaries, a data folder in a temp
folder, trust auth, listening on 127.0.0.1 on a free port.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
``postgres`` OS user (``runuser``), in a folder that user may write. Where no server binaries
are found, :func:`find_bin_dir` returns ``None`` and the tests that need one skip, unless
``SAMMO_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) makes that a failure. Used by the tests'
``postgres`` fixture and by ``python -m benchmarks.harness.cache_speed``.

>>> bin_dir = find_bin_dir()  # e.g. /usr/lib/postgresql/15/bin
>>> bin_dir is None or (bin_dir / "initdb").is_file()
True

``with postgres_server() as server: url = server.create_database("demo")`` gives
``postgresql://postgres@127.0.0.1:PORT/demo``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "REQUIRE_ENV",
    "PostgresServer",
    "find_bin_dir",
    "missing_reason",
    "postgres_server",
    "required",
]

REQUIRE_ENV = "SAMMO_REQUIRE_POSTGRES"
_BIN_ENV = "SAMMO_POSTGRES_BIN"
_INSTALL = "apt-get install -y postgresql (Debian), or set SAMMO_POSTGRES_BIN to its bin folder"


def required() -> bool:
    """Whether a missing server fails the tests instead of skipping them.

    >>> import os
    >>> required() == (os.environ.get("SAMMO_REQUIRE_POSTGRES", "") not in ("", "0"))
    True
    """
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def find_bin_dir() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or ``None``."""
    candidates = []
    if os.environ.get(_BIN_ENV):
        candidates.append(Path(os.environ[_BIN_ENV]))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = sorted(
            (p for p in debian.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
        )
        candidates.extend(p / "bin" for p in reversed(versions))
    for folder in candidates:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL server with a fresh data folder; :meth:`url` names a database on it."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = _free_port()
        self._tmp = Path(tempfile.mkdtemp(prefix="sammo-pg-"))
        self.data = self._tmp / "data"
        self._user: str | None = None
        if os.geteuid() == 0:  # postgres refuses root: run it as the postgres OS user
            self._user = "postgres"
            entry = pwd.getpwnam(self._user)
            os.chown(self._tmp, entry.pw_uid, entry.pw_gid)
        self._tmp.chmod(0o755)

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> PostgresServer:
        self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
            "-E", "UTF8", "--locale", "C",
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self._tmp} -c fsync=off "
            "-c full_page_writes=off -c max_connections=50"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-w", "-s", "-l",
                  str(self._tmp / "log"), "start")  # fmt: skip
        return self

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        """A ``postgresql://`` URL of ``database`` on this server (trust auth: any password)."""
        auth = f"postgres:{password}" if password is not None else "postgres"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-s", "stop")
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer | None]:
    """A started server, stopped at the end; ``None`` where no server binaries are installed
    (an error when :func:`required`)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        if required():
            raise RuntimeError(f"{REQUIRE_ENV}=1 but no PostgreSQL server binaries: {_INSTALL}")
        yield None
        return
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def missing_reason() -> str:
    """Why tests that need a server skip."""
    return f"no PostgreSQL server binaries (initdb, pg_ctl, postgres): {_INSTALL}"
