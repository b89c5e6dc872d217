"""Example program: few-shot yes/no questions about everyday facts.

Run it:  sammo-core run sammo_core/examples/yesno.py --data sammo_core/examples/yesno.jsonl \
             --model local
"""

from pathlib import Path

from sammo_core import DataTable, Examples, GenerateText, InputData, MetaPrompt, Output, Section

HERE = Path(__file__).parent
EXAMPLES = DataTable.load(HERE / "yesno_examples.jsonl")

program = Output(
    GenerateText(
        MetaPrompt(
            [
                Section("Task", ["Answer the question with Yes or No."], id="task"),
                Section("Examples", [Examples(EXAMPLES, n=4)], id="examples"),
                Section("Question", [InputData()], id="question"),
            ],
            section_format="markdown",
            data_format="plain",
        ),
        max_tokens=8,
    ),
    parser="first_line",
)

OBJECTIVE = "label_accuracy:yes,no"
