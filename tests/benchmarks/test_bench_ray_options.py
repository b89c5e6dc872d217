"""``bench run --ray`` as options: Ray is imported only when a run asks for it, and a machine
without Ray gets one line saying what to install. (The runs on a cluster: test_ray_bench.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sammo_core.testing.imports import loaded_by_importing

ROOT = Path(__file__).resolve().parents[2]


def test_the_bench_command_and_the_ray_modules_do_not_import_ray() -> None:
    modules = [
        "sammo_core.cli",
        "benchmarks.cli_bench",
        "benchmarks.ray_bench",
        "sammo_core.runners.shared_limits",
    ]
    assert loaded_by_importing(modules, ["ray"]) == []


def test_ray_missing_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    # A None entry in sys.modules makes `import ray` fail as it does where Ray is not installed.
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from sammo_core.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = [
        "bench", "run", "quick", "--model", "loopback", "--base-url", "http://127.0.0.1:9/v1",
        "--out", str(tmp_path / "out"), "--ray",
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: --ray needs Ray: pip install 'sammo-core[ray]'"
    ]
