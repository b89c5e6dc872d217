"""Download the benchmark data from its canonical addresses, verified by SHA-256.

:data:`SOURCES` maps each dataset name (``sammo``, ``bigbench``, ``geoquery``, ``liar``) to its
files: a canonical ``url``, the ``relative_path`` it takes under ``DEST/<name>/`` (the layout the
loaders of :mod:`benchmarks.datasets` read), and the ``sha256`` of the copy the project was
built against, with its ``size`` in bytes where known. :func:`fetch` downloads into ``DEST``
(``--data-dir``, else ``$SAMMO_CORE_DATA_DIR``, else ``~/.cache/sammo-core/data``, the folder
the loaders read by default):

* a file already present with the right hash is skipped, without any request;
* a download goes to ``FILE.part`` and is renamed only once its hash matches, so ``FILE`` is
  always complete; a wrong hash raises :class:`~sammo_core.errors.DataError` (file, expected and
  actual hash) and deletes the ``.part``;
* an interrupted download leaves its ``.part``; the next run asks for the rest with an HTTP
  ``Range`` request and starts over when the server ignores it;
* ``base_url`` replaces the canonical address: ``name/relative_path`` is fetched from
  ``base_url + "/" + name + "/" + relative_path``, i.e. a mirror of the data folder's layout
  (``http://``, ``https://`` or ``file://``).

The ``sammo`` files are the SAMMO paper's splits as published in microsoft/sammo (the
instruction-tuning and compression splits at commit ``2137815``; the RAG qids at ``b9773a0``,
the last commit that holds them: the file was later removed). The loaders read these files as
published (the RAG file holds geo880, smcalflow and overnight; the loader selects geo880).
``sources`` replaces the registry, e.g. for a test that serves other copies.

>>> source_url("liar", SOURCES["liar"][0], "http://127.0.0.1:8000/data/")
'http://127.0.0.1:8000/data/liar/train.jsonl'
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchmarks.datasets import DATA_DIR_ENV, default_cache_dir
from sammo_core.errors import ConfigError, DataError

__all__ = [
    "NAMES",
    "SOURCES",
    "FetchResult",
    "RemoteFile",
    "default_dest",
    "fetch",
    "sha256_file",
    "source_url",
]

_CHUNK = 1 << 16
_NETWORK_HINT = "no network? use --data-dir with a local copy"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: where it lives, where it goes, and its SHA-256 (hex).

    >>> RemoteFile("https://example.org/a/b.json", "b.json", "0" * 64).relative_path
    'b.json'
    """

    url: str
    relative_path: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch` did with one file; ``transferred`` counts the bytes downloaded."""

    name: str
    path: Path
    status: Literal["downloaded", "resumed", "skipped"]
    transferred: int


_SAMMO = (
    "https://raw.githubusercontent.com/microsoft/sammo/2137815ba9a6fb8c86e5c18cc47ecda8ad8f5e98"
)
_BIGBENCH = "https://raw.githubusercontent.com/google/BIG-bench/main"
_SAMMO_RAG = (  # examples/rag_tuning/ was removed after this commit
    "https://raw.githubusercontent.com/microsoft/sammo/b9773a05735e7801af1d05d465cdb29b86411c1f"
)
_SEMPARSE = "https://raw.githubusercontent.com/allenai/code-semparse/de62f8c0d9bc6d4a987728ddefed627859fc269f"
_LMOPS = (
    "https://raw.githubusercontent.com/microsoft/LMOps/4f2a9deb5f08e459fd44c2e4792344d78ca89fc3"
)
_BIGBENCH_TASKS = {
    "analytic_entailment": "b5b407a23ab0bef5d019656d072e9b39c7126e33ec607e13c3cf16e471ee8307",
    "dark_humor_detection": "445d32f9af69cdea5fcd559ec36f62de26cf2e4a67318f486d292fbd4d931d3b",
    "empirical_judgments": "990ba7e704ebef89b48568ba287fb73b7313cf2fd12143575e99a6f77e5b8376",
    "epistemic_reasoning": "98209623d1bf28ed6b99ec50b772b367f24467d190ceb9d1c0298e91c04548f1",
    "implicatures": "cd3dcb575f3e189ad8a7b5b32364521f569fb4136dea88542d8dc240cd5b3e7d",
    "irony_identification": "c0da139e91bb1fd55e36c6651b885bb17c2cb58b38a73739e1352d9801913c6a",
    "logical_fallacy_detection": "ef0dd93649f5b37f3fd92bf76f5480c232a9b06ad3d6f830d66df90f80ebebc5",
    "metaphor_boolean": "7d997585da8d50db8a8fddf6a715a034777434623643df937909d39c1a5c5a61",
    "misconceptions": "f6091db702cb3f3f699c570f732828283a85dbf137b1e1a65b7bcbbe98ebe6db",
    "navigate": "e076d286bb54c9304de99c24a8d3ddd749be78c12af5d58315195b194c8efa18",
    "presuppositions_as_nli": "c65abd117007552b12453da7cc7b2d781042f5a34f6e6f6892ab3287d469d0ee",
    "sports_understanding": "925617612d19ca02d7b13bfb263300cc13701dca8851151a77be8ce986feadab",
    "strategyqa": "60af9081fed20102fd8bb1e02dc7d9f12238efcba33e4c1a56b4d61cb6409803",
    "word_sorting": "8633aac2c5e59b0580f17a702d78c3a8294092144c7bb1380192dd5bb4255f29",
}
_APACHE = "c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4"
_MIT = "c2cfccb812fe482101a8f04597dfc5a9991a6b2748266c47ac91b6a5aae15383"

SOURCES: dict[str, tuple[RemoteFile, ...]] = {
    "sammo": (
        RemoteFile(
            f"{_SAMMO}/examples/paper_instruction_tuning/data_splits.json",
            "instruction_tuning_bigbench.json",
            "75bc79d7b7364f472b6ccd6c7495ab5d1162278f6780a177757261e462035ad9",
            395454,
        ),
        RemoteFile(
            f"{_SAMMO}/examples/paper_prompt_compression/data_splits.json",
            "prompt_compression_sni.json",
            "ab1effc08bbbd88837b4aea615083cd402e435fa7354f1a12daad36691815d45",
            763642,
        ),
        RemoteFile(
            f"{_SAMMO_RAG}/examples/rag_tuning/data_splits.json",
            "rag_semparse_qids.json",
            "bbb116b766c56db57b74319aeeff335260dd0e538baaf70198f5bc6eeae565a9",
            87617,
        ),
        RemoteFile(f"{_SAMMO}/LICENSE", "LICENSE", _MIT),
    ),
    "bigbench": (
        *(
            RemoteFile(
                f"{_BIGBENCH}/bigbench/benchmark_tasks/{task}/task.json", f"{task}/task.json", sha
            )
            for task, sha in _BIGBENCH_TASKS.items()
        ),
        RemoteFile(f"{_BIGBENCH}/LICENSE", "LICENSE-Apache-2.0.txt", _APACHE),
    ),
    "geoquery": (
        RemoteFile(
            f"{_SEMPARSE}/datasets/geo880/all.jsonl",
            "all.jsonl",
            "70984fa1f97b27c48bc57688ef0f5630dcf71ed1e8580c7b308530e5bcd7cafc",
        ),
        RemoteFile(
            f"{_SEMPARSE}/datasets/geo880/splits/standard/split.json",
            "splits/standard/split.json",
            "03b7c75aa740c317c4f37cabd8238ebf0951c4051ae120cc222c22af1dac5b39",
        ),
        RemoteFile(f"{_SEMPARSE}/LICENSE", "LICENSE-code-semparse-Apache-2.0.txt", _APACHE),
    ),
    "liar": (
        RemoteFile(
            f"{_LMOPS}/prompt_optimization/data/liar/train.jsonl",
            "train.jsonl",
            "573ac065e16609a4ab0ae72751b2d3918ec6515dbb9a3adae1f244afe54ca989",
        ),
        RemoteFile(
            f"{_LMOPS}/prompt_optimization/data/liar/test.jsonl",
            "test.jsonl",
            "c4400499e7d71cb57463e3f8d093962deb50a9e8f22fa377cad3c236eacfc8c3",
        ),
        RemoteFile(f"{_LMOPS}/LICENSE", "LICENSE-LMOps-MIT.txt", _MIT),
    ),
}
NAMES = (*SOURCES, "all")

Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)


def default_dest() -> Path:
    """``$SAMMO_CORE_DATA_DIR`` if set, else ``~/.cache/sammo-core/data``.

    The loaders look in the same places, so ``fetch`` then ``load_*`` needs no option.
    """
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else default_cache_dir()


def source_url(name: str, remote: RemoteFile, base_url: str | None = None) -> str:
    """The address to download ``remote`` (of dataset ``name``) from.

    >>> source_url("liar", SOURCES["liar"][1]).endswith("/prompt_optimization/data/liar/test.jsonl")
    True
    >>> source_url("bigbench", SOURCES["bigbench"][0], "file:///mirror")
    'file:///mirror/bigbench/analytic_entailment/task.json'
    """
    if base_url is None:
        return remote.url
    scheme = urllib.parse.urlsplit(base_url).scheme
    if scheme not in ("http", "https", "file"):
        raise ConfigError(
            f"--base-url must start with http://, https:// or file://; got {base_url!r}"
        )
    return f"{base_url.rstrip('/')}/{name}/{remote.relative_path}"


def sha256_file(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(
    name: str,
    dest: str | os.PathLike[str] | None = None,
    *,
    base_url: str | None = None,
    timeout: float = 60.0,
    progress: bool = False,
    sources: Mapping[str, Sequence[RemoteFile]] | None = None,
) -> list[FetchResult]:
    """Download dataset ``name`` (or ``"all"``) into ``dest/<name>/``; see the module docstring.

    ``progress=True`` shows a rich progress bar per file on stderr. ``sources`` replaces
    :data:`SOURCES` (same shape). Returns one :class:`FetchResult` per file, in registry order.

    >>> fetch("imagenet")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: unknown dataset 'imagenet'; use one of: sammo, bigbench, geoquery, liar, all
    """  # noqa: E501
    registry = SOURCES if sources is None else sources
    known = (*registry, "all")
    if name not in known:
        raise ConfigError(f"unknown dataset {name!r}; use one of: {', '.join(known)}")
    root = Path(dest).expanduser() if dest is not None else default_dest()
    names = list(registry) if name == "all" else [name]
    jobs = [(n, remote, source_url(n, remote, base_url)) for n in names for remote in registry[n]]
    results = []
    with _progress_bar(progress) as track:
        for dataset, remote, url in jobs:
            target = root / dataset / remote.relative_path
            results.append(_fetch_one(dataset, remote, url, target, timeout=timeout, track=track))
    return results


# -- one file ------------------------------------------------------------------------------


def _fetch_one(
    name: str,
    remote: RemoteFile,
    url: str,
    target: Path,
    *,
    timeout: float,
    track: Callable[[str], Progress],
) -> FetchResult:
    if target.is_file() and sha256_file(target) == remote.sha256:
        return FetchResult(name, target, "skipped", 0)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    if part.is_file() and sha256_file(part) == remote.sha256:
        part.replace(target)  # a run stopped between the last byte and the rename
        return FetchResult(name, target, "resumed", 0)
    offset = part.stat().st_size if part.is_file() else 0
    report = track(f"{name}/{remote.relative_path}")
    resumed, transferred = _download(url, part, offset, timeout, report)
    actual = sha256_file(part)
    if actual != remote.sha256:
        part.unlink()
        raise DataError(
            f"{target}: SHA-256 mismatch for {url}: expected {remote.sha256}, got {actual}; "
            "the download was deleted (a changed upstream file or a bad mirror?)"
        )
    part.replace(target)
    return FetchResult(name, target, "resumed" if resumed else "downloaded", transferred)


def _download(
    url: str, part: Path, offset: int, timeout: float, report: Progress
) -> tuple[bool, int]:
    """Write ``url`` to ``part``, continuing from ``offset`` bytes when the server allows it."""
    headers = {"User-Agent": "sammo-core-data-fetch"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and offset:  # the .part is not a prefix of the file: start over
            part.unlink()
            return _download(url, part, 0, timeout, report)
        raise DataError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise DataError(f"cannot reach {url} ({e.reason}); {_NETWORK_HINT}") from None
    except (TimeoutError, OSError) as e:
        raise DataError(f"cannot reach {url} ({e}); {_NETWORK_HINT}") from None
    with response:
        resumed = bool(offset) and getattr(response, "status", 200) == 206
        start = offset if resumed else 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        done = 0
        problem = ""
        try:
            with part.open("ab" if resumed else "wb") as f:
                report(start, total)
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    f.write(chunk)
                    done += len(chunk)
                    report(start + done, total)
        except (TimeoutError, OSError, http.client.HTTPException) as e:
            problem = str(e) or type(e).__name__
        # read(n) returns b"" on a connection closed early, so compare with Content-Length.
        if not problem and total is not None and start + done < total:
            problem = f"connection closed; {total} bytes announced"
    if problem:
        raise DataError(
            f"download of {url} stopped after {start + done} bytes ({problem}); "
            f"run the same command again to resume; {_NETWORK_HINT}"
        )
    return resumed, done


@contextlib.contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[str], Progress]]:
    if not enabled:
        yield lambda _label: lambda _done, _total: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TextColumn,
        TransferSpeedColumn,
    )
    from rich.progress import (
        Progress as RichProgress,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    with RichProgress(*columns, TransferSpeedColumn(), console=Console(stderr=True)) as bar:

        def track(label: str) -> Progress:
            task = bar.add_task(label, total=None)

            def report(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=total)

            return report

        yield track
