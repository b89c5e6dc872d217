"""sammo-core: compile metaprompt programs into function graphs and search over their mutations.

The public face of the core package; every name here is documented in its own module.
"""

from sammo_core.components import (
    Component,
    Examples,
    GenerateText,
    InputData,
    MetaPrompt,
    Output,
    Paragraph,
    Section,
    Template,
)
from sammo_core.data import DataTable, Row
from sammo_core.errors import (
    BudgetExceededError,
    CacheMissError,
    ConfigError,
    DataError,
    RunnerError,
    SammoError,
    SerializationError,
    TemplateError,
)
from sammo_core.export import Manifest, build_manifest, export_program, write_export
from sammo_core.graph import Change, FunctionGraph, compile, content_hash
from sammo_core.prompt_files import (
    parse_markdown,
    parse_prompt_file,
    parse_template,
    parse_xml,
    render_prompt,
)
from sammo_core.results import ProgramCost, ResultRow, ResultTable
from sammo_core.runners import LLMRequest, LLMResult, Message, Runner, ScriptedRunner
from sammo_core.selectors import Match, find, find_one
from sammo_core.serialization import dumps, loads
from sammo_core.soft import SoftPrompt, SoftTensor

__version__ = "0.1.0"

__all__ = [
    "BudgetExceededError",
    "CacheMissError",
    "Change",
    "Component",
    "ConfigError",
    "DataError",
    "DataTable",
    "Examples",
    "FunctionGraph",
    "GenerateText",
    "InputData",
    "LLMRequest",
    "LLMResult",
    "Manifest",
    "Match",
    "Message",
    "MetaPrompt",
    "Output",
    "Paragraph",
    "ProgramCost",
    "ResultRow",
    "ResultTable",
    "Row",
    "Runner",
    "RunnerError",
    "SammoError",
    "ScriptedRunner",
    "Section",
    "SerializationError",
    "SoftPrompt",
    "SoftTensor",
    "Template",
    "TemplateError",
    "__version__",
    "build_manifest",
    "compile",
    "content_hash",
    "dumps",
    "export_program",
    "find",
    "find_one",
    "loads",
    "parse_markdown",
    "parse_prompt_file",
    "parse_template",
    "parse_xml",
    "render_prompt",
    "write_export",
]
