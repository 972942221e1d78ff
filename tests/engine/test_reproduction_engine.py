"""The engine's reproduction stage end to end: real Docker rig, real SQLite, the real anthropic
SDK in the engine against the loopback fake Messages server. The campaign's model answers the
engine's generate call with the breeder (tests/organisms.py); a promoted breeder is asked to
breed, its own calls reach the same fake server through the engine's LLM gateway, and what it
wrote is judged as a generation of its own (bred_by the breeder, in no campaign).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from core.engine.launch import create_campaign, resume, spawn_engine
from core.engine.main import run_campaign
from core.engine.summary import campaign_summary, fertility
from core.home import db_path
from core.llm.fake_server import FakeAnthropicThread
from core.models import CampaignSettings, Outcome
from core.store import Store
from tests.conftest import SESSION_LABEL_KEY, SESSION_LABEL_VALUE
from tests.organisms import HELLO_TEST, breeder_files, breeder_spec, hello_files

pytestmark = pytest.mark.docker

# the engine's key; the breeder searches its container for "sk-ant-REAL" and must not find it
REAL_KEY = "sk-ant-REAL-engine-key-0042-never-in-a-container"
MODEL = "claude-breeder-test"


def answer(offspring: dict[str, str] | None = None) -> str:
    """The model's answer to the engine's generate call: the breeder's files (§6.4 blocks)."""
    files = breeder_files(offspring, spec=False)
    return "Here is the breeder.\n\n" + "".join(
        f'<file path="{p}">\n{c}\n</file:end>\n' for p, c in files.items())


class Model:
    """What the fake server answers: the generate call (the engine's Prime prompt has a system
    prompt) gets the breeder; a call the breeder makes through the gateway gets a short text."""

    def __init__(self, text: str, breed_text: str = "noted: a hello service"):
        self.text = text
        self.breed_text = breed_text
        self.generate_calls = 0
        self.breed_calls = 0
        self.breeding = threading.Event()

    async def __call__(self, body: dict) -> str:
        if body.get("system"):
            self.generate_calls += 1
            return self.text
        self.breed_calls += 1
        self.breeding.set()
        return self.breed_text


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def llm(monkeypatch):
    started = []

    def start(model: Model) -> str:
        srv = FakeAnthropicThread(model)
        url = srv.start()
        started.append(srv)
        return url

    monkeypatch.setenv("ANTHROPIC_API_KEY", REAL_KEY)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    yield start
    for srv in started:
        srv.stop()


def new_campaign(home: Path, base_url: str, spec: str, **kw) -> str:
    s = dict(spec_hash="sha256:" + "0" * 64, generations=1, parallelism=1, provider="anthropic",
             model=MODEL, base_url=base_url, context_window=200_000, seed=3, max_retries=0,
             backend="docker", reproduction="every", max_tokens=16_000,
             examiner="off")  # the fake server answers code only (the examiner: tests/examiner)
    s.update(kw)
    with Store.open(db_path(home)) as store:
        return create_campaign(store, CampaignSettings(**s).model_dump(), spec, label="breed")


def labelled(cid: str) -> list[str]:
    """This session's rig containers of this campaign, running or not."""
    r = subprocess.run(["docker", "ps", "-a", "-q", "--filter", "label=cambrian.rig=1",
                        "--filter", f"label={SESSION_LABEL_KEY}={SESSION_LABEL_VALUE}",
                        "--filter", f"label=cambrian.campaign={cid}"],
                       capture_output=True, text=True, timeout=30)
    return r.stdout.split()


def bred_containers(run: str) -> list[str]:
    """This session's running containers of one rig run."""
    r = subprocess.run(["docker", "ps", "-q", "--filter", f"label={SESSION_LABEL_KEY}={SESSION_LABEL_VALUE}",
                        "--filter", f"label=cambrian.run={run}"], capture_output=True, text=True, timeout=30)
    return r.stdout.split()


def assert_nothing_left(home: Path, cid: str) -> None:
    deadline = time.monotonic() + 45  # a container being removed may still be listed
    left = labelled(cid)
    while left and time.monotonic() < deadline:
        time.sleep(1.0)
        left = labelled(cid)
    assert left == [], f"rig containers left: {left}"
    gw = home / "gw"
    assert not gw.exists() or list(gw.iterdir()) == [], list(gw.iterdir())


def slow_offspring() -> dict[str, str]:
    """The hello service with a test that takes 30 s: its judging is still on when the test acts."""
    files = {k: v for k, v in hello_files().items() if not k.startswith("spec/")}
    files["tests/test_slow.py"] = "import time\n\n\ndef test_slow():\n    time.sleep(30)\n"
    return files


def reproduction_calls(store: Store, n: int) -> list:
    return [c for c in store.llm_calls(generation=n) if c.purpose == "reproduction"]


# --- fertile, infertile ---------------------------------------------------------------------


def test_a_promoted_breeder_breeds_a_viable_offspring_judged_in_its_own_run(home, llm, rig_ready):
    model = Model(answer())
    cid = new_campaign(home, llm(model), breeder_spec())
    assert run_campaign(home, cid) == "completed"
    with Store.open(db_path(home)) as s:
        (parent,) = s.generations(cid)
        assert parent.outcome is Outcome.PROMOTED, parent.reason
        (bred,) = s.bred_generations(campaign_id=cid)
        assert s.bred_by(bred.number) == parent.number
        assert bred.parent == parent.number and bred.campaign_id is None
        assert bred.outcome is Outcome.PROMOTED, bred.reason
        # judged in a fresh rig run of its own, with its own report and log
        (prun,), (brun,) = s.rig_runs(parent.number), s.rig_runs(bred.number)
        assert brun.run_id == f"{prun.run_id}.bred{bred.number}"
        assert brun.container_id and brun.container_id != prun.container_id
        report = s.report(bred.number)
        assert report["status"] == "viable" and report["generation"] == bred.number
        manifest = json.loads(s.artifact_files(bred.artifact_hash)["manifest.json"])
        assert manifest["generation"] == bred.number and manifest["parent-generation"] == parent.number
        # the reproduction record
        r = s.reproduction(parent.number)
        assert r["status"] == "fertile" and r["offspring"] == bred.number and r["stage"] is None
        b = r["request"]["response"]["breeder"]
        assert b["errors"] == [] and len(b["answers"]) == 1
        assert b["key_seen"] is None and b["key"] != REAL_KEY  # the engine's key stayed outside
        assert "connected" not in b["outside"].values(), b["outside"]
        gw_calls = r["gateway"]["calls"]
        assert [c["status"] for c in gw_calls] == [200] and r["gateway"]["cut_off"] is None
        # the breeder's call is in the ledger, against this campaign's spend
        (call,) = reproduction_calls(s, parent.number)
        assert call.campaign_id == cid and r["tokens"] == call.input_tokens + call.output_tokens
        assert model.breed_calls == 1 and model.generate_calls == 1
        tokens, _usd = s.spend(cid)
        assert tokens == sum(c.input_tokens + c.output_tokens + c.cache_creation_input_tokens
                             + c.cache_read_input_tokens for c in s.llm_calls(campaign_id=cid))
        assert call.input_tokens + call.output_tokens <= tokens
        f = fertility(s, cid)
        assert (f["tested"], f["fertile"], f["infertile"], f["errors"]) == (1, 1, 0, 0)
        assert f["rate"] == 1.0 and f["rig_ms_median"] > 0
        assert campaign_summary(s, cid)["fertility"] == f
        # the bred generation is in no campaign's count
        assert [g.number for g in s.generations(cid)] == [parent.number]
    assert_nothing_left(home, cid)


def test_a_breeder_whose_offspring_fails_is_infertile_with_the_reason(home, llm, rig_ready):
    broken = {k: v for k, v in hello_files().items() if not k.startswith("spec/")}
    broken["tests/test_app.py"] = HELLO_TEST.replace('== "hello"', '== "goodbye"')
    cid = new_campaign(home, llm(Model(answer(broken))), breeder_spec())
    assert run_campaign(home, cid) == "completed"
    with Store.open(db_path(home)) as s:
        (parent,) = s.generations(cid)
        assert parent.outcome is Outcome.PROMOTED  # viable itself: only breeding reveals it
        (bred,) = s.bred_generations(campaign_id=cid)
        assert bred.outcome is Outcome.FAILED and s.report(bred.number)["failure_stage"] == "test"
        r = s.reproduction(parent.number)
        assert r["status"] == "infertile" and r["offspring"] == bred.number
        assert r["stage"] == "offspring:test" and r["reason"]
        f = fertility(s, cid)
        assert (f["tested"], f["fertile"], f["infertile"]) == (1, 0, 1)
        assert f["infertile_stages"] == {"offspring:test": 1} and f["rate"] == 0.0
    assert_nothing_left(home, cid)


# --- caps and budget --------------------------------------------------------------------------


def test_a_runaway_breeder_is_cut_off_by_the_call_cap_and_the_reason_kept(home, llm, rig_ready):
    model = Model(answer())
    cid = new_campaign(home, llm(model), breeder_spec(calls=4), reproduction_calls=1)
    assert run_campaign(home, cid) == "completed"
    with Store.open(db_path(home)) as s:
        (parent,) = s.generations(cid)
        r = s.reproduction(parent.number)
        gw = r["gateway"]
        assert gw["cut_off"].startswith("call cap reached (1 calls")
        assert [c["status"] for c in gw["calls"]] == [200, 429, 429, 429]
        assert [c["forwarded"] for c in gw["calls"]] == [True, False, False, False]
        b = r["request"]["response"]["breeder"]
        assert len(b["answers"]) == 1 and all("call cap reached" in e for e in b["errors"])
        # only the forwarded call was paid for and ledgered
        assert len(reproduction_calls(s, parent.number)) == 1 and model.breed_calls == 1
        # it still wrote a viable offspring: the cap is recorded, not a verdict
        assert r["status"] == "fertile"
    assert_nothing_left(home, cid)


def test_the_campaign_budget_running_out_while_it_breeds_stops_the_campaign(home, llm, rig_ready):
    # each of the breeder's calls is answered at its full 2000 tokens: the generation (its
    # worst case about 6k tokens) fits the budget, the breeder's 20 calls do not
    model = Model(answer(), breed_text="a long answer " * 1000)
    budget = 12_000
    cid = new_campaign(home, llm(model), breeder_spec(calls=20), generations=3, max_tokens=4000,
                       budget_tokens=budget, reproduction_calls=100)
    assert run_campaign(home, cid) == "stopped"
    with Store.open(db_path(home)) as s:
        c = s.campaign(cid)
        assert "budget" in c["reason"], c["reason"]
        gens = s.generations(cid)
        assert len(gens) == 1, [(g.number, g.outcome, g.reason) for g in gens]  # nothing after the stop
        (parent,) = gens
        assert parent.outcome is Outcome.PROMOTED
        r = s.reproduction(parent.number)
        assert r["status"] == "error" and r["stage"] == "gateway"
        assert r["reason"].startswith("campaign budget:") and r["offspring"] is None
        assert s.bred_generations(campaign_id=cid) == []
        assert r["gateway"]["calls"][-1]["status"] == 429
        paid = reproduction_calls(s, parent.number)
        assert 0 < len(paid) == model.breed_calls < 20
        tokens, _ = s.spend(cid)
        assert tokens <= budget
        f = fertility(s, cid)
        assert (f["tested"], f["errors"]) == (0, 1) and f["rate"] is None
    assert_nothing_left(home, cid)


def test_reproduction_off_opens_no_gateway_and_records_nothing(home, llm, rig_ready):
    model = Model(answer())
    cid = new_campaign(home, llm(model), breeder_spec(), reproduction="off")
    assert run_campaign(home, cid) == "completed"
    with Store.open(db_path(home)) as s:
        (parent,) = s.generations(cid)
        assert parent.outcome is Outcome.PROMOTED
        assert not (s.report(parent.number).get("reproduction") or {}).get("offered")
        assert s.reproductions(cid) == [] and s.bred_generations(campaign_id=cid) == []
        assert reproduction_calls(s, parent.number) == [] and model.breed_calls == 0
        assert fertility(s, cid) is None and campaign_summary(s, cid)["fertility"] is None
    assert not (home / "gw").exists()
    assert_nothing_left(home, cid)


# --- a crash while it breeds ----------------------------------------------------------------


def test_sigkill_while_the_bred_offspring_is_judged_then_resume_closes_it(home, llm, rig_ready):
    model = Model(answer(slow_offspring()))
    cid = new_campaign(home, llm(model), breeder_spec())
    pid = spawn_engine(home, cid)
    try:
        with Store.open(db_path(home)) as s:
            deadline = time.monotonic() + 300
            bred = []
            while time.monotonic() < deadline:
                bred = [g for g in s.bred_generations(campaign_id=cid) if g.outcome is Outcome.IN_PROGRESS]
                if bred or not s.lease_alive(cid):
                    break
                time.sleep(0.1)
            assert bred, f"no bred generation was being judged: {s.campaign(cid)}"
            # its row comes first, its containers a moment later: kill once they run
            run = f"{cid}.g{s.bred_by(bred[0].number)}.bred{bred[0].number}"
            while time.monotonic() < deadline and not bred_containers(run):
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            killed_at = bred[0].number
            assert labelled(cid), "the bred offspring's containers should outlive the engine"
            assert resume(home, cid) == "restarted"
            deadline = time.monotonic() + 120
            while s.lease_alive(cid) and time.monotonic() < deadline:
                time.sleep(0.3)
            assert s.campaign(cid)["state"] == "completed"
            g = s.generation(killed_at)
            assert g.outcome is Outcome.INTERRUPTED and "died while judging what" in g.reason
            (parent,) = s.generations(cid)
            assert parent.outcome is Outcome.PROMOTED and s.bred_by(g.number) == parent.number
            # the breeder's call counted once, whatever the crash
            assert len(reproduction_calls(s, parent.number)) == model.breed_calls == 1
            assert all(x.outcome.terminal for x in s.generations()), s.generations()
            assert s.integrity_check() == "ok"
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert_nothing_left(home, cid)


def test_another_engine_leaves_a_live_breeding_alone_and_an_abort_closes_it(home, llm, rig_ready):
    from core.engine.reconcile import startup_reconcile

    model = Model(answer(slow_offspring()))
    cid = new_campaign(home, llm(model), breeder_spec())
    pid = spawn_engine(home, cid)
    try:
        with Store.open(db_path(home)) as s:
            deadline = time.monotonic() + 300
            bred = []
            while time.monotonic() < deadline and s.lease_alive(cid):
                bred = [g for g in s.bred_generations(campaign_id=cid) if g.outcome is Outcome.IN_PROGRESS]
                if bred:
                    break
                time.sleep(0.1)
            assert bred, f"no bred generation was being judged: {s.campaign(cid)}"
            # an engine of another campaign starting now: the live campaign's bred run is live
            result = startup_reconcile(s)
            assert result["killed_containers"] == [] and bred[0].number not in result["closed_generations"]
            assert s.generation(bred[0].number).outcome is Outcome.IN_PROGRESS
            s.send_command(cid, "abort", {"reason": "test abort while breeding"})
            deadline = time.monotonic() + 120
            while s.lease_alive(cid) and time.monotonic() < deadline:
                time.sleep(0.3)
            assert s.campaign(cid)["state"] == "aborted"
            g = s.generation(bred[0].number)
            assert g.outcome is Outcome.INTERRUPTED and "test abort while breeding" in g.reason, g
            assert all(x.outcome.terminal for x in s.generations()), s.generations()
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert_nothing_left(home, cid)


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_starts_a_breeding_campaign_and_status_shows_its_fertility(home, llm, rig_ready, tmp_path):
    from tests.engine.test_engine import cli

    url = llm(Model(answer()))
    spec = tmp_path / "breeder.md"
    spec.write_text(breeder_spec())
    res = cli(home, "campaign", "start", "--spec", str(spec), "-n", "1", "-p", "1", "--provider", "anthropic",
              "--base-url", url, "--model", MODEL, "--context-window", "200000", "--max-retries", "0",
              "--reproduce", "every", "--wait", "--json")
    assert res.returncode == 0, res.stderr
    st = json.loads(res.stdout)
    assert st["state"] == "completed" and st["settings"]["reproduction"] == "every"
    f = st["summary"]["fertility"]
    assert (f["bred"], f["tested"], f["fertile"], f["infertile"], f["errors"]) == (1, 1, 1, 0, 0)
    text = cli(home, "campaign", "status", st["id"])
    assert text.returncode == 0, text.stderr
    assert "reproduction: bred 1, fertile 1, infertile 0, errors 0 — fertility 100%" in text.stdout
    assert_nothing_left(home, st["id"])
    # a spec that declares no reproduction is refused with the reason, nothing stored
    echo = cli(home, "campaign", "start", "--spec", "spec/echo.md", "-n", "1", "--provider", "sim",
               "--reproduce", "sample:0.5")
    assert echo.returncode == 1 and "declares no `reproduce`" in echo.stderr
    with Store.open(db_path(home)) as s:
        assert [c["id"] for c in s.campaigns()] == [st["id"]]
