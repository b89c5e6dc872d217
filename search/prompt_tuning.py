"""``PromptTuner``: gradient descent on a program's soft prompt. It trains a tensor; it is not
a :class:`~search.base.Search` over programs (the old name, ``PromptTuning``, is kept as an
alias for one release, and ``result.json`` still names the strategy ``PromptTuning``).

Given a program whose prompt starts with a :class:`~sammo_core.soft.SoftPrompt` (or a hard
program, to which one is prepended: the *hybrid* of a hard-prompt search's winner and a soft
prompt), the closed label set and the train / validation / test splits, it trains the soft
tensor on the training split with AdamW by rank classification: for each row, the program's
prompt text follows the soft prompt, and the loss is the cross-entropy over the labels'
log-likelihoods (:func:`sammo_core.runners.hf.label_logprobs`). Validation accuracy is scored
every ``eval_every`` steps and the best tensor kept (early stopping with ``patience``); the test
split is scored once, at the end, for the start program and the tuned one, with Wilson
intervals (a share of rows). The loop, its checkpoint and bit-identical resume are
:mod:`search.soft_training`'s.

The run folder holds ``checkpoint.safetensors``, ``trace.jsonl`` (loss and validation accuracy
per evaluation), ``result.json``, ``report.md``, the start and tuned programs
(``programs/0.json``, ``programs/1.json``, ``best_program.json``) and the tuned tensor
(``soft_prompt.safetensors``); ``sammo-core export RUN_DIR`` adds a PEFT adapter folder.

The texts are those :class:`~sammo_core.runners.hf.TransformersRunner` feeds the model
(:func:`~sammo_core.runners.hf.request_prompt`), and the tuned program's ``GenerateText`` lists
the labels, so ``sammo-core run --model hf:gemma3`` on the exported program predicts what
training scored.

Needs the ``[soft]`` extra (torch, transformers, peft); importing this module imports none.

>>> from sammo_core import GenerateText, InputData, MetaPrompt, Output
>>> with_labels(Output(GenerateText(MetaPrompt([InputData()]))), ["no", "yes"]).child.labels
['no', 'yes']
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyglove as pg

from sammo_core.components import GenerateText, MetaPrompt, Output
from sammo_core.data import DataTable
from sammo_core.errors import ConfigError
from sammo_core.objectives import Score, mean_interval
from sammo_core.prompt_files import render_request
from search.soft_training import EvalCallback, TrainConfig, TrainState, train_soft_prompt

if TYPE_CHECKING:
    import torch

    from sammo_core.runners.hf import HFModel
    from sammo_core.soft import SoftPrompt

__all__ = [
    "DEFAULT_N_TOKENS",
    "PromptTuner",
    "PromptTuning",
    "PromptTuningResult",
    "attach_soft_prompt",
    "gold_indices",
    "rank_accuracy",
    "render_texts",
    "split_soft_prompt",
    "with_labels",
]

#: Virtual tokens of a new soft prompt (the issue's hand measurement used 20).
DEFAULT_N_TOKENS = 20
SOFT_TENSOR_FILE = "soft_prompt.safetensors"


# -- programs ------------------------------------------------------------------------------


def _meta_prompt(program: Output) -> MetaPrompt:
    if not isinstance(program, Output) or not isinstance(program.child, GenerateText):
        raise ConfigError("prompt tuning needs an Output(GenerateText(MetaPrompt([...]))) program")
    prompt = program.child.prompt
    if not isinstance(prompt, MetaPrompt):
        raise ConfigError(
            f"prompt tuning puts the soft prompt first in a MetaPrompt; this program's prompt "
            f"is a {type(prompt).__name__}: wrap it, GenerateText(MetaPrompt([...]))"
        )
    return prompt


def split_soft_prompt(program: Output) -> tuple[Output, SoftPrompt | None]:
    """The hard part of ``program`` (its first ``SoftPrompt`` removed) and that soft prompt."""
    from sammo_core.soft import SoftPrompt

    children = list(_meta_prompt(program).children)
    if children and isinstance(children[0], SoftPrompt):
        hard = pg.clone(program, deep=True, override={"child.prompt.children": children[1:]})
        return hard, children[0]
    if any(isinstance(c, SoftPrompt) for c in children):
        raise ConfigError("a SoftPrompt must come first in its MetaPrompt; move it to the front")
    return program, None


def attach_soft_prompt(program: Output, soft: SoftPrompt) -> Output:
    """A copy of ``program`` with ``soft`` first in its prompt (replacing a soft prompt there)."""
    hard, _ = split_soft_prompt(program)
    children = [soft, *_meta_prompt(hard).children]
    return pg.clone(hard, deep=True, override={"child.prompt.children": children})  # type: ignore[no-any-return]


# -- scoring -------------------------------------------------------------------------------


def with_labels(program: Output, labels: Sequence[str]) -> Output:
    """A copy of ``program`` whose call lists ``labels``: a runner that can score answers by
    rank classification (``--model hf:...``); others generate as before."""
    copy: Output = pg.clone(program, deep=True, override={"child.labels": list(labels)})
    return copy


def render_texts(hf: HFModel, program: Output, table: DataTable) -> list[str]:
    """The text the transformers runner feeds ``hf`` for each row of ``table`` (the soft
    prompt, which goes in as embeddings, left out).

    >>> from sammo_core import Template
    >>> from sammo_core.testing.tiny_hf import tiny_hf_model  # doctest: +SKIP
    >>> p = Output(GenerateText(MetaPrompt([Template("Q: {{ input }}\\nA:")]), mode="completion"))
    >>> render_texts(tiny_hf_model(), p, DataTable(["2+2"], ["4"]))  # doctest: +SKIP
    ['Q: 2+2\\nA:']
    """
    from sammo_core.runners.hf import request_prompt

    hard, _ = split_soft_prompt(program)
    return [
        request_prompt(hf, render_request(hard, row.input, constants=table.constants))[0]
        for row in table
    ]


def gold_indices(table: DataTable, labels: Sequence[str]) -> list[int]:
    """Each row's gold label as an index into ``labels`` (matched stripped, ignoring case).

    >>> gold_indices(DataTable(["a", "b"], ["Yes", " no"]), ["no", "yes"])
    [1, 0]
    """
    keys = {label.strip().lower(): i for i, label in enumerate(labels)}
    out = []
    for row in table:
        key = str(row.output).strip().lower()
        if key not in keys:
            raise ConfigError(
                f"row {row.index}'s gold output {row.output!r} is not one of the labels "
                f"{list(labels)}; pass the task's full label set (--labels)"
            )
        out.append(keys[key])
    return out


def _scores(
    hf: HFModel, texts: Sequence[str], labels: Sequence[str], soft: torch.Tensor | None, batch: int
) -> torch.Tensor:
    from sammo_core.runners.hf import label_continuation, label_logprobs

    # Every text of a program ends alike, so one continuation rule serves all its rows.
    cont = [label_continuation(texts[0] if texts else "", label) for label in labels]
    return label_logprobs(hf, texts, cont, soft=soft, batch_size=batch)


def rank_accuracy(
    hf: HFModel,
    program: Output,
    table: DataTable,
    labels: Sequence[str],
    *,
    soft: torch.Tensor | None = None,
    batch_size: int = 8,
    seed: int = 0,
) -> Score:
    """Accuracy of ``program`` on ``table`` by rank classification, with its 95% interval
    (Wilson's, as every accuracy has). ``soft`` defaults to the tensor of the program's soft
    prompt, if it has one."""
    import torch

    if soft is None:
        _, prompt = split_soft_prompt(program)
        if prompt is not None and prompt.tensor is not None:
            soft = prompt.tensor.to_torch()
    texts = render_texts(hf, program, table)
    gold = gold_indices(table, labels)
    with torch.no_grad():
        predicted = _scores(hf, texts, labels, soft, batch_size).argmax(dim=1).tolist()
    per_item = tuple(float(p == g) for p, g in zip(predicted, gold, strict=True))
    low, high = mean_interval(per_item, seed=seed)
    return Score("accuracy", sum(per_item) / len(per_item), low, high, per_item, len(per_item))


def init_tensor(hf: HFModel, n_tokens: int, text: str, seed: int) -> torch.Tensor:
    """The initial soft prompt: the input embeddings of ``text``'s tokens, repeated or cut to
    ``n_tokens`` (as PEFT's TEXT init), or, without text, those of ``n_tokens`` vocabulary
    tokens drawn with ``seed``."""
    import torch

    embed = hf.model.get_input_embeddings()
    ids: list[int] = list(hf.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []
    if not ids:
        g = torch.Generator().manual_seed(seed)
        ids = torch.randint(0, int(embed.weight.shape[0]), (n_tokens,), generator=g).tolist()
    ids = (ids * (n_tokens // len(ids) + 1))[:n_tokens]
    with torch.no_grad():
        return embed(torch.tensor([ids]))[0].detach().float().clone()  # type: ignore[no-any-return,unused-ignore]


# -- the trainer ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PromptTuningResult:
    """What :meth:`PromptTuner.run` returns and writes (``result.json``, ``report.md``)."""

    start: Output
    program: Output
    labels: tuple[str, ...]
    model: str
    config: TrainConfig
    n_tokens: int
    init: str
    state: TrainState
    val: Mapping[str, Score]
    test: Mapping[str, Score]
    seconds: float

    @property
    def steps(self) -> int:
        return self.state.step

    @property
    def tensor(self) -> torch.Tensor:
        """The tuned (best on validation) soft prompt."""
        return self.state.best

    def to_dict(self) -> dict[str, Any]:
        def candidate(i: int, name: str, step: int | None) -> dict[str, Any]:
            test = self.test.get(name)
            return {
                "id": i,
                "label": name,
                "step": step,
                "scores": {"accuracy": _plain(self.val[name])},
                "test_scores": None if test is None else {"accuracy": _plain(test)},
            }

        best = candidate(1, "tuned", self.state.best_step)
        return {
            "strategy": "PromptTuning",
            "model": self.model,
            "params": {
                **dataclasses.asdict(self.config),
                "n_tokens": self.n_tokens,
                "init": self.init,
                "labels": list(self.labels),
            },
            "objectives": [{"name": "accuracy", "direction": "maximize"}],
            "start": candidate(0, "start", None),
            "best": best,
            "front": [best],
            "trace": self.state.trace,
            "stopped": self.state.stopped,
            "steps": self.state.step,
            "best_step": self.state.best_step,
            "train_seconds": round(self.state.seconds, 3),
            "seconds": round(self.seconds, 3),
            "usage": {"calls": 0, "total_tokens": 0, "usd": 0.0},
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }

    def report(self) -> str:
        """A markdown report: start vs tuned on validation and test, the training curve."""
        lines = [
            f"# Prompt tuning on {self.model}",
            "",
            f"{self.n_tokens} virtual tokens, init {self.init or 'random'!r}; "
            f"{self.config.describe()}; {self.steps} steps in {self.state.seconds:.1f} s, "
            f"best at step {self.state.best_step}, stopped on {self.state.stopped}.",
            "",
            "| program | val accuracy | test accuracy |",
            "|---|---|---|",
        ]
        for name in ("start", "tuned"):
            test = self.test.get(name)
            lines.append(f"| {name} | {_fmt(self.val[name])} | {_fmt(test)} |")
        lines += ["", "| step | train loss | val accuracy | seconds |", "|---|---|---|---|"]
        for r in self.state.trace:
            loss = "-" if r["loss"] is None else f"{r['loss']:.4f}"
            lines.append(f"| {r['step']} | {loss} | {r['val']:.3f} | {r['seconds']:.1f} |")
        return "\n".join(lines) + "\n"

    def save(self, out: Path) -> None:
        from safetensors.torch import save as safetensors_bytes

        from sammo_core.run_files import check_not_linked, write_file
        from sammo_core.serialization import save

        save(self.start, check_not_linked(out, "programs/0.json"))
        save(self.program, check_not_linked(out, "programs/1.json"))
        save(self.program, out / "best_program.json")
        tensor = safetensors_bytes({"soft_prompt": self.tensor.contiguous()})
        write_file(out, SOFT_TENSOR_FILE, tensor)
        write_file(out, "report.md", self.report())
        write_file(out, "result.json", json.dumps(self.to_dict(), indent=2))


def _plain(score: Score) -> dict[str, Any]:
    return score.to_dict() | {"per_item": None}


def _fmt(score: Score | None) -> str:
    if score is None:
        return "-"
    return f"{score.value:.3f} [{score.ci_low:.3f}, {score.ci_high:.3f}] (n={score.n})"


class PromptTuner:
    """Train the soft prompt of a program (see the module docstring).

    Args:
        model: a :func:`~sammo_core.runners.hf.load_hf_model` spec (``"gemma3"``) or a loaded
            :class:`~sammo_core.runners.hf.HFModel`.
        labels: the closed label set, as the gold outputs write them.
        n_tokens: virtual tokens of a soft prompt the program lacks (else its own count).
        init: the text whose token embeddings start the tensor (``None``: the program's soft
            prompt's ``init``; empty: seeded random vocabulary embeddings).
        config: steps or seconds, batch size, learning rate, validation interval, patience and
            seed (:class:`~search.soft_training.TrainConfig`).
        scoring_batch: sequences per forward pass when scoring.
    """

    def __init__(
        self,
        model: str | HFModel,
        labels: Sequence[str],
        *,
        n_tokens: int = DEFAULT_N_TOKENS,
        init: str | None = None,
        config: TrainConfig | None = None,
        scoring_batch: int = 16,
    ) -> None:
        if not labels or len(set(labels)) != len(labels):
            raise ConfigError(f"prompt tuning needs distinct labels, e.g. yes,no; got {labels!r}")
        if n_tokens < 1:
            raise ConfigError(f"n_tokens must be >= 1; got {n_tokens}")
        self._model = model
        self.labels = tuple(labels)
        self.n_tokens = n_tokens
        self.init = init
        self.config = config or TrainConfig()
        self.scoring_batch = scoring_batch

    @property
    def hf(self) -> HFModel:
        if isinstance(self._model, str):
            from sammo_core.runners.hf import load_hf_model

            self._model = load_hf_model(self._model)
        return self._model

    @property
    def model_name(self) -> str:
        return self._model if isinstance(self._model, str) else self._model.name

    def fingerprint(self, program: Output, train: DataTable, val: DataTable) -> str:
        from sammo_core.serialization import to_json

        parts = {
            "model": self.model_name,
            "labels": self.labels,
            "n_tokens": self.n_tokens,
            "init": self.init,
            "config": dataclasses.asdict(self.config),
            "program": to_json(program),
            "train": train.content_hash(),
            "val": val.content_hash(),
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]

    def run(
        self,
        program: Output,
        *,
        train: DataTable,
        val: DataTable,
        test: DataTable | None = None,
        out_dir: str | Path | None = None,
        resume: bool = False,
        on_eval: EvalCallback | None = None,
    ) -> PromptTuningResult:
        """Train, select on ``val``, and score ``test`` for the start and the tuned program.

        With ``out_dir`` the checkpoint, trace, result and report are written there, and
        ``resume=True`` continues a stopped run (refused if program, data, model or settings
        differ). ``on_eval`` is called with each trace record (step, loss, val, seconds).
        """
        import torch

        from sammo_core.soft import SoftPrompt, SoftTensor

        started = time.perf_counter()
        if len(val) == 0:
            raise ConfigError("prompt tuning selects on validation; the validation split is empty")
        hf, labels, batch = self.hf, self.labels, self.scoring_batch
        _, existing = split_soft_prompt(program)
        n_tokens = existing.n_tokens if existing is not None else self.n_tokens
        init = self.init if self.init is not None else (existing.init if existing else "")
        if existing is not None and existing.tensor is not None and self.init is None:
            start_tensor = existing.tensor.to_torch().float()
        else:
            start_tensor = init_tensor(hf, n_tokens, init, self.config.seed)

        train_texts, val_texts = render_texts(hf, program, train), render_texts(hf, program, val)
        train_gold = torch.tensor(gold_indices(train, labels))
        val_gold = torch.tensor(gold_indices(val, labels))

        def loss(soft: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
            logits = _scores(hf, [train_texts[i] for i in rows], labels, soft, batch)
            return torch.nn.functional.cross_entropy(logits, train_gold[list(rows)])

        def score(soft: torch.Tensor) -> float:
            predicted = _scores(hf, val_texts, labels, soft, batch).argmax(dim=1)
            return int((predicted == val_gold).sum()) / len(val_texts)

        state = train_soft_prompt(
            start_tensor,
            loss,
            score,
            len(train),
            self.config,
            out_dir=out_dir,
            resume=resume,
            fingerprint=self.fingerprint(program, train, val),
            on_eval=on_eval,
        )
        prompt = SoftPrompt(n_tokens=n_tokens, init=init, tensor=SoftTensor.from_torch(state.best))
        tuned = with_labels(attach_soft_prompt(program, prompt), labels)
        # The start is the program as given: with its own soft prompt, or hard only.
        start_soft = None if existing is None or existing.tensor is None else start_tensor
        val_scores = {
            "start": rank_accuracy(hf, program, val, labels, soft=start_soft, batch_size=batch),
            "tuned": rank_accuracy(hf, tuned, val, labels, soft=state.best, batch_size=batch),
        }
        test_scores: dict[str, Score] = {}
        if test is not None and len(test):
            test_scores = {
                "start": rank_accuracy(
                    hf, program, test, labels, soft=start_soft, batch_size=batch
                ),
                "tuned": rank_accuracy(hf, tuned, test, labels, soft=state.best, batch_size=batch),
            }
        result = PromptTuningResult(
            start=program,
            program=tuned,
            labels=labels,
            model=self.model_name,
            config=self.config,
            n_tokens=n_tokens,
            init=init,
            state=state,
            val=val_scores,
            test=test_scores,
            seconds=time.perf_counter() - started,
        )
        if out_dir is not None:
            result.save(Path(out_dir))
        return result


#: The old name of :class:`PromptTuner`, kept for one release (deprecated: it trains a soft
#: prompt; it is no :class:`~search.base.Search`).
PromptTuning = PromptTuner
