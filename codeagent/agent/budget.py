"""Hard limits of one ``%codeagent`` call: tool calls, US$ (per call and per session), input tokens.

A model request is sent only if it cannot pass a limit. Its input is estimated as the previous request's
input, as the API reported it (uncached, cache reads and cache writes, each at its price: this assumes the
prompt cache still holds what that request cached), plus what was added since at :data:`CHARS_PER_TOKEN`,
priced as cache writes (the dearest input); the first request of a call is all priced as cache writes. Its
``max_tokens`` is lowered so that its output cannot spend more than is left. A tool call over
``--max-tool-calls`` raises ``BudgetExceeded`` in the script (:mod:`codeagent.tools.budget`). Either way the
call stops, and :meth:`Budget.stop_message` says which limit stopped it and what was spent.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from codeagent.agent.pricing import CACHE_WRITE, FAMILY_PRICES, estimate_cost, prices_of
from codeagent.agent.trace import Usage
from codeagent.tools.budget import ToolCallLimit

#: Characters per token when estimating a request before it is sent (below the usual ~3.5–4: errs high).
CHARS_PER_TOKEN = 3
#: A request that could not write at least this many tokens (or max_tokens, if lower) is not sent.
MIN_OUTPUT_TOKENS = 256


class UnknownPrice(ValueError):
    """A US$ limit was set for a model whose price codeagent does not know."""


@dataclass(frozen=True)
class Limits:
    """The limits of one call; None means no limit."""

    max_tool_calls: int | None = None
    max_cost: float | None = None
    max_input_tokens: int | None = None
    session_budget_usd: float | None = None

    def any(self) -> bool:
        return any(v is not None for v in (self.max_tool_calls, self.max_cost, self.max_input_tokens)) or (
            self.session_budget_usd is not None
        )


def input_tokens(usage: Usage) -> int:
    """Every input token of ``usage``: uncached, cache writes and cache reads."""
    return usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens


class Budget:
    """Checks each model request of a call against its :class:`Limits` (and the session's spending)."""

    def __init__(self, limits: Limits, model: str, session_spent_usd: float = 0.0) -> None:
        self.limits = limits
        self.model = model
        self.session_spent_usd = session_spent_usd
        self.tools = ToolCallLimit(limits.max_tool_calls)
        self.prices = prices_of(model)
        self.stopped_by: str | None = None  # the limit that stopped the call, e.g. "--max-cost $0.10"
        self.why = ""
        self._last = Usage()  # the previous request's usage, as reported
        self._last_chars = 0  # size of the previous request
        if self.prices is None and (limits.max_cost is not None or limits.session_budget_usd is not None):
            which = "--max-cost" if limits.max_cost is not None else "c.CodeAgent.session_budget_usd"
            raise UnknownPrice(
                f"{which} needs the price of the model, and codeagent does not know the price of {model!r} "
                f"(it knows Claude {', '.join(FAMILY_PRICES)}). Cap this model with --max-input-tokens N instead."
            )

    # -- model requests ------------------------------------------------------------------------------

    def before_request(self, spent: Usage, request_chars: int, max_tokens: int) -> int | None:
        """``max_tokens`` for the next request, or None when it must not be sent (``stopped_by`` says why)."""
        added = math.ceil(max(request_chars - self._last_chars, 0) / CHARS_PER_TOKEN)
        estimate = input_tokens(self._last) + added
        limit = self.limits.max_input_tokens
        if limit is not None and input_tokens(spent) + estimate > limit:
            used = input_tokens(spent)
            self._stop(
                f"--max-input-tokens {limit:,}",
                f"the next model request (≈{estimate:,} input tokens) would pass the limit ({used:,} used)",
            )
            return None
        room = self._dollars_left(spent)
        if room is None:
            return max_tokens
        left, label = room
        assert self.prices is not None
        price_in, price_out = (p / 1_000_000 for p in self.prices)
        last_input = dataclasses.replace(self._last, output_tokens=0)
        input_cost = (estimate_cost(self.model, last_input) or 0.0) + added * price_in * CACHE_WRITE
        output_room = math.floor((left - input_cost) / price_out)
        if output_room < min(MIN_OUTPUT_TOKENS, max_tokens):
            self._stop(
                label,
                f"the next model request (≈{estimate:,} input tokens and at least {min(MIN_OUTPUT_TOKENS, max_tokens)}"
                f" output tokens) could cost more than the ${max(left, 0):.4f} left",
            )
            return None
        return min(max_tokens, output_room)

    def after_request(self, usage: object, request_chars: int) -> None:
        """Remember the input size the API reported for the request just answered."""
        self._last = Usage()
        self._last.add(usage)
        self._last_chars = request_chars

    def _dollars_left(self, spent: Usage) -> tuple[float, str] | None:
        """US$ left under the tightest US$ limit, and that limit's name; None without one."""
        cost = estimate_cost(self.model, spent) or 0.0
        rooms: list[tuple[float, str]] = []
        if self.limits.max_cost is not None:
            rooms.append((self.limits.max_cost - cost, f"--max-cost ${self.limits.max_cost:g}"))
        if self.limits.session_budget_usd is not None:
            rooms.append(
                (
                    self.limits.session_budget_usd - self.session_spent_usd - cost,
                    f"c.CodeAgent.session_budget_usd = {self.limits.session_budget_usd:g} "
                    f"(${self.session_spent_usd:.4f} spent earlier in this session)",
                )
            )
        return min(rooms, key=lambda r: r[0]) if rooms else None

    def _stop(self, label: str, why: str) -> None:
        self.stopped_by, self.why = label, why
        return None

    # -- tool calls ------------------------------------------------------------------------------------

    def check_tools(self) -> bool:
        """True (and ``stopped_by`` set) once a tool call was refused for the tool-call limit."""
        if self.tools.reached and self.stopped_by is None:
            self.stopped_by = f"--max-tool-calls {self.tools.limit}"
            self.why = f"the script asked for more than {self.tools.limit} tool call(s); the rest raised BudgetExceeded"
        return self.tools.reached

    def stop_message(self, spent: Usage) -> str:
        """Which limit stopped the call, why, and what was spent."""
        cost = estimate_cost(self.model, spent)
        money = f"≈ ${cost:.4f}" if cost is not None else "cost unknown (no price for this model)"
        return (
            f"Stopped by {self.stopped_by}: {self.why}. Spent: {spent.requests} model request(s), "
            f"{input_tokens(spent):,} input tokens (cache read {spent.cache_read_input_tokens:,}, "
            f"cache write {spent.cache_creation_input_tokens:,}), {spent.output_tokens:,} output tokens, "
            f"{money}, {self.tools.used} tool call(s)."
        )
