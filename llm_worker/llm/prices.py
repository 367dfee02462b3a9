"""What the models cost: the price table of ``LLM_PRICES_FILE`` and one call's cost.

The file is a JSON object with one entry per model name, each price in US dollars per
million tokens::

    {"gpt-4o-mini": {"input": 0.15, "output": 0.6, "cached_input": 0.075}}

``input`` prices the prompt tokens, ``output`` the completion tokens, and the optional
``cached_input`` the prompt tokens the provider read from its prompt cache (default: the
``input`` price).  There are no built-in prices, which would go stale unseen: a model
without an entry has no known cost, and its calls are counted as unpriced, never as free.

A price per million tokens times a number of tokens is a number of micro-dollars, so a
call's cost is exact but for one rounding to the whole micro-dollar (half up); a job's
cost and the usage counters are sums of those integers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from llm_worker.errors import SettingsError

#: The prices an entry may hold; ``cached_input`` may be left out.
PRICE_KEYS = ("input", "output", "cached_input")
#: Micro-dollars in one US dollar.
MICRO_USD_PER_USD = 1_000_000


@dataclass(frozen=True)
class ModelPrice:
    """One model's prices, in US dollars per million tokens."""

    input: Decimal
    output: Decimal
    cached_input: Decimal

    def cost_micro_usd(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> int:
        """The cost of one call in micro-dollars, rounded half up.

        Parameters:
          prompt_tokens: every prompt token, the cached ones included.
          completion_tokens: the answer's tokens.
          cached_tokens: the prompt tokens read from the provider's cache (at most
            ``prompt_tokens``).
        """
        cached = max(0, min(cached_tokens, prompt_tokens))
        exact = (
            self.input * (prompt_tokens - cached)
            + self.cached_input * cached
            + self.output * completion_tokens
        )
        return int(exact.to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class PriceTable:
    """The prices of ``LLM_PRICES_FILE``, by model name."""

    models: Mapping[str, ModelPrice]

    def price(self, *names: str | None) -> ModelPrice | None:
        """The price of the first of ``names`` that has one (the model asked for, then the
        name the provider answered with), else ``None``."""
        for name in names:
            if name and name in self.models:
                return self.models[name]
        return None


def _problem(path: str, problem: str) -> SettingsError:
    return SettingsError(f"invalid setting LLM_PRICES_FILE ({path}): {problem}")


def _number(model: str, key: str, value: Any, path: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        shown = str(value) if isinstance(value, Decimal) else json.dumps(value, default=str)
        raise _problem(path, f"{key!r} of {model!r} must be a non-negative number, got {shown}")
    return value


def _model_price(model: str, entry: Any, path: str) -> ModelPrice:
    if not model.strip():
        raise _problem(path, "a model name is empty")
    if not isinstance(entry, dict):
        raise _problem(path, f"the entry of {model!r} must be an object of prices")
    unknown = sorted(set(entry) - set(PRICE_KEYS))
    if unknown:
        known = ", ".join(PRICE_KEYS)
        raise _problem(path, f"unknown keys {unknown} in the entry of {model!r} (known: {known})")
    for key in ("input", "output"):
        if key not in entry:
            raise _problem(path, f"the entry of {model!r} has no {key!r} price")
    prices = {key: _number(model, key, entry[key], path) for key in entry}
    return ModelPrice(
        input=prices["input"],
        output=prices["output"],
        cached_input=prices.get("cached_input", prices["input"]),
    )


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a price")


def load_prices(path: str | None) -> PriceTable | None:
    """The price table of the JSON file ``path`` (``LLM_PRICES_FILE``), ``None`` when unset.

    Raises:
      SettingsError: one line naming the file and what is wrong with it: unreadable, not
        a JSON object, an entry that is not an object, an unknown key, a missing
        ``input`` or ``output``, a price that is not a non-negative number.
    """
    if not path:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise _problem(path, f"cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise _problem(path, "not UTF-8 text") from None
    try:
        data = json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=_constant)
    except ValueError as exc:
        raise _problem(path, f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _problem(path, 'must hold a JSON object: {"model": {"input": ..., "output": ...}}')
    return PriceTable({model: _model_price(model, entry, path) for model, entry in data.items()})
