"""PromptTuning end to end on a tiny in-memory Gemma 3 (no download): training lowers the loss,
the run folder resumes to the identical tensor, the hybrid keeps the hard program, and the
exported PEFT adapter predicts what the tuned program predicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sammo_core import DataTable, GenerateText, MetaPrompt, Output, Template
from sammo_core.cli import main
from sammo_core.errors import ConfigError
from search.soft_training import CHECKPOINT_FILE, TrainConfig

pytest.importorskip("torch")
pytest.importorskip("transformers")


# peft reads a property transformers 5 deprecated; not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]

LABELS = ("no", "yes")
COLOURS = ("blue", "green", "red")


def table(n: int, start: int = 0) -> DataTable:
    """'is the sky blue' -> yes; other colours -> no; some rows 'very'."""
    inputs, outputs = [], []
    for i in range(start, start + n):
        colour = COLOURS[i % 3]
        inputs.append(f"is the sky {'very ' if i % 2 else ''}{colour}")
        outputs.append("yes" if colour == "blue" else "no")
    return DataTable(inputs, outputs)


def program() -> Output:
    prompt = MetaPrompt([Template("question: {{ input }} answer:")])
    return Output(GenerateText(prompt, mode="completion"))


def tiny() -> Any:
    from sammo_core.testing.tiny_hf import tiny_hf_model

    return tiny_hf_model(0)


def tuning(**config: Any) -> Any:
    from search.prompt_tuning import PromptTuning

    settings = {"steps": 20, "lr": 0.05, "eval_every": 5, "batch_size": 4} | config
    return PromptTuning(tiny(), LABELS, n_tokens=4, init="", config=TrainConfig(**settings))


def test_training_lowers_the_loss_and_scores_test_only_at_the_end() -> None:
    result = tuning(steps=20).run(program(), train=table(12), val=table(6, 50), test=table(6, 90))
    losses = [r["loss"] for r in result.state.trace if r["loss"] is not None]
    assert losses[-1] < losses[0]
    assert set(result.test) == {"start", "tuned"} and result.test["tuned"].n == 6
    assert result.val["tuned"].value == result.state.best_score
    assert "| tuned |" in result.report()


def test_the_tuned_program_holds_the_best_tensor_and_the_hard_prompt() -> None:
    import torch

    from sammo_core.soft import SoftPrompt
    from search.prompt_tuning import rank_accuracy, render_texts

    strategy = tuning()
    result = strategy.run(program(), train=table(12), val=table(6, 50))
    soft = result.program.child.prompt.children[0]
    assert isinstance(soft, SoftPrompt) and soft.n_tokens == 4
    assert torch.equal(soft.tensor.to_torch(), result.tensor)
    # The hard part is the program as given: the hybrid keeps what a hard search found.
    hf = strategy.hf
    assert render_texts(hf, result.program, table(3)) == render_texts(hf, program(), table(3))
    again = rank_accuracy(hf, result.program, table(6, 50), LABELS)
    assert again.value == result.val["tuned"].value


def test_the_tuned_program_runs_on_the_transformers_runner_as_training_scored_it() -> None:
    """The tuned program lists the labels, so the runner answers by rank classification with
    the soft prompt before BOS: its answers are the predictions the trainer scored."""
    import asyncio

    from sammo_core.graph import compile
    from sammo_core.runners.hf import TransformersRunner
    from search.prompt_tuning import rank_accuracy

    strategy = tuning(steps=10)
    result = strategy.run(program(), train=table(12), val=table(6, 50))
    assert list(result.program.child.labels) == list(LABELS)
    rows = table(9, 70)
    runner = TransformersRunner(strategy.hf)
    try:
        answers = asyncio.run(compile(result.program).run(rows, runner))
    finally:
        asyncio.run(runner.aclose())
    correct = [float(str(r.raw_output) == str(r.output)) for r in answers]
    assert tuple(correct) == rank_accuracy(strategy.hf, result.program, rows, LABELS).per_item


def test_a_crashed_run_resumes_to_the_identical_tensor(tmp_path: Path) -> None:
    import torch

    straight = tuning().run(program(), train=table(12), val=table(6, 50))

    def crash(record: dict[str, Any]) -> None:
        if record["step"] == 10:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        tuning().run(program(), train=table(12), val=table(6, 50), out_dir=tmp_path, on_eval=crash)
    assert (tmp_path / CHECKPOINT_FILE).is_file() and not (tmp_path / "result.json").exists()
    resumed = tuning().run(
        program(), train=table(12), val=table(6, 50), out_dir=tmp_path, resume=True
    )
    assert torch.equal(resumed.tensor, straight.tensor)
    pairs = zip(straight.state.trace, resumed.state.trace, strict=True)
    assert resumed.state.trace == [r | {"seconds": s["seconds"]} for r, s in pairs]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["strategy"] == "PromptTuning" and result["steps"] == 20

    with pytest.raises(ConfigError, match="different training run"):
        tuning(lr=0.01).run(
            program(), train=table(12), val=table(6, 50), out_dir=tmp_path, resume=True
        )


def test_a_gold_output_outside_the_labels_names_the_row() -> None:
    bad = DataTable(["is it"], ["maybe"])
    with pytest.raises(ConfigError, match=r"row 0's gold output 'maybe' is not one of the labels"):
        tuning().run(program(), train=bad, val=table(3))


def test_cli_optimize_then_export_writes_an_adapter_peft_loads(tmp_path: Path) -> None:
    import torch

    peft = pytest.importorskip("peft")
    from sammo_core import dumps
    from sammo_core.runners.hf import label_logprobs
    from sammo_core.testing.tiny_hf import tiny_hf_folder

    hf = tiny()
    model_dir = tiny_hf_folder(tmp_path / "tiny-model")
    (tmp_path / "program.json").write_text(dumps(program()))
    table(24).save(tmp_path / "data.jsonl")
    run = tmp_path / "run"
    command = [
        "optimize", str(tmp_path / "program.json"), "--data", str(tmp_path / "data.jsonl"),
        "--strategy", "prompt-tuning", "--model", f"hf:{model_dir}", "--budget", "10",
        "--soft-tokens", "3", "--lr", "0.05", "--eval-every", "5", "--out", str(run),
    ]  # fmt: skip
    assert main(command) == 0
    assert (run / "report.md").is_file() and (run / "trace.jsonl").is_file()
    first = json.loads((run / "result.json").read_text())
    assert main(command) != 0  # the folder holds a run: --resume, a new folder, or --force
    assert main([*command, "--resume"]) == 0  # a finished run resumes to its result
    again = json.loads((run / "result.json").read_text())
    assert again["best"] == first["best"] and again["trace"] == first["trace"]
    assert main(["export", str(run)]) == 0
    adapter = run / "export" / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file()
    assert (run / "export" / "program.json").is_file()
    # The manifest names the adapter folder and the tensor it holds.
    manifest = json.loads((run / "export" / "manifest-json.json").read_text())
    from sammo_core.selectors import find_one
    from sammo_core.serialization import load

    exported = find_one(load(run / "export" / "program.json"), "SoftPrompt").node
    assert manifest["soft_prompt"] == {
        "n_tokens": 3, "init": "", "sha256": exported.tensor.digest, "adapter": "adapter"
    }  # fmt: skip

    from search.peft_export import read_peft_adapter

    soft = read_peft_adapter(adapter)
    base = tiny().model
    loaded = peft.PeftModel.from_pretrained(base, str(adapter)).eval()
    ids = hf.tokenizer("question: is the sky blue answer:")["input_ids"]
    yes, no = (hf.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("yes", "no"))
    with torch.no_grad():
        logp = torch.log_softmax(loaded(input_ids=torch.tensor([ids])).logits[0, -1], dim=-1)
        ours = label_logprobs(hf, ["question: is the sky blue answer:"], [" no", " yes"], soft=soft)
    assert float(logp[no]) == pytest.approx(float(ours[0, 0]), abs=1e-5)
    assert float(logp[yes]) == pytest.approx(float(ours[0, 1]), abs=1e-5)
