"""The soft prompt training loop: budgets, early stopping, checkpoint and bit-identical resume.

A toy differentiable task stands in for a model: the loss pulls the tensor toward per-row
targets, so these tests need torch but no model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sammo_core.errors import ConfigError
from search.soft_training import (
    CHECKPOINT_FILE,
    TRACE_FILE,
    TrainConfig,
    read_checkpoint,
    train_soft_prompt,
)

torch = pytest.importorskip("torch")

if TYPE_CHECKING:
    from torch import Tensor


class Toy:
    """Rows are target tensors; the loss is the squared distance of the tensor to a batch's
    mean target; validation scores minus the distance to the overall mean."""

    def __init__(self, n_rows: int = 12) -> None:
        g = torch.Generator().manual_seed(7)
        self.targets = torch.randn(n_rows, 3, 4, generator=g)
        self.calls = 0
        self.fail_at: int | None = None

    def loss(self, t: Tensor, rows: Sequence[int]) -> Tensor:
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt("simulated crash")
        value: Tensor = ((t - self.targets[list(rows)].mean(0)) ** 2).mean()
        return value

    def score(self, t: Tensor) -> float:
        return -float(((t - self.targets.mean(0)) ** 2).mean())


def test_training_lowers_the_loss_and_keeps_the_best_tensor() -> None:
    toy = Toy()
    state = train_soft_prompt(
        torch.zeros(3, 4), toy.loss, toy.score, 12, TrainConfig(steps=40, lr=0.05, eval_every=10)
    )
    vals = [r["val"] for r in state.trace]
    assert [r["step"] for r in state.trace] == [0, 10, 20, 30, 40]
    assert vals[-1] > vals[0]
    assert state.best_score == max(vals)
    assert state.stopped == "steps (40)"
    assert toy.score(state.best) == state.best_score


def test_resume_after_a_crash_ends_at_the_identical_tensor(tmp_path: Path) -> None:
    config = TrainConfig(steps=30, batch_size=4, lr=0.05, eval_every=10, seed=3)
    straight = train_soft_prompt(torch.zeros(3, 4), Toy().loss, Toy().score, 12, config)

    crashing = Toy()
    crashing.fail_at = 17  # after the checkpoint of step 10, in the middle of the next ten
    with pytest.raises(KeyboardInterrupt):
        train_soft_prompt(
            torch.zeros(3, 4),
            crashing.loss,
            crashing.score,
            12,
            config,
            out_dir=tmp_path,
            fingerprint="f1",
        )
    meta, tensors = read_checkpoint(tmp_path / CHECKPOINT_FILE)
    assert meta["step"] == 10 and "optim.exp_avg" in tensors
    resumed = train_soft_prompt(
        torch.zeros(3, 4),
        Toy().loss,
        Toy().score,
        12,
        config,
        out_dir=tmp_path,
        resume=True,
        fingerprint="f1",
    )
    assert torch.equal(resumed.tensor, straight.tensor)
    assert torch.equal(resumed.best, straight.best)
    assert [r["val"] for r in resumed.trace] == [r["val"] for r in straight.trace]
    lines = (tmp_path / TRACE_FILE).read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [0, 10, 20, 30]


def test_resume_without_the_optimizer_state_would_differ(tmp_path: Path) -> None:
    """The checkpoint's AdamW moments matter: dropping them changes the result, so the
    identical-tensor test above really checks that they are restored."""
    config = TrainConfig(steps=20, lr=0.05, eval_every=10)
    straight = train_soft_prompt(torch.zeros(3, 4), Toy().loss, Toy().score, 12, config)
    crashing = Toy()
    crashing.fail_at = 12
    with pytest.raises(KeyboardInterrupt):
        train_soft_prompt(
            torch.zeros(3, 4), crashing.loss, crashing.score, 12, config, out_dir=tmp_path
        )
    from safetensors.torch import load_file, save_file

    path = tmp_path / CHECKPOINT_FILE
    meta, _ = read_checkpoint(path)
    kept = {k: v for k, v in load_file(str(path)).items() if not k.startswith("optim.")}
    save_file(kept, str(path), metadata={"state": json.dumps(meta)})
    resumed = train_soft_prompt(
        torch.zeros(3, 4), Toy().loss, Toy().score, 12, config, out_dir=tmp_path, resume=True
    )
    assert not torch.equal(resumed.tensor, straight.tensor)


def test_a_finished_run_resumes_to_its_result_without_training(tmp_path: Path) -> None:
    config = TrainConfig(steps=10, lr=0.05, eval_every=5)
    first = train_soft_prompt(
        torch.zeros(3, 4), Toy().loss, Toy().score, 12, config, out_dir=tmp_path
    )
    again = Toy()
    second = train_soft_prompt(
        torch.zeros(3, 4), again.loss, again.score, 12, config, out_dir=tmp_path, resume=True
    )
    assert again.calls == 0
    assert torch.equal(second.best, first.best) and second.step == 10


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path: Path) -> None:
    config = TrainConfig(steps=5, eval_every=5)
    train_soft_prompt(
        torch.zeros(3, 4), Toy().loss, Toy().score, 12, config, out_dir=tmp_path, fingerprint="a"
    )
    with pytest.raises(ConfigError, match="different training run"):
        train_soft_prompt(
            torch.zeros(3, 4),
            Toy().loss,
            Toy().score,
            12,
            config,
            out_dir=tmp_path,
            resume=True,
            fingerprint="b",
        )


def test_early_stopping_ends_after_patience_validations_without_a_new_best() -> None:
    toy = Toy()
    state = train_soft_prompt(
        torch.zeros(3, 4),
        toy.loss,
        lambda t: 0.0,
        12,
        TrainConfig(steps=100, eval_every=5, patience=2),
    )
    assert state.step == 10 and state.best_step == 0
    assert state.stopped is not None and state.stopped.startswith("early stopping")


def test_a_time_budget_stops_training() -> None:
    state = train_soft_prompt(
        torch.zeros(3, 4),
        Toy().loss,
        Toy().score,
        12,
        TrainConfig(steps=None, seconds=0.2, eval_every=1000),
    )
    assert state.stopped == "time (0.2 s)"
    assert state.trace[-1]["step"] == state.step > 0  # the last steps were scored too


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": None}, "needs steps or seconds"),
        ({"lr": 0.0}, "lr must be a positive number; got 0.0"),
        ({"batch_size": 0}, "batch_size must be >= 1; got 0"),
        ({"patience": 0}, "patience must be >= 1 or None; got 0"),
    ],
)
def test_bad_settings_name_the_value(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)  # type: ignore[arg-type]


def test_a_diverging_loss_says_to_lower_the_learning_rate() -> None:
    with pytest.raises(ConfigError, match=r"lower the learning rate \(lr=0.5\)"):
        train_soft_prompt(
            torch.zeros(3, 4),
            lambda t, rows: (t * float("nan")).sum(),
            Toy().score,
            12,
            TrainConfig(steps=3, lr=0.5),
        )
