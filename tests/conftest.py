"""Fixtures shared across test folders."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from sammo_core.testing.postgres_server import PostgresServer, missing_reason, postgres_server

_databases = itertools.count()


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


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer | None]:
    """One throwaway PostgreSQL server for the session (``None`` where the server binaries are
    missing; with ``SAMMO_REQUIRE_POSTGRES=1`` that is an error instead)."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_url(postgres: PostgresServer | None) -> str:
    """The URL of a new, empty database on the session's server; the test is skipped where
    there is no server (see :func:`postgres`)."""
    if postgres is None:
        pytest.skip(missing_reason())
    return postgres.create_database(f"test_{next(_databases)}")
