"""The virtualenvs and the model server of :mod:`benchmarks.harness.peer_compare`.

The peers (SAMMO 0.3.3, DSPy 3.4) live in virtualenvs of their own under
``~/.cache/sammo-core/peers``, so their pins (pyglove, openai, litellm) cannot clash with
sammo-core's; :func:`setup_peers` creates the missing ones from the package registry. The model
server is llama-cpp-python's OpenAI-compatible one in a child process (:class:`ModelServer`),
ready once ``GET /v1/models`` answers, stopped when the ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sammo_core.errors import ConfigError

__all__ = [
    "MODEL_ALIAS",
    "PEERS",
    "SERVER_MODULES",
    "SERVER_REQUIREMENT",
    "ModelServer",
    "default_peers_dir",
    "free_port",
    "llama_server_command",
    "peer_python",
    "peer_unavailable",
    "setup_peers",
]

#: Each peer: the requirement its virtualenv installs, the module its side imports, its script.
PEERS: dict[str, tuple[str, str, str]] = {
    "sammo": ("sammo==0.3.3", "sammo.search", "_peer_sammo.py"),
    "dspy": ("dspy==3.4.0", "dspy", "_peer_dspy.py"),
}
SERVER_REQUIREMENT = "llama-cpp-python[server]"
#: What serving needs: ``import llama_cpp.server`` alone succeeds without the server extra.
SERVER_MODULES = "llama_cpp.server.app, uvicorn"
#: The model name the server answers to (``--model_alias``).
MODEL_ALIAS = "gemma3"


def default_peers_dir() -> Path:
    """Where ``--setup`` puts the peers' virtualenvs.

    >>> default_peers_dir().parts[-3:]
    ('.cache', 'sammo-core', 'peers')
    """
    return Path.home() / ".cache" / "sammo-core" / "peers"


def peer_python(peers_dir: Path, name: str) -> Path:
    """The Python of the virtualenv called ``name`` under ``peers_dir``.

    >>> peer_python(Path("/p"), "dspy").as_posix()
    '/p/dspy/bin/python'
    """
    return peers_dir / name / "bin" / "python"


def peer_unavailable(python: Path, module: str, timeout: float = 300.0) -> str | None:
    """Why ``python`` cannot run a side that imports ``module``, or ``None`` when it can.

    >>> print(peer_unavailable(Path("/p/dspy/bin/python"), "dspy"))
    no virtualenv at /p/dspy (its Python /p/dspy/bin/python is missing); create it with --setup
    """
    if not python.is_file():
        return (
            f"no virtualenv at {python.parents[1]} (its Python {python} is missing); "
            "create it with --setup"
        )
    try:
        done = subprocess.run(
            [str(python), "-c", f"import {module}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{python} could not run: {exc}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        return f"{python} cannot import {module} ({last}); remove {python.parents[1]} and --setup"
    return None


def setup_peers(peers_dir: Path, names: Sequence[str], log: Any = print) -> dict[str, str]:
    """Create the virtualenvs in ``names`` (peers and/or ``server``) that are missing.

    Returns, per name, ``"ready"``, ``"created"`` or why creating it failed.
    """
    status: dict[str, str] = {}
    for name in names:
        requirement = SERVER_REQUIREMENT if name == "server" else PEERS[name][0]
        module = SERVER_MODULES if name == "server" else PEERS[name][1]
        python = peer_python(peers_dir, name)
        if peer_unavailable(python, module) is None:
            status[name] = "ready"
            continue
        venv = peers_dir / name
        log(f"creating {venv} with {requirement} (minutes; llama-cpp-python may compile)")
        shutil.rmtree(venv, ignore_errors=True)
        commands = [
            [_base_python(), "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "-q", requirement],
        ]
        for command in commands:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                tail = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
                status[name] = f"`{' '.join(command)}` failed: {tail}"
                break
        else:
            status[name] = "created"
    return status


def _base_python() -> str:
    """A Python to make virtualenvs with: the one this virtualenv was made from."""
    base = Path(sys.base_prefix) / "bin" / "python3"
    return str(base) if base.is_file() else sys.executable


# -- the model server ----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def llama_server_command(
    python: str | Path, gguf: Path, port: int, n_ctx: int = 2048, alias: str = MODEL_ALIAS
) -> list[str]:
    """The command serving ``gguf`` with llama-cpp-python's OpenAI-compatible server.

    >>> llama_server_command("py", Path("m.gguf"), 8000)[:4]
    ['py', '-m', 'llama_cpp.server', '--model']
    """
    return [
        *(str(python), "-m", "llama_cpp.server", "--model", str(gguf)),
        *("--model_alias", alias, "--n_ctx", str(n_ctx)),
        *("--host", "127.0.0.1", "--port", str(port)),
    ]


class ModelServer:
    """A server started as a child process: ready once ``GET {base_url}/models`` answers.

    ``log`` receives the child's output (a file; default: discarded). Leaving the ``with``
    block stops the child (terminate, then kill after ``stop_timeout`` seconds).
    """

    def __init__(
        self,
        command: Sequence[str],
        base_url: str,
        *,
        start_timeout: float = 180.0,
        stop_timeout: float = 10.0,
        log: Path | None = None,
    ) -> None:
        if start_timeout <= 0:
            raise ConfigError(f"start_timeout must be > 0 seconds; got {start_timeout}")
        self.command = list(command)
        self.base_url = base_url.rstrip("/")
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.log = log
        self._child: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ModelServer:
        with contextlib.ExitStack() as stack:
            sink: Any = subprocess.DEVNULL
            if self.log is not None:
                self.log.parent.mkdir(parents=True, exist_ok=True)
                sink = stack.enter_context(self.log.open("wb"))
            self._child = subprocess.Popen(self.command, stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = self._child.poll()
            if code is not None:
                self._child = None
                where = f"; its output is in {self.log}" if self.log else ""
                raise RuntimeError(f"the model server exited with {code} before serving{where}")
            if self.ready():
                return self
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(
                    f"the model server did not answer {self.base_url}/models within "
                    f"{self.start_timeout:g} s; raise --server-timeout"
                )
            time.sleep(0.2)

    def ready(self) -> bool:
        """Whether ``GET {base_url}/models`` answers 200 now."""
        try:
            with urllib.request.urlopen(self.base_url + "/models", timeout=2) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def __exit__(self, *exc: object) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        child.terminate()
        try:
            child.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.poll() is None
