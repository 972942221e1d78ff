"""Our providers against a server someone else wrote: llama.cpp's ``llama-server`` with a small
real model (gemma 3 270M), both from PyPI (tests/llamacpp.py builds and caches them).

``generate`` runs on spec/echo.md through **both** of the server's APIs — OpenAI-compatible
``/v1/chat/completions`` (provider ``openai``) and Messages-compatible ``/v1/messages``
(provider ``anthropic`` with a base URL). A model this small writes no viable artifact (it
mostly repeats its prompt); what must hold with a real server is checked: deltas arrive one by
one, usage is recorded exactly as the server reported it (read back from the bytes it sent,
through a recording proxy), a max_tokens cut-off is continued and then ends as truncation, a
malformed answer goes through parse repair and ends failed at generate with the model's text
kept, the context window is learned from the server, calls are priced $0 (local), ledger rows
are complete, and a campaign records all of it in SQLite.

The server decodes greedily (``--temp 0``) so answers repeat. The model never stops by
itself, so the server for the repair path is given a stop word (``--reverse-prompt`` of a
newline): its answers end with their first line, finished and malformed (a file block needs
several lines).

Skipped (with the reason) where llama-server cannot be built; CAMBRIAN_REQUIRE_LOCAL_LLM=1
(CI) makes that a failure. These tests run last (tests/conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.llm.anthropic_provider import AnthropicProvider
from core.llm.ledger import MemorySink
from core.llm.openai_provider import OpenAIProvider
from core.llm.pricing import PriceBook
from core.prime.generate import generate
from tests import llamacpp
from tests.childproc import Children
from tests.llm.conftest import _no_network_violations  # noqa: F401  (loopback only)
from tests.recording_proxy import RecordingProxy

ROOT = Path(__file__).parents[2]
ECHO = (ROOT / "spec/echo.md").read_bytes().decode()
CTX = 8192

pytestmark = [pytest.mark.local_llm, pytest.mark.timeout(int(llamacpp.BUILD_TIMEOUT_S) + 1200)]


@pytest.fixture(scope="module")
def servers(built):
    started = Children()
    cache: dict[str, llamacpp.LlamaServer] = {}

    def get(kind: str) -> llamacpp.LlamaServer:
        if kind not in cache:
            words = ("\n",) if kind == "stopping" else ()
            cache[kind] = llamacpp.LlamaServer(started, ctx_size=CTX, stop_words=words)
        return cache[kind]

    try:
        yield get
    finally:
        started.stop_all()


@pytest.fixture
def proxy_to(servers):
    made: list[RecordingProxy] = []

    def make(kind: str) -> RecordingProxy:
        p = RecordingProxy(servers(kind).port)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def provider_for(endpoint: str, proxy: RecordingProxy):
    url = f"http://127.0.0.1:{proxy.port}"
    if endpoint == "openai":
        return OpenAIProvider(base_url=url + "/v1", prices=PriceBook(), timeout=600)
    return AnthropicProvider(base_url=url, api_key_env="CAMBRIAN_TEST_NO_SUCH_KEY", prices=PriceBook(), timeout=600)


def server_calls(endpoint: str, proxy: RecordingProxy) -> list[dict]:
    """What the server itself said, per streamed completion: its usage, its stop, its chunks."""
    calls = []
    for status, body in proxy.responses():
        text = body.decode("utf-8", "replace")
        if status != 200 or "data:" not in text:
            continue  # /props, /v1/models: not a completion
        events = [json.loads(line[5:]) for line in text.splitlines()
                  if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]")]
        if endpoint == "openai":
            usage = next(e["usage"] for e in reversed(events) if e.get("usage"))
            deltas = sum(1 for e in events for c in e.get("choices") or [] if (c.get("delta") or {}).get("content"))
            stop = next(c["finish_reason"] for e in events for c in e.get("choices") or [] if c.get("finish_reason"))
        else:
            start = next(e["message"]["usage"] for e in events if e.get("type") == "message_start")
            delta = next(e for e in events if e.get("type") == "message_delta")
            usage = {**start, **delta.get("usage", {})}
            deltas = sum(1 for e in events if e.get("type") == "content_block_delta" and e["delta"].get("text"))
            stop = delta["delta"]["stop_reason"]
        calls.append({"usage": usage, "deltas": deltas, "stop": stop})
    return calls


def assert_usage_recorded_exactly(endpoint: str, rows, said: list[dict]) -> None:
    assert len(rows) == len(said), (rows, said)
    for row, s in zip(rows, said):
        recorded = json.loads(row.usage_json)
        u = s["usage"]
        if endpoint == "openai":
            assert recorded == u  # the raw usage object, as the server sent it
            cached = (u.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
            assert (row.input_tokens, row.cache_read_input_tokens, row.output_tokens) == (
                u["prompt_tokens"] - cached, cached, u["completion_tokens"])
        else:
            for key in ("input_tokens", "output_tokens", "cache_read_input_tokens"):
                if key in u:
                    assert recorded[key] == u[key] == getattr(row, key), (key, recorded, u)
        assert not row.usage_estimated


def answered(rows):
    """The calls the server answered. A keep-alive connection the server closed while the
    client reused it is a connection error the provider retries (a real race with llama.cpp's
    idle timeout): that row is kept in the ledger as `retried`, with nothing spent."""
    lost = [r for r in rows if r.outcome == "retried"]
    for r in lost:
        assert r.error.startswith("connection:"), r.error
        assert r.input_tokens == r.output_tokens == r.cache_read_input_tokens == 0 and not r.cost_usd, r
    return [r for r in rows if r.outcome != "retried"]


def assert_rows_complete(rows, *, generation: int | None = None) -> None:
    for row in rows:
        assert row.outcome == "ok" and row.error is None
        assert row.model == llamacpp.MODEL_ALIAS and row.request_id and row.latency_ms > 0
        assert row.price_source == "local" and row.cost_usd == 0.0 and not row.simulated
        assert row.input_tokens + row.cache_read_input_tokens > 0 and row.output_tokens > 0
        if generation is not None:
            assert row.generation == generation


@pytest.mark.parametrize("endpoint", ["openai", "anthropic"])
async def test_a_cut_off_answer_is_continued_then_ends_as_truncation(endpoint, proxy_to, tmp_path):
    proxy = proxy_to("free")
    p = provider_for(endpoint, proxy)
    sink = MemorySink()
    chunks: list[str] = []
    res = await generate(ECHO, tmp_path / "out", p, model=llamacpp.MODEL_ALIAS, sink=sink, generation=1,
                         on_delta=chunks.append, max_tokens=24, max_continuations=2)
    await p.aclose()
    said = server_calls(endpoint, proxy)
    rows = answered(sink.calls)
    # truncation, not a format error: continued twice, then given up as truncated — no repair
    assert [r.purpose for r in rows] == ["generate", "continue", "continue"], res.error
    assert res.error_kind == "truncated" and res.error.startswith("truncated after 2 continuations")
    assert res.repairs == 0 and [s["stop"] for s in said] == ["length" if endpoint == "openai" else "max_tokens"] * 3
    assert all(r.output_tokens == 24 for r in rows)
    assert_usage_recorded_exactly(endpoint, rows, said)
    assert_rows_complete(rows, generation=1)
    # the continuations reused the server's prompt cache: it said so, and we recorded it
    assert rows[1].cache_read_input_tokens > rows[0].input_tokens > 0
    # streaming: every delta the server sent reached us, one by one
    assert [r.deltas for r in res.responses] == [s["deltas"] for s in said]
    assert all(r.deltas > 1 for r in res.responses) and len(chunks) == sum(s["deltas"] for s in said)
    # the model's text is kept, joined across the continuations
    assert res.answer_text and res.answer_text.startswith(res.responses[0].text.rstrip())
    assert not (tmp_path / "out").exists()
    assert res.context_window == CTX  # learned from the server's /props


@pytest.mark.parametrize("endpoint", ["openai", "anthropic"])
async def test_a_malformed_answer_is_repaired_then_fails_at_generate(endpoint, proxy_to, tmp_path):
    proxy = proxy_to("stopping")
    p = provider_for(endpoint, proxy)
    sink = MemorySink()
    res = await generate(ECHO, tmp_path / "out", p, model=llamacpp.MODEL_ALIAS, sink=sink, generation=2,
                         max_tokens=1024, max_repairs=1, max_continuations=1)
    await p.aclose()
    said = server_calls(endpoint, proxy)
    rows = answered(sink.calls)
    assert res.error_kind == "parse" and "could not be parsed after 1 repair call" in res.error, res.error
    assert [r.purpose for r in rows if r.purpose != "continue"] == ["generate", "repair"]
    # the model stopped by itself (the server's stop word), so these were format errors
    assert all(s["stop"] in ("stop", "end_turn", "stop_sequence") for s in said), said
    assert_usage_recorded_exactly(endpoint, rows, said)
    assert_rows_complete(rows, generation=2)
    assert res.answer_text == res.responses[-1].text  # the model's last answer is kept
    assert res.responses[0].text.strip()  # (the first one said something)
    # the repair resent the bad answer, and fitted the window
    assert rows[1].input_tokens + rows[1].cache_read_input_tokens > rows[0].input_tokens
    assert all(r.input_tokens + r.cache_read_input_tokens + r.output_tokens <= CTX for r in rows)


def test_a_campaign_records_the_failure_the_text_and_the_ledger(servers, tmp_path, monkeypatch):
    from core.engine.main import run_campaign
    from core.home import db_path
    from core.models import CampaignSettings
    from core.store import Store

    server = servers("stopping")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CAMBRIAN_HOME", str(home))
    settings = CampaignSettings(spec_hash="sha256:" + "0" * 64, generations=1, parallelism=1, provider="openai",
                                base_url=server.openai_base_url, model=llamacpp.MODEL_ALIAS, max_retries=0,
                                max_repairs=1, max_tokens=1024, budget_usd=1.0,
                                examiner="off")  # the writer's path only: no examine call
    with Store.open(db_path(home)) as s:
        spec = s.add_spec(ECHO, label="echo")
        cid = "c-real-llm"
        s.create_campaign(cid, spec.hash, settings.model_copy(update={"spec_hash": spec.hash}).model_dump())

    def no_rig(*_a, **_k):  # an artifact never reaches the rig: the generation fails before
        raise AssertionError("the rig must not run")

    assert run_campaign(home, cid, rig_fn=no_rig, rig_check=None) == "completed"
    with Store.open(db_path(home)) as s:
        (gen,) = s.generations(cid)
        assert gen.outcome.value == "failed" and gen.failure_stage == "generate"
        assert "could not be parsed" in gen.reason
        log = "".join(c["text"] for c in s.log_chunks(gen.number) if c["stream"] == "llm")
        assert log.startswith("[engine] the model's answer") and "parse" in log.splitlines()[0]
        calls = s.llm_calls(campaign_id=cid)
        assert [c.purpose for c in calls if c.purpose != "continue"] == ["generate", "repair"]
        assert_rows_complete(calls, generation=gen.number)
        assert s.unpriced_calls(cid) == 0 and s.spend(cid)[1] == 0.0  # a dollar budget works: $0 known
