"""Cassettes: record a generation, replay it byte for byte."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from core.llm.anthropic_provider import AnthropicProvider
from core.llm.base import LLMRequest, ProviderError, make_provider
from core.llm.fake_server import DEFAULT_ANSWER, FakeAnthropic
from core.llm.ledger import LedgeredProvider, MemorySink
from core.llm.replay import RecordingProvider, ReplayProvider, read_cassette, request_key
from core.prime.generate import generate
from rig.hashing import artifact_hash_of

ROOT = Path(__file__).parents[2]
ECHO = (ROOT / "spec/echo.md").read_bytes().decode()
CREATED = "2026-01-02T03:04:05.000Z"


def tree(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def req(**kw) -> LLMRequest:
    base = dict(model="m1", system="sys", messages=[{"role": "user", "content": [{"type": "text", "text": "é"}]}])
    base.update(kw)
    return LLMRequest(**base)


def test_key_is_sha256_of_canonical_model_system_messages():
    r = req()
    canonical = json.dumps({"model": "m1", "system": "sys", "messages": r.messages},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert request_key(r) == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    # not part of the key
    assert request_key(req(max_tokens=5, purpose="repair", cache_prefix_blocks=0,
                           metadata={"seed": 9, "generation": 3})) == request_key(r)
    # part of the key
    assert request_key(req(model="m2")) != request_key(r)
    assert request_key(req(system="sys2")) != request_key(r)
    assert request_key(req(messages=[{"role": "user", "content": "é"}])) != request_key(r)


async def test_record_then_replay_is_byte_identical(tmp_path):
    cassette = tmp_path / "gen.jsonl"
    async with FakeAnthropic(chunk_size=7) as fake:
        live = AnthropicProvider(api_key="k", base_url=fake.base_url)
        rec = RecordingProvider(live, cassette)
        first = await generate(ECHO, tmp_path / "a", rec, generation=4, parent=2, seed=1,
                               model="claude-sonnet-4-6", created_at=CREATED)
        await live.aclose()
        n_live = len(fake.message_requests())
    assert first.ok, first.error
    entries = read_cassette(cassette)
    assert len(entries) == 1 and entries[0]["provider"] == "anthropic" and entries[0]["simulated"] is False
    assert entries[0]["response"]["text"] == DEFAULT_ANSWER and entries[0]["response"]["request_id"]
    assert entries[0]["purpose"] == "generate" and entries[0]["model"] == "claude-sonnet-4-6"

    # the fake server is gone: replay cannot reach anything
    replay = ReplayProvider(cassette)
    assert replay.name == "replay" and replay.simulated is False
    sink = MemorySink()
    second = await generate(ECHO, tmp_path / "b", replay, generation=4, parent=2, seed=1,
                            model="claude-sonnet-4-6", created_at=CREATED, sink=sink)
    assert second.ok, second.error
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert a == b  # byte-identical, manifest included
    assert first.manifest.artifact_hash == second.manifest.artifact_hash == artifact_hash_of(b)
    assert n_live == 1
    assert [(c.provider, c.outcome, c.cost_usd) for c in sink.calls] == [("replay", "ok", 0.0)]
    assert sink.calls[0].input_tokens == first.responses[0].input_tokens  # recorded tokens kept


async def test_replay_reproduces_parse_repairs(tmp_path):
    answers = iter(['<file path="a.py">\nx = 1\n', DEFAULT_ANSWER])
    cassette = tmp_path / "c.jsonl"
    async with FakeAnthropic(lambda body: next(answers)) as fake:
        live = AnthropicProvider(api_key="k", base_url=fake.base_url)
        first = await generate(ECHO, tmp_path / "a", RecordingProvider(live, cassette), model="claude-haiku-4-5",
                               created_at=CREATED)
        await live.aclose()
    assert first.ok and first.repairs == 1
    assert [e["purpose"] for e in read_cassette(cassette)] == ["generate", "repair"]
    second = await generate(ECHO, tmp_path / "b", ReplayProvider(cassette), model="claude-haiku-4-5",
                            created_at=CREATED)
    assert second.ok and second.repairs == 1 and tree(tmp_path / "a") == tree(tmp_path / "b")


async def test_cassette_miss_names_key_and_model(tmp_path):
    cassette = tmp_path / "c.jsonl"
    async with FakeAnthropic() as fake:
        live = AnthropicProvider(api_key="k", base_url=fake.base_url)
        await RecordingProvider(live, cassette).complete(req(model="claude-haiku-4-5"))
        await live.aclose()
    replay = ReplayProvider(cassette)
    other = req(model="claude-opus-4-8")
    with pytest.raises(ProviderError) as ei:
        await replay.complete(other)
    err = ei.value
    assert err.kind == "cassette_miss" and not err.retryable and err.model == "claude-opus-4-8"
    assert request_key(other) in str(err) and "'claude-opus-4-8'" in str(err) and "claude-haiku-4-5" in str(err)
    # and the miss is ledgered like any failed call
    sink = MemorySink()
    with pytest.raises(ProviderError):
        await LedgeredProvider(replay, sink).complete(other)
    assert sink.calls[0].outcome == "error" and sink.calls[0].error.startswith("cassette_miss:")


async def test_same_key_served_in_recording_order(tmp_path):
    answers = iter(["one", "two"])
    cassette = tmp_path / "c.jsonl"
    async with FakeAnthropic(lambda body: next(answers)) as fake:
        live = AnthropicProvider(api_key="k", base_url=fake.base_url)
        rec = RecordingProvider(live, cassette)
        await rec.complete(req())
        await rec.complete(req())
        await live.aclose()
    replay = ReplayProvider(cassette)
    chunks: list[str] = []
    texts = [(await replay.complete(req(), chunks.append)).text for _ in range(3)]
    assert texts == ["one", "two", "two"] and "".join(chunks) == "onetwotwo"


def test_bad_cassettes(tmp_path):
    with pytest.raises(ProviderError) as ei:
        ReplayProvider(tmp_path / "missing.jsonl")
    assert ei.value.kind == "cassette_miss"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"key": "k", "response": {}}\nnot json\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        ReplayProvider(bad)
    with pytest.raises(ValueError, match="needs a cassette"):
        make_provider("replay")


def test_simulated_cassettes_stay_labelled(tmp_path):
    c = tmp_path / "sim.jsonl"
    c.write_text(json.dumps({"key": "k", "model": "sim-1", "simulated": True, "response": {"text": "x"}}) + "\n")
    p = make_provider("replay", path=c)
    assert p.name == "replay" and p.simulated is True


async def test_record_and_replay_the_sim_provider(tmp_path):
    cassette = tmp_path / "sim.jsonl"
    sim = make_provider("sim")
    first = await generate(ECHO, tmp_path / "a", RecordingProvider(sim, cassette), generation=2, seed=5,
                           model="sim-1", created_at=CREATED)
    assert first.ok, first.error
    replay = ReplayProvider(cassette)
    assert replay.simulated is True
    second = await generate(ECHO, tmp_path / "b", replay, generation=2, seed=5, model="sim-1", created_at=CREATED)
    assert second.ok and second.simulated
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert first.manifest.artifact_hash == second.manifest.artifact_hash
