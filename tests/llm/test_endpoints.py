"""Servers and what they say: base URLs, context-window probes, model lists, the connectivity
check, configured prices and model references (loopback fakes only)."""

from __future__ import annotations


import pytest

from core.llm import urls
from core.llm.config import ModelRef, provider_kwargs
from core.llm.endpoints import PRESETS, check_connection, list_models, probe_context_window
from core.llm.fake_openai import FakeOpenAI
from core.llm.fake_server import FakeAnthropic
from core.llm.pricing import PriceBook, load_price_config, parse_price_config
from tests.ports import free_port


@pytest.mark.parametrize("url,local", [
    ("http://127.0.0.1:8080/v1", True), ("http://localhost:11434/v1", True), ("http://[::1]:8000/v1", True),
    ("http://10.1.2.3:8000/v1", True), ("http://192.168.0.7:1234/v1", True), ("http://172.20.0.2/v1", True),
    ("http://gpu-box.lan:8000/v1", True), ("http://box.internal/v1", True),
    ("https://api.openai.com/v1", False), ("https://api.anthropic.com", False), ("http://8.8.8.8/v1", False),
    ("http://gpu-box:8000/v1", False), (None, False), ("not a url", False),
])
def test_local_means_this_machine_or_a_private_network(url, local):
    assert urls.is_local(url) is local


def test_base_urls_are_normalised_and_checked():
    assert urls.normalize("HTTP://LocalHost:80/v1/") == "http://localhost/v1"
    assert urls.root_of("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080"
    for bad in ("127.0.0.1:8080", "ftp://x/v1", "http://x/v1?key=1", ""):
        with pytest.raises(urls.BadBaseURL):
            urls.normalize(bad)


@pytest.mark.parametrize("flavor,expect", [("llamacpp", (8192, "llama.cpp")), ("vllm", (8192, "vLLM")),
                                           ("ollama", (8192, "Ollama")), ("lmstudio", (8192, "LM Studio"))])
async def test_each_server_kind_tells_its_context_window(flavor, expect):
    async with FakeOpenAI(context_window=8192, flavor=flavor, models=["m"]) as fake:
        window, source = await probe_context_window(fake.base_url, "m")
    assert window == expect[0] and source.startswith(expect[1])


async def test_a_server_that_says_nothing_gives_no_window():
    async with FakeOpenAI(flavor="plain") as fake:
        window, source = await probe_context_window(fake.base_url, "fake-model")
    assert window is None and "--context-window" in source
    assert (await probe_context_window("https://api.openai.com/v1", "gpt-4.1"))[0] is None  # no probe sent


async def test_models_are_listed_from_either_api():
    async with FakeOpenAI(models=["a", "b"]) as fake:
        assert await list_models("openai", fake.base_url) == ["a", "b"]
    async with FakeOpenAI(models=["qwen2.5-coder:7b"], flavor="ollama") as fake:
        assert await list_models("openai", fake.base_url) == ["qwen2.5-coder:7b"]


async def test_connection_check_reports_models_window_and_price():
    async with FakeOpenAI(models=["gemma-3-270m"], context_window=8192) as fake:
        rep = await check_connection("openai", fake.base_url)
    assert rep.ok and rep.models == ["gemma-3-270m"] and rep.model == "gemma-3-270m"
    assert rep.context_window == 8192 and rep.local and rep.price_source == "local"
    assert any("context window 8192" in line for line in rep.lines())


async def test_connection_check_with_several_models_and_a_given_one():
    async with FakeOpenAI(models=["a", "b"], context_window=4096) as fake:
        several = await check_connection("openai", fake.base_url)
        chosen = await check_connection("openai", fake.base_url, model="b", context_window=2048)
    assert several.ok and several.model is None and several.context_window is None
    assert chosen.model == "b" and (chosen.context_window, chosen.context_source) == (2048, "configured")


async def test_connection_check_never_raises_and_says_how_to_fix(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    down = await check_connection("openai", f"http://127.0.0.1:{free_port()}/v1")
    assert not down.ok and "cannot reach" in down.error and "running" in down.fix
    nokey = await check_connection("openai", "https://llm.example.com/v1")
    assert not nokey.ok and "OPENAI_API_KEY" in nokey.error
    bad = await check_connection("openai", "localhost:8080")
    assert not bad.ok and "base URL" in bad.error
    sim = await check_connection("sim")
    assert not sim.ok


async def test_connection_check_against_a_messages_server(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    async with FakeAnthropic() as fake:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
        rep = await check_connection("anthropic")
        url = fake.base_url
    # no /v1/models on this server: reached, but it cannot list models
    assert not rep.ok and rep.base_url == url and "without a model list" in rep.error
    async with FakeAnthropic(models=["gemma-3-270m"]) as fake:
        rep = await check_connection("anthropic", fake.base_url)
    assert rep.ok and rep.models == ["gemma-3-270m"] and rep.price_source == "local" and rep.local


def test_presets_name_provider_url_and_how_to_start():
    assert {"llamacpp", "ollama", "vllm", "lmstudio", "openai"} <= set(PRESETS)
    assert PRESETS["ollama"].base_url == "http://127.0.0.1:11434/v1"
    assert PRESETS["vllm"].continuation == "continue_final_message"
    assert PRESETS["llamacpp-messages"].provider == "anthropic"
    assert all(urls.is_local(p.base_url) for n, p in PRESETS.items() if n != "openai")


def test_price_config_errors_are_precise(tmp_path, monkeypatch):
    for text, needle in [("[[endpoint]]\n", "base_url"), ('[[endpoint]]\nbase_url = "x"\n', "not an http"),
                         ('[[endpoint]]\nbase_url = "http://a/v1"\n[endpoint.models.m]\ninput = 1\n', "required"),
                         ('[[endpoint]]\nbase_url = "http://a/v1"\ndefault = { input = -1, output = 0 }\n', "≥ 0"),
                         ("price = 3\n", "unknown top-level"), ("[[endpoint\n", "TOML")]:
        with pytest.raises(ValueError, match=needle):
            parse_price_config(text)
    monkeypatch.setenv("CAMBRIAN_PRICES", str(tmp_path / "p.toml"))
    assert load_price_config().endpoints == ()  # no file: nothing configured
    (tmp_path / "p.toml").write_text('[[endpoint]]\nbase_url = "https://proxy.example.com"\nlist_prices = true\n')
    book = PriceBook.load()
    assert book.quote("anthropic", "https://proxy.example.com", "claude-haiku-4-5").source == "list"
    assert book.quote("anthropic", "https://other.example.com", "claude-haiku-4-5").source == "unknown"
    assert book.quote("anthropic", None, "claude-haiku-4-5").source == "list"
    assert book.quote("anthropic", "http://127.0.0.1:8080", "claude-haiku-4-5").source == "local"


def test_model_references_mix_providers_without_breaking_ollama_names():
    run = dict(provider="anthropic", base_url=None)
    assert ModelRef.parse("claude-haiku-4-5", **run) == ModelRef("anthropic", "claude-haiku-4-5", None)
    ref = ModelRef.parse("openai:qwen2.5-coder:7b@http://127.0.0.1:11434/v1", **run)
    assert ref == ModelRef("openai", "qwen2.5-coder:7b", "http://127.0.0.1:11434/v1")
    assert ModelRef.parse("qwen2.5-coder:7b", provider="openai", base_url="http://h:1/v1") == ModelRef(
        "openai", "qwen2.5-coder:7b", "http://h:1/v1")
    with pytest.raises(ValueError):
        ModelRef.parse("openai:", **run)
    base = {"provider": "anthropic", "model": "claude-haiku-4-5", "base_url": None, "api_key_env": "K",
            "context_window": 100000, "continuation": None}
    s = ref.settings(base)
    assert (s["provider"], s["model"], s["base_url"], s["api_key_env"], s["context_window"]) == (
        "openai", "qwen2.5-coder:7b", "http://127.0.0.1:11434/v1", None, None)
    assert provider_kwargs(s) == {"base_url": "http://127.0.0.1:11434/v1"}
    assert provider_kwargs({"provider": "replay", "cassette": "c.jsonl", "base_url": "x"}) == {"cassette": "c.jsonl"}
