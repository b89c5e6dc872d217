"""Renderers: documents and data written into prompts, and read back.

Section formats (:mod:`renderers.sections`) lay out a prompt's titles and paragraphs; data
formats (:mod:`renderers.data`) write examples and inputs and parse the model's answers. Every
format is a render/parse pair tested by round trip. This package depends on the standard
library only.

>>> fmt = get_section_format("markdown")
>>> print(fmt.render([SectionBlock("Task", (Text("Answer yes or no."),))]))
# Task
<BLANKLINE>
Answer yes or no.
"""

from renderers.data import (
    DATA_FORMATS,
    DataFormat,
    JSONDataFormat,
    MarkdownDataFormat,
    PlainDataFormat,
    QADataFormat,
    Record,
    SentenceDataFormat,
    XMLDataFormat,
    get_data_format,
)
from renderers.document import Block, SectionBlock, Text, normalize
from renderers.errors import RenderError, UnknownFormatError
from renderers.sections import (
    SECTION_FORMATS,
    JSONFormat,
    MarkdownFormat,
    PlainFormat,
    SectionFormat,
    XMLFormat,
    get_section_format,
)

__all__ = [
    "DATA_FORMATS",
    "SECTION_FORMATS",
    "Block",
    "DataFormat",
    "JSONDataFormat",
    "JSONFormat",
    "MarkdownDataFormat",
    "MarkdownFormat",
    "PlainDataFormat",
    "PlainFormat",
    "QADataFormat",
    "Record",
    "RenderError",
    "SectionBlock",
    "SectionFormat",
    "SentenceDataFormat",
    "Text",
    "UnknownFormatError",
    "XMLDataFormat",
    "XMLFormat",
    "get_data_format",
    "get_section_format",
    "normalize",
]
