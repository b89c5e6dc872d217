"""Mutation operators over program graphs.

Each operator takes a selector for the nodes it may touch, says whether it is ``applicable``,
takes a seeded ``random.Random``, never changes its argument, and returns children that carry a
one-line description of the change. Operators that list their edits hand them to
:func:`choose_children`; those that set one field to another value subclass :class:`ChangeField`.
:class:`Mixture` picks operators by weight and learns the
weights from which operators produced improvements.
"""

from mutators.base import (
    Edit,
    Mutation,
    MutationContext,
    Mutator,
    ScoredProgram,
    check_n,
    choose_children,
    contains_input,
    join_path,
    keeps_answer_slot,
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
from mutators.examples import (
    ChangeExampleCount,
    ChangeExampleSelection,
    ReorderExamples,
    SwapExamples,
)
from mutators.fields import ChangeField
from mutators.format import (
    PREFIX_FORMATS,
    ChangeDataFormat,
    ChangeInputsPerCall,
    ChangePrefixes,
    ChangeSectionFormat,
)
from mutators.groups import LLM_GROUPS, OPERATOR_GROUPS, describe_groups, mixture_of, operators_of
from mutators.mixture import Mixture
from mutators.structure import DropParagraph, DropSection, ReorderSections, RepeatSection

__all__ = [
    "LLM_GROUPS",
    "OPERATOR_GROUPS",
    "PREFIX_FORMATS",
    "ChangeDataFormat",
    "ChangeExampleCount",
    "ChangeExampleSelection",
    "ChangeField",
    "ChangeInputsPerCall",
    "ChangePrefixes",
    "ChangeSectionFormat",
    "DropParagraph",
    "DropSection",
    "Edit",
    "InduceInstructions",
    "Mixture",
    "Mutation",
    "MutationContext",
    "Mutator",
    "Paraphrase",
    "ProposeFromHistory",
    "RemoveFiller",
    "ReorderExamples",
    "ReorderSections",
    "RepeatSection",
    "Rewrite",
    "ScoredProgram",
    "Shorten",
    "SwapExamples",
    "TextGradient",
    "check_n",
    "choose_children",
    "clean_reply",
    "contains_input",
    "describe_groups",
    "join_path",
    "keeps_answer_slot",
    "mixture_of",
    "operators_of",
    "remove",
    "remove_filler",
    "replace",
    "set_list",
    "text_children",
]
