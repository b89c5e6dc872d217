"""``base-model``: instruction-tuning tasks for a base model (``local:gemma3``) in completion
mode, from the instruction and a few label-balanced examples, with structure, examples, format
and scoring operators (no proposer calls).
"""

from __future__ import annotations

from benchmarks import datasets
from benchmarks.suites.assemble import SuiteDefaults, assemble, quality_objective
from benchmarks.suites.suite import BenchTask, DataDir, Suite, SuiteOptions, tasks_in
from mutators.base import Mutator
from sammo_core.components import Examples, GenerateText, InputData, MetaPrompt, Output, Section
from sammo_core.data import DataTable

#: Where the next record starts in each data format: a base model that has answered goes on
#: writing the next example or input unless stopped there. (OpenAI's own API takes at most 4
#: stop sequences; vLLM and llama.cpp, which serve base models, take these.)
BASE_MODEL_STOPS = (
    "\nInput",
    "\nExample",
    "\n**Input",
    "\n**Example",
    '\n{"input"',
    '\n{"id"',
    "\n<input",
    "\n<example",
    "\n#",
)
#: Labels and short answers, with room for a JSON or XML wrapper.
BASE_MODEL_MAX_TOKENS = 16
#: The data formats whose prompt ends with the answer's cue, which a base model continues.
BASE_MODEL_DATA_FORMATS = ("plain", "markdown", "qa", "sentence")


#: The examples a user would write first: ``base-model`` starts from this many, label-balanced.
BASE_MODEL_START_SHOTS = 4


def base_model_program(
    instructions: str, pool: DataTable, shots: int = BASE_MODEL_START_SHOTS
) -> Output:
    """The start of ``base-model``: the task's instruction, ``shots`` label-balanced examples
    drawn from ``pool`` (what a user would write first) and the input, in completion mode.

    The :class:`Examples` node stands outside any section, so its rows read as a plain few-shot
    continuation; ``shots=0`` shows none yet (the instruction alone), and the examples operators
    change the count, the selection, the draw and the order.

    >>> program = base_model_program("Answer yes or no.", DataTable(["a", "b"], ["yes", "no"]))
    >>> print(program)
    Output()
    └── GenerateText(temperature=0.0, seed=0, max_tokens=16, mode='completion', stop=[...])
        └── MetaPrompt()
            ├── #task Section 'Task'
            │   └── 'Answer yes or no.'
            ├── #examples Examples(n=4, selection='balanced', seed=0, rows=2)
            └── InputData()
    """
    selection = "balanced" if shots else "first"
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", [instructions], id="task"),
                    Examples(pool, n=shots, selection=selection, id="examples"),
                    InputData(),
                ]
            ),
            max_tokens=BASE_MODEL_MAX_TOKENS,
            mode="completion",
            stop=list(BASE_MODEL_STOPS),
        )
    )


def _base_model_mutator() -> Mutator:
    """Structure, examples and format operators: none calls a proposer model.

    Weights say what a base model is known to need: examples above all (implicatures on Gemma
    3 270M: instruction alone 0.00, 8 examples 0.60), so the example count is drawn three times
    as often as any other operator; then how they are chosen (label-balanced, by similarity),
    drawn and ordered. The data formats are those whose prompt ends with the answer's cue
    (``Output:``, ``**Output:**``, ``A:``, ``Label:``): the JSON and XML formats end with an
    instruction ("Answer with one JSON object ..."), which a base model continuing text does
    not follow (it writes on, and nothing parses). Operators never make a child whose prompt
    stops ending with its cue (:func:`~mutators.base.keeps_answer_slot`: no JSON or XML section
    around the input). Packing several inputs into one call rarely suits a small base model,
    so it is drawn less often."""
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

    return Mixture(
        [
            DropSection(),
            DropParagraph(),
            ReorderSections(),
            RepeatSection(),
            (ChangeExampleCount(), 3.0),
            SwapExamples(),
            ChangeExampleSelection(),
            ReorderExamples(),
            ChangeSectionFormat(),
            ChangeDataFormat(choices=BASE_MODEL_DATA_FORMATS),
            ChangePrefixes(),
            (ChangeInputsPerCall(), 0.25),
            (ChangeVerbalizer(), 0.5),
            (ToggleCalibration(), 0.5),
        ]
    )


_BASE_MODEL = SuiteDefaults(
    "24", "beam", "structure,examples,format", width=4, depth=6, scored=True
)


def _build_base_model(task: str, data_dir: DataDir, options: SuiteOptions) -> BenchTask:
    splits = datasets.load_sammo_instruction_tuning(data_dir, task)
    shots = BASE_MODEL_START_SHOTS if options.start_shots is None else options.start_shots
    return assemble(
        "base-model",
        splits,
        # The whole train split is the example pool: --max-rows bounds the rows evaluated.
        base_model_program(splits.instructions, splits.train, shots),
        objectives=[quality_objective(splits)],
        options=options,
        defaults=_BASE_MODEL,
        notes=(
            "BIG-bench task, SAMMO splits, for base models (--model local:gemma3): completion "
            f"mode with stop sequences, starting from the task's instruction and {shots} "
            "label-balanced examples; structure, examples (from the 100 train rows), format "
            "and scoring operators, no proposer calls."
        ),
        mutator=None if options.operators else _base_model_mutator(),
    )


BASE_MODEL = Suite(
    "base-model",
    "instruction-tuning tasks for a base model (local:gemma3) in completion mode: from the "
    "instruction alone, structure, examples and format operators (no proposer), 24 candidates",
    tasks_in("instruction-tuning"),
    _build_base_model,
    data=("sammo",),
)
