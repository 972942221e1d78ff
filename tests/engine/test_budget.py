"""Budget accounting: reservations for calls in flight, settling, and the stop reasons."""

from __future__ import annotations

import asyncio

import pytest

from core.engine.budget import Budget, BudgetedProvider, BudgetExceeded, default_price, worst_case
from core.engine.stats import wilson_interval
from core.llm.base import LLMRequest, LLMResponse


def req(chars: int = 3000, max_tokens: int = 1000, model: str = "claude-haiku-4-5") -> LLMRequest:
    return LLMRequest(model=model, system="", messages=[{"role": "user", "content": "x" * chars}],
                      max_tokens=max_tokens)


def test_worst_case_prices_prompt_and_max_output():
    tokens, usd = worst_case(req(3000, 1000), False, default_price)
    assert tokens == 1000 + 1000
    assert usd == pytest.approx((1000 * 1.0 + 1000 * 5.0) / 1e6)  # haiku: $1 in, $5 out per MTok
    assert worst_case(req(), True, default_price)[1] == 0.0  # simulated calls cost nothing


def test_in_flight_reservations_count_against_the_budget():
    b = Budget(max_usd=0.01)
    r1 = b.reserve(100, 0.004)
    r2 = b.reserve(100, 0.004)
    with pytest.raises(BudgetExceeded, match=r"in flight \$0.0080"):
        b.reserve(100, 0.004)
    b.settle(r1, 50, 0.001)  # real cost below the bound frees room
    b.reserve(100, 0.004)
    assert b.spent_usd == pytest.approx(0.001)
    b.settle(r2, 50, 0.001)
    assert b.reserved_usd == pytest.approx(0.004)


def test_token_budget_and_wall_budget_reasons():
    b = Budget(max_tokens=1000, spent_tokens=900)
    assert "token budget" in b.check(200, 0)
    assert b.check(100, 0) is None
    w = Budget(max_wall_s=10, wall_used_s=11)
    assert "wall-time budget" in w.wall_exhausted()
    assert "wall-time" in w.check(0, 0)


class Priced:
    name, simulated = "fake", False

    def __init__(self, cost: float, fail: bool = False):
        self.cost, self.fail = cost, fail

    async def complete(self, r, on_delta=None):
        await asyncio.sleep(0.01)
        if self.fail:
            raise RuntimeError("stream broke")
        return LLMResponse(text="ok", model=r.model, request_id="r", stop_reason="end_turn", input_tokens=10,
                           output_tokens=5, cache_creation_input_tokens=0, cache_read_input_tokens=0,
                           usage_raw={}, cost_usd=self.cost, latency_ms=10, attempts=1)


async def test_budgeted_provider_settles_real_cost_and_charges_failures_their_bound():
    b = Budget(max_usd=1.0)
    p = BudgetedProvider(Priced(0.002), b, default_price)
    await p.complete(req())
    assert b.spent_usd == pytest.approx(0.002) and b.spent_tokens == 15 and not b.in_flight
    bound = worst_case(req(), False, default_price)[1]
    failing = BudgetedProvider(Priced(0.0, fail=True), b, default_price)
    with pytest.raises(RuntimeError):
        await failing.complete(req())
    assert b.spent_usd == pytest.approx(0.002 + bound)  # unknown usage: charged the bound


async def test_concurrent_calls_never_exceed_the_cap():
    bound = worst_case(req(), False, default_price)[1]
    b = Budget(max_usd=bound * 2.5)
    p = BudgetedProvider(Priced(bound), b, default_price)  # every call costs its full bound
    results = await asyncio.gather(*(p.complete(req()) for _ in range(6)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert len(refused) == 4 and b.spent_usd <= b.max_usd


def test_wilson_interval():
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-3) and hi == pytest.approx(0.7634, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(10, 10)
    assert hi == pytest.approx(1.0) and 0.69 < lo < 0.73


def test_an_unknown_price_cannot_be_kept_under_a_dollar_budget():
    """A call whose price nobody knows never starts under a dollar budget (and is free to
    start under a token budget alone)."""
    from core.engine.budget import price_of
    from core.llm.openai_provider import OpenAIProvider
    from core.llm.pricing import PriceBook

    hosted = OpenAIProvider(base_url="https://llm.example.com/v1", api_key="sk-test", prices=PriceBook())
    local = OpenAIProvider(base_url="http://127.0.0.1:8080/v1", prices=PriceBook())
    tokens, usd = worst_case(req(3000, 1000), False, price_of(hosted))
    assert usd is None and tokens > 1000
    assert worst_case(req(3000, 1000), False, price_of(local))[1] == 0.0
    with pytest.raises(BudgetExceeded, match="price of this call is unknown"):
        Budget(max_usd=5.0).reserve(tokens, usd)
    Budget(max_tokens=10**6).reserve(tokens, usd)  # a token budget can still be kept
    assert default_price("claude-unreleased-9", 1000, 1000) is None
    assert default_price("claude-haiku-4-5", 1_000_000, 0) == 1.0
