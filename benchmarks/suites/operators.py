"""The operators a suite searches with, by the group names of ``sammo-core optimize --operators``
(and ``quick``: structure, format and filler removal, no proposer calls).
"""

from __future__ import annotations

from mutators.base import Mutator


def group_operators(groups: str) -> list[Mutator]:
    """The operators of ``sammo-core optimize --operators GROUPS``."""
    from mutators.groups import operators_of

    return operators_of(groups)


def group_mutator(groups: str) -> Mutator:
    from mutators.mixture import Mixture

    return Mixture(group_operators(groups))


def quick_mutator() -> Mutator:
    """Structure, format and filler removal: no proposer calls. Packing several inputs into
    one call rarely suits a small model, so it is drawn less often."""
    from mutators.compression import RemoveFiller
    from mutators.format import ChangeDataFormat, ChangeInputsPerCall, ChangeSectionFormat
    from mutators.mixture import Mixture
    from mutators.structure import DropParagraph, DropSection, ReorderSections, RepeatSection

    return Mixture(
        [
            DropSection(),
            DropParagraph(),
            ReorderSections(),
            RepeatSection(),
            ChangeSectionFormat(),
            ChangeDataFormat(),
            (ChangeInputsPerCall(), 0.25),
            RemoveFiller(),
        ]
    )


def mutator_of(operators: str) -> Mutator:
    """The mutator of ``operators``: ``quick`` or groups such as ``structure,format``.

    >>> type(mutator_of("quick")).__name__, type(mutator_of("structure")).__name__
    ('Mixture', 'Mixture')
    """
    return quick_mutator() if operators == "quick" else group_mutator(operators)
