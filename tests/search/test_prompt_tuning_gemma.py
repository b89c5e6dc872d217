"""Prompt tuning on the packaged Gemma 3 270M (slow: loads the model; needs the [soft] and
[local] extras): a few steps lower the training loss, a crashed run resumes to the identical
tensor, and the exported adapter loads with peft and predicts identically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sammo_core import DataTable, GenerateText, InputData, MetaPrompt, Output, Section
from search.soft_training import TrainConfig

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning"),
]

ROWS = [
    ("Paris is in France.", "True"), ("The sun is cold.", "False"),
    ("Ice is frozen water.", "True"),
    ("Fish can climb trees.", "False"), ("Two plus two is four.", "True"),
    ("Snow is black.", "False"), ("Dogs are animals.", "True"), ("The moon is a cheese.", "False"),
]  # fmt: skip


def program() -> Output:
    prompt = MetaPrompt([Section("Task", ["Is the statement true?"]), InputData()])
    return Output(GenerateText(prompt, mode="completion", max_tokens=4))


def tuning(steps: int) -> Any:
    pytest.importorskip("torch")
    from search.prompt_tuning import PromptTuning

    config = TrainConfig(steps=steps, batch_size=4, lr=0.01, eval_every=2)
    return PromptTuning("gemma3", ("False", "True"), n_tokens=8, init="Is it true?", config=config)


def data() -> DataTable:
    return DataTable([r[0] for r in ROWS], [r[1] for r in ROWS])


def test_a_few_steps_lower_the_training_loss() -> None:
    result = tuning(6).run(program(), train=data(), val=data()[:4])
    losses = [r["loss"] for r in result.state.trace if r["loss"] is not None]
    assert losses[-1] < losses[0]


def test_resume_gives_the_identical_tensor_and_the_adapter_predicts_identically(
    tmp_path: Path,
) -> None:
    import torch
    from peft import PeftModel

    from sammo_core.runners.hf import label_logprobs
    from search.peft_export import write_peft_adapter

    straight = tuning(4).run(program(), train=data(), val=data()[:4])

    def crash(record: dict[str, Any]) -> None:
        if record["step"] == 2:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        tuning(4).run(program(), train=data(), val=data()[:4], out_dir=tmp_path, on_eval=crash)
    strategy = tuning(4)
    resumed = strategy.run(program(), train=data(), val=data()[:4], out_dir=tmp_path, resume=True)
    assert torch.equal(resumed.tensor, straight.tensor)

    hf = strategy.hf
    adapter = write_peft_adapter(resumed.tensor, tmp_path / "adapter", base_model="gemma3")
    # Prompt tuning wraps the base model without changing its weights or modules.
    loaded = PeftModel.from_pretrained(hf.model, str(adapter)).eval()
    text = "# Task\n\nIs the statement true?\n\nInput: Snow is white.\n\nOutput:"
    ids = hf.tokenizer(text)["input_ids"]
    label_ids = [
        hf.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in (" False", " True")
    ]
    with torch.no_grad():
        logp = torch.log_softmax(loaded(input_ids=torch.tensor([ids])).logits[0, -1], dim=-1)
        ours = label_logprobs(hf, [text], [" False", " True"], soft=resumed.tensor)
    assert [float(logp[i]) for i in label_ids] == pytest.approx(ours[0].tolist(), abs=1e-4)
