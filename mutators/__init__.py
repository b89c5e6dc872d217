"""Mutation operators over program graphs.

Each operator takes a selector for the nodes it may touch, says whether it is ``applicable``,
takes a seeded ``random.Random``, never changes its argument, and returns children that carry a
one-line description of the change. :class:`Mixture` picks operators by weight and learns the
weights from which operators produced improvements.
"""

from mutators.base import (
    Mutation,
    MutationContext,
    Mutator,
    ScoredProgram,
    contains_input,
    remove,
    replace,
    set_list,
    text_children,
)
from mutators.compression import RemoveFiller, remove_filler
from mutators.content import (
    InduceInstructions,
    Paraphrase,
    ProposeFromHistory,
    Rewrite,
    Shorten,
    TextGradient,
    clean_reply,
)
from mutators.examples import ChangeExampleCount, SwapExamples
from mutators.format import ChangeDataFormat, ChangeInputsPerCall, ChangeSectionFormat
from mutators.mixture import Mixture
from mutators.structure import DropParagraph, DropSection, ReorderSections, RepeatSection

__all__ = [
    "ChangeDataFormat",
    "ChangeExampleCount",
    "ChangeInputsPerCall",
    "ChangeSectionFormat",
    "DropParagraph",
    "DropSection",
    "InduceInstructions",
    "Mixture",
    "Mutation",
    "MutationContext",
    "Mutator",
    "Paraphrase",
    "ProposeFromHistory",
    "RemoveFiller",
    "ReorderSections",
    "RepeatSection",
    "Rewrite",
    "ScoredProgram",
    "Shorten",
    "SwapExamples",
    "TextGradient",
    "clean_reply",
    "contains_input",
    "remove",
    "remove_filler",
    "replace",
    "set_list",
    "text_children",
]
