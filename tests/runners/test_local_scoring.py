"""Label scoring on llama.cpp, against a fake model whose logits follow from the tokens before."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest

from sammo_core.errors import RunnerError
from sammo_core.runners.local_scoring import LlamaLabelScorer, reusable_prefix

np = pytest.importorskip("numpy")

VOCAB = 11


def fake_logits(history: Sequence[int]) -> Any:
    """The fake model's logits after ``history``: any fixed function of it will do."""
    seed = sum((i + 1) * t for i, t in enumerate(history)) + 7 * len(history)
    return np.array([((seed * (v + 3)) % 13) / 3.0 for v in range(VOCAB)], dtype=np.float32)


class FakeContext:
    def __init__(self, owner: FakeLlama) -> None:
        self.owner = owner
        self.kv: list[int] = []
        self.decoded: list[tuple[int, int]] = []  # (first position, tokens) of each decode
        self.flagged: list[int] = []  # how many tokens' logits each decode computed
        self.logits: dict[int, Any] = {}

    def kv_cache_seq_rm(self, seq_id: int, p0: int, p1: int) -> bool:
        assert (seq_id, p1) == (-1, -1)
        del self.kv[p0:]
        return True

    def decode(self, batch: FakeBatch) -> None:
        assert batch.start == len(self.kv), "positions must follow the KV cache"
        self.decoded.append((batch.start, len(batch.tokens)))
        self.flagged.append(sum(batch.flags))
        self.logits = {}
        for i, token in enumerate(batch.tokens):
            self.kv.append(token)
            if batch.flags[i]:
                self.logits[i] = fake_logits(self.kv)

    def get_logits_ith(self, i: int) -> Any:
        return np.ctypeslib.as_ctypes(self.logits[i])


class FakeBatch:
    tokens: list[int]
    start: int

    def __init__(self) -> None:
        self.batch = self  # llama_cpp's LlamaBatch wraps the C struct in .batch
        self.flags: list[bool] = []

    @property
    def logits(self) -> list[bool]:
        return self.flags

    def set_batch(self, batch: Sequence[int], n_past: int, logits_all: bool) -> None:
        self.tokens, self.start = list(batch), n_past
        self.flags = [logits_all] * (len(batch) - 1) + [True]


class FakeLlama:
    """What the scorer uses of ``llama_cpp.Llama``; a token is a character's code mod VOCAB."""

    n_batch = 8

    def __init__(self) -> None:
        self._ctx = FakeContext(self)
        self._batch = FakeBatch()
        self.input_ids = np.zeros(64, dtype=np.intc)
        self.n_tokens = 0
        self._requires_eval = False

    def n_ctx(self) -> int:
        return 64

    def n_vocab(self) -> int:
        return VOCAB

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return ([0] if add_bos else []) + [1 + b % (VOCAB - 1) for b in text]


def reference(prompt: Sequence[int], label: Sequence[int]) -> float:
    total = 0.0
    for i, token in enumerate(label):
        logits = fake_logits([*prompt, *label[:i]]).astype(np.float64)
        total += float(logits[token] - np.log(np.exp(logits).sum()))
    return total


def test_scores_sum_each_label_tokens_log_softmax() -> None:
    llm = FakeLlama()
    scorer = LlamaLabelScorer(llm, chunk=4, pad_to=1)
    prompt, labels = [0, 1, 2, 3, 4, 5], [[7], [8, 9, 1], [2, 2]]
    scores = scorer.score(prompt, labels)
    assert scores == pytest.approx([reference(prompt, label) for label in labels], abs=1e-9)
    assert all(s < 0 for s in scores)
    assert llm._ctx.kv == prompt  # every label's positions were dropped again
    assert (llm.n_tokens, list(llm.input_ids[:6]), llm._requires_eval) == (6, prompt, True)
    # The prompt in aligned chunks (0-3, 4-5), then one batch for each multi-token label.
    assert llm._ctx.decoded == [(0, 4), (4, 2), (6, 2), (6, 1)]


def test_only_whole_aligned_chunks_are_reused() -> None:
    llm = FakeLlama()
    scorer = LlamaLabelScorer(llm, chunk=4, pad_to=1)
    first = scorer.score(list(range(10)), [[1], [2, 3]])
    llm._ctx.decoded.clear()
    scorer.score([*range(9), 10], [[1]])  # shares 9 tokens: two whole chunks
    assert llm._ctx.decoded == [(8, 2)]
    assert (scorer.reused, scorer.evaluated) == (8, 12)
    llm._ctx.decoded.clear()
    again = scorer.score(list(range(10)), [[1], [2, 3]])
    assert again == first
    assert llm._ctx.decoded[0] == (8, 2)  # the chunk with the last token runs again


def test_forget_starts_from_position_zero() -> None:
    llm = FakeLlama()
    scorer = LlamaLabelScorer(llm, chunk=4, pad_to=1)
    scorer.score(list(range(9)), [[1]])
    scorer.forget()
    llm._ctx.decoded.clear()
    scorer.score(list(range(9)), [[1]])
    assert llm._ctx.decoded == [(0, 4), (4, 4), (8, 1)]


def test_score_text_tokenizes_labels_without_bos() -> None:
    scorer = LlamaLabelScorer(FakeLlama(), chunk=4, pad_to=1)
    prompt_tokens, scores, label_tokens = scorer.score_text("Sky? A:", [" yes", " no"])
    assert (prompt_tokens, label_tokens) == (8, 7)
    llm = FakeLlama()
    prompt = llm.tokenize(b"Sky? A:")
    assert scores[1] == pytest.approx(reference(prompt, llm.tokenize(b" no", add_bos=False)))


def test_a_prompt_that_does_not_fit_names_n_ctx() -> None:
    scorer = LlamaLabelScorer(FakeLlama(), chunk=4, pad_to=1)
    with pytest.raises(RunnerError, match="n_ctx=64"):
        scorer.score(list(range(63)), [[1, 2, 3]])
    with pytest.raises(RunnerError, match="empty prompt"):
        scorer.score([], [[1]])


def test_the_chunk_must_fit_a_batch() -> None:
    with pytest.raises(ValueError, match="n_batch=8"):
        LlamaLabelScorer(FakeLlama(), chunk=9, pad_to=1)
    with pytest.raises(ValueError, match="multiple of pad_to=4"):
        LlamaLabelScorer(FakeLlama(), chunk=6, pad_to=4)
    with pytest.raises(ValueError, match="divide n_batch=8"):
        LlamaLabelScorer(FakeLlama(), chunk=6, pad_to=3)


def test_batches_are_padded_and_the_filler_dropped() -> None:
    llm = FakeLlama()
    scorer = LlamaLabelScorer(llm, chunk=4, pad_to=4)
    prompt, labels = [0, 1, 2, 3, 4, 5], [[7], [8, 9, 1]]
    scores = scorer.score(prompt, labels)
    # The fake's logits depend on the tokens before only, so filler after changes nothing.
    assert scores == pytest.approx([reference(prompt, label) for label in labels], abs=1e-9)
    assert llm._ctx.decoded == [(0, 4), (4, 4), (6, 4)]
    assert llm._ctx.flagged == [0, 4, 4]  # none for a chunk before the last, else a block
    assert llm._ctx.kv == prompt


@pytest.mark.parametrize(
    ("cached", "tokens", "chunk", "expected"),
    [([], [1, 2, 3], 2, 0), ([1, 2, 3, 4], [1, 2, 3, 4, 5], 2, 4), ([1, 2], [1, 3, 4], 1, 1)],
)
def test_reusable_prefix(cached: list[int], tokens: list[int], chunk: int, expected: int) -> None:
    assert reusable_prefix(cached, tokens, chunk) == expected


def test_log_probabilities_of_one_token_labels_sum_to_at_most_one() -> None:
    scorer = LlamaLabelScorer(FakeLlama(), chunk=4, pad_to=1)
    scores = scorer.score([0, 3, 5], [[v] for v in range(VOCAB)])
    assert math.fsum(math.exp(s) for s in scores) == pytest.approx(1.0)
