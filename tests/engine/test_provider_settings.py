"""Campaign settings reach the provider: an openai server by base URL, the model's text kept
when a generation fails at generate, and a dollar budget that refuses unknown prices (the real
engine, real SQLite, loopback fake servers; the rig is never reached)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.engine.main import run_campaign
from core.home import db_path
from core.llm.fake_openai import FakeOpenAIThread
from core.models import CampaignSettings
from core.store import Store

ROOT = Path(__file__).parents[2]
ECHO = (ROOT / "spec" / "echo.md").read_text()


def no_rig(*_a, **_k):
    raise AssertionError("the rig must not run: no artifact was made")


def _campaign(home: Path, **kw) -> str:
    base = dict(spec_hash="sha256:" + "0" * 64, generations=1, parallelism=1, max_retries=0, max_repairs=1)
    base.update(kw)
    with Store.open(db_path(home)) as s:
        spec = s.add_spec(ECHO, label="echo")
        settings = CampaignSettings(**{**base, "spec_hash": spec.hash})
        s.create_campaign("c-prov", spec.hash, settings.model_dump())
    return "c-prov"


def test_an_openai_campaign_keeps_the_models_text_when_generate_fails(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CAMBRIAN_HOME", str(home))
    with FakeOpenAIThread(lambda body: "I would rather describe the code than write it.",
                          models=["tiny"], context_window=32768) as fake:
        cid = _campaign(home, provider="openai", base_url=fake.base_url, model="tiny", budget_usd=0.5)
        assert run_campaign(home, cid, rig_fn=no_rig, rig_check=None) == "completed"
        sent = [r.body for r in fake.chat_requests()]
    with Store.open(db_path(home)) as s:
        (gen,) = s.generations(cid)
        assert (gen.outcome.value, gen.failure_stage) == ("failed", "generate")
        assert "could not be parsed after 1 repair call" in gen.reason
        log = "".join(c["text"] for c in s.log_chunks(gen.number) if c["stream"] == "llm")
        assert "I would rather describe the code" in log and log.startswith("[engine] the model's answer")
        calls = s.llm_calls(campaign_id=cid)
        assert [(c.provider, c.purpose, c.price_source, c.cost_usd) for c in calls] == [
            ("openai", "generate", "local", 0.0), ("openai", "repair", "local", 0.0)]
    assert all(b["model"] == "tiny" for b in sent) and len(sent) == 2
    assert sent[0]["max_tokens"] < 32768  # sized to the window the server reported


def test_a_dollar_budget_refuses_a_model_without_a_price(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CAMBRIAN_HOME", str(home))
    monkeypatch.setenv("HOSTED_KEY", "sk-test")
    cid = _campaign(home, provider="openai", base_url="https://llm.example.com/v1", api_key_env="HOSTED_KEY",
                    model="some-model", budget_usd=1.0)
    with pytest.raises(ValueError, match="dollar budget needs known prices"):
        run_campaign(home, cid, rig_fn=no_rig, rig_check=None)
    with Store.open(db_path(home)) as s:
        c = s.campaign(cid)
        assert c["state"] == "crashed" and "prices.toml" in c["reason"]
        assert s.llm_calls(campaign_id=cid) == [] and s.generations(cid) == []  # nothing spent


def test_campaign_settings_check_the_base_url():
    with pytest.raises(ValueError, match="base URL"):
        CampaignSettings(spec_hash="sha256:" + "0" * 64, provider="openai", model="m", base_url="localhost:8080")
    s = CampaignSettings(spec_hash="sha256:" + "0" * 64, provider="openai", model="m",
                         base_url="HTTP://127.0.0.1:8080/v1/")
    assert s.base_url == "http://127.0.0.1:8080/v1" and s.max_continuations == 3
