"""`--cache postgresql://...` on the command line, and `sammo-core cache copy|stats`, against a
real PostgreSQL server and the loopback chat server."""

from __future__ import annotations

import json
import sys
import tomllib
from importlib import import_module
from pathlib import Path

import pytest

from sammo_core import cli_cache
from sammo_core.cli import main
from sammo_core.runners import Cache, LLMRequest, LLMResult, PostgresCache
from sammo_core.testing.chat_server import ChatServer
from sammo_core.testing.postgres_server import _free_port

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "sammo_core" / "examples"


def run_cli(server: ChatServer, out: Path, *extra: str) -> int:
    return main(
        ["run", str(EXAMPLES / "yesno.py"), "--data", str(EXAMPLES / "yesno.jsonl"),
         "--model", "loopback", "--base-url", server.base_url, "--out", str(out),
         "--timeout", "5", *extra]
    )  # fmt: skip


def test_run_twice_on_a_postgres_cache_pays_once(pg_url: str, tmp_path: Path) -> None:
    with ChatServer(reply=lambda request: "Yes") as server:
        assert run_cli(server, tmp_path / "a", "--cache", pg_url) == 0
        assert server.stats().completions == 20
        assert run_cli(server, tmp_path / "b", "--cache", pg_url) == 0
        assert run_cli(server, tmp_path / "c", "--cache", pg_url, "--replay") == 0
        assert server.stats().completions == 20  # the server's own count: none after the first
    usage = [json.loads((tmp_path / d / "results.json").read_text())["usage"] for d in "abc"]
    assert [u["calls"] for u in usage] == [20, 0, 0]
    assert [u["cache_hits"] for u in usage] == [0, 20, 20]


def test_a_postgres_server_that_is_down_ends_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://sammo:s3cret@127.0.0.1:{_free_port()}/cache"
    with ChatServer() as server:
        code = run_cli(server, tmp_path / "a", "--cache", url)
        assert server.stats().requests == 0
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "s3cret" not in err and "Traceback" not in err
    assert err.startswith("error: cannot open the PostgreSQL cache postgresql://***@127.0.0.1:")
    assert not (tmp_path / "a" / "results.json").exists()


def test_a_url_that_does_not_parse_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ChatServer() as server, pytest.raises(SystemExit) as info:
        run_cli(server, tmp_path, "--cache", "postgresql://sammo:s3cret@db:port/cache")
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "'postgresql://***@db:port/cache' is not a valid URL" in err and "s3cret" not in err


def test_without_psycopg_the_run_says_which_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    with ChatServer() as server:
        code = run_cli(server, tmp_path, "--cache", "postgresql://sammo@127.0.0.1:5432/cache")
    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        "error: a postgresql:// cache needs psycopg 3: pip install 'sammo-core[postgres]'\n"
    )


def _fill(path: Path, n: int) -> None:
    with Cache(path) as cache:
        for i in range(n):
            request = LLMRequest.from_prompt(f"question {i}")
            _ = cache.put("m", request, LLMResult(f"answer {i}", 3, 2, model="m", cost_usd=0.5))


def test_copy_sqlite_to_postgres_and_back_keeps_every_row(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(tmp_path / "a.sqlite", 2500)  # more than one batch
    secret = pg_url.replace("postgres@", "postgres:s3cret@")
    assert cli_cache.main(["copy", str(tmp_path / "a.sqlite"), secret]) == 0
    assert cli_cache.main(["copy", str(tmp_path / "a.sqlite"), secret]) == 0  # again: idempotent
    assert cli_cache.main(["copy", secret, str(tmp_path / "b.sqlite")]) == 0
    out = capsys.readouterr().out.splitlines()
    masked = secret.replace("postgres:s3cret@", "***@")
    assert out == [
        f"copied 2500 rows from {tmp_path / 'a.sqlite'} to {masked} (0 skipped: already "
        "there); it holds 2500 rows",
        f"copied 0 rows from {tmp_path / 'a.sqlite'} to {masked} (2500 skipped: already "
        "there); it holds 2500 rows",
        f"copied 2500 rows from {masked} to {tmp_path / 'b.sqlite'} (0 skipped: already "
        "there); it holds 2500 rows",
    ]
    with Cache(tmp_path / "a.sqlite") as a, Cache(tmp_path / "b.sqlite") as b:
        with PostgresCache(pg_url) as pg:
            assert pg.read_rows(limit=5000) == a.read_rows(limit=5000)
        assert b.read_rows(limit=5000) == a.read_rows(limit=5000)  # keys, bytes, times
        assert b.get("m", LLMRequest.from_prompt("question 7")) == LLMResult(
            "answer 7", 3, 2, model="m", cost_usd=0.5
        )


def test_copy_keeps_the_answers_the_target_holds(pg_url: str, tmp_path: Path) -> None:
    request = LLMRequest.from_prompt("question 1")
    with PostgresCache(pg_url) as pg:
        _ = pg.put("m", request, LLMResult("first in the shared cache"))
    _fill(tmp_path / "a.sqlite", 3)
    assert cli_cache.copy_cache(str(tmp_path / "a.sqlite"), pg_url) == (2, 1)
    with PostgresCache(pg_url) as pg:
        stored = pg.get("m", request)
        assert stored is not None and stored.text == "first in the shared cache"


def test_stats_counts_rows_by_key_version(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(tmp_path / "a.sqlite", 3)
    assert cli_cache.main(["copy", str(tmp_path / "a.sqlite"), pg_url]) == 0
    assert cli_cache.main(["stats", pg_url]) == 0
    assert cli_cache.main(["stats", str(tmp_path / "a.sqlite")]) == 0
    out = capsys.readouterr().out.splitlines()[1:]
    assert out == [
        f"{pg_url}: 3 rows",
        "  key version 2: 3 rows (current)",
        f"{tmp_path / 'a.sqlite'}: 3 rows",
        "  key version 2: 3 rows (current)",
    ]


def test_copy_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "missing.sqlite")
    assert cli_cache.main(["copy", missing, str(tmp_path / "b.sqlite")]) == 1
    _fill(tmp_path / "a.sqlite", 1)
    same = str(tmp_path / "a.sqlite")
    assert cli_cache.main(["copy", same, same]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"error: cache file {missing!r} does not exist; name an existing cache to copy",
        f"error: SRC and DST are the same cache ({same}); name two",
    ]
    assert not (tmp_path / "b.sqlite").exists()


def test_the_cache_command_is_registered_like_the_others() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    target = project["entry-points"]["sammo_core.commands"]["cache"]
    module, _, name = target.partition(":")
    assert getattr(import_module(module), name) is cli_cache.register
    assert "psycopg[binary]>=3.1" in project["optional-dependencies"]["postgres"]
    assert "psycopg[binary]>=3.1" in project["optional-dependencies"]["dev"]
