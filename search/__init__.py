"""Search strategies over mutations of prompt programs.

Every strategy takes a seed and a budget, selects on a validation split, reports the test split
for the winners only, skips programs whose graphs hash equal to one already evaluated, writes a
checkpoint after each step (``resume=True`` continues), keeps a trace, and returns the Pareto
front when given several objectives. :class:`PromptTuner` is no search: it
trains a program's soft prompt by gradient descent on an in-process model (the ``[soft]``
extra); ``PromptTuning`` is its old name, kept for one release.
"""

from search.base import Progress, Search, SearchRun
from search.beam import BeamSearch
from search.budget import SearchBudget
from search.candidate import Candidate
from search.enumerative import EnumerativeSearch
from search.evolution import RegularizedEvolution
from search.pareto import dominates, pareto_front, pick
from search.prompt_tuning import PromptTuner, PromptTuning, PromptTuningResult
from search.random_search import RandomSearch
from search.result import OperatorStats, SearchResult
from search.soft_training import TrainConfig

__all__ = [
    "BeamSearch",
    "Candidate",
    "EnumerativeSearch",
    "OperatorStats",
    "Progress",
    "PromptTuner",
    "PromptTuning",
    "PromptTuningResult",
    "RandomSearch",
    "RegularizedEvolution",
    "Search",
    "SearchBudget",
    "SearchResult",
    "SearchRun",
    "TrainConfig",
    "dominates",
    "pareto_front",
    "pick",
]
