"""The folder lock and SIGTERM handling of ``sammo_core.processes``, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sammo_core.errors import ConfigError
from sammo_core.processes import LOCK_FILE, exit_code, lock_folder, terminate_as_interrupt

ROOT = Path(__file__).parents[2]
HOLD = """\
import sys, time
from pathlib import Path
from sammo_core.processes import lock_folder
with lock_folder(Path(sys.argv[1])):
    print("holding", flush=True)
    time.sleep(120)
"""


def holder(folder: Path) -> subprocess.Popen[str]:
    """Another process that holds ``folder`` until it is killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stdout.readline() == "holding\n"
    return proc


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    folder = tmp_path / "run"
    proc = holder(folder)
    try:
        yield folder, proc
    finally:
        proc.kill()
        proc.communicate(timeout=30)  # waits, and closes its pipe


def test_a_held_folder_is_refused_naming_the_holder_and_left_as_it_was(
    held: tuple[Path, subprocess.Popen[str]],
) -> None:
    folder, proc = held
    before = (folder / LOCK_FILE).read_text()
    with pytest.raises(ConfigError) as info, lock_folder(folder):
        pass
    assert str(info.value) == (
        f"--out {str(folder)!r} is in use by process {proc.pid} (sammo-core {folder}); "
        "wait for it to finish or pass another folder"
    )
    assert (folder / LOCK_FILE).read_text() == before  # the holder's record is untouched


def test_a_killed_holder_leaves_no_lock(held: tuple[Path, subprocess.Popen[str]]) -> None:
    folder, proc = held
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert (folder / LOCK_FILE).is_file()  # its file stays, but not its lock
    with lock_folder(folder):
        assert (folder / LOCK_FILE).read_text().startswith(f"{os.getpid()} sammo-core")
    assert not (folder / LOCK_FILE).exists()


def test_a_refused_command_creates_no_folder_and_a_finished_one_leaves_no_lock_file(
    tmp_path: Path,
) -> None:
    with lock_folder(tmp_path / "new"):
        pass  # nothing written: the folder it made goes too
    assert not (tmp_path / "new").exists()
    with lock_folder(tmp_path / "kept"):
        (tmp_path / "kept" / "results.json").write_text("{}")
    assert sorted(os.listdir(tmp_path / "kept")) == ["results.json"]


def test_a_lock_file_planted_as_a_link_is_refused_and_its_target_untouched(
    tmp_path: Path,
) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK_FILE).symlink_to(target)
    with pytest.raises(ConfigError, match="holds no link named"), lock_folder(tmp_path / "run"):
        pass
    assert target.read_text() == "keep me"


def test_sigterm_interrupts_like_ctrl_c_and_exits_143() -> None:
    with terminate_as_interrupt():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs at once, interrupting the sleep
        assert exit_code(130) == 143
        assert exit_code(1) == 1
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
