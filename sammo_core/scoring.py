"""Scored answers: label distributions from log-probabilities, and calibration.

A runner that scores a call's labels returns each label's log-probability after the prompt
(:attr:`~sammo_core.runners.LLMResult.label_logprobs`). The program's answer is a distribution
over its labels: those scores normalized over the labels (a softmax of the log-probabilities),
optionally divided by a *prior*, the label distribution the model shows on content-free inputs
("Calibrate Before Use", Zhao et al. 2021), and normalized again. The prediction is the most
likely label; objectives such as :class:`~sammo_core.objectives.LabelLogLikelihood` and
:class:`~sammo_core.objectives.BrierScore` read the whole distribution.

>>> dist = label_distribution(["yes", "no"], [-0.1, -2.4])
>>> {k: round(v, 3) for k, v in dist.items()}
{'yes': -0.096, 'no': -2.396}
>>> prior = fit_prior(["yes", "no"], [[-0.2, -1.7], [-0.3, -1.4]])
>>> {k: round(v, 2) for k, v in prior.items()}
{'yes': 0.78, 'no': 0.22}
>>> calibrated = label_distribution(["yes", "no"], [-0.4, -1.1], prior=prior)
>>> most_likely(calibrated)
'no'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from sammo_core.errors import ConfigError

__all__ = [
    "CONTENT_FREE_INPUTS",
    "content_free_input",
    "fit_prior",
    "label_distribution",
    "most_likely",
]

#: The content-free inputs whose label distributions are averaged into the prior.
CONTENT_FREE_INPUTS = ("N/A", "", "[MASK]")


def _log_softmax(values: Sequence[float]) -> list[float]:
    top = max(values)
    total = top + math.log(math.fsum(math.exp(v - top) for v in values))
    return [v - total for v in values]


def label_distribution(
    labels: Sequence[str],
    logprobs: Sequence[float],
    prior: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Each label's log-probability, normalized over ``labels`` (and divided by ``prior``).

    ``logprobs`` are the model's scores in ``labels`` order; ``prior`` maps each label to its
    prior probability (missing or empty: no calibration).

    >>> d = label_distribution(["a", "b"], [-1.0, -1.0])
    >>> round(math.exp(d["a"]), 3)
    0.5
    """
    if len(labels) != len(logprobs) or not labels:
        raise ConfigError(f"{len(labels)} labels but {len(logprobs)} log-probabilities")
    scores = [float(x) for x in logprobs]
    if prior:
        scores = [s - math.log(prior[label]) for s, label in zip(scores, labels, strict=True)]
    return dict(zip(labels, _log_softmax(scores), strict=True))


def most_likely(distribution: Mapping[str, float]) -> str:
    """The label of highest probability; the first of equals wins.

    >>> most_likely({"yes": -0.7, "no": -0.7})
    'yes'
    """
    best, best_value = "", -math.inf
    for label, value in distribution.items():
        if value > best_value or not best:
            best, best_value = label, value
    return best


def fit_prior(labels: Sequence[str], scored: Sequence[Sequence[float]]) -> dict[str, float]:
    """The mean label distribution of the content-free inputs' scores (each in ``labels``
    order), each probability floored at 1e-6 (then renormalized) so dividing by it stays finite.

    >>> round(fit_prior(["a", "b"], [[0.0, -50.0]])["b"], 9)
    1e-06
    """
    if not scored:
        raise ConfigError("fitting a label prior needs at least one scored content-free input")
    sums = [0.0] * len(labels)
    for logprobs in scored:
        for i, value in enumerate(label_distribution(labels, logprobs).values()):
            sums[i] += math.exp(value)
    means = [max(total / len(scored), 1e-6) for total in sums]
    norm = math.fsum(means)
    return {label: mean / norm for label, mean in zip(labels, means, strict=True)}


def content_free_input(text: str, like: Any) -> Any:
    """A content-free input shaped like ``like``: the text itself, or for a dict input each
    field set to it.

    >>> content_free_input("N/A", {"question": "2+2?", "context": "math"})
    {'question': 'N/A', 'context': 'N/A'}
    >>> content_free_input("", "Was it good?")
    ''
    """
    if isinstance(like, Mapping):
        return dict.fromkeys(like, text)
    return text
