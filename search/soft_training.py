"""The gradient loop that trains a soft prompt, with its checkpoint and resume.

Model-agnostic: it trains one tensor (``n_tokens x hidden``) with AdamW against a ``loss``
callable (a tensor and the training rows of a batch -> a scalar loss) and keeps the tensor
that scores best on validation (``score``: a tensor -> a number, higher is better), so the
same loop serves any model that takes input embeddings (:mod:`search.prompt_tuning` wires it to
a transformers model). torch is imported only when a loop runs (the ``[soft]`` extra).

Randomness is explicit: the rows of step ``k`` are ``Random(f"{seed}/{k}")``'s sample, as in
every other search, so a resumed run needs no random state and draws the same batches as one
that never stopped. The checkpoint is one safetensors file (the tensor, the best tensor so far,
AdamW's state) whose metadata holds the step, the best score, the trace and the time spent; it
is replaced atomically after every evaluation, so a crash loses at most ``eval_every`` steps and
a resumed run with a step budget ends bit for bit at the tensor of an uninterrupted one.

>>> config = TrainConfig(steps=30, batch_size=4, lr=0.05, eval_every=10)
>>> config.describe()
'30 steps, batch 4, lr 0.05, validation every 10 steps'
>>> batch_rows(seed=0, step=3, n_rows=10, batch_size=4) == batch_rows(0, 3, 10, 4)
True
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sammo_core.errors import ConfigError
from sammo_core.run_files import write_file

if TYPE_CHECKING:
    import torch

__all__ = [
    "CHECKPOINT_FILE",
    "TRACE_FILE",
    "EvalCallback",
    "TrainConfig",
    "TrainState",
    "batch_rows",
    "read_checkpoint",
    "train_soft_prompt",
]

#: The checkpoint in the run folder: tensors plus the loop's state in the metadata.
CHECKPOINT_FILE = "checkpoint.safetensors"
#: One JSON line per evaluation: step, mean training loss since the last one, validation score.
TRACE_FILE = "trace.jsonl"
_CHECKPOINT_VERSION = 1

#: A batch's loss: the trained tensor and the training rows of the batch -> a scalar tensor.
LossFn = Callable[["torch.Tensor", Sequence[int]], "torch.Tensor"]
#: The validation score of a tensor (higher is better), computed without gradients.
ScoreFn = Callable[["torch.Tensor"], float]
#: Called after each evaluation with the trace record just written.
EvalCallback = Callable[[dict[str, Any]], None]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How a soft prompt is trained.

    Args:
        steps: the step budget (``None``: no step limit; then ``seconds`` is required).
        seconds: a wall-clock budget for training and validation (``None``: none). A time
            budget ends at a step that depends on the machine, so only a step budget gives the
            same tensor on every run.
        batch_size: training rows per step (fewer when the split is smaller).
        lr: AdamW's learning rate.
        weight_decay: AdamW's decoupled weight decay.
        eval_every: steps between validation scores (and checkpoints).
        patience: stop after this many validation scores without a new best (``None``: never).
        seed: the seed of the batches (and of a random initialization).

    >>> TrainConfig(steps=0)
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: steps must be >= 1 or None; got 0
    """

    steps: int | None = 70
    seconds: float | None = None
    batch_size: int = 8
    lr: float = 0.01
    weight_decay: float = 0.0
    eval_every: int = 10
    patience: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"steps must be >= 1 or None; got {self.steps}")
        if self.seconds is not None and not self.seconds > 0:
            raise ConfigError(f"seconds must be > 0 or None; got {self.seconds}")
        if self.steps is None and self.seconds is None:
            raise ConfigError("a training budget needs steps or seconds, e.g. steps=70")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1; got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive number; got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0; got {self.weight_decay}")
        if self.eval_every < 1:
            raise ConfigError(f"eval_every must be >= 1; got {self.eval_every}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be >= 1 or None; got {self.patience}")

    def describe(self) -> str:
        """One line for reports."""
        budget = [f"{self.steps} steps"] if self.steps is not None else []
        if self.seconds is not None:
            budget.append(f"{self.seconds:g} s")
        parts = [" or ".join(budget), f"batch {self.batch_size}", f"lr {self.lr:g}"]
        parts.append(f"validation every {self.eval_every} steps")
        if self.patience is not None:
            parts.append(f"patience {self.patience}")
        return ", ".join(parts)


@dataclasses.dataclass
class TrainState:
    """Where a training run stands; what the checkpoint holds.

    ``tensor`` is the tensor after ``step`` steps, ``best`` the one that scored
    ``best_score`` on validation (at ``best_step``; step 0 is the initialization).
    ``seconds`` is the time spent training and validating, summed over resumes.
    """

    tensor: torch.Tensor
    best: torch.Tensor
    step: int = 0
    best_score: float = -math.inf
    best_step: int = 0
    evals_since_best: int = 0
    seconds: float = 0.0
    trace: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    stopped: str | None = None
    optimizer: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)

    def meta(self, fingerprint: str) -> dict[str, Any]:
        return {
            "version": _CHECKPOINT_VERSION,
            "fingerprint": fingerprint,
            "step": self.step,
            "best_score": self.best_score,
            "best_step": self.best_step,
            "evals_since_best": self.evals_since_best,
            "seconds": self.seconds,
            "trace": self.trace,
            "stopped": self.stopped,
        }


class _Clock:
    """Seconds spent by a run: those of earlier sessions plus this one's."""

    def __init__(self, before: float) -> None:
        self.before = before
        self.started = time.perf_counter()

    def now(self) -> float:
        return self.before + time.perf_counter() - self.started


def batch_rows(seed: int, step: int, n_rows: int, batch_size: int) -> list[int]:
    """The training rows of ``step``: a sample without replacement, the same on every run.

    >>> batch_rows(0, 1, 3, 8)  # a batch larger than the split takes every row once
    [2, 1, 0]
    """
    return random.Random(f"{seed}/{step}").sample(range(n_rows), min(batch_size, n_rows))


def read_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The metadata and tensors of a checkpoint file (no pickle: safetensors only)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - not a dict
        state = json.loads(meta["state"]) if "state" in meta else None
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not a soft prompt checkpoint: {exc}") from exc
    if not isinstance(state, dict):
        raise ConfigError(f"{path} is not a soft prompt checkpoint (no state in its metadata)")
    return state, tensors


def _write_checkpoint(path: Path, state: TrainState, fingerprint: str) -> None:
    from safetensors.torch import save

    tensors = {"tensor": state.tensor.detach().contiguous(), "best": state.best.contiguous()}
    tensors |= {f"optim.{k}": v.detach().contiguous() for k, v in state.optimizer.items()}
    blob = save(tensors, metadata={"state": json.dumps(state.meta(fingerprint))})
    write_file(path.parent, path.name, blob)  # never through a link in the run folder
    trace = "".join(json.dumps(record) + "\n" for record in state.trace)
    write_file(path.parent, TRACE_FILE, trace)


def _load_state(path: Path, fingerprint: str, shape: tuple[int, ...]) -> TrainState:
    meta, tensors = read_checkpoint(path)
    if meta.get("fingerprint") != fingerprint:
        raise ConfigError(
            f"the checkpoint {path} belongs to a different training run (other program, "
            "data, model, settings or seed); use a new output folder, or start afresh there"
        )
    if tuple(tensors["tensor"].shape) != shape:  # pragma: no cover - covered by the fingerprint
        raise ConfigError(f"the checkpoint {path} holds a tensor of shape {shape}")
    return TrainState(
        tensor=tensors["tensor"],
        best=tensors["best"],
        step=meta["step"],
        best_score=meta["best_score"],
        best_step=meta["best_step"],
        evals_since_best=meta["evals_since_best"],
        seconds=meta["seconds"],
        trace=list(meta["trace"]),
        stopped=meta["stopped"],
        optimizer={k.removeprefix("optim."): v for k, v in tensors.items() if "optim." in k},
    )


def train_soft_prompt(
    init: torch.Tensor,
    loss: LossFn,
    score: ScoreFn,
    n_rows: int,
    config: TrainConfig,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    fingerprint: str = "",
    on_eval: EvalCallback | None = None,
) -> TrainState:
    """Train ``init`` on ``n_rows`` training rows; return the final state (``best`` is the
    tensor to use).

    Scores the initialization first (step 0), then takes AdamW steps on batches drawn by
    :func:`batch_rows`, scoring on validation every ``config.eval_every`` steps and at the end,
    keeping the best tensor (the earliest among equal scores). With ``out_dir`` a checkpoint
    is written after every evaluation, and ``resume=True`` continues from it (refused when
    ``fingerprint`` differs from the one it was written with).

    >>> import torch  # doctest: +SKIP
    >>> target = torch.ones(2, 3)  # doctest: +SKIP
    >>> state = train_soft_prompt(  # doctest: +SKIP
    ...     torch.zeros(2, 3), lambda t, rows: ((t - target) ** 2).mean(),
    ...     lambda t: -float(((t - target) ** 2).mean()), 4, TrainConfig(steps=50, lr=0.1))
    >>> state.best_score > -0.1  # doctest: +SKIP
    True
    """
    if n_rows < 1:
        raise ConfigError("prompt tuning needs at least one training row; got an empty split")
    if init.dim() != 2:
        raise ConfigError(f"a soft prompt is n_tokens x hidden; got shape {tuple(init.shape)}")
    out = Path(out_dir) if out_dir is not None else None
    if resume and out is None:
        raise ConfigError("resume=True needs the out_dir of the run to continue")
    checkpoint = None if out is None else out / CHECKPOINT_FILE
    state: TrainState | None = None
    if resume and checkpoint is not None and checkpoint.is_file():
        state = _load_state(checkpoint, fingerprint, tuple(init.shape))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    loop = _Loop(
        init,
        score,
        config,
        checkpoint=checkpoint,
        fingerprint=fingerprint,
        on_eval=on_eval,
        state=state,
    )
    loop.train(loss, n_rows)
    return loop.state


class _Loop:
    """One session of :func:`train_soft_prompt`: the parameter, its optimizer, the clock."""

    def __init__(
        self,
        init: torch.Tensor,
        score: ScoreFn,
        config: TrainConfig,
        *,
        checkpoint: Path | None,
        fingerprint: str,
        on_eval: EvalCallback | None,
        state: TrainState | None,
    ) -> None:
        import torch

        self.param = torch.nn.Parameter(init.detach().clone().float())
        self.optimizer = torch.optim.AdamW(
            [self.param], lr=config.lr, weight_decay=config.weight_decay, foreach=False
        )
        self.score, self.config, self.on_eval = score, config, on_eval
        self.checkpoint, self.fingerprint = checkpoint, fingerprint
        self.clock = _Clock(0.0 if state is None else state.seconds)
        self.losses: list[float] = []
        if state is None:
            first = self._score()
            self.state = TrainState(self.param.detach(), self.param.detach().clone(), 0, first)
            self._record({"step": 0, "loss": None, "val": first})
            return
        self.state = state
        with torch.no_grad():
            self.param.copy_(state.tensor)
        if state.optimizer:
            group = self.optimizer.state_dict()["param_groups"][0]
            moments = {k: v.clone() for k, v in state.optimizer.items()}
            self.optimizer.load_state_dict({"state": {0: moments}, "param_groups": [group]})

    def train(self, loss: LossFn, n_rows: int) -> None:
        state, config = self.state, self.config
        while state.stopped is None:
            if config.steps is not None and state.step >= config.steps:
                state.stopped = f"steps ({config.steps})"
            elif config.seconds is not None and self.clock.now() >= config.seconds:
                state.stopped = f"time ({config.seconds:g} s)"
            if state.stopped is not None:
                if self.losses:  # steps taken since the last evaluation: score them too
                    self._evaluate()
                else:
                    self._save()
                return
            rows = batch_rows(config.seed, state.step + 1, n_rows, config.batch_size)
            self.optimizer.zero_grad(set_to_none=True)
            value = loss(self.param, rows)
            value.backward()  # type: ignore[no-untyped-call,unused-ignore]
            self.optimizer.step()
            state.step += 1
            self.losses.append(float(value.detach()))
            if not math.isfinite(self.losses[-1]):
                raise ConfigError(
                    f"the training loss became {self.losses[-1]} at step {state.step}; lower "
                    f"the learning rate (lr={config.lr:g})"
                )
            if state.step % config.eval_every == 0:
                self._evaluate()

    def _score(self) -> float:
        import torch

        with torch.no_grad():
            return float(self.score(self.param.detach()))

    def _evaluate(self) -> None:
        state, patience = self.state, self.config.patience
        value = self._score()
        if value > state.best_score:
            state.best, state.best_score = self.param.detach().clone(), value
            state.best_step, state.evals_since_best = state.step, 0
        else:
            state.evals_since_best += 1
            if patience is not None and state.evals_since_best >= patience:
                state.stopped = f"early stopping ({patience} validations without a new best)"
        loss = sum(self.losses) / len(self.losses)
        self.losses.clear()
        self._record({"step": state.step, "loss": loss, "val": value})

    def _record(self, record: dict[str, Any]) -> None:
        record["seconds"] = round(self.clock.now(), 3)
        self.state.trace.append(record)
        self._save()
        if self.on_eval is not None:
            self.on_eval(record)

    def _save(self) -> None:
        state = self.state
        state.seconds = self.clock.now()
        state.tensor = self.param.detach()
        if self.checkpoint is not None:
            held = self.optimizer.state.get(self.param)
            state.optimizer = dict(held) if held else {}
            _write_checkpoint(self.checkpoint, state, self.fingerprint)
