"""Named groups of operators, as the command line offers them (``--operators a,b``).

>>> [op.name for op in operators_of("structure")]
['DropSection', 'DropParagraph', 'ReorderSections', 'RepeatSection']
>>> operators_of("magic")
Traceback (most recent call last):
...
sammo_core.errors.ConfigError: unknown operator group 'magic'; use: ape, apo, compression, \
content, examples, format, opro, scoring, structure
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
from sammo_core.registry import Registry

__all__ = ["LLM_GROUPS", "OPERATOR_GROUPS", "describe_groups", "mixture_of", "operators_of"]


def structure() -> list[Mutator]:
    """Drop, reorder and repeat sections and paragraphs."""
    return [DropSection(), DropParagraph(), ReorderSections(), RepeatSection()]


def examples() -> list[Mutator]:
    """Which examples are shown, how many, chosen how, in which order."""
    return [SwapExamples(), ChangeExampleCount(), ChangeExampleSelection(), ReorderExamples()]


def format_() -> list[Mutator]:
    """Section and data formats, input/output prefixes, inputs per call."""
    return [ChangeSectionFormat(), ChangeDataFormat(), ChangePrefixes(), ChangeInputsPerCall()]


def scoring() -> list[Mutator]:
    """The label words scored (verbalizers) and calibration."""
    return [ChangeVerbalizer(), ToggleCalibration()]


def compression() -> list[Mutator]:
    """Shorter prompts: filler removed, sections shortened by the proposer."""
    return [RemoveFiller(), Shorten()]


def content() -> list[Mutator]:
    """Sections paraphrased by the proposer."""
    return [Paraphrase()]


def apo() -> list[Mutator]:
    """Text gradients (APO/ProTeGi): the proposer criticizes errors and rewrites."""
    return [TextGradient()]


def ape() -> list[Mutator]:
    """Instructions induced from training examples (APE)."""
    return [InduceInstructions()]


def opro() -> list[Mutator]:
    """Instructions proposed from the scored history (OPRO)."""
    return [ProposeFromHistory()]


#: Group name -> a factory of fresh operators (operators may hold options, never state): the
#: entry points of group ``sammo_core.operators``, built-ins (above) and plugins alike.
OPERATOR_GROUPS: Registry[Callable[[], list[Mutator]]] = Registry(
    "sammo_core.operators", "operator group"
)

#: Groups whose operators call the proposer model.
LLM_GROUPS = frozenset({"compression", "content", "apo", "ape", "opro"})


def describe_groups() -> str:
    """Each group and its operators, as ``--operators`` help lists them.

    >>> print(describe_groups().split("; ")[4])
    examples (SwapExamples, ChangeExampleCount, ChangeExampleSelection, ReorderExamples)
    """
    return "; ".join(
        f"{group} ({', '.join(op.name for op in make())})"
        for group, make in OPERATOR_GROUPS.loadable()
    )


def operators_of(groups: str) -> list[Mutator]:
    """Fresh operators of the comma-separated ``groups``, in order."""
    chosen: list[Mutator] = []
    for group in (g.strip() for g in groups.split(",") if g.strip()):
        chosen.extend(OPERATOR_GROUPS.pick(group)())
    if not chosen:
        raise ConfigError(f"operator groups {groups!r} name no group; e.g. 'structure,examples'")
    return chosen


def mixture_of(groups: str) -> Mixture:
    """A learning :class:`~mutators.mixture.Mixture` of the operators of ``groups``."""
    return Mixture(operators_of(groups))
