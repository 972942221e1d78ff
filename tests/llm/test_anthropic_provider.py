"""The real anthropic SDK (2.x, httpx2) against the loopback fake Messages API."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import time
from decimal import Decimal
from pathlib import Path

import pytest

from core.llm.anthropic_provider import AnthropicProvider, classify, is_spend_limit, parse_retry_after
from core.llm.base import STREAM_RESET, DeltaBuffer, LLMRequest, ProviderError, default_provider_name
from core.llm.fake_server import DEFAULT_ANSWER, FakeAnthropic, Fault
from core.llm.ledger import LedgeredProvider, MemorySink
from core.llm.pricing import PriceBook, parse_price_config

MODEL = "claude-sonnet-4-6"
PRICES = json.loads((Path(__file__).parents[2] / "core/llm/prices.json").read_text())


def tok(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / 4)


def expected_cost(model: str, inp: int, out: int, cw: int, cr: int) -> float:
    p = PRICES["models"][model]
    d = (Decimal(inp) * Decimal(str(p["input"])) + Decimal(out) * Decimal(str(p["output"]))
         + Decimal(cw) * Decimal(str(p["cache_write"])) + Decimal(cr) * Decimal(str(p["cache_read"])))
    return float(d / Decimal(1_000_000))


SYSTEM = "You write code. " * 40
SPEC = "# Spec\n" + "The service answers JSON. " * 200
TASK = "Write the complete codebase for generation 1."


def request(model: str = MODEL, **kw) -> LLMRequest:
    return LLMRequest(
        model=model,
        system=SYSTEM,
        messages=[{"role": "user", "content": [{"type": "text", "text": SPEC},
                                                {"type": "text", "text": TASK}]}],
        **kw,
    )


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, d: float) -> None:
        self.delays.append(d)


def list_priced(base_url: str) -> PriceBook:
    """The fake stands in for the Anthropic API: its Claude models cost list prices (a loopback
    server would otherwise be a free local one)."""
    return PriceBook(config=parse_price_config(f'[[endpoint]]\nbase_url = "{base_url}"\nlist_prices = true\n'))


def provider(fake: FakeAnthropic, **kw) -> AnthropicProvider:
    kw.setdefault("sleep", Sleeps())
    kw.setdefault("prices", list_priced(fake.base_url))
    return AnthropicProvider(api_key="test-key", base_url=fake.base_url, **kw)


async def test_deltas_arrive_incrementally_before_completion():
    async with FakeAnthropic(chunk_size=8, chunk_delay=0.01) as fake:
        p = provider(fake)
        stamps: list[float] = []
        chunks: list[str] = []

        def on_delta(chunk: str) -> None:
            stamps.append(time.monotonic())
            chunks.append(chunk)

        resp = await p.complete(request(), on_delta)
        done = time.monotonic()
        await p.aclose()
    n_chunks = math.ceil(len(DEFAULT_ANSWER) / 8)
    assert len(chunks) == n_chunks > 20
    assert "".join(chunks) == resp.text == DEFAULT_ANSWER
    # the first delta came long before the end: at least ~half the chunk delays earlier
    assert done - stamps[0] > (n_chunks - 1) * 0.01 * 0.5
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] > 0.05


async def test_usage_and_exact_cost_with_cache_creation_then_read():
    async with FakeAnthropic() as fake:
        p = provider(fake)
        sink = MemorySink()
        lp = LedgeredProvider(p, sink, generation=7, campaign_id="c1")
        r1 = await lp.complete(request())
        r2 = await lp.complete(request())
        body = fake.message_requests()[0].body
        await p.aclose()
    prefix = tok(SYSTEM) + tok(SPEC)
    out = tok(DEFAULT_ANSWER)
    assert (r1.input_tokens, r1.cache_creation_input_tokens, r1.cache_read_input_tokens, r1.output_tokens) == (
        tok(TASK), prefix, 0, out)
    assert (r2.input_tokens, r2.cache_creation_input_tokens, r2.cache_read_input_tokens, r2.output_tokens) == (
        tok(TASK), 0, prefix, out)
    c1 = expected_cost(MODEL, tok(TASK), out, prefix, 0)
    c2 = expected_cost(MODEL, tok(TASK), out, 0, prefix)
    assert r1.cost_usd == c1 and r2.cost_usd == c2
    assert c2 < c1  # a cache read is cheaper than a cache write
    # the figures themselves, by hand: sonnet $3 in, $15 out, $3.75 cache write, $0.30 read per MTok
    assert c1 == pytest.approx((tok(TASK) * 3 + out * 15 + prefix * 3.75) / 1e6, rel=1e-12)
    assert r1.price_known and r1.usage_raw["cache_creation_input_tokens"] == prefix
    assert r2.usage_raw["cache_read_input_tokens"] == prefix
    assert r1.request_id == "req_fake_000001" and r2.request_id == "req_fake_000002"
    # ledger: one ok row each, exact figures, raw usage JSON kept
    assert [c.outcome for c in sink.calls] == ["ok", "ok"]
    assert [c.cost_usd for c in sink.calls] == [c1, c2]
    assert sink.calls[1].cache_read_input_tokens == prefix and sink.calls[0].cache_creation_input_tokens == prefix
    assert json.loads(sink.calls[0].usage_json)["cache_creation_input_tokens"] == prefix
    assert sink.calls[0].generation == 7 and sink.calls[0].campaign_id == "c1"
    assert sink.calls[0].request_id == "req_fake_000001" and not sink.calls[0].simulated
    # prompt caching on the wire: system block and the spec block carry the breakpoints
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    blocks = body["messages"][0]["content"]
    assert blocks[0]["cache_control"] == {"type": "ephemeral"} and "cache_control" not in blocks[1]
    assert body["stream"] is True and body["max_tokens"] == 32000


async def test_overloaded_then_success_is_retried_and_both_attempts_ledgered():
    async with FakeAnthropic() as fake:
        fake.inject(Fault.overloaded())
        sleeps = Sleeps()
        p = provider(fake, sleep=sleeps, backoff_base=1.0)
        sink = MemorySink()
        resp = await LedgeredProvider(p, sink).complete(request())
        await p.aclose()
    assert resp.attempts == 2 and resp.text == DEFAULT_ANSWER
    assert len(fake.message_requests()) == 2
    assert [c.outcome for c in sink.calls] == ["retried", "ok"]
    assert sink.calls[0].error.startswith("overloaded:") and sink.calls[0].request_id == "req_fake_000001"
    assert sink.calls[1].request_id == "req_fake_000002"
    assert len(sleeps.delays) == 1 and 0.5 <= sleeps.delays[0] <= 1.0  # equal jitter of 1s


@pytest.mark.parametrize("with_code", [True, False], ids=["error_code", "message"])
async def test_spend_limit_429_is_not_retried(with_code):
    async with FakeAnthropic() as fake:
        fake.inject(Fault.spend_limit(with_code=with_code))
        sleeps = Sleeps()
        p = provider(fake, sleep=sleeps)
        sink = MemorySink()
        with pytest.raises(ProviderError) as ei:
            await LedgeredProvider(p, sink).complete(request())
        await p.aclose()
    err = ei.value
    assert err.kind == "spend_limit" and not err.retryable and err.status == 429
    assert err.attempts == 1 and "spend limit" in str(err) and "not retrying" in str(err)
    assert err.request_id == "req_fake_000001"
    assert len(fake.message_requests()) == 1 and sleeps.delays == []
    assert [c.outcome for c in sink.calls] == ["refused"]
    assert sink.calls[0].error.startswith("spend_limit:")


async def test_plain_rate_limit_is_retried_honouring_retry_after():
    async with FakeAnthropic() as fake:
        fake.inject(Fault.rate_limit(retry_after=2.5), Fault.rate_limit(retry_after=None, retry_after_ms=1500))
        sleeps = Sleeps()
        p = provider(fake, sleep=sleeps)
        resp = await p.complete(request())
        await p.aclose()
    assert resp.attempts == 3 and sleeps.delays == [2.5, 1.5]


async def test_mid_stream_error_is_retried_whole_without_duplicate_text():
    async with FakeAnthropic(chunk_size=10) as fake:
        fake.inject(Fault.stream_error(after_chunks=3))
        p = provider(fake)
        sink = MemorySink()
        buf = DeltaBuffer()
        seen: list[str] = []
        buf.forward = seen.append
        resp = await LedgeredProvider(p, sink).complete(request(), buf)
        await p.aclose()
    assert resp.attempts == 2
    assert resp.text == DEFAULT_ANSWER and buf.text == DEFAULT_ANSWER  # not duplicated
    assert buf.resets == 1 and STREAM_RESET in seen
    assert seen.index(STREAM_RESET) == 3  # three chunks of the broken attempt, then the reset
    assert [c.outcome for c in sink.calls] == ["retried", "ok"]
    assert sink.calls[0].error.startswith("stream:") and "mid-stream" in sink.calls[0].error
    # the broken attempt was billed for its input (message_start carried usage)
    assert sink.calls[0].cache_creation_input_tokens == tok(SYSTEM) + tok(SPEC)


async def test_truncated_stream_is_retried():
    async with FakeAnthropic(chunk_size=10) as fake:
        fake.inject(Fault.truncate(after_chunks=2))
        p = provider(fake)
        sink = MemorySink()
        buf = DeltaBuffer()
        resp = await LedgeredProvider(p, sink).complete(request(), buf)
        await p.aclose()
    assert resp.attempts == 2 and resp.text == DEFAULT_ANSWER == buf.text and buf.resets == 1
    assert [c.outcome for c in sink.calls] == ["retried", "ok"]
    assert sink.calls[0].error.startswith("stream:")


async def test_server_errors_exhaust_max_attempts():
    async with FakeAnthropic() as fake:
        fake.inject(*[Fault.server_error() for _ in range(3)])
        sleeps = Sleeps()
        p = provider(fake, sleep=sleeps, max_attempts=3, backoff_base=1.0, backoff_max=60)
        sink = MemorySink()
        with pytest.raises(ProviderError) as ei:
            await LedgeredProvider(p, sink).complete(request())
        await p.aclose()
    assert ei.value.kind == "server" and ei.value.attempts == 3 and "gave up after 3 attempts" in str(ei.value)
    assert [c.outcome for c in sink.calls] == ["retried", "retried", "error"]
    assert len(sleeps.delays) == 2
    assert 0.5 <= sleeps.delays[0] <= 1.0 and 1.0 <= sleeps.delays[1] <= 2.0  # exponential


@pytest.mark.parametrize("status,kind", [(400, "bad_request"), (401, "auth"), (403, "permission"),
                                         (404, "not_found")])
async def test_client_errors_are_not_retried(status, kind):
    async with FakeAnthropic() as fake:
        fake.inject(Fault.http(status, {"type": "error", "error": {"type": "x", "message": "nope"}}))
        p = provider(fake)
        with pytest.raises(ProviderError) as ei:
            await p.complete(request())
        await p.aclose()
    assert ei.value.kind == kind and ei.value.attempts == 1 and len(fake.message_requests()) == 1


@pytest.mark.parametrize("status,kind", [(408, "timeout"), (409, "conflict"), (503, "server")])
async def test_transient_statuses_are_retried(status, kind):
    async with FakeAnthropic() as fake:
        fake.inject(Fault.http(status))
        sink = MemorySink()
        p = provider(fake)
        resp = await LedgeredProvider(p, sink).complete(request())
        await p.aclose()
    assert resp.attempts == 2 and sink.calls[0].error.startswith(kind + ":")


async def test_x_should_retry_false_stops_retries():
    async with FakeAnthropic() as fake:
        fake.inject(Fault.http(500, None, **{"x-should-retry": "false"}))
        p = provider(fake)
        with pytest.raises(ProviderError) as ei:
            await p.complete(request())
        await p.aclose()
    assert ei.value.kind == "server" and ei.value.attempts == 1


async def test_model_fallback_after_exhausting_retries_on_overload():
    async with FakeAnthropic() as fake:
        fake.inject(Fault.overloaded(), Fault.overloaded())
        p = provider(fake, max_attempts=2, fallback_models=["claude-haiku-4-5"])
        sink = MemorySink()
        resp = await LedgeredProvider(p, sink).complete(request())
        await p.aclose()
    assert resp.model == "claude-haiku-4-5" and resp.fallback_from == MODEL and resp.attempts == 3
    assert [r.body["model"] for r in fake.message_requests()] == [MODEL, MODEL, "claude-haiku-4-5"]
    assert [(c.outcome, c.model, c.fallback_from) for c in sink.calls] == [
        ("retried", MODEL, None), ("retried", MODEL, None), ("ok", "claude-haiku-4-5", MODEL)]
    assert "falling back to claude-haiku-4-5" in sink.calls[1].error
    out = tok(DEFAULT_ANSWER)
    assert resp.cost_usd == expected_cost("claude-haiku-4-5", resp.input_tokens, out,
                                          resp.cache_creation_input_tokens, resp.cache_read_input_tokens)


async def test_no_fallback_for_non_overload_errors():
    async with FakeAnthropic() as fake:
        fake.inject(Fault.server_error(), Fault.server_error())
        p = provider(fake, max_attempts=2, fallback_models=["claude-haiku-4-5"])
        with pytest.raises(ProviderError) as ei:
            await p.complete(request())
        await p.aclose()
    assert ei.value.kind == "server" and len(fake.message_requests()) == 2


async def test_timeout_is_reported_and_retried():
    async with FakeAnthropic(latency=1.0) as fake:
        p = provider(fake, timeout=0.2, max_attempts=2)
        sink = MemorySink()
        t0 = time.monotonic()
        with pytest.raises(ProviderError) as ei:
            await LedgeredProvider(p, sink).complete(request())
        await p.aclose()
    assert ei.value.kind == "timeout" and ei.value.attempts == 2 and time.monotonic() - t0 < 1.5
    assert [c.outcome for c in sink.calls] == ["retried", "error"]


async def test_attempt_timeout_bounds_a_trickling_stream():
    async with FakeAnthropic(chunk_size=4, chunk_delay=0.05) as fake:
        p = provider(fake, attempt_timeout=0.3, max_attempts=1)
        with pytest.raises(ProviderError) as ei:
            await p.complete(request())
        await p.aclose()
    assert ei.value.kind == "timeout"


async def test_unknown_model_has_an_unknown_price_never_a_guessed_one():
    async with FakeAnthropic() as fake:
        p = provider(fake)
        sink = MemorySink()
        resp = await LedgeredProvider(p, sink).complete(request(model="claude-unreleased-9"))
        await p.aclose()
    assert resp.price_known is False and resp.price_source == "unknown"
    assert resp.cost_usd == 0.0 and resp.output_tokens > 0  # recorded at $0, marked unknown
    assert sink.calls[0].price_source == "unknown" and not sink.calls[0].price_known


async def test_a_local_messages_server_costs_nothing_whatever_the_model_is_called(monkeypatch):
    """The $0.499440 mispricing: a local model behind ANTHROPIC_BASE_URL was priced as the most
    expensive Claude. A local base URL is free — even for a model named like a Claude."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    async with FakeAnthropic() as fake:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
        p = AnthropicProvider(sleep=Sleeps(), prices=PriceBook())  # no key: a local server needs none
        sink = MemorySink()
        r1 = await LedgeredProvider(p, sink).complete(request(model="gemma-3-270m"))
        r2 = await LedgeredProvider(p, sink).complete(request(model="claude-opus-4-1"))
        await p.aclose()
        assert p.base_url == fake.base_url and p.local
    assert (r1.cost_usd, r1.price_source, r2.cost_usd, r2.price_source) == (0.0, "local", 0.0, "local")
    assert r1.output_tokens > 0 and r2.output_tokens > 0
    assert [c.price_source for c in sink.calls] == ["local", "local"]
    # the key the SDK was given is a placeholder, not anything from the environment
    sent = {k.lower(): v for k, v in fake.message_requests()[0].headers.items()}
    assert "local-server-needs-no-key" in (sent.get("x-api-key", "") + sent.get("authorization", ""))


def test_a_remote_server_without_a_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    with pytest.raises(ProviderError) as ei:
        AnthropicProvider(base_url="https://claude-proxy.example.com")
    assert ei.value.kind == "auth" and "ANTHROPIC_API_KEY" in str(ei.value)


def test_dated_model_ids_resolve_to_their_family_price():
    from core.llm.pricing import default_prices

    table = default_prices()
    assert table.resolve("claude-sonnet-4-5-20250929") == "claude-sonnet-4-5"
    assert table.resolve("claude-opus-4-20250514") == "claude-opus-4-0"
    assert table.price_for("claude-haiku-4-5-20251001") == (table.prices["claude-haiku-4-5"], True)
    assert table.effective_date == PRICES["effective_date"]


def test_missing_api_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ProviderError) as ei:
        AnthropicProvider()
    assert ei.value.kind == "auth" and "ANTHROPIC_API_KEY" in str(ei.value)


def test_default_provider_name(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert default_provider_name() == "sim"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    assert default_provider_name() == "anthropic"


# --- the classification rules, unit by unit ------------------------------------------


def body(message: str, etype: str = "rate_limit_error", code: str | None = None) -> dict:
    err: dict = {"type": etype, "message": message}
    if code:
        err["details"] = {"error_code": code}
    return {"type": "error", "error": err}


@pytest.mark.parametrize("status,b,expected", [
    (429, body("x", code="enforced_spend_limit_reached"), True),
    (429, body("x", code="contract_spend_limit_reached"), True),
    (429, body("This request would exceed your organization's monthly spend limit."), True),
    (400, body("Your credit balance is too low to access the Anthropic API.", "invalid_request_error"), True),
    (400, body("You have reached your specified API usage limits.", "invalid_request_error"), True),
    (403, body("x", "billing_error"), True),
    (402, body("payment required", "api_error"), True),
    (429, body("This request would exceed the rate limit for your organization of 50 requests per minute."), False),
    (429, body("x", code="ramp_limit_exceeded"), False),
    (529, body("Overloaded", "overloaded_error"), False),
    (429, "spend limit", True),
    (429, None, False),
])
def test_spend_limit_heuristic(status, b, expected):
    assert is_spend_limit(status, b) is expected


@pytest.mark.parametrize("status,expected", [
    (408, ("timeout", True)), (409, ("conflict", True)), (429, ("rate_limit", True)),
    (500, ("server", True)), (502, ("server", True)), (529, ("overloaded", True)),
    (400, ("bad_request", False)), (401, ("auth", False)), (403, ("permission", False)),
    (404, ("not_found", False)), (418, ("client", False)), (None, ("stream", True)),
])
def test_classify(status, expected):
    assert classify(status, body("x", "api_error")) == expected


def test_in_stream_error_types_that_will_not_go_away_are_not_retried():
    assert classify(None, body("bad", "invalid_request_error")) == ("stream", False)
    assert classify(None, body("Overloaded", "overloaded_error")) == ("stream", True)


def test_parse_retry_after():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "3"}) == 0.25
    assert parse_retry_after({"retry-after": "garbage"}) is None
    assert parse_retry_after({}) is None
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= parse_retry_after({"retry-after": future}) <= 31


def test_build_params_places_cache_breakpoints():
    req = LLMRequest(model=MODEL, system="s", messages=[{"role": "user", "content": "just text"}])
    params = AnthropicProvider.build_params(req, MODEL)
    assert params["system"] == [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}]
    assert params["messages"][0]["content"] == [
        {"type": "text", "text": "just text", "cache_control": {"type": "ephemeral"}}]
    assert req.messages[0]["content"] == "just text"  # the request itself is not modified
    no_cache = AnthropicProvider.build_params(
        LLMRequest(model=MODEL, system="s", messages=[{"role": "user", "content": "t"}], cache_prefix_blocks=0),
        MODEL)
    assert "cache_control" not in json.dumps(no_cache)
    two = AnthropicProvider.build_params(request(cache_prefix_blocks=2), MODEL)
    assert [("cache_control" in b) for b in two["messages"][0]["content"]] == [False, True]


# --- the network guard itself ---------------------------------------------------------


def test_guard_refuses_non_loopback_connect(network_violations):
    from tests.llm.conftest import NetworkGuardError

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkGuardError):
            s.connect(("10.255.255.1", 443))
    finally:
        s.close()
    with pytest.raises(NetworkGuardError):
        socket.getaddrinfo("api.anthropic.com", 443)
    assert network_violations.new == ["connect to 10.255.255.1:443", "resolve 'api.anthropic.com'"]


async def test_guard_catches_the_sdk_pointed_at_the_real_api(network_violations):
    p = AnthropicProvider(api_key="k", max_attempts=1, sleep=Sleeps())  # default base_url: api.anthropic.com
    with pytest.raises(ProviderError) as ei:
        await p.complete(request())
    await p.aclose()
    assert ei.value.kind in ("connection", "timeout")
    assert any("api.anthropic.com" in v for v in network_violations.new)


def test_guard_allows_loopback():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        c.connect(srv.getsockname())
        assert socket.getaddrinfo("localhost", 80)
    finally:
        c.close()
        srv.close()


async def test_sdk_runs_in_parallel_calls():
    async with FakeAnthropic(chunk_delay=0.005) as fake:
        p = provider(fake)
        resps = await asyncio.gather(*[p.complete(request()) for _ in range(5)])
        await p.aclose()
    assert all(r.text == DEFAULT_ANSWER for r in resps)
    assert len({r.request_id for r in resps}) == 5
