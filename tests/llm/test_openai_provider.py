"""The real openai SDK (3.x, httpx2) against the loopback fake chat-completions server."""

from __future__ import annotations

import json
import math

import pytest

from core.llm.base import STREAM_RESET, DeltaBuffer, LLMRequest, ProviderError
from core.llm.fake_openai import FakeOpenAI
from core.llm.fake_server import DEFAULT_ANSWER, Fault
from core.llm.ledger import LedgeredProvider, MemorySink
from core.llm.openai_provider import OpenAIProvider, map_finish_reason
from core.llm.pricing import PriceBook, parse_price_config

SYSTEM = "You write code. " * 10
SPEC = "# Spec\n" + "The service answers JSON. " * 40
TASK = "Write the complete codebase."
MODEL = "fake-model"


def tok(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / 4)


def request(model: str = MODEL, **kw) -> LLMRequest:
    return LLMRequest(model=model, system=SYSTEM,
                      messages=[{"role": "user", "content": [{"type": "text", "text": SPEC},
                                                             {"type": "text", "text": TASK}]}], **kw)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, d: float) -> None:
        self.delays.append(d)


def provider(fake: FakeOpenAI, **kw) -> OpenAIProvider:
    kw.setdefault("sleep", Sleeps())
    kw.setdefault("prices", PriceBook())
    return OpenAIProvider(base_url=fake.base_url, **kw)


PROMPT_TOKENS = tok(SYSTEM) + tok(SPEC + "\n\n" + TASK)


async def test_streams_deltas_usage_and_a_free_local_price():
    async with FakeOpenAI(chunk_size=8) as fake:
        p = provider(fake)
        chunks: list[str] = []
        sink = MemorySink()
        resp = await LedgeredProvider(p, sink, generation=3, campaign_id="c").complete(request(), chunks.append)
        await p.aclose()
        body = fake.chat_requests()[0].body
    assert len(chunks) == math.ceil(len(DEFAULT_ANSWER) / 8) > 20 and resp.deltas == len(chunks)
    assert "".join(chunks) == resp.text == DEFAULT_ANSWER
    # usage exactly as the server reported it
    assert resp.usage_raw == {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": tok(DEFAULT_ANSWER),
                              "total_tokens": PROMPT_TOKENS + tok(DEFAULT_ANSWER)}
    assert (resp.input_tokens, resp.output_tokens, resp.cache_read_input_tokens) == (
        PROMPT_TOKENS, tok(DEFAULT_ANSWER), 0)
    assert not resp.usage_estimated and resp.stop_reason == "end_turn" and not resp.truncated
    assert resp.request_id == "req_oai_000001"
    assert (resp.cost_usd, resp.price_source) == (0.0, "local")
    # the wire: system first, text blocks joined, streaming with usage, max_tokens for a local server
    assert body["messages"][0] == {"role": "system", "content": SYSTEM}
    assert body["messages"][1] == {"role": "user", "content": SPEC + "\n\n" + TASK}
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 32000 and "max_completion_tokens" not in body
    row = sink.calls[0]
    assert (row.provider, row.outcome, row.price_source, row.usage_estimated) == ("openai", "ok", "local", False)
    assert json.loads(row.usage_json)["prompt_tokens"] == PROMPT_TOKENS and row.generation == 3


async def test_no_usage_from_the_server_is_estimated_and_marked():
    async with FakeOpenAI(report_usage=False) as fake:
        p = provider(fake)
        sink = MemorySink()
        resp = await LedgeredProvider(p, sink).complete(request())
        await p.aclose()
    req = request()
    assert resp.usage_estimated and resp.usage_raw == {}
    assert resp.input_tokens == math.ceil(req.prompt_chars() / 4)
    assert resp.output_tokens == math.ceil(len(DEFAULT_ANSWER) / 4)
    assert sink.calls[0].usage_estimated is True


async def test_cached_prompt_tokens_map_to_cache_reads():
    async with FakeOpenAI(cached_prefix=True) as fake:
        p = provider(fake)
        r1 = await p.complete(request())
        r2 = await p.complete(request())
        await p.aclose()
    assert r1.cache_read_input_tokens == 0 and r1.input_tokens == PROMPT_TOKENS
    assert r2.cache_read_input_tokens == tok(SYSTEM) and r2.input_tokens == PROMPT_TOKENS - tok(SYSTEM)
    assert r2.usage_raw["prompt_tokens_details"] == {"cached_tokens": tok(SYSTEM)}


async def test_length_finish_is_a_truncation():
    async with FakeOpenAI() as fake:
        p = provider(fake)
        resp = await p.complete(request(max_tokens=10))
        await p.aclose()
    assert resp.stop_reason == "max_tokens" and resp.truncated
    assert resp.text == DEFAULT_ANSWER[:40] and resp.output_tokens == 10


def test_finish_reasons_map_to_one_vocabulary():
    assert [map_finish_reason(r) for r in ("stop", "length", "content_filter", "tool_calls", "function_call",
                                           "eos", None)] == [
        "end_turn", "max_tokens", "refusal", "tool_use", "tool_use", "other:eos", None]


async def test_rate_limit_then_success_is_retried_with_retry_after_and_ledgered():
    async with FakeOpenAI() as fake:
        fake.inject(Fault.rate_limit(retry_after=7))
        sleeps = Sleeps()
        p = provider(fake, sleep=sleeps)
        sink = MemorySink()
        resp = await LedgeredProvider(p, sink).complete(request())
        await p.aclose()
    assert resp.attempts == 2 and resp.text == DEFAULT_ANSWER and sleeps.delays == [7.0]
    assert [c.outcome for c in sink.calls] == ["retried", "ok"]
    assert sink.calls[0].error.startswith("rate_limit:") and sink.calls[0].request_id == "req_oai_000001"


@pytest.mark.parametrize("with_code", [True, False], ids=["code", "message"])
async def test_insufficient_quota_is_a_spend_limit_and_not_retried(with_code):
    async with FakeOpenAI() as fake:
        fake.inject(Fault.spend_limit(with_code=with_code))
        p = provider(fake)
        sink = MemorySink()
        with pytest.raises(ProviderError) as ei:
            await LedgeredProvider(p, sink).complete(request())
        await p.aclose()
        n = len(fake.chat_requests())
    assert ei.value.kind == "spend_limit" and not ei.value.retryable and n == 1
    assert [c.outcome for c in sink.calls] == ["refused"]


@pytest.mark.parametrize("fault,kind", [(Fault.server_error(), "server"), (Fault.overloaded(), "overloaded"),
                                        (Fault.stream_error(after_chunks=3), "stream"),
                                        (Fault.truncate(after_chunks=3), "stream"), (Fault.no_finish(), "stream")],
                         ids=["500", "529", "error-mid-stream", "cut", "no-finish-reason"])
async def test_retryable_failures_are_retried_whole_and_reset_the_stream(fault, kind):
    async with FakeOpenAI(chunk_size=8) as fake:
        fake.inject(fault)
        p = provider(fake)
        sink = MemorySink()
        buf = DeltaBuffer()
        seen: list[str] = []
        buf.forward = seen.append
        resp = await LedgeredProvider(p, sink).complete(request(), buf)
        await p.aclose()
    assert resp.text == buf.text == DEFAULT_ANSWER and resp.attempts == 2
    assert [c.outcome for c in sink.calls] == ["retried", "ok"] and sink.calls[0].error.startswith(kind + ":")
    if fault.kind in ("stream_error", "truncate", "no_finish"):
        assert STREAM_RESET in seen and buf.resets == 1  # partial text was thrown away


@pytest.mark.parametrize("status,kind", [(400, "bad_request"), (401, "auth"), (404, "not_found")])
async def test_client_errors_are_not_retried(status, kind):
    async with FakeOpenAI() as fake:
        fake.inject(Fault.http(status, {"error": {"message": "no", "type": "invalid_request_error"}}))
        p = provider(fake)
        with pytest.raises(ProviderError) as ei:
            await p.complete(request())
        await p.aclose()
        n = len(fake.chat_requests())
    assert ei.value.kind == kind and ei.value.status == status and n == 1


async def test_overloaded_falls_back_to_the_next_model():
    async with FakeOpenAI(models=["big", "small"]) as fake:
        fake.inject(Fault.overloaded(), Fault.overloaded())
        p = provider(fake, max_attempts=2, fallback_models=["small"])
        resp = await p.complete(request(model="big"))
        await p.aclose()
        models = [r.body["model"] for r in fake.chat_requests()]
    assert models == ["big", "big", "small"] and resp.fallback_from == "big" and resp.attempts == 3


async def test_a_server_that_refuses_stream_options_is_asked_again_without():
    async with FakeOpenAI(refuse_stream_options=True) as fake:
        p = provider(fake)
        sink = MemorySink()
        r1 = await LedgeredProvider(p, sink).complete(request())
        r2 = await LedgeredProvider(p, sink).complete(request())
        await p.aclose()
        bodies = [r.body for r in fake.chat_requests()]
    assert r1.text == r2.text == DEFAULT_ANSWER
    assert ["stream_options" in b for b in bodies] == [True, False, False]  # remembered
    assert [c.outcome for c in sink.calls] == ["retried", "ok", "ok"]
    assert r1.usage_estimated  # without stream_options this server sends no usage


async def test_attempt_timeout_bounds_a_trickling_stream():
    async with FakeOpenAI(chunk_size=4, chunk_delay=0.05) as fake:
        p = provider(fake, attempt_timeout=0.3, max_attempts=1)
        with pytest.raises(ProviderError) as ei:
            await p.complete(request())
        await p.aclose()
    assert ei.value.kind == "timeout"


async def test_hosted_server_prices_are_unknown_unless_configured():
    config = parse_price_config(
        '[[endpoint]]\nbase_url = "http://127.0.0.1:1/v1"\n[endpoint.models."fake-model"]\ninput = 2.0\noutput = 8.0\n')
    async with FakeOpenAI() as fake:
        # a loopback fake standing in for a hosted server: not local by configuration of its price
        hosted = OpenAIProvider(base_url=fake.base_url, sleep=Sleeps(), prices=PriceBook(config=parse_price_config(
            f'[[endpoint]]\nbase_url = "{fake.base_url}"\n[endpoint.models."fake-model"]\ninput = 2.0\n'
            'output = 8.0\ncache_read = 0.5\n')))
        r = await hosted.complete(request())
        await hosted.aclose()
    assert r.price_source == "configured"
    assert r.cost_usd == pytest.approx((PROMPT_TOKENS * 2.0 + tok(DEFAULT_ANSWER) * 8.0) / 1e6, rel=1e-12)
    book = PriceBook(config=config)
    assert book.quote("openai", "https://llm.example.com/v1", "fake-model").source == "unknown"
    assert book.quote("openai", "https://llm.example.com/v1", "claude-sonnet-4-6").source == "unknown"  # never a Claude price
    assert book.quote("openai", None, "gpt-4.1").source == "unknown"
    assert book.quote("openai", "http://127.0.0.1:1/v1", "fake-model").source == "configured"  # configured beats local
    assert book.quote("openai", "http://127.0.0.1:1/v1", "other").source == "local"
    assert book.quote("openai", "http://192.168.1.20:8000/v1", "qwen").source == "local"


def test_openai_api_defaults_and_continuation_modes():
    p = OpenAIProvider(api_key="sk-test", prices=PriceBook())  # the OpenAI API: nothing is sent here
    assert p.base_url is None and p.continuation == "instruct" and p.max_tokens_param == "max_completion_tokens"
    cont = LLMRequest(model="m", system="s", messages=[{"role": "user", "content": "u"},
                                                      {"role": "assistant", "content": "partial"}],
                      purpose="continue", max_tokens=100)
    params = p.build_params(cont, "m")
    assert params["max_completion_tokens"] == 100 and "max_tokens" not in params
    assert [m["role"] for m in params["messages"]] == ["system", "user", "assistant", "user"]
    assert "Continue it exactly where it stops" in params["messages"][-1]["content"]
    vllm = OpenAIProvider(base_url="http://127.0.0.1:8000/v1", continuation="continue_final_message",
                          prices=PriceBook())
    params = vllm.build_params(cont, "m")
    assert params["extra_body"] == {"continue_final_message": True, "add_generation_prompt": False}
    assert params["messages"][-1] == {"role": "assistant", "content": "partial"}
    prefill = OpenAIProvider(base_url="http://127.0.0.1:8080/v1", prices=PriceBook())
    params = prefill.build_params(cont, "m")
    assert prefill.continuation == "prefill" and "extra_body" not in params
    assert params["messages"][-1] == {"role": "assistant", "content": "partial"}
    with pytest.raises(ValueError):
        OpenAIProvider(base_url="http://127.0.0.1:8080/v1", continuation="guess", prices=PriceBook())


def test_a_remote_server_needs_a_key_a_local_one_does_not(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ProviderError) as ei:
        OpenAIProvider(base_url="https://llm.example.com/v1", prices=PriceBook())
    assert ei.value.kind == "auth" and "OPENAI_API_KEY" in str(ei.value)
    monkeypatch.setenv("MY_KEY", "sk-x")
    assert OpenAIProvider(base_url="https://llm.example.com/v1", api_key_env="MY_KEY", prices=PriceBook()).api_key == "sk-x"
    assert OpenAIProvider(base_url="http://localhost:11434/v1", prices=PriceBook()).local
    with pytest.raises(ProviderError) as ei:
        OpenAIProvider(base_url="ftp://x", prices=PriceBook())
    assert ei.value.kind == "bad_request"


async def test_the_key_is_sent_as_a_bearer_token():
    async with FakeOpenAI(api_key="sk-right") as fake:
        good = provider(fake, api_key="sk-right")
        assert (await good.complete(request())).text == DEFAULT_ANSWER
        await good.aclose()
        bad = provider(fake, api_key="sk-wrong")
        with pytest.raises(ProviderError) as ei:
            await bad.complete(request())
        await bad.aclose()
    assert ei.value.kind == "auth"
