"""Token prices of known hosted models, for cost estimates and dollar budgets.

Prices are USD per one million tokens, as listed by the provider (OpenAI's pricing page) on
2025-08-15. They are estimates: providers change prices, discount cached input and batch calls,
and bill reasoning tokens as output. A runner that knows the exact cost sets
``LLMResult.cost_usd`` and that figure wins.

>>> estimate_cost("gpt-4o-mini", 1_000_000, 1_000_000)
0.75
>>> estimate_cost("gpt-4o-2024-08-06", 1000, 100)  # a dated variant is priced as its family
0.0035
>>> estimate_cost("local:SmolLM2-135M-Instruct", 1000, 100) is None
True
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["PRICES", "PRICES_AS_OF", "Price", "cost_text", "estimate_cost", "price_for"]

PRICES_AS_OF = "2025-08-15"


@dataclasses.dataclass(frozen=True, slots=True)
class Price:
    """USD per one million input (prompt) and output (completion) tokens."""

    input_per_m: float
    output_per_m: float


PRICES: Mapping[str, Price] = MappingProxyType(
    {
        "gpt-5": Price(1.25, 10.00),
        "gpt-5-mini": Price(0.25, 2.00),
        "gpt-5-nano": Price(0.05, 0.40),
        "gpt-4.1": Price(2.00, 8.00),
        "gpt-4.1-mini": Price(0.40, 1.60),
        "gpt-4.1-nano": Price(0.10, 0.40),
        "gpt-4o": Price(2.50, 10.00),
        "gpt-4o-mini": Price(0.15, 0.60),
        "gpt-4-turbo": Price(10.00, 30.00),
        "gpt-4": Price(30.00, 60.00),
        "gpt-3.5-turbo": Price(0.50, 1.50),
        "o1": Price(15.00, 60.00),
        "o1-mini": Price(1.10, 4.40),
        "o3": Price(2.00, 8.00),
        "o3-mini": Price(1.10, 4.40),
        "o4-mini": Price(1.10, 4.40),
    }
)


@functools.lru_cache(maxsize=1024)  # PRICES is read-only; called once per result row
def price_for(model: str) -> Price | None:
    """The price of ``model``: an exact entry, else the longest entry it extends with ``-...``.

    A provider prefix such as ``openai/`` is ignored; the match is case-insensitive. A name
    that only shares characters (``gpt-4.5`` and ``gpt-4``) does not match.

    >>> price_for("gpt-4.1-mini-2025-04-14") == PRICES["gpt-4.1-mini"]
    True
    >>> price_for("openai/o3-mini") == PRICES["o3-mini"]
    True
    >>> price_for("gpt-4.5-preview") is None
    True
    """
    name = model.rsplit("/", 1)[-1].strip().lower()
    best: str | None = None
    for known in PRICES:
        if (name == known or name.startswith(known + "-")) and (
            best is None or len(known) > len(best)
        ):
            best = known
    return None if best is None else PRICES[best]


def estimate_cost(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """Estimated USD cost of one call, or ``None`` for unknown and local models."""
    price = price_for(model)
    if price is None:
        return None
    cost = (prompt_tokens * price.input_per_m + completion_tokens * price.output_per_m) / 1e6
    # Round away float noise (0.1 + 0.2) while keeping far below a millionth of a cent.
    return round(cost, 12)


def cost_text(usd: float, model: str | None) -> str:
    """Dollars spent, or that they are unknown: a hosted model without a known price costs
    something that ``$0.0000`` would misstate as free (embedded models are free).

    >>> cost_text(0.0, "openai:my-finetune"), cost_text(0.0, "local:gemma3")
    ('cost unknown (no price for openai:my-finetune)', '$0.0000')
    >>> cost_text(0.012, "gpt-4o-mini")
    '$0.0120'
    """
    if usd or model is None or model.startswith(("local", "hf:", "scripted")):
        return f"${usd:.4f}"
    name = model.split(":", 1)[1] if ":" in model else model
    return f"${usd:.4f}" if price_for(name) is not None else f"cost unknown (no price for {model})"
