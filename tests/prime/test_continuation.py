"""Truncation is not a format error; every request fits the model's context window.

Both providers (Messages API and chat completions) against their loopback fakes: an answer cut
off at max_tokens is continued (ledger rows of purpose "continue") and the parts joined; when
the continuation budget is spent the generation fails as truncated, without a repair call; with
a known context window, max_tokens, continuations and repairs are sized to fit."""

from __future__ import annotations

import math
from pathlib import Path

from core.llm.anthropic_provider import AnthropicProvider
from core.llm.base import CONTINUE_INSTRUCTION, message_text
from core.llm.fake_openai import FakeOpenAI, count_tokens
from core.llm.fake_server import DEFAULT_ANSWER, FakeAnthropic, Fault
from core.llm.ledger import MemorySink
from core.llm.openai_provider import OpenAIProvider
from core.llm.pricing import PriceBook
from core.prime.generate import generate
from core.prime.prompt import build_generate_request, join_continuation
from core.spec import parse_spec
from tests.llm.conftest import _no_network_violations  # noqa: F401  (the network guard)

ROOT = Path(__file__).parents[2]
ECHO = (ROOT / "spec/echo.md").read_bytes().decode()


class Sleeps:
    async def __call__(self, d: float) -> None:
        pass


def continuing(full: str):
    """A Messages-API responder that answers ``full``, and continues it from wherever a
    request's partial answer stops (prefill: the last message; instruction: the one before it).
    (FakeOpenAI continues a prefilled answer by itself.)"""

    def respond(body: dict) -> str:
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        if last.get("role") == "assistant":
            prefix = message_text(last.get("content"))
        elif message_text(last.get("content")) == CONTINUE_INSTRUCTION:
            prefix = message_text(messages[-2].get("content"))
        else:
            return full
        assert full.startswith(prefix), "the partial answer came back changed"
        return full[len(prefix):]

    return respond


def test_join_puts_back_only_the_whitespace_the_continuation_lacks():
    assert join_continuation("a</file:end>\n", "<file") == "a</file:end>\n<file"
    assert join_continuation("a</file:end>\n", "\n<file") == "a</file:end>\n<file"
    assert join_continuation("def fo", "o():") == "def foo():"


async def test_openai_truncated_answer_is_continued_and_joined(tmp_path):
    sink = MemorySink()
    async with FakeOpenAI(lambda body: DEFAULT_ANSWER) as fake:
        p = OpenAIProvider(base_url=fake.base_url, sleep=Sleeps(), prices=PriceBook())
        res = await generate(ECHO, tmp_path / "g", p, model="fake-model", sink=sink, max_tokens=30,
                             max_continuations=3)
        await p.aclose()
        bodies = [r.body for r in fake.chat_requests()]
    calls = math.ceil(len(DEFAULT_ANSWER) / 120)
    assert res.ok, res.error
    assert res.continuations == calls - 1 and res.repairs == 0
    assert [c.purpose for c in sink.calls] == ["generate"] + ["continue"] * (calls - 1)
    assert all(c.outcome == "ok" for c in sink.calls)
    # the continue requests carry the partial answer as the final assistant message (a prefill)
    assert bodies[1]["messages"][-1]["role"] == "assistant"
    assert DEFAULT_ANSWER.startswith(bodies[1]["messages"][-1]["content"])
    assert {f.path for f in res.files} == {"app.py", "tests/test_app.py"}
    assert res.manifest.token_usage.output == sum(r.output_tokens for r in res.responses)


async def test_spent_continuation_budget_fails_as_truncated_without_a_repair(tmp_path):
    sink = MemorySink()
    async with FakeOpenAI(lambda body: DEFAULT_ANSWER) as fake:
        p = OpenAIProvider(base_url=fake.base_url, sleep=Sleeps(), prices=PriceBook())
        res = await generate(ECHO, tmp_path / "g", p, model="fake-model", sink=sink, max_tokens=30,
                             max_continuations=1)
        await p.aclose()
    assert not res.ok and res.error_kind == "truncated" and res.truncated
    assert res.error.startswith("truncated after 1 continuation:")
    assert [c.purpose for c in sink.calls] == ["generate", "continue"]  # no repair of a format never broken
    assert res.answer_text == DEFAULT_ANSWER[:240]  # the model's text is kept
    assert not (tmp_path / "g").exists()


async def test_messages_api_truncation_is_continued_by_prefill(tmp_path):
    sink = MemorySink()
    async with FakeAnthropic(continuing(DEFAULT_ANSWER)) as fake:
        p = AnthropicProvider(api_key="k", base_url=fake.base_url, sleep=Sleeps(), prices=PriceBook())
        res = await generate(ECHO, tmp_path / "g", p, model="claude-sonnet-4-6", sink=sink, max_tokens=40,
                             max_continuations=5)
        await p.aclose()
        bodies = [r.body for r in fake.message_requests()]
    assert res.ok, res.error
    assert [c.purpose for c in sink.calls] == ["generate"] + ["continue"] * (len(bodies) - 1)
    assert len(bodies) == math.ceil(len(DEFAULT_ANSWER) / 160)
    prefill = bodies[1]["messages"][-1]
    assert prefill["role"] == "assistant" and prefill["content"] == prefill["content"].rstrip()


async def test_a_model_that_refuses_prefill_is_asked_to_continue_in_words(tmp_path):
    refusal = {"type": "error", "error": {"type": "invalid_request_error", "message":
               "This model does not support assistant message prefill. The conversation must end with a user "
               "message."}}
    sink = MemorySink()
    async with FakeAnthropic() as fake:
        answer = continuing(DEFAULT_ANSWER)
        refused = []

        def respond(body: dict) -> str:
            if not refused:  # while answering the generate call: refuse the next request (the first continue)
                refused.append(True)
                fake.inject(Fault.http(400, refusal))
            return answer(body)

        fake.responder = respond
        p = AnthropicProvider(api_key="k", base_url=fake.base_url, sleep=Sleeps(), prices=PriceBook())
        res = await generate(ECHO, tmp_path / "g", p, model="m", sink=sink, max_tokens=40, max_continuations=5)
        await p.aclose()
        bodies = [r.body for r in fake.message_requests()]
    assert res.ok, res.error
    purposes = [(c.purpose, c.outcome) for c in sink.calls]
    assert purposes[:3] == [("generate", "ok"), ("continue", "retried"), ("continue", "ok")]
    assert "continuing by instruction" in sink.calls[1].error
    assert bodies[1]["messages"][-1]["role"] == "assistant"  # the refused prefill
    # from then on this model is asked in words
    assert all(message_text(b["messages"][-1]["content"]) == CONTINUE_INSTRUCTION for b in bodies[2:])


def _prompt_tokens() -> int:
    req = build_generate_request(parse_spec(ECHO), "", None, generation=0, model="m")
    texts = [req.system] + [message_text(m["content"]) for m in req.messages]
    return sum(count_tokens(t) for t in texts)


async def test_requests_are_sized_to_the_context_window(tmp_path):
    prompt = _prompt_tokens()
    window = prompt + prompt // 2 + 700  # room even by the first, generous estimate (3 characters a token)
    rambling = "All the code, soon. " * 2000  # never a file block, never done
    sink = MemorySink()
    async with FakeOpenAI(lambda body: rambling, context_window=window) as fake:
        p = OpenAIProvider(base_url=fake.base_url, sleep=Sleeps(), prices=PriceBook())
        res = await generate(ECHO, tmp_path / "g", p, model="fake-model", sink=sink, max_continuations=10)
        await p.aclose()
        recs = fake.chat_requests()
    assert all(c.outcome == "ok" for c in sink.calls)  # the server never refused a request
    assert res.context_window == window
    for r in recs:  # every request fitted: prompt + max_tokens within the window
        assert r.usage["prompt_tokens"] + r.body["max_tokens"] <= window, r.usage
    assert recs[0].body["max_tokens"] < window - prompt
    assert res.error_kind == "truncated" and "no room for more" in res.error
    assert res.answer_text and rambling.startswith(res.answer_text.rstrip())


async def test_a_repair_resends_only_what_fits(tmp_path):
    prompt = _prompt_tokens()
    window = prompt + prompt // 2 + 2500
    bad = "Here is my plan, no files yet. " * 220  # ~1700 tokens: too big to resend with room to answer
    sink = MemorySink()
    async with FakeOpenAI(lambda body: bad, context_window=window) as fake:
        p = OpenAIProvider(base_url=fake.base_url, sleep=Sleeps(), prices=PriceBook())
        res = await generate(ECHO, tmp_path / "g", p, model="fake-model", sink=sink, max_repairs=1)
        await p.aclose()
        recs = fake.chat_requests()
    assert [c.purpose for c in sink.calls] == ["generate", "repair"] and all(c.outcome == "ok" for c in sink.calls)
    repair = recs[1]
    assert repair.usage["prompt_tokens"] + repair.body["max_tokens"] <= window
    resent = repair.body["messages"][2]["content"]
    assert repair.body["messages"][2]["role"] == "assistant" and len(resent) < len(bad)
    assert "characters omitted" in resent
    assert res.error_kind == "parse" and res.answer_text == bad


async def test_a_prompt_that_cannot_fit_fails_before_any_call(tmp_path):
    sink = MemorySink()
    async with FakeOpenAI(context_window=600) as fake:
        p = OpenAIProvider(base_url=fake.base_url, sleep=Sleeps(), prices=PriceBook())
        res = await generate(ECHO, tmp_path / "g", p, model="fake-model", sink=sink)
        await p.aclose()
        n = len(fake.chat_requests())
    assert res.error_kind == "context" and "600 tokens" in res.error
    assert n == 0 and sink.calls == []


async def test_a_configured_window_wins_over_the_server(tmp_path):
    async with FakeOpenAI(context_window=100_000) as fake:
        window = 2 * _prompt_tokens()
        p = OpenAIProvider(base_url=fake.base_url, sleep=Sleeps(), prices=PriceBook(), context_window=window)
        res = await generate(ECHO, tmp_path / "g", p, model="fake-model")
        await p.aclose()
        first = fake.chat_requests()[0].body
    assert res.ok and res.context_window == window and first["max_tokens"] < window - _prompt_tokens()


class _WindowFull:
    """A provider whose every answer ends because the context window filled up (the Messages
    API's stop reason model_context_window_exceeded): no continuation can help."""

    name, simulated = "anthropic", False

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, req, on_delta=None):
        from core.llm.base import LLMResponse

        self.calls += 1
        return LLMResponse(text="<file path=\"a.py\">\nx = 1\n", model=req.model, request_id="r", attempts=1,
                           stop_reason="model_context_window_exceeded", input_tokens=10, output_tokens=5,
                           cache_creation_input_tokens=0, cache_read_input_tokens=0, usage_raw={},
                           cost_usd=0.0, latency_ms=1)


async def test_a_full_context_window_is_truncation_without_continuing(tmp_path):
    p = _WindowFull()
    res = await generate(ECHO, tmp_path / "g", p, model="m", max_continuations=3)
    assert p.calls == 1 and res.error_kind == "truncated" and "context window is full" in res.error
    assert res.responses[0].truncated and res.answer_text.startswith('<file path="a.py">')
