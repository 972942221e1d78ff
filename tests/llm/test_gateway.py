"""The LLM gateway, as an organism meets it: the real anthropic SDK, pointed (like the
organism's ANTHROPIC_BASE_URL) at the rig runner's stdlib forwarder on a loopback port,
which forwards to the gateway's unix socket; the gateway answers from the campaign's
provider (here the real sim provider, ledgered), within its caps."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from pathlib import Path

import anthropic
import pytest

from core.home import REPO_ROOT
from core.llm.base import LLMRequest, make_provider
from core.llm.gateway import Caps, Gateway
from core.llm.ledger import LedgeredProvider, MemorySink
from tests.ports import free_port

SPEC = (REPO_ROOT / "spec" / "echo.md").read_text()
# the prompt shape a Prime sends (its spec in a <spec> block): what the sim answers
PROMPT = f'<spec name="echo" hash="sha256:0">\n{SPEC}\n</spec>'


class Served:
    """A gateway on its own event loop thread, and the runner's forwarder in front of it."""

    def __init__(self, tmp: Path, provider, caps: Caps | None, children):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.gw = Gateway(provider, model="sim-1", socket_path=tmp / "gw" / "gw.sock", caps=caps,
                          metadata={"generation": 7, "campaign_id": "c-gw"})
        asyncio.run_coroutine_threadsafe(self.gw.start(), self.loop).result(30)
        self.port = free_port()
        self.fwd = children([sys.executable, str(REPO_ROOT / "rig" / "runner.py"), "forward",
                             json.dumps({"socket": str(self.gw.socket_path), "port": self.port})],
                            stdin_pipe=True)  # the forwarder serves until its stdin closes
        assert self.fwd.first_line(30) == "READY"
        self.url = f"http://127.0.0.1:{self.port}"

    def client(self) -> anthropic.Anthropic:
        # the organism's key is a placeholder: the gateway never needs a real one
        return anthropic.Anthropic(api_key="sk-ant-placeholder-offline", base_url=self.url,
                                   max_retries=0, timeout=60)

    def close(self) -> None:
        self.fwd.stop()
        asyncio.run_coroutine_threadsafe(self.gw.close(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def served(tmp_path, children):
    made = []

    def make(provider=None, caps=None):
        sink = MemorySink()
        prov = LedgeredProvider(provider or make_provider("sim"), sink)
        s = Served(tmp_path, prov, caps, children)
        s.sink = sink
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def test_json_and_streamed_answers_come_from_the_campaigns_provider(served):
    s = served()
    c = s.client()
    msg = c.messages.create(model="claude-sonnet-4-6", max_tokens=16000, system="You write code.",
                            messages=[{"role": "user", "content": PROMPT}])
    assert msg.model == "sim-1" and msg.stop_reason == "end_turn"
    assert '<file path="' in msg.content[0].text and msg.usage.output_tokens > 0
    chunks = []
    with c.messages.stream(model="claude-sonnet-4-6", max_tokens=16000, system="You write code.",
                           messages=[{"role": "user", "content": PROMPT}]) as stream:
        for text in stream.text_stream:
            chunks.append(text)
        final = stream.get_final_message()
    assert len(chunks) > 3 and "".join(chunks) == final.content[0].text == msg.content[0].text
    assert final.usage.output_tokens == msg.usage.output_tokens
    # both calls are in the ledger, as reproduction calls of the generation they serve
    calls = s.sink.calls
    assert [c.purpose for c in calls] == ["reproduction", "reproduction"]
    assert all(c.generation == 7 and c.campaign_id == "c-gw" and c.simulated for c in calls)
    log = s.gw.log.to_wire()
    assert [c["asked_model"] for c in log["calls"]] == ["claude-sonnet-4-6"] * 2
    assert [c["stream"] for c in log["calls"]] == [False, True] and log["cut_off"] is None


def test_a_runaway_organism_is_cut_off_by_the_call_cap(served):
    s = served(caps=Caps(calls=2))
    c = s.client()
    for _ in range(2):
        c.messages.create(model="m", max_tokens=16000, messages=[{"role": "user", "content": PROMPT}])
    with pytest.raises(anthropic.RateLimitError) as err:
        c.messages.create(model="m", max_tokens=16000, messages=[{"role": "user", "content": PROMPT}])
    assert "call cap reached (2 calls" in str(err.value)
    assert s.gw.log.cut_off.startswith("call cap reached")
    assert len(s.sink.calls) == 2  # the refused call never reached the provider


def test_the_token_cap_counts_what_a_call_could_take(served):
    s = served(caps=Caps(tokens=10_000))
    with pytest.raises(anthropic.RateLimitError, match="token cap reached"):
        s.client().messages.create(model="m", max_tokens=16000,
                                   messages=[{"role": "user", "content": PROMPT}])
    assert s.sink.calls == []


def test_a_provider_failure_reaches_the_organism_as_an_api_error(served):
    from core.llm.base import ProviderError

    class Down:
        name, simulated = "down", True

        async def complete(self, req: LLMRequest, on_delta=None):
            raise ProviderError("the model is overloaded", kind="overloaded", status=529,
                                retryable=True)

    s = served(provider=Down())
    with pytest.raises(anthropic.APIStatusError) as err:
        s.client().messages.create(model="m", max_tokens=100, messages=[{"role": "user", "content": "x"}])
    assert err.value.status_code == 529
    assert s.gw.log.calls[0].error.startswith("ProviderError")


def test_only_the_messages_endpoint_is_served(served):
    s = served()
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{s.url}/v1/complete", timeout=10)
    assert err.value.code == 404


def test_the_anthropic_provider_behind_the_gateway_streams_records_usage_and_retries_a_529(served):
    """The campaign's provider is the real anthropic one, talking to the loopback fake
    Messages server: the organism's streamed call arrives as deltas, the upstream 529 is
    retried by the provider (the organism never sees it), and the ledger has both attempts
    with the server's usage, under purpose `reproduction` and the generation it serves."""
    from core.llm.anthropic_provider import AnthropicProvider
    from core.llm.fake_server import DEFAULT_ANSWER, FakeAnthropicThread, Fault

    upstream = FakeAnthropicThread(chunk_size=8)
    url = upstream.start()
    try:
        upstream.server.inject(Fault.overloaded(retry_after=0))

        async def no_sleep(_d: float) -> None:
            return None

        s = served(provider=AnthropicProvider(api_key="sk-ant-REAL-engine-side", base_url=url, sleep=no_sleep))
        deltas = []
        with s.client().messages.stream(model="claude-whatever", max_tokens=2000,
                                        messages=[{"role": "user", "content": PROMPT}]) as stream:
            for text in stream.text_stream:
                deltas.append(text)
            final = stream.get_final_message()
        assert "".join(deltas) == DEFAULT_ANSWER and len(deltas) > 3  # incremental, whole
        reqs = upstream.server.message_requests()
        assert [r.fault for r in reqs] == ["overloaded", None]
        for r in reqs:  # the engine's key went upstream (a loopback server gets it as a bearer token)
            assert "sk-ant-REAL-engine-side" in (r.headers.get("x-api-key") or r.headers.get("Authorization") or "")
        ok = reqs[-1].usage
        assert (final.usage.input_tokens, final.usage.output_tokens) == (ok["input_tokens"], ok["output_tokens"])
        calls = s.sink.calls
        assert [c.outcome for c in calls] == ["retried", "ok"]
        assert {c.purpose for c in calls} == {"reproduction"} and {c.generation for c in calls} == {7}
        assert (calls[1].input_tokens, calls[1].output_tokens) == (ok["input_tokens"], ok["output_tokens"])
        gw_call = s.gw.log.calls[-1]
        assert gw_call.stream and gw_call.status == 200 and gw_call.output_tokens == ok["output_tokens"]
    finally:
        upstream.stop()
