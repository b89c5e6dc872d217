"""Fixtures shared across test folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The benchmark data folder (``../shared/benchmarks``, ``--data-dir``'s default); the
    test is skipped where there is none."""
    from benchmarks.datasets import resolve_data_dir
    from sammo_core.errors import ConfigError

    try:
        return resolve_data_dir()
    except ConfigError as exc:
        pytest.skip(f"benchmark data not available ({exc}; sammo-core data fetch all)")


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """A tiny model runs ten times faster on one thread than on a busy machine's several."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
