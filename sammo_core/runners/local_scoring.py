"""Label scoring for the embedded llama.cpp runner: every label's log-probability after a prompt.

:class:`LlamaLabelScorer` evaluates a prompt once, then each label's tokens from that state,
and sums the label tokens' log-softmax. Its numbers depend only on the tokens scored, never
on what was evaluated before, so a cache can store them and replay them exactly:

- llama.cpp's float results for a token depend on the batch it was evaluated in: on CPU the
  quantized matrix kernels take a batch's tokens in blocks of 4, and the last ``n % 4``
  tokens of an ``n``-token batch go through another kernel whose results differ (by up to
  1.5 in a logit, 0.3 nats in a label's log-probability, on Gemma 3 270M). So a prefix
  reused from an arbitrary earlier call, or a label evaluated alone, moves the numbers. Here
  every batch is padded with filler tokens after its real ones to a multiple of
  :data:`PAD_TO` tokens, and the filler dropped from the KV cache right after: causal
  attention keeps them from touching the real tokens, and every real token takes the block
  kernel, so its numbers no longer depend on how the tokens were split into batches
  (checked bit for bit on random splits).
- On top of that, the prompt is evaluated in chunks of :data:`SCORE_CHUNK` tokens at
  positions aligned to its multiples, the same chunks whatever came before, and a later
  prompt reuses the KV cache only for whole aligned chunks it shares token for token
  (:func:`reusable_prefix`); the chunk with the prompt's last token always runs again.
- Each label's tokens are evaluated after the prompt's last position in one batch, their
  logits read, then their positions dropped from the KV cache before the next label.

Tokens: the prompt is tokenized as the completion path does (BOS, special tokens parsed);
each label's continuation (:func:`~sammo_core.runners.base.label_continuation`) is tokenized
on its own, without BOS, and scored as the tokens following the prompt's tokens. Tokenizing
prompt and label together could merge tokens across the boundary, so that the label's score
would cover part of the prompt, or differ from label to label in what it covers.

>>> reusable_prefix([5, 6, 7, 8, 9], [5, 6, 7, 8, 1, 2], chunk=2)
4
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sammo_core.errors import RunnerError

__all__ = ["PAD_TO", "SCORE_CHUNK", "LlamaLabelScorer", "reusable_prefix"]

#: Prompt tokens are evaluated for scoring in chunks of this many, at positions aligned to
#: its multiples. Smaller chunks let prompts that share a prefix reuse more of it; larger
#: ones run faster. Changing it changes scores in their last bits, so it is a constant.
SCORE_CHUNK = 64
#: Every batch evaluated for scoring is padded to a multiple of this many tokens: the CPU
#: kernels' block of 4 tokens, with room for kernels that take 8.
PAD_TO = 8


def reusable_prefix(cached: Sequence[int], tokens: Sequence[int], chunk: int) -> int:
    """How many leading ``tokens`` may be taken from a KV cache holding ``cached``.

    Only whole aligned chunks count, and never the chunk holding the last token (its logits
    are needed, and only a fresh evaluation gives them).

    >>> reusable_prefix([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 9], chunk=2)
    4
    >>> reusable_prefix([1, 2, 3, 4], [1, 2, 3, 4], chunk=2)  # the last chunk runs again
    2
    >>> reusable_prefix([1, 2, 3], [1, 2, 3, 4, 5], chunk=4)  # no whole chunk is cached
    0
    """
    shared = 0
    for a, b in zip(cached, tokens, strict=False):
        if a != b:
            break
        shared += 1
    limit = max(len(tokens) - 1, 0)
    return min(shared, limit) // chunk * chunk


class LlamaLabelScorer:
    """Scores labels after prompts on one ``llama_cpp.Llama``; not thread-safe.

    The scorer assumes it is the only user of the model's KV cache between its calls;
    whoever evaluates something else on the model (a generation) calls :meth:`forget` first.
    ``evaluated`` and ``reused`` count prompt tokens evaluated and taken from the KV cache.

    >>> from llama_cpp import Llama  # doctest: +SKIP
    >>> scorer = LlamaLabelScorer(Llama("gemma-3-270m-q4_k_m.gguf", n_ctx=2048))  # doctest: +SKIP
    >>> scorer.score_text("The sky is", ["blue", "green"])  # doctest: +SKIP
    (17, [-1.9..., -6.3...], 2)
    """

    def __init__(self, llm: Any, chunk: int = SCORE_CHUNK, pad_to: int = PAD_TO) -> None:
        if pad_to < 1 or llm.n_batch % pad_to:
            raise ValueError(f"pad_to must divide n_batch={llm.n_batch}; got {pad_to}")
        if chunk < 1 or chunk > llm.n_batch or chunk % pad_to:
            raise ValueError(
                f"chunk must be a multiple of pad_to={pad_to} within [1, n_batch={llm.n_batch}]"
                f"; got {chunk}"
            )
        self.llm = llm
        self.chunk = chunk
        self.pad_to = pad_to
        self.evaluated = 0
        self.reused = 0
        # The prompt tokens whose KV entries hold an aligned evaluation (whole chunks).
        self._aligned: list[int] = []

    def forget(self) -> None:
        """Reuse nothing from the KV cache next time (something else is evaluated there)."""
        self._aligned = []

    def score_text(
        self, text: str, labels: Sequence[str], *, parse_bos: bool = True
    ) -> tuple[int, list[float], int]:
        """Tokenize ``text`` (with BOS when ``parse_bos``) and each label, then :meth:`score`.

        ``labels`` are the exact continuations to score (a leading space included). Returns
        (prompt tokens, each label's log-probability, label tokens scored).
        """
        llm = self.llm
        prompt = list(llm.tokenize(text.encode("utf-8"), add_bos=parse_bos, special=True))
        options = [
            list(llm.tokenize(x.encode("utf-8"), add_bos=False, special=False)) for x in labels
        ]
        return len(prompt), self.score(prompt, options), sum(len(x) for x in options)

    def score(self, prompt: Sequence[int], labels: Sequence[Sequence[int]]) -> list[float]:
        """Each label's log-probability (natural log, summed over its tokens) after ``prompt``."""
        import numpy as np

        llm = self.llm
        if not prompt:
            raise RunnerError("cannot score labels after an empty prompt; give it some text")
        if any(not label for label in labels):
            raise RunnerError(f"every label needs at least one token; got {list(labels)}")
        longest = max((len(label) for label in labels), default=1)
        n_ctx = int(llm.n_ctx())
        if len(prompt) + longest - 1 + self.pad_to > n_ctx:
            raise RunnerError(
                f"the prompt ({len(prompt)} tokens) and its longest label ({longest} tokens) "
                f"do not fit the context window of n_ctx={n_ctx} tokens with room for "
                f"{self.pad_to} filler tokens; raise n_ctx"
            )
        tokens = [int(t) for t in prompt]
        keep = reusable_prefix(self._aligned, tokens, self.chunk)
        self._aligned = self._aligned[:keep]
        ctx = llm._ctx
        if not ctx.kv_cache_seq_rm(-1, keep, -1):  # cannot drop a suffix: start afresh
            keep, self._aligned = 0, []
            ctx.kv_cache_seq_rm(-1, 0, -1)
        self.reused += keep
        self.evaluated += len(tokens) - keep
        last: Any = None
        for start in range(keep, len(tokens), self.chunk):
            part = tokens[start : start + self.chunk]
            final = start + self.chunk >= len(tokens)
            rows = self._decode(part, start, logits="last" if final else "none")
            last = rows[-1] if rows else last
            if len(part) == self.chunk:
                self._aligned.extend(part)
        # llama-cpp-python's own bookkeeping: the KV cache now holds the prompt; a later
        # generation may reuse it, and must evaluate at least one token for fresh logits.
        llm.input_ids[: len(tokens)] = tokens
        llm.n_tokens = len(tokens)
        llm._requires_eval = True
        first = _log_softmax(np, last)
        scores: list[float] = []
        for label in labels:
            total = float(first[label[0]])
            if len(label) > 1:
                rows = self._decode(label[:-1], len(tokens), logits="all")
                for row, token in zip(rows, label[1:], strict=True):
                    total += float(_log_softmax(np, row)[token])
                ctx.kv_cache_seq_rm(-1, len(tokens), -1)
            scores.append(total)
        return scores

    def _decode(
        self, tokens: Sequence[int], start: int, *, logits: Literal["none", "last", "all"]
    ) -> list[Any]:
        """Evaluate ``tokens`` at positions from ``start``, in batches of at most ``n_batch``.

        Returns the logits of every token, of the last one, or none (the KV cache is all a
        prompt chunk before the last leaves). Each batch is padded to a multiple of
        :attr:`pad_to` by repeating its last token, and the filler's positions are dropped
        from the KV cache after it. Where logits are wanted, those of the batch's last
        :attr:`pad_to` tokens are computed: the final layer runs only on the tokens whose
        logits are asked for, and one alone would take the other kernel.
        """
        import numpy as np

        llm = self.llm
        rows: list[Any] = []
        step = int(llm.n_batch)
        for offset in range(0, len(tokens), step):
            batch = [int(t) for t in tokens[offset : offset + step]]
            real = len(batch)
            batch.extend([batch[-1]] * (-real % self.pad_to))
            llm._batch.set_batch(batch=batch, n_past=start + offset, logits_all=logits == "all")
            flags = llm._batch.batch.logits
            for i in range(len(batch) - self.pad_to, len(batch)):
                flags[i] = logits != "none"
            try:
                llm._ctx.decode(llm._batch)
            except RuntimeError as exc:
                raise RunnerError(f"llama.cpp could not evaluate {real} tokens: {exc}") from exc
            finally:
                llm._ctx.kv_cache_seq_rm(-1, start + offset + real, -1)
            wanted = {"none": range(0), "last": range(real - 1, real), "all": range(real)}[logits]
            for i in wanted:
                pointer = llm._ctx.get_logits_ith(i)
                rows.append(np.ctypeslib.as_array(pointer, shape=(llm.n_vocab(),)).copy())
        return rows


def _log_softmax(np: Any, logits: Any) -> Any:
    """log softmax in float64 (the logits are float32)."""
    values = logits.astype(np.float64)
    top = values.max()
    return values - (top + np.log(np.exp(values - top).sum()))
