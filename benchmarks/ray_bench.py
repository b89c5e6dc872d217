"""``bench run --ray [ADDRESS]``: each (task, seed) job of a suite as a Ray task.

The driver (the ``bench run`` process) starts or joins a Ray cluster (``ray.init(address=...)``;
a local one when no address is given, with ``--ray-workers`` CPUs), starts one
:class:`~sammo_core.runners.shared_limits.SharedLimits` actor per runner stack (the task model,
and the proposer's when it differs) on its own node, and submits every job. A worker runs the
job exactly as the one-process run does (``_Run.run_one`` of :mod:`benchmarks.cli_bench`, with
its own runner stack and cache) except that its backend asks the actor before each call, so
``--concurrency``, ``--rpm`` and ``--tpm`` hold for the cluster as a whole, and the actor writes
every call to ``OUT/cluster-usage.jsonl`` (durable per call). The driver takes the records in
the one-process order, so ``results.json`` and the reports come out the same.

A worker lost mid-job (killed, its node gone) is retried by Ray (``max_retries``): the new
attempt gives back the slots the lost one held (booked at their full reservation), and resumes
from the job's checkpoint when it runs where the lost one did; a cache (``--cache``) answers the
calls the lost attempt finished, so none of them is paid again. A job that ran on another node
than the driver's sends its folder's files back, and the driver writes them into ``--out``.

Every node needs sammo-core (the same version) and the benchmark data at the same path
(``--data-dir``). Importing this module does not import Ray.

>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_ray_arguments(parser)
>>> parser.parse_args(["--ray"]).ray, parser.parse_args(["--ray", "10.0.0.5:6379"]).ray
('local', '10.0.0.5:6379')
>>> parser.parse_args([]).ray is None
True
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sammo_core.errors import ConfigError, SammoError

if TYPE_CHECKING:
    from benchmarks.cli_bench import _Run
    from sammo_core.runners.factory import RunnerStack
    from sammo_core.runners.shared_limits import LimitsClient, SharedLimitsRunner

__all__ = ["LOCAL", "MAX_RETRIES", "add_ray_arguments", "outcomes_on_ray", "run_job"]

#: ``--ray`` with no address: start a local cluster.
LOCAL = "local"
#: How often Ray retries a job whose worker was lost.
MAX_RETRIES = 3
#: The cluster-wide usage journal the actor of the task model writes (the proposer's, when it is
#: another model: ``cluster-usage-proposer.jsonl``).
JOURNAL = "cluster-usage.jsonl"

INSTALL_HINT = "--ray needs Ray: pip install 'sammo-core[ray]'"


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]`` and ``--ray-workers N``."""
    parser.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL,
        metavar="ADDRESS",
        help="run each (task, seed) job as a Ray task: on the cluster at ADDRESS (HOST:PORT "
        "of `ray start --head`, or auto), or on a local cluster when no address is given; "
        "--concurrency, --rpm and --tpm hold for all workers together",
    )
    parser.add_argument(
        "--ray-workers",
        type=int,
        help="jobs at once on the local cluster of a bare --ray (default: the CPU count)",
    )


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def _connect(ray: Any, address: str, workers: int | None) -> None:
    if workers is not None and workers < 1:
        raise ConfigError(f"--ray-workers must be >= 1; got {workers}")
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    try:
        if address == LOCAL:
            ray.init(address="local", num_cpus=workers or os.cpu_count() or 1, **options)
        else:
            if workers is not None:
                raise ConfigError(
                    "--ray-workers sizes a local cluster only; an existing cluster runs as "
                    "many jobs at once as it has CPUs (ray start --num-cpus=N)"
                )
            ray.init(address=address, **options)
    except ConnectionError as exc:
        raise ConfigError(
            f"--ray {address}: no Ray cluster answers there ({exc}); start one with "
            "`ray start --head` and pass the address it prints"
        ) from None


def for_workers(args: argparse.Namespace, data_dir: Path) -> argparse.Namespace:
    """``args`` as workers get them: the paths made absolute (a worker does not run in the
    driver's working directory), the data folder the driver resolved.

    >>> shipped = for_workers(argparse.Namespace(out=Path("o"), cache="c.db"), Path("d"))
    >>> shipped.out.is_absolute(), Path(shipped.cache).is_absolute(), shipped.data_dir.name
    (True, True, 'd')
    >>> for_workers(argparse.Namespace(out=Path("o"), cache="postgresql://h/db"), Path("d")).cache
    'postgresql://h/db'
    """
    shipped = argparse.Namespace(**vars(args))
    shipped.out = Path(args.out).absolute()
    shipped.data_dir = Path(data_dir).absolute()
    cache = getattr(args, "cache", None)
    if cache is not None and "://" not in str(cache):  # a file, not a database URL
        shipped.cache = type(cache)(Path(cache).absolute())
    return shipped


def _journal_name(role: str) -> str:
    return JOURNAL if role == "task" else JOURNAL.replace(".jsonl", f"-{role}.jsonl")


async def outcomes_on_ray(
    run: _Run, pairs: Sequence[tuple[int, int, str]]
) -> AsyncIterator[tuple[dict[str, Any] | None, str | None]]:
    """Run every ``(k, seed, task)`` of ``pairs`` as a Ray task; yield each job's record, or
    its error's text, in the order of ``pairs``."""
    from sammo_core.runners.shared_limits import start_ray_limits

    args = run.args
    ray = _import_ray()
    _connect(ray, args.ray, args.ray_workers)
    try:
        roles = {"task": args.model}
        if run.proposer_model != args.model:
            roles["proposer"] = run.proposer_model
        limits = {
            role: start_ray_limits(
                args.concurrency,
                args.rpm,
                args.tpm,
                journal=run.out / _journal_name(role),
                tag=f"bench {args.suite} {model}",
                model=model,
            )
            for role, model in roles.items()
        }
        driver_node = ray.get_runtime_context().get_node_id()
        job = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(run_job)
        shipped = for_workers(args, run.data_dir)
        refs = [
            job.remote(
                type(run),  # the worker builds the same job class (no import back to cli_bench)
                shipped,
                seed,
                name,
                where=run.where(i, seed, len(pairs)),
                limits=limits,
                driver_node=driver_node,
            )
            for i, (_, seed, name) in enumerate(pairs, start=1)
        ]
        for ref in refs:
            record, error, files = await ref
            for relative, data in files.items():
                from sammo_core.run_files import write_file

                write_file(run.out, relative, data)
            yield record, error
        for handle in limits.values():
            await handle.handle.close.remote()
    finally:
        ray.shutdown()


def run_job(
    job_type: type[_Run],
    args: argparse.Namespace,
    seed: int,
    name: str,
    *,
    where: str,
    limits: dict[str, LimitsClient],
    driver_node: str,
) -> tuple[dict[str, Any] | None, str | None, dict[str, bytes]]:
    """One job in a Ray worker: ``(record, None, files)`` or ``(None, error, files)``, where
    ``files`` holds the job folder's files when this worker is not on the driver's node.
    ``job_type`` is the driver's ``bench run`` class (``benchmarks.cli_bench._Run``)."""
    import ray
    from rich.console import Console

    run = job_type(args, Console(stderr=True, quiet=True))
    record: dict[str, Any] | None = None
    error: str | None = None
    try:
        record = asyncio.run(_run_job(run, seed, name, where, limits))
    except SammoError as exc:
        error = str(exc)
    files: dict[str, bytes] = {}
    if record is not None and ray.get_runtime_context().get_node_id() != driver_node:
        folder = run.out / record["run_dir"]
        files = {
            str(p.relative_to(run.out)): p.read_bytes() for p in folder.rglob("*") if p.is_file()
        }
    return record, error, files


async def _run_job(
    run: _Run, seed: int, name: str, where: str, limits: dict[str, LimitsClient]
) -> dict[str, Any]:
    from sammo_core.runners.factory import build_runner_from_args

    args = run.args
    holder = f"{name}/seed-{seed}"
    task_stack, task_shared = _shared(build_runner_from_args(args), limits["task"], holder)
    proposer_stack = task_stack
    attempts = [await task_shared.register()]
    if "proposer" in limits:
        built = build_runner_from_args(args, model=run.proposer_model)
        proposer_stack, proposer_shared = _shared(built, limits["proposer"], holder)
        attempts.append(await proposer_shared.register())
    try:
        # A retry after a lost attempt goes on from its checkpoint (when it runs on the node
        # that wrote it): its journal keeps every call the lost attempt made charged.
        retried = max(attempts) > 0
        return await run.run_one(
            seed, name, where, task_stack, proposer_stack, resume=args.resume or retried
        )
    finally:
        await task_stack.aclose()
        if proposer_stack is not task_stack:
            await proposer_stack.aclose()


def _shared(
    stack: RunnerStack, limits: LimitsClient, holder: str
) -> tuple[RunnerStack, SharedLimitsRunner]:
    """``stack`` with its backend behind the shared limits, under the cache (a hit asks
    nothing): ``AccountingRunner(CachedRunner(SharedLimitsRunner(backend)))``."""
    import dataclasses

    from sammo_core.runners.accounting import AccountingRunner
    from sammo_core.runners.shared_limits import SharedLimitsRunner

    shared = SharedLimitsRunner(stack.backend, limits, holder)
    if stack.cache is None:
        return dataclasses.replace(stack, runner=AccountingRunner(shared), backend=shared), shared
    stack.runner.inner.inner = shared  # type: ignore[attr-defined]  # the CachedRunner's
    return dataclasses.replace(stack, backend=shared), shared
