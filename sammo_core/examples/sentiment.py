"""Example program: the sentiment of short reviews, answered by label likelihood.

Run it:  sammo-core run sammo_core/examples/sentiment.py \
             --data sammo_core/examples/sentiment.jsonl --model local:gemma3
"""

from pathlib import Path

from sammo_core import DataTable, Examples, GenerateText, InputData, MetaPrompt, Output, Section

HERE = Path(__file__).parent
EXAMPLES = DataTable.load(HERE / "sentiment_examples.jsonl")

program = Output(
    GenerateText(
        MetaPrompt(
            [
                Section("Task", ["Is the review positive or negative?"], id="task"),
                Examples(EXAMPLES, n=4, id="examples"),
                InputData(),
            ],
            section_format="markdown",
            data_format="plain",
        ),
        max_tokens=4,
        mode="completion",
        stop=["\n"],
        labels=["positive", "negative"],
    ),
)

OBJECTIVE = "label_accuracy:positive,negative"
