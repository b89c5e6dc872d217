"""LLM-based operators that rewrite the plain text of sections.

Each operator targets sections (selector ``"Section"`` by default) that have plain-text
children (Paragraphs, which plain strings become) and do not hold the input. It asks the
proposer runner for new text and puts it in place of the section's plain-text children: one
paragraph at the position of the first text child; other children, such as
:class:`~sammo_core.Examples`, keep their place.

- :class:`Paraphrase`: the same meaning in other words.
- :class:`Rewrite`: follow a user's instruction ("Make it more concise").
- :class:`InduceInstructions` (APE): infer the instruction from labelled training rows.
- :class:`TextGradient` (APO/ProTeGi): run the program on a training minibatch, criticise the
  text given its wrong answers, then fix it.
- :class:`ProposeFromHistory` (OPRO): show scored earlier versions, ask for a better one.
- :class:`Shorten`: fewer tokens, the same constraints.

The learning proposers see training rows only (``context.train``); a search selects on
validation and reports test, and neither split's rows ever reach a proposal prompt. OPRO's
history carries validation *scores* of programs, which is selection information, not data.

Every request's seed is drawn from the ``rng`` passed to ``mutate`` (``rng.randrange(2**31)``,
one per child), so children are deterministic for a seed and cacheable. Replies go through
:func:`clean_reply`; an empty or unchanged reply gives no child, so ``mutate`` may return fewer
than ``n`` children. Children of one call are distinct.

>>> import asyncio, random
>>> from sammo_core import GenerateText, InputData, MetaPrompt, Output, ScriptedRunner, Section
>>> from mutators.base import MutationContext
>>> program = Output(GenerateText(MetaPrompt([
...     Section("Task", ["Answer yes or no."]), Section("Input", [InputData()])])))
>>> runner = ScriptedRunner(rules={"Paraphrase": "Here is the text:\\n'Reply with yes or no.'"})
>>> context = MutationContext(runner=runner)
>>> [child] = asyncio.run(Paraphrase().mutate(program, random.Random(0), context=context))
>>> child.description
"paraphrase section 'Task'"
>>> [p.text for p in child.program.child.prompt.children[0].children]
['Reply with yes or no.']
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import random
import re
from collections.abc import Sequence
from typing import Any

import orjson

from mutators.base import (
    Mutation,
    MutationContext,
    Mutator,
    contains_input,
    join_path,
    set_list,
    split_list_path,
    text_children,
)
from sammo_core.components import Component, Output, Section
from sammo_core.data import DataTable, Row
from sammo_core.errors import ConfigError
from sammo_core.graph import compile
from sammo_core.objectives import Normalizer
from sammo_core.results import ResultRow
from sammo_core.selectors import Match, find
from sammo_core.tokens import count_tokens

__all__ = [
    "CRITIQUE_PROMPT",
    "FIX_PROMPT",
    "INDUCE_PROMPT",
    "PARAPHRASE_PROMPT",
    "PROPOSE_PROMPT",
    "REWRITE_PROMPT",
    "SHORTEN_PROMPT",
    "InduceInstructions",
    "Paraphrase",
    "ProposeFromHistory",
    "Rewrite",
    "Shorten",
    "TextGradient",
    "clean_reply",
    "section_text",
]

# -- proposal prompts ----------------------------------------------------------------------------
# Filled with str.format; the values may hold braces, only the templates are parsed.

PARAPHRASE_PROMPT = """\
Paraphrase the text below. Keep its meaning and every instruction and constraint in it; \
change only the wording.
Reply with the new text only.

Text:
{text}"""

REWRITE_PROMPT = """\
Rewrite the text below following this instruction: {instructions}
Keep every constraint in the text that the instruction does not ask you to change.
Reply with the new text only.

Text:
{text}"""

INDUCE_PROMPT = """\
I gave a friend an instruction and some inputs. The friend read the instruction and wrote an \
output for every one of the inputs. Here are the input-output pairs:

{examples}

What was the instruction? Reply with the instruction only."""

CRITIQUE_PROMPT = """\
I am writing a prompt for a task. The current prompt text is:

{text}

With it, the model gets these examples wrong:

{errors}

Give one reason why the prompt text could have led to these mistakes. Reply with the reason \
only, in one or two sentences."""

FIX_PROMPT = """\
I am writing a prompt for a task. The current prompt text is:

{text}

With it, the model gets these examples wrong:

{errors}

The problem is: {critique}

Edit the prompt text to fix this problem. Reply with the new text only."""

PROPOSE_PROMPT = """\
Below are earlier versions of an instruction with their scores (higher is better), from worst \
to best:

{history}

Write a new instruction that is different from all of the above and scores higher than all \
of them. Reply with the instruction only."""

SHORTEN_PROMPT = """\
Shorten the text below to about {target} tokens (it has {tokens} now). Keep every \
instruction, constraint and required output format in it.
Reply with the shortened text only.

Text:
{text}"""

# -- reply cleaning ------------------------------------------------------------------------------

_FENCED = re.compile(r"^```[\w+-]*[ \t]*\n(.*?)\n?```$", re.DOTALL)
_CHATTER = re.compile(
    r"^(?:(?:sure|certainly|of course|okay|ok)\b[!,.]?\s*)?"
    r"here(?:'s|\u2019s|\s+is|\s+are)\b[^\n:]{0,80}?"
    r"\b(?:text|version|instructions?|prompt|paraphrase|rewrite|reason|critique)\b[^\n:]{0,40}:"
    r"\s*",
    re.IGNORECASE,
)
_QUOTES = (('"""', '"""'), ('"', '"'), ("'", "'"), ("\u201c", "\u201d"), ("\u2018", "\u2019"))


def clean_reply(text: str) -> str:
    """The proposal in an LLM's reply: without chatter, code fences or surrounding quotes.

    A leading "Here is the new text:" (optionally after "Sure!") is dropped, then a code fence
    around the whole reply, then quotes around the whole reply (only when the text inside has
    no such quote, so ``"yes" or "no"`` stays as it is).

    >>> clean_reply("Sure! Here is the rewritten text:\\n```markdown\\nBe brief.\\n```")
    'Be brief.'
    >>> clean_reply('"Answer in one word."')
    'Answer in one word.'
    >>> clean_reply('"yes" or "no"')
    '"yes" or "no"'
    """
    text = text.strip()
    text = _CHATTER.sub("", text, count=1).strip()
    fenced = _FENCED.match(text)
    if fenced:
        text = fenced.group(1).strip()
    for opening, closing in _QUOTES:
        inner = text[len(opening) : -len(closing)]
        if (
            len(text) >= len(opening) + len(closing)
            and text.startswith(opening)
            and text.endswith(closing)
            and opening not in inner
            and closing not in inner
        ):
            text = inner.strip()
            break
    return text


# -- helpers -------------------------------------------------------------------------------------


def _text_indices(section: Component) -> list[int]:
    """Indices (in ``children``) of a section's plain-text children."""
    return [split_list_path(path.removesuffix(".text"))[1] for path, _ in text_children(section)]


def section_text(section: Component) -> str:
    """A section's plain-text children (strings and Paragraphs) joined by blank lines.

    >>> from sammo_core import Paragraph
    >>> section_text(Section("Task", ["Classify.", Paragraph("Be brief.")]))
    'Classify.\\n\\nBe brief.'
    """
    return "\n\n".join(text for _, text in text_children(section))


def _with_text(program: Output, match: Match, text: str) -> Output:
    """A copy of ``program`` whose matched section has ``text`` as its only plain text."""
    indices = _text_indices(match.node)
    children: list[Any] = list(match.node.children)
    items = [text if i == indices[0] else child for i, child in enumerate(children)]
    items = [item for i, item in enumerate(items) if i not in indices[1:]]
    return set_list(program, join_path(match.path, "children"), items)


def _same(a: str, b: str) -> bool:
    return a.split() == b.split()


def _brief(text: str, limit: int = 60) -> str:
    """One line for a description: collapsed, no trailing period, a lowercased first word."""
    text = " ".join(text.split()).rstrip(".")
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _where(match: Match) -> str:
    title = match.node.title
    return repr(title) if title else f"at {match.path}"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)


def _check_temperature(temperature: float) -> None:
    if not 0.0 <= temperature <= 2.0:
        raise ConfigError(f"temperature must be within [0, 2]; got {temperature}")


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1; got {value!r}")


@dataclasses.dataclass(frozen=True)
class _Proposal:
    text: str
    description: str


class _SectionTextMutator(Mutator):
    """Shared loop: pick targets, draw one seed per child, ask concurrently, build children."""

    default_selector = "Section"

    def __init__(self, selector: str | None = None, temperature: float = 0.7) -> None:
        super().__init__(selector)
        _check_temperature(temperature)
        self.temperature = temperature

    def _params(self) -> dict[str, Any]:
        return {"selector": self.selector, "temperature": self.temperature}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{self.name}({args})"

    def accepts(self, match: Match, program: Output) -> bool:
        """Sections with plain text that do not hold the input."""
        node = match.node
        return isinstance(node, Section) and bool(text_children(node)) and not contains_input(node)

    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        context = context or MutationContext()
        context.require_runner(self.name)
        targets = self.targets(program)
        if not targets or n < 1:
            return []
        material = await self._prepare(program, rng, context)
        if material is None:
            return []
        rng.shuffle(targets)  # spread children over the targets in a seeded order
        jobs = [(targets[i % len(targets)], rng.randrange(2**31)) for i in range(n)]
        proposals = await asyncio.gather(
            *(self._propose(m, section_text(m.node), seed, context, material) for m, seed in jobs)
        )
        children: list[Mutation] = []
        seen: set[tuple[str, tuple[str, ...]]] = set()
        for (match, _), proposal in zip(jobs, proposals, strict=True):
            if proposal is None:
                continue
            key = (match.path, tuple(proposal.text.split()))
            if key not in seen:
                seen.add(key)
                children.append(
                    self._child(_with_text(program, match, proposal.text), proposal.description)
                )
        return children

    async def _prepare(
        self, program: Output, rng: random.Random, context: MutationContext
    ) -> Sequence[Any] | None:
        """What every child of this call learns from (rows), or None: nothing to learn, no child.

        Runs once per :meth:`mutate` call, before the children's seeds are drawn.
        """
        return ()

    @abc.abstractmethod
    async def _propose(
        self, match: Match, text: str, seed: int, context: MutationContext, material: Sequence[Any]
    ) -> _Proposal | None:
        """New text for the section at ``match`` (current text ``text``), or None."""

    async def _ask(self, context: MutationContext, prompt: str, seed: int, current: str) -> str:
        """The cleaned reply; ``""`` when it is empty or the same as ``current``."""
        reply = clean_reply(
            await context.ask(self.name, prompt, seed=seed, temperature=self.temperature)
        )
        return "" if _same(reply, current) else reply


# -- operators -----------------------------------------------------------------------------------


class Paraphrase(_SectionTextMutator):
    """Ask the proposer to say a section's text in other words, keeping its meaning.

    Prompt: :data:`PARAPHRASE_PROMPT`. Description: ``paraphrase section 'Task'``.
    """

    def __init__(self, selector: str | None = None, temperature: float = 0.9) -> None:
        super().__init__(selector, temperature)

    async def _propose(
        self, match: Match, text: str, seed: int, context: MutationContext, material: Sequence[Any]
    ) -> _Proposal | None:
        reply = await self._ask(context, PARAPHRASE_PROMPT.format(text=text), seed, text)
        return _Proposal(reply, f"paraphrase section {_where(match)}") if reply else None


class Rewrite(_SectionTextMutator):
    """Ask the proposer to rewrite a section's text following ``instructions``.

    Prompt: :data:`REWRITE_PROMPT`. Description:
    ``rewrite section 'Task': make it more concise``.

    >>> Rewrite("Make it more concise.")
    Rewrite(instructions='Make it more concise.', selector='Section', temperature=0.7)
    >>> Rewrite(" ")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: Rewrite needs instructions (e.g. 'Make it more concise'); got ' '
    """

    def __init__(
        self, instructions: str, selector: str | None = None, temperature: float = 0.7
    ) -> None:
        if not instructions.strip():
            raise ConfigError(
                f"Rewrite needs instructions (e.g. 'Make it more concise'); got {instructions!r}"
            )
        super().__init__(selector, temperature)
        self.instructions = instructions.strip()

    def _params(self) -> dict[str, Any]:
        return {"instructions": self.instructions, **super()._params()}

    async def _propose(
        self, match: Match, text: str, seed: int, context: MutationContext, material: Sequence[Any]
    ) -> _Proposal | None:
        prompt = REWRITE_PROMPT.format(instructions=self.instructions, text=text)
        reply = await self._ask(context, prompt, seed, text)
        if not reply:
            return None
        return _Proposal(reply, f"rewrite section {_where(match)}: {_brief(self.instructions)}")


def _labelled(rows: Sequence[Row]) -> list[Row]:
    return [row for row in rows if row.output is not None]


class InduceInstructions(_SectionTextMutator):
    """APE: infer the instruction from labelled training rows and put it in the section.

    Each child shows a fresh sample of up to ``n_examples`` rows of ``context.train`` that have
    a gold output (drawn with the child's seed) as input-output pairs (:data:`INDUCE_PROMPT`)
    and asks what the instruction was. The current text is not shown. Without labelled
    training rows ``mutate`` returns ``[]``. Description:
    ``induce instructions for section 'Task' from 5 examples``.
    """

    def __init__(
        self, selector: str | None = None, n_examples: int = 5, temperature: float = 0.7
    ) -> None:
        _check_positive("n_examples", n_examples)
        super().__init__(selector, temperature)
        self.n_examples = n_examples

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "n_examples": self.n_examples}

    async def _prepare(
        self, program: Output, rng: random.Random, context: MutationContext
    ) -> Sequence[Any] | None:
        return _labelled(list(context.train or ())) or None

    def sample(self, context: MutationContext, seed: int) -> list[Row]:
        """The labelled training rows shown for ``seed`` (in the order shown)."""
        rows = _labelled(list(context.train or ()))
        return random.Random(seed).sample(rows, min(self.n_examples, len(rows)))

    async def _propose(
        self, match: Match, text: str, seed: int, context: MutationContext, material: Sequence[Any]
    ) -> _Proposal | None:
        rows = self.sample(context, seed)
        examples = "\n\n".join(
            f"Input: {_as_text(row.input)}\nOutput: {_as_text(row.output)}" for row in rows
        )
        reply = await self._ask(context, INDUCE_PROMPT.format(examples=examples), seed, text)
        if not reply:
            return None
        description = f"induce instructions for section {_where(match)} from {len(rows)} examples"
        return _Proposal(reply, description)


def _labelled_table(context: MutationContext) -> DataTable:
    train = context.train
    if train is None:
        return DataTable([])
    return train.select(i for i, row in enumerate(train) if row.output is not None)


class TextGradient(_SectionTextMutator):
    """APO/ProTeGi: run the program on a training minibatch, criticise a section's text given
    the wrong answers, then edit the text to fix that.

    Each :meth:`mutate` call draws a seed from ``rng``, samples up to ``minibatch`` labelled
    rows of ``context.train`` with it (:meth:`minibatch_rows`) and runs the parent program on
    them through ``context.task``, the task runner (so those calls are cached, counted and
    charged to the budget like any other). Wrong rows are those whose prediction, after
    :class:`~sammo_core.objectives.Normalizer`, differs from the gold (a missing prediction is
    wrong). Each child samples up to ``n_errors`` of them with its own seed and makes two
    proposer calls: :data:`CRITIQUE_PROMPT` (the "gradient") and :data:`FIX_PROMPT` (the
    step). With no labelled training rows, or no wrong answer on the minibatch, ``mutate``
    returns ``[]``: there is nothing to learn from. Validation rows are never shown: they
    only select. Description:
    ``text gradient on 'Task': the prompt does not say how to treat sarcasm``.

    >>> import asyncio, random
    >>> from sammo_core import DataTable, GenerateText, InputData, MetaPrompt, ScriptedRunner
    >>> program = Output(GenerateText(MetaPrompt([
    ...     Section("Task", ["Answer."]), Section("Input", [InputData()])])))
    >>> proposer = ScriptedRunner(rules={"Give one reason": "It does not say yes or no.",
    ...                                  "Edit the prompt": "Answer yes or no."})
    >>> context = MutationContext(runner=proposer, task=ScriptedRunner(default="maybe"),
    ...                           train=DataTable(["Is ice cold?"], ["yes"]))
    >>> [child] = asyncio.run(TextGradient().mutate(program, random.Random(0), context=context))
    >>> child.description
    "text gradient on 'Task': it does not say yes or no"
    >>> "Input: Is ice cold?\\nExpected: yes\\nGot: maybe" in proposer.prompts[0]
    True
    """

    def __init__(
        self,
        selector: str | None = None,
        n_errors: int = 4,
        temperature: float = 0.7,
        minibatch: int = 16,
    ) -> None:
        _check_positive("n_errors", n_errors)
        _check_positive("minibatch", minibatch)
        super().__init__(selector, temperature)
        self.n_errors = n_errors
        self.minibatch = minibatch
        self.normalizer = Normalizer()

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "n_errors": self.n_errors, "minibatch": self.minibatch}

    def minibatch_rows(self, context: MutationContext, seed: int) -> DataTable:
        """The labelled training rows the parent runs on for ``seed`` (in the drawn order)."""
        labelled = _labelled_table(context)
        return labelled.sample(min(self.minibatch, len(labelled)), seed)

    async def errors(self, program: Output, context: MutationContext, seed: int) -> list[ResultRow]:
        """The wrong rows of ``program`` on :meth:`minibatch_rows`, in minibatch order."""
        rows = self.minibatch_rows(context, seed)
        if not len(rows):
            return []
        if context.task is None:
            raise ConfigError(
                f"{self.name} runs the program on training rows but the mutation context has "
                "no task runner: pass MutationContext(task=...) (a search passes its own)"
            )
        results = await compile(program).run(rows, context.task)
        return [
            row
            for row in results.rows
            if row.prediction is None
            or self.normalizer(row.prediction) != self.normalizer(row.output)
        ]

    async def _prepare(
        self, program: Output, rng: random.Random, context: MutationContext
    ) -> Sequence[Any] | None:
        if not len(_labelled_table(context)):
            return None  # no labelled training rows: draw nothing, call nothing
        return await self.errors(program, context, rng.randrange(2**31)) or None

    async def _propose(
        self, match: Match, text: str, seed: int, context: MutationContext, material: Sequence[Any]
    ) -> _Proposal | None:
        wrong: Sequence[ResultRow] = material
        shown = random.Random(seed).sample(list(wrong), min(self.n_errors, len(wrong)))
        errors = "\n\n".join(
            f"Input: {_as_text(row.input)}\nExpected: {_as_text(row.output)}\n"
            f"Got: {_as_text(row.raw_output if row.prediction is None else row.prediction)}"
            for row in shown
        )
        critique = clean_reply(
            await context.ask(
                self.name,
                CRITIQUE_PROMPT.format(text=text, errors=errors),
                seed=seed,
                temperature=self.temperature,
            )
        )
        if not critique:
            return None
        prompt = FIX_PROMPT.format(text=text, errors=errors, critique=critique)
        reply = await self._ask(context, prompt, seed, text)
        if not reply:
            return None
        return _Proposal(reply, f"text gradient on {_where(match)}: {_brief(critique)}")


def _version_text(program: Output, match: Match) -> str | None:
    """The text of the section at ``match`` in another program: by path, else by title."""
    title = match.node.title
    sections = find(program, "Section")
    for other in sections:
        if other.path == match.path and other.node.title == title:
            return section_text(other.node)
    if title:
        for other in sections:
            if other.node.title == title:
                return section_text(other.node)
    return None


class ProposeFromHistory(_SectionTextMutator):
    """OPRO: show scored earlier versions of a section's text and ask for a better one.

    Versions come from ``context.history``: the section at the same path with the same title,
    else the first section with the same title. Equal texts keep their best score; the best
    ``max_history`` are shown from worst to best (:data:`PROPOSE_PROMPT`). A section with no
    earlier versions gets no child; a reply equal to a shown version or the current text is
    dropped. Description: ``propose from history for section 'Task' (3 versions)``.
    """

    def __init__(
        self, selector: str | None = None, max_history: int = 8, temperature: float = 1.0
    ) -> None:
        _check_positive("max_history", max_history)
        super().__init__(selector, temperature)
        self.max_history = max_history

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "max_history": self.max_history}

    def versions(self, match: Match, context: MutationContext) -> list[tuple[str, float]]:
        """``(text, score)`` of the section's earlier versions as shown, worst first."""
        best: dict[str, float] = {}
        for scored in context.history:
            text = _version_text(scored.program, match)
            if text and (text not in best or scored.score > best[text]):
                best[text] = scored.score
        ranked = sorted(best.items(), key=lambda item: item[1])
        return ranked[-self.max_history :]

    async def _propose(
        self, match: Match, text: str, seed: int, context: MutationContext, material: Sequence[Any]
    ) -> _Proposal | None:
        versions = self.versions(match, context)
        if not versions:
            return None
        history = "\n\n".join(f"Text:\n{v}\nScore: {score:.3f}" for v, score in versions)
        reply = await self._ask(context, PROPOSE_PROMPT.format(history=history), seed, text)
        if not reply or any(_same(reply, v) for v, _ in versions):
            return None
        description = f"propose from history for section {_where(match)} ({len(versions)} versions)"
        return _Proposal(reply, description)


class Shorten(_SectionTextMutator):
    """Ask the proposer to shorten a section's text to about ``ratio`` of its tokens.

    Tokens are counted with :func:`sammo_core.tokens.count_tokens`. A reply that is not
    shorter than the current text gives no child (:data:`SHORTEN_PROMPT`). Description:
    ``shorten section 'Task': 40 -> 21 tokens``.
    """

    def __init__(
        self, selector: str | None = None, ratio: float = 0.5, temperature: float = 0.7
    ) -> None:
        if not 0.0 < ratio < 1.0:
            raise ConfigError(f"ratio must be within (0, 1), e.g. 0.5; got {ratio}")
        super().__init__(selector, temperature)
        self.ratio = ratio

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "ratio": self.ratio}

    async def _propose(
        self, match: Match, text: str, seed: int, context: MutationContext, material: Sequence[Any]
    ) -> _Proposal | None:
        tokens = count_tokens(text)
        target = max(1, round(tokens * self.ratio))
        prompt = SHORTEN_PROMPT.format(target=target, tokens=tokens, text=text)
        reply = await self._ask(context, prompt, seed, text)
        if not reply or count_tokens(reply) >= tokens:
            return None
        description = f"shorten section {_where(match)}: {tokens} -> {count_tokens(reply)} tokens"
        return _Proposal(reply, description)
