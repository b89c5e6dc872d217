"""What a finished search teaches the next one: its :class:`~mutators.priors.Priors`.

``sammo-core optimize`` writes them to ``RUN_DIR/priors.json``; ``sammo-core bench run`` sums
its tasks' into ``OUT/priors.json``; ``--priors FILE`` starts a search from such a file (see
:func:`mutators.priors.apply_priors`).

>>> import asyncio
>>> from mutators.format import ChangeSectionFormat
>>> from mutators.mixture import Mixture
>>> from sammo_core.objectives import Accuracy
>>> from sammo_core.testing.synthetic import items, start_program, synthetic_model
>>> from search import BeamSearch, SearchBudget
>>> search = BeamSearch(Mixture([ChangeSectionFormat()]), objectives=[Accuracy()], width=2,
...                     depth=1, seed=0, budget=SearchBudget(candidates=4))
>>> result = asyncio.run(search.run(start_program(), val=items(8), runner=synthetic_model()))
>>> priors = priors_of(result, search.mutator, "synthetic")
>>> priors.tasks, priors.total.operators["ChangeSectionFormat"][0]
(('synthetic',), 3)
"""

from __future__ import annotations

from mutators.base import Mutator
from mutators.priors import Learned, Priors, chosen_values
from search.result import SearchResult

__all__ = ["priors_of"]


def priors_of(result: SearchResult, mutator: Mutator | None, task: str) -> Priors:
    """The operator credit of ``result`` (children evaluated and children that beat their
    parent on the primary objective, per operator) and the values its winner chose, as the
    priors of ``task``."""
    operators = {s.operator: (s.tries, s.wins) for s in result.operators}
    choices = (
        {} if mutator is None else chosen_values(mutator, result.start.program, result.best.program)
    )
    return Priors({task: Learned(operators, choices)})
