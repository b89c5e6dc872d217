"""Named groups of operators, as the command line offers them (``--operators a,b``).

>>> [op.name for op in operators_of("structure")]
['DropSection', 'DropParagraph', 'ReorderSections', 'RepeatSection']
>>> operators_of("magic")
Traceback (most recent call last):
...
sammo_core.errors.ConfigError: unknown operator group 'magic'; use: structure, examples, \
format, scoring, compression, content, apo, ape, opro
"""

from __future__ import annotations

from collections.abc import Callable

from mutators.base import Mutator
from mutators.compression import RemoveFiller
from mutators.content import (
    InduceInstructions,
    Paraphrase,
    ProposeFromHistory,
    Shorten,
    TextGradient,
)
from mutators.examples import (
    ChangeExampleCount,
    ChangeExampleSelection,
    ReorderExamples,
    SwapExamples,
)
from mutators.format import (
    ChangeDataFormat,
    ChangeInputsPerCall,
    ChangePrefixes,
    ChangeSectionFormat,
)
from mutators.mixture import Mixture
from mutators.scoring import ChangeVerbalizer, ToggleCalibration
from mutators.structure import DropParagraph, DropSection, ReorderSections, RepeatSection
from sammo_core.errors import ConfigError

__all__ = ["LLM_GROUPS", "OPERATOR_GROUPS", "describe_groups", "mixture_of", "operators_of"]

#: Group name -> a factory of fresh operators (operators may hold options, never state).
OPERATOR_GROUPS: dict[str, Callable[[], list[Mutator]]] = {
    "structure": lambda: [DropSection(), DropParagraph(), ReorderSections(), RepeatSection()],
    "examples": lambda: [
        SwapExamples(),
        ChangeExampleCount(),
        ChangeExampleSelection(),
        ReorderExamples(),
    ],
    "format": lambda: [
        ChangeSectionFormat(),
        ChangeDataFormat(),
        ChangePrefixes(),
        ChangeInputsPerCall(),
    ],
    "scoring": lambda: [ChangeVerbalizer(), ToggleCalibration()],
    "compression": lambda: [RemoveFiller(), Shorten()],
    "content": lambda: [Paraphrase()],
    "apo": lambda: [TextGradient()],
    "ape": lambda: [InduceInstructions()],
    "opro": lambda: [ProposeFromHistory()],
}

#: Groups whose operators call the proposer model.
LLM_GROUPS = frozenset({"compression", "content", "apo", "ape", "opro"})


def describe_groups() -> str:
    """Each group and its operators, as ``--operators`` help lists them.

    >>> print(describe_groups().split("; ")[1])
    examples (SwapExamples, ChangeExampleCount, ChangeExampleSelection, ReorderExamples)
    """
    return "; ".join(
        f"{group} ({', '.join(op.name for op in make())})"
        for group, make in OPERATOR_GROUPS.items()
    )


def operators_of(groups: str) -> list[Mutator]:
    """Fresh operators of the comma-separated ``groups``, in order."""
    chosen: list[Mutator] = []
    for group in (g.strip() for g in groups.split(",") if g.strip()):
        if group not in OPERATOR_GROUPS:
            raise ConfigError(
                f"unknown operator group {group!r}; use: {', '.join(OPERATOR_GROUPS)}"
            )
        chosen.extend(OPERATOR_GROUPS[group]())
    if not chosen:
        raise ConfigError(f"operator groups {groups!r} name no group; e.g. 'structure,examples'")
    return chosen


def mixture_of(groups: str) -> Mixture:
    """A learning :class:`~mutators.mixture.Mixture` of the operators of ``groups``."""
    return Mixture(operators_of(groups))
