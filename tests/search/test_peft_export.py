"""A trained soft prompt exported as a PEFT adapter: peft's own loader reads it and predicts
what the soft prompt predicted (a tiny random Gemma 3 built in-process, no download)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sammo_core.errors import ConfigError
from search.peft_export import ADAPTER_FILES, read_peft_adapter, write_peft_adapter

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_gemma() -> Any:
    config = transformers.Gemma3TextConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=128,
        sliding_window=16,
    )
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


# peft 0.21 reads a property transformers 5 deprecates; the warning is theirs, not ours.
@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_peft_loads_the_adapter_and_predicts_as_the_prepended_soft_prompt(tmp_path: Path) -> None:
    model = tiny_gemma()
    soft = torch.randn(5, 16, generator=torch.Generator().manual_seed(1))
    folder = write_peft_adapter(
        soft, tmp_path / "adapter", base_model="tiny", model_config=model.config
    )
    assert sorted(p.name for p in folder.iterdir()) == sorted(ADAPTER_FILES)
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["peft_type"] == "PROMPT_TUNING" and config["num_virtual_tokens"] == 5

    ids = torch.tensor([[2, 7, 9, 11, 3]])
    with torch.no_grad():
        embeds = torch.cat([soft[None], model.get_input_embeddings()(ids)], dim=1)
        expected = model(inputs_embeds=embeds).logits[:, -1]
        loaded = peft.PeftModel.from_pretrained(model, str(folder)).eval()
        got = loaded(input_ids=ids).logits[:, -1]
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.equal(read_peft_adapter(folder), soft)


def test_reading_a_folder_that_is_no_adapter_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not a PEFT adapter folder.*sammo-core export"):
        read_peft_adapter(tmp_path)


def test_a_tensor_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"n_tokens x hidden; got shape \(16,\)"):
        write_peft_adapter(torch.zeros(16), tmp_path, base_model="tiny")
