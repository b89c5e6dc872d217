"""A weighted mixture of operators that learns which ones pay off.

Each child comes from one applicable operator drawn by weight. The search reports back with
:meth:`Mixture.record` whether a child from an operator improved on its parent; the effective
weight of an operator is

    base_weight * (wins + prior_wins + prior) / (tries + prior_tries + 2 * prior)

the mean of a Beta(wins + prior_wins + prior, losses + prior_losses + prior) posterior on its
success rate, scaled by its base weight. With no data every operator sits at
``base_weight / 2``; ``prior`` says how many pseudo-wins and pseudo-losses temper early results
(larger: slower to react). ``prior_tries`` and ``prior_wins`` are zero unless
:meth:`Mixture.set_priors` gave credit learned on other tasks (see :mod:`mutators.priors`).

>>> import asyncio, random
>>> from sammo_core import GenerateText, InputData, MetaPrompt, Output, Section
>>> from mutators.format import ChangeSectionFormat
>>> from mutators.structure import DropSection
>>> mix = Mixture([DropSection(), (ChangeSectionFormat(), 2.0)])
>>> mix.record("DropSection", improved=True)
>>> mix.stats()["DropSection"]
{'tries': 1, 'wins': 1, 'weight': 0.6666666666666666}
>>> p = Output(GenerateText(MetaPrompt([Section("Task", ["Say yes."]), InputData()])))
>>> [m.operator for m in asyncio.run(mix.mutate(p, random.Random(0), n=2))]
['ChangeSectionFormat', 'ChangeSectionFormat']
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
from collections.abc import Sequence
from typing import Any

from mutators.base import Mutation, MutationContext, Mutator, check_n
from sammo_core.components import Output
from sammo_core.errors import ConfigError
from sammo_core.graph import content_hash

__all__ = ["Mixture"]

STATE_VERSION = 1
#: Children in a row an operator may repeat (already seen) before it counts as exhausted.
MAX_MISSES = 8
#: How many programs' applicable operators a Mixture remembers before it starts afresh.
_LIVE_MEMO = 4096


class Mixture(Mutator):
    """Draw each child from one of ``operators``, by (learned) weight.

    ``operators`` holds operators or ``(operator, base_weight)`` pairs (default weight 1.0);
    their names must be distinct, since :meth:`record` and the children's ``operator`` field
    refer to them by name. With ``learn=False`` :meth:`record` still counts, but the weights
    stay at their base values.

    :meth:`mutate` draws an operator among the applicable ones with ``rng`` and asks it for
    one child, passing every program taken so far in ``context.exclude`` (so operators that
    enumerate their edits never build a child twice). An operator that offers nothing is
    set aside and the draw is repeated among the rest; one whose offer repeats a program
    taken already (an LLM proposal can) is asked again, one child at a time, and set aside
    after :data:`MAX_MISSES` repeats in a row.
    """

    def __init__(
        self,
        operators: Sequence[Mutator | tuple[Mutator, float]],
        learn: bool = True,
        prior: float = 1.0,
    ) -> None:
        super().__init__("*")
        pairs = [op if isinstance(op, tuple) else (op, 1.0) for op in operators]
        if not pairs:
            raise ConfigError("Mixture needs at least one operator; e.g. Mixture([DropSection()])")
        names: dict[str, Mutator] = {}
        weights: dict[str, float] = {}
        for op, weight in pairs:
            if not isinstance(op, Mutator):
                raise ConfigError(f"Mixture operators must be Mutator instances; got {op!r}")
            if op.name in names:
                raise ConfigError(
                    f"Mixture operator name {op.name!r} appears twice; names must be distinct "
                    "(combine the selectors, e.g. DropSection('Section#a, Section#b'))"
                )
            if (
                isinstance(weight, bool)
                or not isinstance(weight, (int, float))
                or not math.isfinite(weight)
                or weight <= 0
            ):
                raise ConfigError(
                    f"weight of {op.name} must be a finite number > 0; got {weight!r}"
                )
            names[op.name] = op
            weights[op.name] = float(weight)
        if not isinstance(learn, bool):
            raise ConfigError(f"learn must be True or False; got {learn!r}")
        if (
            isinstance(prior, bool)
            or not isinstance(prior, (int, float))
            or not math.isfinite(prior)
            or prior <= 0
        ):
            raise ConfigError(f"prior must be a finite number > 0; got {prior!r}")
        self._operators = names
        self._base = weights
        self.learn = learn
        self.prior = float(prior)
        self._tries = dict.fromkeys(names, 0)
        self._wins = dict.fromkeys(names, 0)
        # Program content hash -> the operators that apply to it: a beam asks again for the
        # members it keeps, and each ask walked the program once per operator (5 ms).
        self._live: dict[str, tuple[str, ...]] = {}
        self._prior_tries: dict[str, float] = {}
        self._prior_wins: dict[str, float] = {}

    @property
    def operators(self) -> tuple[Mutator, ...]:
        return tuple(self._operators.values())

    def __repr__(self) -> str:
        ops = ", ".join(f"({op!r}, {self._base[name]})" for name, op in self._operators.items())
        text = f"{self.name}([{ops}], learn={self.learn}, prior={self.prior}"
        if self._prior_tries:  # only then: a search's fingerprint without priors is unchanged
            credit = {
                name: [round(self._prior_tries[name], 6), round(self._prior_wins[name], 6)]
                for name in self._prior_tries
            }
            text += f", priors={credit}"
        return text + ")"

    # -- learning ------------------------------------------------------------------------------

    def weight(self, operator_name: str) -> float:
        """The effective weight of an operator (see the module docstring)."""
        self._check_name(operator_name)
        base = self._base[operator_name]
        if not self.learn:
            return base
        tries = self._tries[operator_name] + self._prior_tries.get(operator_name, 0.0)
        wins = self._wins[operator_name] + self._prior_wins.get(operator_name, 0.0)
        return base * (wins + self.prior) / (tries + 2 * self.prior)

    def set_priors(self, credit: dict[str, tuple[float, float]]) -> None:
        """Start from credit learned elsewhere: ``{operator: (tries, wins)}`` pseudo-counts
        added to the counts of this search (operators not named get none). Replaces earlier
        priors; :meth:`state_dict` keeps them, so a resumed search weighs as before.

        >>> from mutators.format import ChangeSectionFormat
        >>> from mutators.structure import DropSection
        >>> mix = Mixture([DropSection(), ChangeSectionFormat()])
        >>> mix.set_priors({"ChangeSectionFormat": (4.0, 3.0)})
        >>> round(mix.weight("ChangeSectionFormat"), 3), mix.weight("DropSection")
        (0.667, 0.5)
        >>> mix.set_priors({"Paraphrase": (1.0, 2.0)})
        Traceback (most recent call last):
        ...
        sammo_core.errors.ConfigError: unknown operator 'Paraphrase'; this mixture has: \
DropSection, ChangeSectionFormat
        """
        tries: dict[str, float] = {}
        wins: dict[str, float] = {}
        for name, pair in credit.items():
            self._check_name(name)
            t, w = _credit_pair(name, pair)
            if t > 0:
                tries[name], wins[name] = t, w
        self._prior_tries, self._prior_wins = tries, wins

    def operator_names(self) -> frozenset[str]:
        return frozenset().union(*(op.operator_names() for op in self._operators.values()))

    def _owner(self, operator_name: str) -> str:
        """The key of the operator whose children carry ``operator_name``."""
        if operator_name in self._operators:
            return operator_name
        for key, op in self._operators.items():
            if operator_name in op.operator_names():
                return key
        self._check_name(operator_name)  # raises
        raise AssertionError  # pragma: no cover

    def record(self, operator_name: str, improved: bool) -> None:
        """Count one evaluated child of ``operator_name``, a win if it ``improved``; an
        operator held inside another (a mixture in a mixture) counts for the one that holds it
        here, and learns too.

        >>> from mutators.format import ChangeSectionFormat
        >>> from mutators.structure import DropSection
        >>> inner = Mixture([DropSection(), ChangeSectionFormat()])
        >>> outer = Mixture([inner])
        >>> outer.record("DropSection", improved=True)
        >>> outer.stats()["Mixture"]["wins"], inner.stats()["DropSection"]["wins"]
        (1, 1)
        """
        key = self._owner(operator_name)
        self._tries[key] += 1
        self._wins[key] += int(bool(improved))
        if key != operator_name:
            self._operators[key].record(operator_name, improved)

    def stats(self) -> dict[str, dict[str, Any]]:
        """``{name: {"tries": int, "wins": int, "weight": float}}`` in operator order."""
        return {
            name: {
                "tries": self._tries[name],
                "wins": self._wins[name],
                "weight": self.weight(name),
            }
            for name in self._operators
        }

    def state_dict(self) -> dict[str, Any]:
        """The learned counts, JSON-ready, for :meth:`load_state_dict` after a restart; with
        the states of the operators it holds that learn (``inner``)."""
        inner = {name: op.state_dict() for name, op in self._operators.items()}
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "counts": {
                name: {"tries": self._tries[name], "wins": self._wins[name]}
                for name in self._operators
            },
        }
        learned = {name: st for name, st in inner.items() if st is not None}
        if learned:
            state["inner"] = learned
        if self._prior_tries:
            state["priors"] = {
                name: [self._prior_tries[name], self._prior_wins[name]]
                for name in self._prior_tries
            }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore counts saved by :meth:`state_dict`; the operator names must match."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ConfigError(
                f"not a Mixture state of version {STATE_VERSION}: {state!r:.80} "
                "(pass the dict returned by Mixture.state_dict())"
            )
        counts = state.get("counts")
        if not isinstance(counts, dict) or set(counts) != set(self._operators):
            got = sorted(counts) if isinstance(counts, dict) else counts
            raise ConfigError(
                f"Mixture state has operators {got!r}; this mixture has {sorted(self._operators)}"
            )
        tries, wins = {}, {}
        for name, entry in counts.items():
            t = entry.get("tries") if isinstance(entry, dict) else None
            w = entry.get("wins") if isinstance(entry, dict) else None
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (t, w)):
                raise ConfigError(
                    f"Mixture state for {name!r} needs int tries and wins; got {entry!r}"
                )
            assert isinstance(t, int) and isinstance(w, int)
            if not 0 <= w <= t:
                raise ConfigError(
                    f"Mixture state for {name!r} needs 0 <= wins <= tries; got {entry!r}"
                )
            tries[name], wins[name] = t, w
        inner = state.get("inner", {})
        if not isinstance(inner, dict) or not set(inner) <= set(self._operators):
            raise ConfigError(f"Mixture state's inner states name unknown operators: {inner!r:.80}")
        priors = state.get("priors", {})
        if not isinstance(priors, dict):
            raise ConfigError(f"Mixture state's priors must be a mapping; got {priors!r:.80}")
        for name, inner_state in inner.items():
            self._operators[name].load_state_dict(inner_state)
        self.set_priors({name: tuple(pair) for name, pair in priors.items()})
        self._tries.update(tries)
        self._wins.update(wins)

    def _check_name(self, operator_name: str) -> None:
        if operator_name not in self._operators:
            raise ConfigError(
                f"unknown operator {operator_name!r}; this mixture has: "
                f"{', '.join(self._operators)}"
            )

    # -- mutating ------------------------------------------------------------------------------

    def applicable(self, program: Output) -> bool:
        return bool(self._applicable(program))

    def _applicable(self, program: Output, key: str | None = None) -> tuple[str, ...]:
        """The names of the operators that apply to ``program`` (of content hash ``key``),
        remembered per content: whether an operator applies depends on the program only."""
        key = content_hash(program) if key is None else key
        live = self._live.get(key)
        if live is None:
            if len(self._live) >= _LIVE_MEMO:
                self._live.clear()
            live = tuple(name for name, op in self._operators.items() if op.applicable(program))
            self._live[key] = live
        return live

    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        check_n(n)
        own = content_hash(program)
        live = list(self._applicable(program, own))
        base = context if context is not None else MutationContext()
        seen = {own} | base.exclude
        misses = dict.fromkeys(live, 0)
        children: list[Mutation] = []
        while live and len(children) < n:
            name = rng.choices(live, weights=[self.weight(x) for x in live])[0]
            # One child per draw; what is taken already is excluded, so no child is built twice
            # by operators that enumerate their edits.
            ask = dataclasses.replace(base, exclude=frozenset(seen))
            offered = await self._operators[name].mutate(program, rng, 1, ask)
            new = next((m for m in offered if content_hash(m.program) not in seen), None)
            if new is not None:
                seen.add(content_hash(new.program))
                children.append(new)
                misses[name] = 0
            elif not offered or misses[name] >= MAX_MISSES:
                live.remove(name)  # exhausted: every child it can make is taken
            else:
                misses[name] += 1  # an LLM proposal repeated an earlier one: try again
            # Building a child is CPU work (a deep copy, an edit, a content hash): let the
            # event loop read the answers that came in meanwhile before the next one, so the
            # calls of the candidates being scored keep their slots busy.
            await asyncio.sleep(0)
        return children


def _credit_pair(name: str, pair: Any) -> tuple[float, float]:
    """``(tries, wins)`` checked: finite numbers with ``0 <= wins <= tries``."""
    ok = (
        isinstance(pair, (tuple, list))
        and len(pair) == 2
        and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in pair
        )
    )
    if not ok or not 0 <= pair[1] <= pair[0]:
        raise ConfigError(
            f"prior credit of {name!r} must be (tries, wins) with 0 <= wins <= tries; got {pair!r}"
        )
    return float(pair[0]), float(pair[1])
