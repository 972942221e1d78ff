"""Budgets: tokens, dollars, wall time. Calls in flight count against the budget.

Before an LLM call starts, its worst case (estimated prompt tokens plus max_tokens of
output, priced at the model's rate) is reserved. A call whose reservation does not fit
beside the spend so far and the other reservations never starts, so the overshoot is
bounded by what was already in flight when the budget ran out (here: zero beyond the
reservations, which are upper bounds).

A call whose price is unknown (``core.llm.pricing``: a hosted server with no configured
price) cannot be bounded in dollars: under a dollar budget it never starts, and the reason
says how to give the model a price (or to use a token budget instead).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from core.llm.base import LLMRequest, LLMResponse


class BudgetExceeded(Exception):
    """Starting this call could exceed a budget; the message says which and by how much."""


@dataclass
class Reservation:
    tokens: int
    usd: float


@dataclass
class Budget:
    max_tokens: int | None = None
    max_usd: float | None = None
    max_wall_s: float | None = None
    spent_tokens: int = 0
    spent_usd: float = 0.0
    wall_used_s: float = 0.0  # from earlier engine runs of the same campaign
    started: float = field(default_factory=time.monotonic)
    in_flight: list[Reservation] = field(default_factory=list)

    @property
    def reserved_tokens(self) -> int:
        return sum(r.tokens for r in self.in_flight)

    @property
    def reserved_usd(self) -> float:
        return sum(r.usd for r in self.in_flight)

    def wall_elapsed(self) -> float:
        return self.wall_used_s + (time.monotonic() - self.started)

    def wall_exhausted(self) -> str | None:
        if self.max_wall_s is not None and self.wall_elapsed() >= self.max_wall_s:
            return f"wall-time budget reached ({self.wall_elapsed():.0f} s of {self.max_wall_s:.0f} s)"
        return None

    def check(self, tokens: int, usd: float | None) -> str | None:
        """Why a call of this size may not start now, or None (``usd`` None: unknown price)."""
        if usd is None and self.max_usd is not None:
            return ("the price of this call is unknown, so a dollar budget cannot be kept: give the model "
                    "a price in CAMBRIAN_HOME/prices.toml, or use a token budget")
        if self.max_tokens is not None:
            total = self.spent_tokens + self.reserved_tokens + tokens
            if total > self.max_tokens:
                return (f"token budget would be exceeded: spent {self.spent_tokens}, in flight "
                        f"{self.reserved_tokens}, next call up to {tokens}, cap {self.max_tokens}")
        if self.max_usd is not None:
            total = self.spent_usd + self.reserved_usd + (usd or 0.0)
            if total > self.max_usd + 1e-12:
                return (f"dollar budget would be exceeded: spent ${self.spent_usd:.4f}, in flight "
                        f"${self.reserved_usd:.4f}, next call up to ${usd:.4f}, cap ${self.max_usd:.4f}")
        return self.wall_exhausted()

    def reserve(self, tokens: int, usd: float | None) -> Reservation:
        why = self.check(tokens, usd)
        if why:
            raise BudgetExceeded(why)
        r = Reservation(tokens, usd or 0.0)
        self.in_flight.append(r)
        return r

    def settle(self, r: Reservation, tokens: int, usd: float) -> None:
        self.in_flight.remove(r)
        self.spent_tokens += tokens
        self.spent_usd += usd


Price = Callable[[str, int, int], "float | None"]


def worst_case(req: LLMRequest, simulated: bool, price: Price) -> tuple[int, float | None]:
    """Upper bound of one call: prompt tokens (chars/3, generous) + max_tokens out; the dollar
    bound is None when the model's price is unknown."""
    prompt = math.ceil(req.prompt_chars() / 3)
    tokens = prompt + req.max_tokens
    usd = 0.0 if simulated else price(req.model, prompt, req.max_tokens)
    return tokens, usd


class BudgetedProvider:
    """Reserves each call's worst case before it starts; settles with the real usage."""

    def __init__(self, inner, budget: Budget, price: Price):
        self.inner = inner
        self.budget = budget
        self.price = price
        self.name = getattr(inner, "name", "?")
        self.simulated = getattr(inner, "simulated", False)

    async def complete(self, req: LLMRequest, on_delta=None) -> LLMResponse:
        tokens, usd = worst_case(req, self.simulated, self.price)
        r = self.budget.reserve(tokens, usd)
        used_tokens, used_usd = tokens, usd or 0.0  # a call that dies mid-way is charged its bound
        try:
            resp = await self.inner.complete(req, on_delta)
            used_tokens, used_usd = resp.prompt_tokens + resp.output_tokens, resp.cost_usd
            return resp
        finally:
            self.budget.settle(r, used_tokens, used_usd)


def default_price(model: str, prompt_tokens: int, output_tokens: int) -> float | None:
    """The Anthropic API's list price (None: not a listed model)."""
    from core.llm.pricing import list_price_quote

    return list_price_quote(model).usd(prompt_tokens, output_tokens)


def price_of(provider: Any) -> Price:
    """The price function for calls through ``provider``: its own quotes (a local server is
    free, an unpriced hosted model unknown), or list prices for providers without quotes."""
    from core.llm.base import unwrap

    quote = getattr(unwrap(provider), "quote", None)
    if quote is None:
        return default_price
    return lambda model, prompt, out: quote(model).usd(prompt, out)
