"""The fake Messages API: event shapes, token counting, faults, recording, thread runner."""

from __future__ import annotations

import json
import math
import urllib.request

import aiohttp
import anthropic
import pytest

from core.llm.fake_server import (
    DEFAULT_ANSWER,
    FakeAnthropic,
    FakeAnthropicThread,
    Fault,
    count_tokens,
)


async def sse_events(url: str, body: dict, headers: dict | None = None) -> tuple[int, dict, list[tuple[str, dict]]]:
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/messages", json=body, headers=headers or {}) as r:
            raw = (await r.read()).decode()
            events = []
            for chunk in raw.split("\n\n"):
                if not chunk.strip():
                    continue
                lines = dict(line.split(": ", 1) for line in chunk.split("\n"))
                events.append((lines["event"], json.loads(lines["data"])))
            return r.status, dict(r.headers), events


BODY = {"model": "claude-sonnet-4-6", "max_tokens": 1000, "stream": True,
        "messages": [{"role": "user", "content": "hello"}]}


async def test_sse_event_sequence_and_shapes():
    async with FakeAnthropic(chunk_size=50) as fake:
        status, headers, events = await sse_events(fake.base_url, BODY)
    assert status == 200 and headers["request-id"] == "req_fake_000001"
    assert headers["Content-Type"].startswith("text/event-stream")
    names = [e for e, _ in events]
    n = math.ceil(len(DEFAULT_ANSWER) / 50)
    assert names == ["message_start", "content_block_start", "ping", *["content_block_delta"] * n,
                     "content_block_stop", "message_delta", "message_stop"]
    for name, data in events:
        assert data["type"] == name
    start = events[0][1]["message"]
    assert start["role"] == "assistant" and start["content"] == [] and start["model"] == "claude-sonnet-4-6"
    assert start["usage"]["input_tokens"] == count_tokens("hello")
    assert events[1][1]["content_block"] == {"type": "text", "text": ""}
    deltas = [d["delta"] for e, d in events if e == "content_block_delta"]
    assert all(d["type"] == "text_delta" for d in deltas)
    assert "".join(d["text"] for d in deltas) == DEFAULT_ANSWER
    md = events[-2][1]
    assert md["delta"]["stop_reason"] == "end_turn" and md["usage"]["output_tokens"] == count_tokens(DEFAULT_ANSWER)


async def test_json_response_through_the_sdk():
    async with FakeAnthropic() as fake:
        client = anthropic.AsyncAnthropic(api_key="k", base_url=fake.base_url, max_retries=0)
        msg = await client.messages.create(model="claude-haiku-4-5", max_tokens=100,
                                           messages=[{"role": "user", "content": "hi"}])
        await client.close()
    assert len(DEFAULT_ANSWER.encode()) < 100 * 4 and msg.content[0].text == DEFAULT_ANSWER
    assert msg.stop_reason == "end_turn" and msg.usage.output_tokens == count_tokens(DEFAULT_ANSWER)
    assert msg.usage.input_tokens == 1 and msg._request_id == "req_fake_000001"


async def test_max_tokens_cuts_the_answer():
    async with FakeAnthropic() as fake:
        body = dict(BODY, max_tokens=5)
        _, _, events = await sse_events(fake.base_url, body)
    text = "".join(d["delta"]["text"] for e, d in events if e == "content_block_delta")
    assert text == DEFAULT_ANSWER[:20]
    assert events[-2][1]["delta"]["stop_reason"] == "max_tokens"
    assert events[-2][1]["usage"]["output_tokens"] == 5


async def test_token_counting_and_cache_accounting():
    sys_block = {"type": "text", "text": "S" * 400, "cache_control": {"type": "ephemeral"}}
    spec = {"type": "text", "text": "é" * 100, "cache_control": {"type": "ephemeral"}}  # 200 bytes
    tail = {"type": "text", "text": "abcde"}
    body = {"model": "m", "max_tokens": 10, "system": [sys_block],
            "messages": [{"role": "user", "content": [spec, tail]}]}
    async with FakeAnthropic() as fake:
        assert fake.count(body, update_cache=False) == {
            "input_tokens": 2, "cache_creation_input_tokens": 150, "cache_read_input_tokens": 0}
        first = fake.count(body)
        second = fake.count(body)
        other_model = fake.count(dict(body, model="m2"))
        changed = json.loads(json.dumps(body))
        changed["messages"][0]["content"][0]["text"] += "x"
        changed_prefix = fake.count(changed)
        plain = fake.count({"model": "m", "messages": [{"role": "user", "content": "abcd" * 10}]})
    assert first["cache_creation_input_tokens"] == 150 and first["cache_read_input_tokens"] == 0
    assert second == {"input_tokens": 2, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 150}
    assert other_model["cache_creation_input_tokens"] == 150  # caches are per model
    assert changed_prefix["cache_creation_input_tokens"] == 151
    assert plain == {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


async def test_requests_are_recorded_with_headers_and_last_input_tokens():
    async with FakeAnthropic() as fake:
        await sse_events(fake.base_url, BODY, {"x-api-key": "secret-test", "anthropic-version": "2023-06-01"})
        rec = fake.requests[0]
        assert rec.body == BODY and rec.path == "/v1/messages"
        assert rec.headers["x-api-key"] == "secret-test" and rec.headers["anthropic-version"] == "2023-06-01"
        assert fake.last_input_tokens == count_tokens("hello")
        assert fake.last_usage["output_tokens"] == count_tokens(DEFAULT_ANSWER)


async def test_responder_can_be_async_and_sees_the_body():
    async def responder(body: dict) -> str:
        return "echo:" + body["messages"][0]["content"]

    async with FakeAnthropic(responder) as fake:
        _, _, events = await sse_events(fake.base_url, BODY)
    assert "".join(d["delta"]["text"] for e, d in events if e == "content_block_delta") == "echo:hello"


@pytest.mark.parametrize("fault,status,etype", [
    (Fault.rate_limit(retry_after=7), 429, "rate_limit_error"),
    (Fault.spend_limit(), 429, "rate_limit_error"),
    (Fault.overloaded(), 529, "overloaded_error"),
    (Fault.server_error(), 500, "api_error"),
])
async def test_status_faults(fault, status, etype):
    async with FakeAnthropic() as fake:
        fake.inject(fault)
        async with aiohttp.ClientSession() as s:
            async with s.post(fake.base_url + "/v1/messages", json=BODY) as r:
                data = await r.json()
                assert r.status == status and r.headers["request-id"] == "req_fake_000001"
                if fault.retry_after is not None:
                    assert r.headers["retry-after"] == "7"
            # the next request is normal again
            async with s.post(fake.base_url + "/v1/messages", json=dict(BODY, stream=False)) as r2:
                assert r2.status == 200
    assert data["type"] == "error" and data["error"]["type"] == etype
    if fault.kind == "spend_limit":
        assert data["error"]["details"]["error_code"] == "enforced_spend_limit_reached"
    assert fake.requests[0].fault == fault.kind and fake.pending_faults == 0


async def test_stream_error_event_mid_way():
    async with FakeAnthropic(chunk_size=5) as fake:
        fake.inject(Fault.stream_error(after_chunks=2))
        _, _, events = await sse_events(fake.base_url, BODY)
    names = [e for e, _ in events]
    assert names == ["message_start", "content_block_start", "ping", "content_block_delta",
                     "content_block_delta", "error"]
    assert events[-1][1]["error"]["type"] == "overloaded_error"


async def test_truncated_stream_closes_the_connection():
    async with FakeAnthropic(chunk_size=5) as fake:
        fake.inject(Fault.truncate(after_chunks=1))
        async with aiohttp.ClientSession() as s:
            async with s.post(fake.base_url + "/v1/messages", json=BODY) as r:
                assert r.status == 200
                with pytest.raises(aiohttp.ClientPayloadError):
                    await r.read()


async def test_bad_requests_and_unknown_routes():
    async with FakeAnthropic(api_key="right") as fake:
        async with aiohttp.ClientSession() as s:
            async with s.post(fake.base_url + "/v1/messages", json=BODY, headers={"x-api-key": "wrong"}) as r:
                assert r.status == 401
            async with s.post(fake.base_url + "/v1/messages", json={"model": "m"},
                              headers={"x-api-key": "right"}) as r:
                assert r.status == 400 and (await r.json())["error"]["type"] == "invalid_request_error"
            async with s.get(fake.base_url + "/v1/models") as r:
                assert r.status == 404 and r.headers["request-id"].startswith("req_fake_")


def test_thread_runner_serves_sync_clients():
    with FakeAnthropicThread(chunk_size=1000) as fake:
        req = urllib.request.Request(
            fake.base_url + "/v1/messages",
            data=json.dumps(dict(BODY, stream=False)).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            data = json.loads(r.read())
            rid = r.headers["request-id"]
        assert data["content"][0]["text"] == DEFAULT_ANSWER and rid == "req_fake_000001"
        assert fake.last_input_tokens == count_tokens("hello")
        fake.inject(Fault.overloaded())
        assert fake.pending_faults == 1


def test_thread_runner_with_the_sync_sdk():
    with FakeAnthropicThread() as fake:
        client = anthropic.Anthropic(api_key="k", base_url=fake.base_url, max_retries=0)
        with client.messages.stream(model="claude-sonnet-4-6", max_tokens=1000,
                                    messages=[{"role": "user", "content": "hi"}]) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        client.close()
    assert text == DEFAULT_ANSWER and final.usage.output_tokens == count_tokens(DEFAULT_ANSWER)


def test_binds_loopback_only():
    with pytest.raises(ValueError):
        FakeAnthropic(host="0.0.0.0")


def test_main_fake_llm_serves_until_stopped(children):
    import sys

    child = children([sys.executable, "-c", "from core.llm.fake_server import main_fake_llm; main_fake_llm(0, 0.0)"],
                     cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    first = child.first_line(30)
    assert first.startswith("fake Anthropic Messages API listening on http://127.0.0.1:")
    url = first.split()[-1]
    child.wait_for(f"use: ANTHROPIC_BASE_URL={url}", 30)
    client = anthropic.Anthropic(api_key="k", base_url=url, max_retries=0)
    msg = client.messages.create(model="m", max_tokens=1000, messages=[{"role": "user", "content": "x"}])
    client.close()
    assert msg.content[0].text == DEFAULT_ANSWER


def test_dev_fake_llm_serves_an_openai_compatible_server(children):
    """`cambrian dev fake-llm --api openai`: a llama.cpp-like server to try the openai provider
    on (its model list, /props window, a streamed answer through the official SDK)."""
    import json
    import sys
    import urllib.request

    import openai

    root = __import__("pathlib").Path(__file__).parents[2]
    child = children([sys.executable, "-m", "cambrian_tui.cli", "dev", "fake-llm", "--api", "openai", "--port", "0",
                      "--models", "tiny,other", "--context-window", "2048"], cwd=str(root))
    first = child.wait_for("fake OpenAI-compatible API listening on", 60)
    url = first.split()[5]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1") and "models: tiny, other" in first
    child.wait_for(f"use: provider openai, base URL {url}, no key", 30)
    with urllib.request.urlopen(url.removesuffix("/v1") + "/props", timeout=10) as r:
        assert json.load(r)["default_generation_settings"]["n_ctx"] == 2048
    client = openai.OpenAI(api_key="none", base_url=url, max_retries=0, timeout=30)
    assert [m.id for m in client.models.list()] == ["tiny", "other"]
    stream = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "x"}], stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    client.close()
    assert text == DEFAULT_ANSWER
