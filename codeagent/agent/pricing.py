"""Estimated cost of a call from its token usage (list prices per model family, US$ per million tokens)."""

from __future__ import annotations

from codeagent.agent.trace import Usage

#: input, output per million tokens; cache writes cost 1.25× input, cache reads 0.1× input.
FAMILY_PRICES: dict[str, tuple[float, float]] = {
    "opus": (5.0, 25.0),
    "sonnet": (3.0, 15.0),
    "haiku": (1.0, 5.0),
}


#: What cache writes and cache reads cost, as multiples of the input price.
CACHE_WRITE, CACHE_READ = 1.25, 0.1


def prices_of(model: str) -> tuple[float, float] | None:
    """(input, output) US$ per million tokens for ``model``, or None for a model of unknown family."""
    family = next((f for f in FAMILY_PRICES if f in model.lower()), None)
    return None if family is None else FAMILY_PRICES[family]


def estimate_cost(model: str, usage: Usage) -> float | None:
    """US$ for ``usage`` on ``model``, or None for a model of unknown family (e.g. a local server's)."""
    prices = prices_of(model)
    if prices is None:
        return None
    price_in, price_out = prices
    dollars = (
        usage.input_tokens * price_in
        + usage.cache_creation_input_tokens * price_in * CACHE_WRITE
        + usage.cache_read_input_tokens * price_in * CACHE_READ
        + usage.output_tokens * price_out
    )
    return dollars / 1_000_000


def format_cost(cost: float | None) -> str:
    return "n/a (unknown model family)" if cost is None else f"≈ ${cost:.4f} (list prices, estimate)"
