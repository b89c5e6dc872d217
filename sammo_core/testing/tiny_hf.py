"""A tiny random transformers model with a word-level tokenizer, built in memory in milliseconds.

For tests of code that runs a :class:`~sammo_core.runners.hf.HFModel` (rank classification,
soft prompts, their training) without loading a real model: it has Gemma 3's architecture
(scaled input embeddings, sliding-window layers) at a width of 16, and a vocabulary of the
words in :data:`TINY_WORDS` plus ``<pad>``, ``<bos>``, ``<eos>`` and ``<unk>``. Its tokenizer
splits on whitespace and puts ``<bos>`` first, as Gemma's does. Needs the ``soft`` extra.

>>> hf = tiny_hf_model()  # doctest: +SKIP
>>> hf.tokenizer("is it yes")["input_ids"]  # doctest: +SKIP
[1, 8, 9, 4]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sammo_core.runners.hf import HFModel, _require_torch

__all__ = ["TINY_WORDS", "tiny_hf_folder", "tiny_hf_model"]

#: The words the tiny tokenizer knows (ids 4.. in this order); any other word is ``<unk>``.
TINY_WORDS = (
    "yes", "no", "maybe", "not", "is", "it", "the", "sky", "blue", "green", "answer:",
    "question:", "red", "very", "a", "b",
)  # fmt: skip
_SPECIAL = ("<pad>", "<bos>", "<eos>", "<unk>")


def tiny_hf_model(seed: int = 0, hidden: int = 16) -> HFModel:
    """A fresh tiny Gemma 3 model (random weights from ``seed``) and its tokenizer."""
    _require_torch()
    import torch
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    fast_tokenizer: Any = transformers.PreTrainedTokenizerFast  # untyped in transformers

    vocab = {word: i for i, word in enumerate((*_SPECIAL, *TINY_WORDS))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    tokenizer = fast_tokenizer(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    config = transformers.Gemma3TextConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=128,
        initializer_range=0.5,  # wide enough that inputs and soft prompts sway the answer
        sliding_window=8,
        pad_token_id=vocab["<pad>"],
        bos_token_id=vocab["<bos>"],
        eos_token_id=vocab["<eos>"],
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model: Any = transformers.Gemma3ForCausalLM(config)
    model.eval()
    model.requires_grad_(False)
    return HFModel(model=model, tokenizer=tokenizer, name="tiny", path=Path("tiny"))


def tiny_hf_folder(folder: Path, seed: int = 0) -> Path:
    """Write :func:`tiny_hf_model` (from ``seed``) as a Hugging Face folder, which ``--model
    hf:FOLDER`` loads; returns ``folder``."""
    tiny = tiny_hf_model(seed)
    tiny.model.save_pretrained(folder)
    tiny.tokenizer.save_pretrained(folder)
    return folder
