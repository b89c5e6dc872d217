"""Fetch against a real loopback HTTP server serving the shared data folder."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from benchmarks.cli_data import register
from benchmarks.datasets import list_tasks, load_geoquery_rag, load_liar
from benchmarks.fetch import NAMES, SOURCES, RemoteFile, default_dest, fetch, source_url
from sammo_core.errors import ConfigError, DataError

DATA = Path(
    os.environ.get("SAMMO_CORE_DATA_DIR")
    or Path(__file__).resolve().parents[2] / ".." / "shared" / "benchmarks"
)
needs_data = pytest.mark.skipif(
    not (DATA / "liar").is_dir(),
    reason=f"benchmark data not found at {DATA}; set SAMMO_CORE_DATA_DIR to the shared "
    "benchmarks folder",
)
LIAR_FILES = ["LICENSE-LMOps-MIT.txt", "test.jsonl", "train.jsonl"]


@dataclass
class Mirror:
    """A loopback file server: what it was asked for, and how it should misbehave."""

    url: str
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    corrupt: bool = False
    ranges: bool = True
    cut_after: int | None = None  # drop the connection after this many body bytes


@contextlib.contextmanager
def serve(
    root: Path, *, corrupt: bool = False, ranges: bool = True, cut_after: int | None = None
) -> Iterator[Mirror]:
    mirror = Mirror("", corrupt=corrupt, ranges=ranges, cut_after=cut_after)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            wanted = self.headers.get("Range")
            mirror.requests.append((self.path, wanted))
            path = root / self.path.lstrip("/")
            if not path.resolve().is_relative_to(root.resolve()) or not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            if mirror.corrupt:
                body = body[:-10] + b"corrupted!"
            status, start = 200, 0
            if wanted and mirror.ranges:
                start = int(wanted.removeprefix("bytes=").removesuffix("-"))
                if start >= len(body):
                    self.send_error(416)
                    return
                status = 206
            self.send_response(status)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            if mirror.cut_after is not None:
                self.wfile.write(body[start : start + mirror.cut_after])
                self.close_connection = True
                return
            self.wfile.write(body[start:])

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        mirror.url = f"http://127.0.0.1:{server.server_address[1]}"
        yield mirror
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@needs_data
def test_registry_hashes_match_the_shared_files() -> None:
    registered = set()
    for name, files in SOURCES.items():
        for remote in files:
            path = DATA / name / remote.relative_path
            if remote.size is None:  # a file the shared folder holds as published
                assert _sha(path) == remote.sha256, path
            assert remote.url.startswith("https://raw.githubusercontent.com/")
            registered.add(path)
    published = {
        p for p in DATA.rglob("*") if p.is_file() and p.name not in ("SOURCE.md", "README.md")
    }
    assert published == registered  # every data file is downloadable, nothing else
    assert NAMES == ("sammo", "bigbench", "geoquery", "liar", "all")


UPSTREAM_ROW = re.compile(
    r"^\| (\S+) [^|]*\| (\S+) \| ([0-9a-f]{40})[^|]*\| (\d+) \| ([0-9a-f]{64}) \|$", re.M
)


@needs_data
def test_the_sammo_files_are_registered_as_published_upstream() -> None:
    """The shared copies are trimmed; the registry names the files a user actually downloads."""
    table = UPSTREAM_ROW.findall((DATA / "sammo" / "SOURCE.md").read_text())
    assert len(table) == 3
    by_name = {remote.relative_path: remote for remote in SOURCES["sammo"]}
    for local, upstream, commit, size, sha in table:
        remote = by_name[local]
        assert (
            remote.url == f"https://raw.githubusercontent.com/microsoft/sammo/{commit}/{upstream}"
        )
        assert (remote.size, remote.sha256) == (int(size), sha)
        assert _sha(DATA / "sammo" / local) != sha  # the trimmed copy would fail verification


def test_base_url_mirrors_the_data_folder_layout() -> None:
    remote = RemoteFile("https://host/x/data/liar/train.jsonl", "train.jsonl", "0" * 64)
    assert source_url("liar", remote) == "https://host/x/data/liar/train.jsonl"
    assert source_url("liar", remote, "http://m:8/b") == "http://m:8/b/liar/train.jsonl"
    assert source_url("liar", remote, "http://m:8/b/") == "http://m:8/b/liar/train.jsonl"
    with pytest.raises(ConfigError, match="--base-url must start with http://"):
        source_url("liar", remote, "ftp://m/b")
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'"):
        fetch("imagenet")


def test_default_dest_follows_the_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMMO_CORE_DATA_DIR", str(tmp_path))
    assert default_dest() == tmp_path
    monkeypatch.delenv("SAMMO_CORE_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_dest() == tmp_path / "home" / ".cache" / "sammo-core" / "data"


@needs_data
def test_fetch_downloads_verifies_then_skips(tmp_path: Path) -> None:
    with serve(DATA) as mirror:
        results = fetch("liar", tmp_path, base_url=mirror.url, timeout=5)
        assert [r.status for r in results] == ["downloaded"] * 3
        assert sorted(p for p, _ in mirror.requests) == [f"/liar/{f}" for f in LIAR_FILES]
        for name in LIAR_FILES:
            assert _sha(tmp_path / "liar" / name) == _sha(DATA / "liar" / name)
        assert sorted(p.name for p in (tmp_path / "liar").iterdir()) == LIAR_FILES  # no .part
        assert results[0].transferred == (DATA / "liar/train.jsonl").stat().st_size

        again = fetch("liar", tmp_path, base_url=mirror.url, timeout=5)
        assert [r.status for r in again] == ["skipped"] * 3
        assert len(mirror.requests) == 3  # the second run sent no request
    assert load_liar(tmp_path).sizes() == {"train": 3581, "val": 100, "test": 461}


@needs_data
def test_corrupted_download_is_rejected_and_not_kept(tmp_path: Path) -> None:
    expected = SOURCES["liar"][0].sha256
    with serve(DATA, corrupt=True) as mirror, pytest.raises(DataError) as info:
        fetch("liar", tmp_path, base_url=mirror.url, timeout=5)
    message = str(info.value)
    assert "train.jsonl: SHA-256 mismatch" in message
    assert f"expected {expected}, got " in message
    actual = message.split(", got ")[1][:64]
    assert len(actual) == 64 and actual != expected
    assert list((tmp_path / "liar").iterdir()) == []  # neither the file nor its .part


@needs_data
def test_a_wrong_file_in_place_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "liar").mkdir()
    (tmp_path / "liar/test.jsonl").write_text("stale\n", encoding="utf-8")
    with serve(DATA) as mirror:
        results = fetch("liar", tmp_path, base_url=mirror.url, timeout=5)
    assert [r.status for r in results] == ["downloaded"] * 3
    assert _sha(tmp_path / "liar/test.jsonl") == SOURCES["liar"][1].sha256


@needs_data
def test_interrupted_download_resumes_with_a_range_request(tmp_path: Path) -> None:
    full = (DATA / "liar/train.jsonl").read_bytes()
    (tmp_path / "liar").mkdir()
    (tmp_path / "liar/train.jsonl.part").write_bytes(full[:1000])
    with serve(DATA) as mirror:
        results = fetch("liar", tmp_path, base_url=mirror.url, timeout=5)
    assert results[0].status == "resumed"
    assert results[0].transferred == len(full) - 1000
    assert ("/liar/train.jsonl", "bytes=1000-") in mirror.requests
    assert (tmp_path / "liar/train.jsonl").read_bytes() == full
    assert not (tmp_path / "liar/train.jsonl.part").exists()


@needs_data
def test_a_dropped_connection_keeps_the_part_for_the_next_run(tmp_path: Path) -> None:
    full = (DATA / "liar/train.jsonl").read_bytes()
    with serve(DATA, cut_after=5000) as mirror, pytest.raises(DataError) as info:
        fetch("liar", tmp_path, base_url=mirror.url, timeout=5)
    message = str(info.value)
    assert f"download of {mirror.url}/liar/train.jsonl stopped after 5000 bytes" in message
    assert "run the same command again to resume" in message
    assert (tmp_path / "liar/train.jsonl.part").read_bytes() == full[:5000]
    assert not (tmp_path / "liar/train.jsonl").exists()
    with serve(DATA) as mirror:
        results = fetch("liar", tmp_path, base_url=mirror.url, timeout=5)
    assert [r.status for r in results] == ["resumed", "downloaded", "downloaded"]
    assert mirror.requests[0] == ("/liar/train.jsonl", "bytes=5000-")
    assert (tmp_path / "liar/train.jsonl").read_bytes() == full


@needs_data
def test_a_part_longer_than_the_file_starts_over(tmp_path: Path) -> None:
    full = (DATA / "liar/test.jsonl").read_bytes()
    (tmp_path / "liar").mkdir()
    (tmp_path / "liar/test.jsonl.part").write_bytes(full + b"trailing junk")
    with serve(DATA) as mirror:
        results = fetch("liar", tmp_path, base_url=mirror.url, timeout=5)
    assert results[1].status == "downloaded"
    assert [r for _, r in mirror.requests] == [None, f"bytes={len(full) + 13}-", None, None]
    assert (tmp_path / "liar/test.jsonl").read_bytes() == full


@needs_data
def test_resume_starts_over_when_the_server_ignores_ranges(tmp_path: Path) -> None:
    (tmp_path / "liar").mkdir()
    (tmp_path / "liar/train.jsonl.part").write_bytes(b"garbage from an older run")
    with serve(DATA, ranges=False) as mirror:
        results = fetch("liar", tmp_path, base_url=mirror.url, timeout=5)
    assert results[0].status == "downloaded"
    assert _sha(tmp_path / "liar/train.jsonl") == SOURCES["liar"][0].sha256


@needs_data
def test_a_complete_part_file_is_renamed_without_a_request(tmp_path: Path) -> None:
    (tmp_path / "liar").mkdir()
    for name in LIAR_FILES:
        (tmp_path / "liar" / f"{name}.part").write_bytes((DATA / "liar" / name).read_bytes())
    with serve(DATA) as mirror:
        results = fetch("liar", tmp_path, base_url=mirror.url, timeout=5)
    assert [r.status for r in results] == ["resumed"] * 3
    assert mirror.requests == []
    assert sorted(p.name for p in (tmp_path / "liar").iterdir()) == LIAR_FILES


def test_missing_file_on_the_server_names_the_url(tmp_path: Path) -> None:
    with serve(tmp_path / "empty") as mirror, pytest.raises(DataError) as info:
        fetch("geoquery", tmp_path / "dest", base_url=mirror.url, timeout=5)
    assert f"cannot download {mirror.url}/geoquery/all.jsonl: HTTP 404" in str(info.value)


def test_unreachable_server_says_no_network(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DataError) as info:
        fetch("liar", tmp_path, base_url=f"http://127.0.0.1:{port}", timeout=2)
    message = str(info.value)
    assert f"cannot reach http://127.0.0.1:{port}/liar/train.jsonl" in message
    assert "no network? use --data-dir with a local copy" in message
    assert not any(tmp_path.rglob("*.jsonl*"))


# -- the command line ----------------------------------------------------------------------


def _cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sammo-core")
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


@needs_data
def test_cli_fetch_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serve(DATA) as mirror:
        args = _cli("data", "fetch", "liar", "--dest", str(tmp_path), "--base-url", mirror.url)
        assert args.func(args) == 0
        assert len(mirror.requests) == 3
        out = capsys.readouterr().out
        assert "liar: 3 downloaded, 0 resumed, 0 already present" in out
        args = _cli(
            "data", "fetch", "liar", "--dest", str(tmp_path), "-q", "--base-url", mirror.url
        )
        assert args.func(args) == 0
        assert "0 downloaded, 0 resumed, 3 already present" in capsys.readouterr().out

    args = _cli("data", "list", "--data-dir", str(tmp_path))
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "apo" in out and "liar" in out
    assert "fetch bigbench" in out  # a missing suite says how to get it

    args = _cli("data", "list", "--data-dir", str(DATA))
    assert args.func(args) == 0
    out = capsys.readouterr().out
    for suite in ("instruction-tuning", "compression", "rag-parsing", "apo", "bigbench"):
        assert suite in out


def test_cli_data_without_action_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    args = _cli("data")
    assert args.func(args) == 2
    assert "fetch" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        _cli("data", "fetch", "imagenet")
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err


def upstream_copy(root: Path) -> dict[str, tuple[RemoteFile, ...]]:
    """Lay the shared files out as the upstream hosts publish them, under ``root``.

    The RAG qids file gets the smcalflow and overnight parts the published file also holds
    (dummies here), so the loader must pick geo880 out of it. Returns a registry for the copy:
    the shipped one's paths and names, with the hashes of these files.
    """
    registry: dict[str, tuple[RemoteFile, ...]] = {}
    for name, files in SOURCES.items():
        entries = []
        for remote in files:
            upstream = root / remote.url.removeprefix("https://raw.githubusercontent.com/")
            upstream.parent.mkdir(parents=True, exist_ok=True)
            body = (DATA / name / remote.relative_path).read_bytes()
            if remote.relative_path == "rag_semparse_qids.json":
                document = json.loads(body)
                document["smcalflow"] = {"train": ["s_1"], "test": [], "incontext": [], "dsl": {}}
                document["overnight"] = {"train": ["o_1"], "test": [], "incontext": [], "dsl": {}}
                body = json.dumps(document, indent=2).encode()
            upstream.write_bytes(body)
            sha = hashlib.sha256(body).hexdigest()
            entries.append(RemoteFile(remote.url, remote.relative_path, sha, len(body)))
        registry[name] = tuple(entries)
    return registry


@needs_data
def test_fetch_from_an_upstream_layout_then_load(tmp_path: Path) -> None:
    registry = upstream_copy(tmp_path / "upstream")
    served = {
        name: tuple(
            dataclasses.replace(r, url=r.url.replace("https://raw.githubusercontent.com", "{}"))
            for r in files
        )
        for name, files in registry.items()
    }
    with serve(tmp_path / "upstream") as mirror:
        sources = {
            name: tuple(dataclasses.replace(r, url=r.url.format(mirror.url)) for r in files)
            for name, files in served.items()
        }
        results = fetch("all", tmp_path / "data", sources=sources, timeout=5)
    assert {r.status for r in results} == {"downloaded"}
    assert (
        "/microsoft/sammo/b9773a05735e7801af1d05d465cdb29b86411c1f/examples/rag_tuning/"
        "data_splits.json",
        None,
    ) in mirror.requests
    rag = load_geoquery_rag(tmp_path / "data")
    assert rag.name == "geo880" and rag.sizes() == {
        "pool": 500,
        "train": 100,
        "val": 0,
        "test": 100,
    }
    assert list_tasks(tmp_path / "data")["rag-parsing"] == ["geo880"]
