"""generate(): prompt → anthropic SDK → fake server → parser → writer → manifest; and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.llm.anthropic_provider import AnthropicProvider
from core.llm.base import STREAM_RESET, DeltaBuffer
from core.llm.fake_server import DEFAULT_ANSWER, FakeAnthropic, FakeAnthropicThread, Fault
from core.llm.ledger import MemorySink
from core.llm.replay import read_cassette
from core.prime.generate import generate, generate_cli
from core.prime.manifest import read_manifest
from core.prime.prompt import RetryInfo
from core.spec import strip_sealed
from rig.hashing import artifact_hash_of_dir, sha256_hex
from rig.schema import Manifest
from tests.llm.conftest import _no_network_violations  # noqa: F401  (the network guard)

ROOT = Path(__file__).parents[2]
ECHO = (ROOT / "spec/echo.md").read_bytes().decode()
ECHO_VISIBLE = strip_sealed(ECHO)  # the writer's view: the copy holds no sealed vector
PRIME = (ROOT / "spec/prime.md").read_bytes().decode()
TINY = "---\nname: tiny\nrequired-sections: []\n---\n# Tiny\n\n## Behaviour\n\nSay hi.\n"
MODEL = "claude-sonnet-4-6"


class Sleeps:
    async def __call__(self, d: float) -> None:
        pass


def live(fake: FakeAnthropic) -> AnthropicProvider:
    return AnthropicProvider(api_key="k", base_url=fake.base_url, sleep=Sleeps())


async def test_generate_writes_files_spec_copy_and_manifest(tmp_path):
    out = tmp_path / "gen"
    sink = MemorySink()
    async with FakeAnthropic() as fake:
        p = live(fake)
        res = await generate(ECHO, out, p, generation=3, parent=1, seed=7, model=MODEL, sink=sink,
                             campaign_id="camp")
        await p.aclose()
    assert res.ok and res.error is None and res.repairs == 0 and not res.simulated
    m = read_manifest(out)
    assert m == res.manifest
    assert m.files == ["app.py", "manifest.json", "spec/echo.md", "tests/test_app.py"]
    assert "sealed-vectors" in ECHO and "sealed-vectors" not in ECHO_VISIBLE
    assert (out / "spec/echo.md").read_bytes() == ECHO_VISIBLE.encode()
    assert m.spec_hash == sha256_hex(ECHO_VISIBLE.encode())
    assert m.artifact_hash == artifact_hash_of_dir(str(out), m.files)
    assert (m.generation, m.parent_generation, m.producer_model) == (3, 1, MODEL)
    r = res.responses[0]
    assert m.token_usage.input == r.input_tokens + r.cache_creation_input_tokens + r.cache_read_input_tokens
    assert m.token_usage.output == r.output_tokens
    assert m.entry.start == "python -m echo" and m.entry.health == "http://localhost:8402/health"
    assert m.contracts is None
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == m.files
    assert set(res.artifact) == set(m.files)
    assert [(c.outcome, c.generation, c.campaign_id, c.purpose) for c in sink.calls] == [
        ("ok", 3, "camp", "generate")]
    Manifest.model_validate(json.loads((out / "manifest.json").read_text()))


async def test_contracts_and_default_entry(tmp_path):
    async with FakeAnthropic() as fake:
        p = live(fake)
        prime = await generate(PRIME, tmp_path / "p", p, model=MODEL)
        tiny = await generate(TINY, tmp_path / "t", p, model=MODEL)
        await p.aclose()
    assert prime.ok and prime.manifest.contracts and prime.manifest.contracts[0].name
    assert "spec/prime.md" in prime.manifest.files
    assert tiny.ok and tiny.manifest.entry.model_dump() == {
        "build": "python -m compileall -q .", "test": "python -m pytest -q", "start": "python -m tiny",
        "health": "http://localhost:8000/health"}


async def test_parse_failure_triggers_a_bounded_repair_call(tmp_path):
    answers = iter(['Here you go\n<file path="app.py">\nprint(1)\n', DEFAULT_ANSWER])
    sink = MemorySink()
    seen: list[str] = []
    buf = DeltaBuffer(forward=seen.append)
    async with FakeAnthropic(lambda body: next(answers)) as fake:
        p = live(fake)
        res = await generate(ECHO, tmp_path / "g", p, model=MODEL, sink=sink, generation=1, on_delta=buf)
        await p.aclose()
        bodies = [r.body for r in fake.message_requests()]
    assert res.ok and res.repairs == 1 and len(res.responses) == 2
    assert [c.purpose for c in sink.calls] == ["generate", "repair"]
    assert all(c.generation == 1 for c in sink.calls)  # a repair is not a new generation
    repair = bodies[1]["messages"]
    assert repair[1]["role"] == "assistant" and repair[1]["content"].startswith("Here you go")
    assert repair[2]["content"][0]["text"].startswith('<parse-error line="2">unterminated block')
    assert buf.text == DEFAULT_ANSWER and STREAM_RESET in seen
    assert res.manifest.token_usage.output == sum(r.output_tokens for r in res.responses)
    assert res.manifest.token_usage.input == sum(r.prompt_tokens for r in res.responses)


async def test_repairs_are_bounded_and_nothing_is_written(tmp_path):
    async with FakeAnthropic(lambda body: "I refuse to use the format.") as fake:
        p = live(fake)
        res = await generate(ECHO, tmp_path / "g", p, model=MODEL, max_repairs=2)
        none = await generate(ECHO, tmp_path / "h", p, model=MODEL, max_repairs=0)
        await p.aclose()
        n = len(fake.message_requests())
    assert not res.ok and res.error_kind == "parse" and res.repairs == 2 and len(res.responses) == 3
    assert "after 2 repair calls" in res.error and "no-files" in res.error
    assert none.repairs == 0 and len(none.responses) == 1 and n == 4
    assert not (tmp_path / "g").exists() and not (tmp_path / "h").exists()


async def test_unsafe_path_answers_are_repaired(tmp_path):
    answers = iter(['<file path="../escape.py">\nx\n</file:end>\n', DEFAULT_ANSWER])
    async with FakeAnthropic(lambda body: next(answers)) as fake:
        p = live(fake)
        res = await generate(ECHO, tmp_path / "g", p, model=MODEL)
        await p.aclose()
        feedback = fake.message_requests()[1].body["messages"][2]["content"][0]["text"]
    assert res.ok and res.repairs == 1 and "'..' segment" in feedback
    assert not (tmp_path / "escape.py").exists()


async def test_writer_refusals_are_reported(tmp_path):
    answer = '<file path="README.md">\n</file:end>\n<file path="readme.md">\n</file:end>\n'
    async with FakeAnthropic(lambda body: answer) as fake:
        p = live(fake)
        res = await generate(ECHO, tmp_path / "g", p, model=MODEL)
        await p.aclose()
    assert not res.ok and res.error_kind == "unsafe:casefold-duplicate" and "differ only in case" in res.error
    assert not (tmp_path / "g").exists()


async def test_existing_artifact_is_never_overwritten(tmp_path):
    async with FakeAnthropic() as fake:
        p = live(fake)
        first = await generate(ECHO, tmp_path / "g", p, model=MODEL)
        again = await generate(ECHO, tmp_path / "g", p, model=MODEL)
        await p.aclose()
    assert first.ok and not again.ok and again.error_kind == "unsafe:exists"


async def test_escalation_model_on_retry(tmp_path):
    retry = RetryInfo(attempt=1, generation=4, summary="health failed", files={"app.py": "x = 1\n"})
    async with FakeAnthropic() as fake:
        p = live(fake)
        base = await generate(ECHO, tmp_path / "a", p, model=MODEL, escalation_model="claude-opus-4-8")
        esc = await generate(ECHO, tmp_path / "b", p, model=MODEL, escalation_model="claude-opus-4-8",
                             retry=retry, generation=5, history="generations: 4 (failed 4)")
        await p.aclose()
        bodies = [r.body for r in fake.message_requests()]
    assert base.manifest.producer_model == MODEL
    assert esc.manifest.producer_model == "claude-opus-4-8" and bodies[1]["model"] == "claude-opus-4-8"
    blocks = [b["text"] for b in bodies[1]["messages"][0]["content"]]
    assert blocks[1] == "<history>\ngenerations: 4 (failed 4)\n</history>"
    assert blocks[2].startswith('<retry generation="4" attempt="1">') and "summary: health failed" in blocks[2]
    assert '<failed-file path="app.py"' in blocks[2]


async def test_provider_failures_are_results_not_exceptions(tmp_path):
    sink = MemorySink()
    async with FakeAnthropic() as fake:
        fake.inject(Fault.spend_limit())
        p = live(fake)
        res = await generate(ECHO, tmp_path / "g", p, model=MODEL, sink=sink)
        await p.aclose()
    assert not res.ok and res.error_kind == "provider:spend_limit" and "spend limit" in res.error
    assert [c.outcome for c in sink.calls] == ["refused"] and not (tmp_path / "g").exists()


async def test_invalid_spec(tmp_path):
    res = await generate("---\nname: [\n---\n", tmp_path / "g", object(), model=MODEL)
    assert not res.ok and res.error_kind == "spec"


async def test_retry_after_mid_stream_failure_keeps_one_answer(tmp_path):
    sink = MemorySink()
    async with FakeAnthropic(chunk_size=16) as fake:
        fake.inject(Fault.stream_error(after_chunks=4))
        p = live(fake)
        res = await generate(ECHO, tmp_path / "g", p, model=MODEL, sink=sink)
        await p.aclose()
    assert res.ok and res.responses[0].attempts == 2 and res.responses[0].text == DEFAULT_ANSWER
    assert [c.outcome for c in sink.calls] == ["retried", "ok"]


# --- the CLI entry point ------------------------------------------------------------------------


def test_generate_cli_records_then_replays(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "echo.md"
    spec.write_bytes(ECHO.encode())
    cassette = tmp_path / "c.jsonl"
    with FakeAnthropicThread() as fake:
        rc = generate_cli(str(spec), str(tmp_path / "a"), "anthropic", 3, MODEL, None, str(cassette),
                          provider_kw={"api_key": "k", "base_url": fake.base_url})
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "generation 0 of" in out and "provider anthropic" in out and "SIMULATED" not in out
    assert "wrote 4 files" in out and "artifact-hash sha256:" in out and "recorded the call(s) to cassette" in out
    assert len(read_cassette(cassette)) == 1

    rc = generate_cli(str(spec), str(tmp_path / "b"), "replay", 3, None, str(cassette), None, json_out=True)
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    data = json.loads(captured.out)
    assert data["ok"] and data["provider"] == "replay" and data["model"] == MODEL and not data["simulated"]
    assert data["manifest"]["artifact-hash"] == read_manifest(tmp_path / "a").artifact_hash
    assert data["llm_calls"][0]["provider"] == "replay"


def test_generate_cli_usage_errors(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "echo.md"
    spec.write_text(ECHO)
    assert generate_cli(str(spec), str(tmp_path / "o"), "replay", 0, None, None, None) == 2
    assert "needs --cassette" in capsys.readouterr().out
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert generate_cli(str(spec), str(tmp_path / "o"), "anthropic", 0, None, None, None) == 2
    assert "ANTHROPIC_API_KEY" in capsys.readouterr().out
    assert generate_cli(str(tmp_path / "missing.md"), str(tmp_path / "o"), "replay", 0, None, "x", None) == 2
    assert generate_cli(str(spec), str(tmp_path / "o"), "nope", 0, None, None, None) == 2


def test_generate_cli_failure_exit_code(tmp_path, capsys):
    spec = tmp_path / "echo.md"
    spec.write_text(ECHO)
    with FakeAnthropicThread(lambda body: "no blocks") as fake:
        rc = generate_cli(str(spec), str(tmp_path / "o"), "anthropic", 0, MODEL, None, None,
                          provider_kw={"api_key": "k", "base_url": fake.base_url})
    out = capsys.readouterr().out
    assert rc == 1 and "generation failed (parse)" in out and "repairs: 2" in out


def test_generate_cli_with_the_sim_provider_labels_output(tmp_path, capsys):
    spec = tmp_path / "echo.md"
    spec.write_text(ECHO)
    rc = generate_cli(str(spec), str(tmp_path / "o"), "sim", 1, None, None, None)
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.startswith("SIMULATED generation") and "(simulated)" in out


def test_generate_cli_openai_takes_the_servers_only_model_and_keeps_a_failed_answer(tmp_path, capsys):
    from core.llm.fake_openai import FakeOpenAIThread

    spec = tmp_path / "echo.md"
    spec.write_text(ECHO)
    with FakeOpenAIThread(lambda body: "Sure! Here is a description instead of files.", models=["tiny-7b"],
                          context_window=16384) as fake:
        rc = generate_cli(str(spec), str(tmp_path / "o"), "openai", 0, None, None, None, json_out=True,
                          base_url=fake.base_url, max_repairs=1)
        models = {r.body["model"] for r in fake.chat_requests()}
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert rc == 1 and models == {"tiny-7b"} and data["model"] == "tiny-7b"
    assert data["error_kind"] == "parse" and data["context_window"] == 16384 and not data["price_unknown"]
    assert [c["purpose"] for c in data["llm_calls"]] == ["generate", "repair"]
    assert all(c["price_source"] == "local" for c in data["llm_calls"])
    kept = Path(data["answer_file"])
    assert kept.read_text() == "Sure! Here is a description instead of files."
    assert "price: local" in captured.err and "is kept in" in captured.err


def test_doctor_checks_a_model_server(tmp_path, capsys):
    from cambrian_tui.doctor import server_checks
    from core.llm.fake_openai import FakeOpenAIThread

    with FakeOpenAIThread(models=["gemma-3-270m"], context_window=8192) as fake:
        checks = {c.name: c for c in server_checks("openai", fake.base_url, None, None)}
    assert checks["openai server"].ok and "(local)" in checks["openai server"].detail
    assert checks["models"].detail == "gemma-3-270m"
    assert checks["context window"].ok and "8192 tokens (llama.cpp" in checks["context window"].detail
    assert checks["price"].ok and checks["price"].detail.startswith("local")
    down = server_checks("openai", "http://127.0.0.1:9/v1", None, None)
    assert len(down) == 1 and not down[0].ok and down[0].fix
