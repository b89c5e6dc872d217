"""A trained soft prompt as a PEFT prompt-tuning adapter folder, which ``peft`` loads itself.

The folder holds what ``PeftModel.from_pretrained(base_model, folder)`` reads:
``adapter_config.json`` (a ``PromptTuningConfig``, written by peft's own ``save_pretrained``)
and ``adapter_model.safetensors`` with one tensor, ``prompt_embeddings`` (``n_tokens x
hidden``, float32). PEFT prepends those embeddings to the input embeddings before the first
token (the BOS token included), which is where :func:`sammo_core.runners.hf.label_logprobs`
puts a soft prompt, so the loaded adapter predicts what the trained program predicted.

The config says ``prompt_tuning_init: RANDOM`` whatever the initialization was: on load, PEFT
builds the embedding from its init before it reads the saved weights, and a ``TEXT`` init would
make it load a tokenizer by name first. The init text is recorded in the export's manifest.

>>> sorted(ADAPTER_FILES)
['adapter_config.json', 'adapter_model.safetensors']
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sammo_core.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["ADAPTER_FILES", "EMBEDDINGS_KEY", "read_peft_adapter", "write_peft_adapter"]

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_FILES = (ADAPTER_CONFIG, ADAPTER_WEIGHTS)
#: The key PEFT stores prompt-tuning weights under.
EMBEDDINGS_KEY = "prompt_embeddings"


def write_peft_adapter(
    tensor: torch.Tensor,
    folder: str | Path,
    *,
    base_model: str,
    model_config: Any = None,
) -> Path:
    """Write ``tensor`` (``n_tokens x hidden``) as a PEFT prompt-tuning adapter into ``folder``.

    ``base_model`` goes into the config's ``base_model_name_or_path`` (PEFT does not load it:
    the caller passes the base model to ``PeftModel.from_pretrained``). ``model_config`` (the
    base model's transformers config, optional) fills ``num_layers`` and
    ``num_attention_heads`` as PEFT itself would. Each file is written under a temporary name
    and renamed into place. Returns the folder.
    """
    from peft import PromptTuningConfig
    from safetensors.torch import save_file

    if tensor.dim() != 2:
        raise ConfigError(f"a soft prompt is n_tokens x hidden; got shape {tuple(tensor.shape)}")
    n_tokens, hidden = (int(x) for x in tensor.shape)
    text_config = getattr(model_config, "text_config", None) or model_config
    config = PromptTuningConfig(
        task_type="CAUSAL_LM",
        num_virtual_tokens=n_tokens,
        token_dim=hidden,
        num_transformer_submodules=1,
        num_layers=getattr(text_config, "num_hidden_layers", None),
        num_attention_heads=getattr(text_config, "num_attention_heads", None),
        base_model_name_or_path=base_model,
        inference_mode=True,
    )
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    staging = out / ".staging"
    staging.mkdir(exist_ok=True)
    config.save_pretrained(str(staging))
    weights = {EMBEDDINGS_KEY: tensor.detach().to("cpu", dtype=_float32()).contiguous()}
    save_file(weights, str(staging / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    for name in ADAPTER_FILES:
        os.replace(staging / name, out / name)
    for left in staging.iterdir():  # pragma: no cover - save_pretrained writes only the config
        left.unlink()
    staging.rmdir()
    return out


def read_peft_adapter(folder: str | Path) -> torch.Tensor:
    """The prompt embeddings of a PEFT prompt-tuning adapter folder (no pickle).

    Raises :class:`ConfigError` naming the folder when it is not such an adapter.
    """
    import json

    from safetensors.torch import load_file

    path = Path(folder)
    config_file, weights_file = path / ADAPTER_CONFIG, path / ADAPTER_WEIGHTS
    if not (config_file.is_file() and weights_file.is_file()):
        raise ConfigError(
            f"{path} is not a PEFT adapter folder: it needs {ADAPTER_CONFIG} and "
            f"{ADAPTER_WEIGHTS} (export one with: sammo-core export RUN_DIR)"
        )
    kind = json.loads(config_file.read_text()).get("peft_type")
    if kind != "PROMPT_TUNING":
        raise ConfigError(f"{path} holds a {kind} adapter; only PROMPT_TUNING is a soft prompt")
    weights = load_file(str(weights_file))
    if EMBEDDINGS_KEY not in weights:
        raise ConfigError(f"{weights_file} holds no {EMBEDDINGS_KEY!r} tensor")
    return weights[EMBEDDINGS_KEY]


def _float32() -> Any:
    import torch

    return torch.float32
