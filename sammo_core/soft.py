"""Soft prompts: learned input embeddings as a program component.

A :class:`SoftPrompt` stands in a program where prompt text can (first in a
:class:`~sammo_core.components.MetaPrompt`, typically). Its learned values are a
:class:`SoftTensor`: an immutable ``n_tokens x hidden`` float32 matrix, held as bytes so that
programs hold, hash, compare and serialize it without torch. Rendered to text, a soft prompt is
a placeholder such as ``<soft-prompt n=20 sha=ab12cd34>``; the request of the call carries the
tensor itself (:attr:`~sammo_core.runners.base.LLMRequest.soft_prompts`), which only a runner
that takes input embeddings can use (``--model hf:gemma3``, :mod:`sammo_core.runners.hf`).
Every other runner refuses such a request and says so.

Running or training soft prompts needs the ``soft`` extra (torch, transformers, peft, gguf);
building, hashing and saving programs that hold them does not.

>>> tensor = SoftTensor.from_values([[0.5, -1.0], [2.0, 0.0]])
>>> tensor.shape, tensor.digest[:12], tensor.values()
((2, 2), '02cb90c8c165', [[0.5, -1.0], [2.0, 0.0]])
>>> prompt = SoftPrompt(n_tokens=2, init="Classify the review.").with_tensor(tensor)
>>> prompt.placeholder()
'<soft-prompt n=2 sha=02cb90c8>'
"""

from __future__ import annotations

from typing import Any

import pyglove as pg

from renderers import Text
from sammo_core.components import Blocks, Component
from sammo_core.context import RunContext
from sammo_core.errors import ConfigError
from sammo_core.soft_tensor import (
    HF_RUNNER_HINT,
    MAX_SOFT_BYTES,
    SoftTensor,
    require_soft,
    soft_placeholder,
)

__all__ = ["HF_RUNNER_HINT", "MAX_SOFT_BYTES", "SoftPrompt", "SoftTensor", "require_soft"]


@pg.use_init_args(["n_tokens", "init", "tensor"])
class SoftPrompt(Component):
    """A soft prompt: ``n_tokens`` learned input embeddings, placed before the prompt's text.

    ``init`` is the text a trainer starts from (its token embeddings, repeated or cut to
    ``n_tokens``; empty: seeded random values). ``tensor`` holds the learned values, ``None``
    until trained. The content hash covers ``n_tokens``, ``init`` and the tensor's digest.
    Rendered to text it is a placeholder; a runner that takes embeddings puts the tensor there,
    and any other refuses the call (see the module docstring).

    >>> SoftPrompt(n_tokens=20).placeholder()
    '<soft-prompt n=20 untrained>'
    >>> SoftPrompt(n_tokens=2, tensor=SoftTensor.from_values([[1.0], [2.0], [3.0]]))
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: SoftPrompt(n_tokens=2) holds a 3x1 tensor; its first \
dimension must be n_tokens
    """

    n_tokens: int
    init: str = ""
    tensor: Any = None

    def _on_bound(self) -> None:
        super()._on_bound()
        if not isinstance(self.n_tokens, int) or self.n_tokens < 1:
            raise ConfigError(f"SoftPrompt n_tokens must be an integer >= 1; got {self.n_tokens!r}")
        if self.tensor is not None:
            if not isinstance(self.tensor, SoftTensor):
                raise ConfigError(
                    f"SoftPrompt tensor must be a SoftTensor or None; got "
                    f"{type(self.tensor).__name__} (wrap a torch tensor: SoftTensor.from_torch(t))"
                )
            if self.tensor.shape[0] != self.n_tokens:
                raise ConfigError(
                    f"SoftPrompt(n_tokens={self.n_tokens}) holds a "
                    f"{self.tensor.shape[0]}x{self.tensor.shape[1]} tensor; its first dimension "
                    "must be n_tokens"
                )

    def with_tensor(self, tensor: SoftTensor) -> SoftPrompt:
        """A copy holding ``tensor`` (this node is left as it is)."""
        copy: SoftPrompt = self.clone(override={"tensor": tensor})
        return copy

    def placeholder(self) -> str:
        """The text that stands for this soft prompt in a rendered prompt."""
        if self.tensor is None:
            return f"<soft-prompt n={self.n_tokens} untrained>"
        return self.placeholder_for(self.tensor)

    @staticmethod
    def placeholder_for(tensor: SoftTensor) -> str:
        """The placeholder of a soft prompt holding ``tensor`` (runners find it by this)."""
        return soft_placeholder(tensor)

    #: Soft prompts that open a prompt stay ahead of it in every section format.
    is_soft_prompt = True

    def soft_values(self) -> SoftTensor:
        """The learned values this node sends with its call (an error while untrained)."""
        if self.tensor is None:
            raise ConfigError(
                f"{self.label()} has no learned values yet: train it (sammo-core optimize "
                "--strategy prompt-tuning --model hf:gemma3) or give it tensor=SoftTensor(...)"
            )
        tensor: SoftTensor = self.tensor
        return tensor

    async def build(self, ctx: RunContext) -> Blocks:
        return (Text(self.placeholder()),)

    def label(self) -> str:
        ident = f"#{self.id} " if self.id else ""
        init = f", init={self.init!r}" if self.init else ""
        state = f"tensor={self.tensor!r}" if self.tensor is not None else "untrained"
        return f"{ident}SoftPrompt(n_tokens={self.n_tokens}{init}, {state})"
