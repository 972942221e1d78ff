"""The engine: detached campaigns, control, budgets, crash safety (real engine processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.app import Cambrian
from core.engine.launch import create_campaign, spawn_engine
from core.home import REPO_ROOT, db_path
from core.llm.fake_server import FakeAnthropicThread
from core.models import CampaignSettings
from core.store import Store

ECHO = (REPO_ROOT / "spec" / "echo.md").read_text()
PRIME = (REPO_ROOT / "spec" / "prime.md").read_text()


def wait_for(pred, timeout: float, what: str, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def settings(**kw) -> dict:
    base = dict(spec_hash="sha256:" + "0" * 64, generations=4, parallelism=1, provider="sim",
                model="sim-1", seed=1, max_retries=0, backend="docker")
    base.update(kw)
    return CampaignSettings(**base).model_dump()


def cli(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, CAMBRIAN_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "cambrian_tui.cli", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def fake_llm(monkeypatch):
    """The real anthropic SDK in the engine process talks to this loopback server."""
    srv = FakeAnthropicThread(latency=1.0)
    srv.start()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-loopback-only")
    yield srv
    srv.stop()


def _store(home: Path) -> Store:
    return Store.open(db_path(home))


def _engine_gone(home: Path, cid: str) -> bool:
    with _store(home) as s:
        return not s.lease_alive(cid)


# --- end to end ------------------------------------------------------------------------------


@pytest.mark.docker
def test_six_generation_campaign_p3_end_to_end(home, rig_ready):
    res = cli(home, "campaign", "start", "--spec", str(REPO_ROOT / "spec" / "prime.md"), "-n", "6", "-p", "3",
              "--provider", "sim", "--seed", "7", "--max-retries", "1", "--wait", "--json")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    status = json.loads(res.stdout[res.stdout.index("{"):])
    cid = status["id"]
    assert status["state"] == "completed"
    with _store(home) as s:
        gens = s.generations(cid)
        assert len([g for g in gens if g.outcome.value != "interrupted"]) == 6
        assert all(g.outcome.terminal for g in gens)
        nums = [g.number for g in gens]
        assert len(nums) == len(set(nums))
        for g in gens:
            if g.parent is not None:  # lineage points inside the campaign, to an earlier generation
                assert g.parent in nums and g.parent < g.number
            if g.attempt > 0:
                assert s.generation(g.parent).outcome.value == "failed"
            rep = s.report(g.number)
            assert rep is not None and rep["status"] in ("viable", "non-viable")
            assert (rep["status"] == "viable") == (g.outcome.value == "promoted")
            assert s.artifact_files(g.artifact_hash)["manifest.json"]
            calls = s.llm_calls(generation=g.number)
            assert calls and all(c.simulated and c.provider == "sim" for c in calls)
            log = "".join(c["text"] for c in s.log_chunks(g.number)).splitlines()
            assert any(line.startswith("[rig] ") for line in log), f"no rig output stored for {g.number}"
            # the log speaks while the model writes: the engine's lines come before the rig's
            assert log[0].startswith(f"[engine] #{g.number}: sim-1 is writing the artifact (attempt {g.attempt + 1}")
            came = next(i for i, line in enumerate(log) if "the artifact came back in" in line)
            assert came < next(i for i, line in enumerate(log) if line.startswith("[rig] "))
            assert s.rig_runs(g.number)[0].backend == "docker"
        # status --json is the store, field by field
    with Cambrian(home) as app:
        fresh = app.reads.campaign_status(cid)
    res2 = cli(home, "campaign", "status", cid, "--json")
    again = json.loads(res2.stdout)
    assert again["generations"] == fresh["generations"] == status["generations"]
    assert again["summary"]["viable"] == sum(1 for g in gens if g.outcome.value == "promoted")
    assert again["summary"]["generations"] == len(gens)
    lo, hi = again["summary"]["viability_interval"]
    assert 0 <= lo <= (again["summary"]["viability_rate"] or 0) <= hi <= 1
    assert again["engine_pid"] is None and again["simulated"] is True


# --- control -----------------------------------------------------------------------------------


@pytest.mark.docker
def test_pause_finishes_in_flight_then_resume_completes(home, fake_llm, rig_ready):
    with _store(home) as s:
        cid = create_campaign(s, settings(provider="anthropic", model="claude-haiku-4-5", generations=4,
                                          max_tokens=2048), ECHO)
    spawn_engine(home, cid)
    with _store(home) as s:
        wait_for(lambda: s.in_progress(cid), 30, "a generation to start")
        s.send_command(cid, "pause")
        wait_for(lambda: s.campaign(cid)["state"] == "paused", 10, "state paused")
        wait_for(lambda: not s.in_progress(cid), 120, "in-flight work to finish")
        frozen = len(s.generations(cid))
        time.sleep(3)
        assert len(s.generations(cid)) == frozen, "a paused campaign started new work"
        assert s.lease_alive(cid), "pause must keep the engine alive"
        assert frozen < 4
        s.send_command(cid, "resume")
        wait_for(lambda: s.campaign(cid)["state"] == "completed", 300, "completion after resume")
        gens = s.generations(cid)
        assert len([g for g in gens if g.outcome.value != "interrupted"]) == 4
        assert all(g.outcome.terminal for g in gens)


@pytest.mark.docker
def test_abort_kills_in_flight_and_marks_interrupted(home, fake_llm, rig_ready):
    fake_llm.server.latency = 3.0
    with _store(home) as s:
        cid = create_campaign(s, settings(provider="anthropic", model="claude-haiku-4-5", generations=8,
                                          parallelism=2, max_tokens=2048), ECHO)
    spawn_engine(home, cid)
    with _store(home) as s:
        wait_for(lambda: len(s.in_progress(cid)) == 2, 30, "two generations in flight")
        in_flight = set(s.in_progress(cid))
        s.send_command(cid, "abort")
        wait_for(lambda: s.campaign(cid)["state"] == "aborted", 60, "state aborted")
        wait_for(lambda: _engine_gone(home, cid), 30, "the engine to exit")
        for n in in_flight:
            g = s.generation(n)
            if g.outcome.value == "interrupted":
                assert "abort" in (g.reason or "")
        assert any(s.generation(n).outcome.value == "interrupted" for n in in_flight)
        assert not s.in_progress(cid)
        assert len(s.generations(cid)) < 8
    from core.engine.containers import list_managed

    assert not [c for c, run in list_managed() if run.startswith(cid)]


SLOW_TEST_ANSWER = """\
<file path="app.py">
def greet(name: str) -> str:
    return f"hello {name}"
</file:end>
<file path="tests/test_slow.py">
import time


def test_slow() -> None:
    time.sleep(120)
</file:end>
"""


@pytest.mark.docker
def test_abort_during_the_rig_says_so_at_the_end_of_the_rig_log(home, fake_llm, rig_ready):
    # the artifact's test sleeps, so the abort is sure to land while the rig runs it
    fake_llm.server.responder = lambda body: SLOW_TEST_ANSWER
    fake_llm.server.latency = 0.0
    with _store(home) as s:
        cid = create_campaign(s, settings(provider="anthropic", model="claude-haiku-4-5", generations=2,
                                          max_tokens=2048), ECHO)
    spawn_engine(home, cid)

    def rig_testing():
        for n in s.in_progress(cid):
            if "[rig] test:" in "".join(c["text"] for c in s.log_chunks(n)):
                return (n,)  # generation 0 is falsy
        return None

    with _store(home) as s:
        (n,) = wait_for(rig_testing, 120, "the rig to start the artifact's tests")
        s.send_command(cid, "abort")
        wait_for(lambda: s.campaign(cid)["state"] == "aborted", 60, "state aborted")
        wait_for(lambda: _engine_gone(home, cid), 30, "the engine to exit")
        g = s.generation(n)
        assert g.outcome.value == "interrupted" and "abort" in (g.reason or "")
        lines = "".join(c["text"] for c in s.log_chunks(n)).splitlines()
        assert lines[-1].startswith("[engine] interrupted: aborted by user"), lines[-5:]
        assert "does not judge the artifact" in lines[-1]
    from core.engine.containers import list_managed

    assert not [c for c, run in list_managed() if run.startswith(cid)]


@pytest.mark.docker
def test_halt_file_stops_new_work(home, fake_llm, rig_ready):
    with _store(home) as s:
        cid = create_campaign(s, settings(provider="anthropic", model="claude-haiku-4-5", generations=6,
                                          max_tokens=2048), ECHO)
    spawn_engine(home, cid)
    with _store(home) as s:
        wait_for(lambda: s.in_progress(cid), 30, "a generation to start")
        (home / "HALT").write_text("maintenance\n")
        wait_for(lambda: s.campaign(cid)["state"] == "stopped", 120, "state stopped")
        assert "HALT" in s.campaign(cid)["reason"]
        assert len(s.generations(cid)) < 6
        assert all(g.outcome.terminal for g in s.generations(cid))


# --- budgets ------------------------------------------------------------------------------------


@pytest.mark.docker
def test_dollar_budget_stops_with_reason_and_bounded_overshoot(home, fake_llm, rig_ready):
    from core.engine.budget import default_price, worst_case
    from core.llm.base import LLMRequest

    # the worst case of one generation call, as the engine will reserve it
    probe = LLMRequest(model="claude-haiku-4-5", system="", messages=[{"role": "user", "content": ECHO}],
                       max_tokens=2048)
    _, one_call = worst_case(probe, False, default_price)
    # Room for one worst case plus a little: the second worker cannot reserve while the first
    # call is in flight, and after a few calls the spend leaves no room for another worst case.
    cap = one_call * 1.2
    # the fake stands in for the Anthropic API: its Claude calls cost list prices (a loopback
    # server is otherwise a free local one); the engine reads the campaign home's prices.toml
    (home / "prices.toml").write_text(f'[[endpoint]]\nbase_url = "{fake_llm.base_url}"\nlist_prices = true\n')
    with _store(home) as s:
        cid = create_campaign(s, settings(provider="anthropic", model="claude-haiku-4-5", generations=10,
                                          parallelism=2, max_tokens=2048, budget_usd=cap), ECHO)
    spawn_engine(home, cid)
    with _store(home) as s:
        wait_for(lambda: s.campaign(cid)["state"] in ("stopped", "completed", "crashed"), 300, "the end")
        c = s.campaign(cid)
        assert c["state"] == "stopped", c
        assert "dollar budget" in c["reason"]
        tokens, spent = s.spend(cid)
        assert spent > 0
        # calls never start unless their worst case fits: overshoot bounded by in-flight reservations
        assert spent <= cap + 1e-9
        assert 1 <= len(s.generations(cid)) < 10
        calls = s.llm_calls(campaign_id=cid)
        assert len(calls) >= 1 and all(c.cost_usd > 0 for c in calls if c.outcome == "ok")
        assert {c.price_source for c in calls} == {"list"}
        assert all(g.outcome.terminal for g in s.generations(cid))


def test_model_allow_list_refuses(home):
    from core.engine.main import run_campaign

    with _store(home) as s:
        cid = create_campaign(s, settings(model="claude-opus-4-1", provider="sim",
                                          allowed_models=["claude-haiku-4-5"]), ECHO)
    with pytest.raises(ValueError, match="allow-list"):
        run_campaign(home, cid)
    with _store(home) as s:
        assert s.campaign(cid)["state"] == "crashed"
        assert "allow-list" in s.campaign(cid)["reason"]
        assert s.generations(cid) == []
