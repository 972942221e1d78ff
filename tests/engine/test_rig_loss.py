"""Nothing is spent on work the rig cannot judge (real Docker engine, sim provider).

* Before: `campaign start` / `evolve start` refuse with the reason and the fix when the rig
  image is missing or the engine unreachable; nothing is created.
* During: when the rig becomes unusable mid-campaign (its image deleted, the engine's link
  lost), the campaign stops with the reason; the generation that hit it is `interrupted`
  (never `failed`, never counted) and on resume its artifact is re-judged without a new
  LLM call.

These tests never touch the rig image or the engine other runs use: a missing image is a
tag of our own (CAMBRIAN_RIG_IMAGE), a lost engine is a forwarder socket we cut.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from core.engine.containers import home_id, list_managed
from core.engine.launch import create_campaign
from core.engine.main import run_campaign
from core.home import REPO_ROOT, db_path
from core.llm.base import make_provider
from core.models import CampaignSettings
from core.store import Store
from tests.engine.test_engine import cli, settings, wait_for
from tests.sockproxy import UnixProxy

ECHO = (REPO_ROOT / "spec" / "echo.md").read_text()

pytestmark = pytest.mark.docker


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def own_image_tag(rig_ready):
    """A tag of our own on the real rig image: deleting it deletes nothing anyone uses."""
    from rig.image import docker_client

    client = docker_client()
    tag = f"cambrian-rig-losstest:{uuid.uuid4().hex[:10]}"
    repo, t = tag.split(":")
    client.images.get(rig_ready).tag(repo, t)
    yield tag
    try:
        client.images.remove(tag)
    except Exception:  # noqa: BLE001 - the test may have removed it already
        pass


class CountingSim:
    """The sim provider, plus a hook after the n-th call (the test's hand on the world)."""

    def __init__(self, after_call: dict[int, callable]):
        self.inner = make_provider("sim")
        self.name, self.simulated = self.inner.name, True
        self.calls = 0
        self.after_call = after_call

    async def complete(self, req, on_delta=None):
        resp = await self.inner.complete(req, on_delta)
        self.calls += 1
        hook = self.after_call.get(self.calls)
        if hook:
            hook()
        return resp


def _new_campaign(home: Path, n: int) -> str:
    with Store.open(db_path(home)) as s:
        return create_campaign(s, settings(generations=n, parallelism=1, seed=4, examiner="off"), ECHO, label="loss")


# --- before: refused, nothing created --------------------------------------------------------


def test_campaign_start_refuses_without_the_rig_image(home):
    missing = f"cambrian-rig-losstest:missing-{uuid.uuid4().hex[:8]}"
    os.environ["CAMBRIAN_RIG_IMAGE"] = missing
    try:
        res = cli(home, "campaign", "start", "--spec", str(REPO_ROOT / "spec" / "echo.md"),
                  "-n", "2", "--provider", "sim", timeout=120)
        evo = cli(home, "evolve", "start", "--spec", str(REPO_ROOT / "spec" / "echo.md"),
                  "--budget-generations", "24", "--provider", "sim", timeout=120)
    finally:
        del os.environ["CAMBRIAN_RIG_IMAGE"]
    for r in (res, evo):
        assert r.returncode != 0
        assert f"rig image {missing} is missing" in r.stderr
        assert "cambrian rig build-image" in r.stderr  # the fix
    with Store.open(db_path(home)) as s:
        assert s.campaigns() == []
        assert s.generations() == []
        assert s.llm_calls() == []


def test_campaign_start_refuses_without_a_docker_engine(home, tmp_path):
    os.environ["DOCKER_HOST"] = f"unix://{tmp_path}/no-engine.sock"
    try:
        res = cli(home, "campaign", "start", "--spec", str(REPO_ROOT / "spec" / "echo.md"),
                  "-n", "2", "--provider", "sim", "--json", timeout=120)
    finally:
        del os.environ["DOCKER_HOST"]
    assert res.returncode != 0
    assert "Docker engine unreachable" in res.stderr and "Start dockerd" in res.stderr
    with Store.open(db_path(home)) as s:
        assert s.campaigns() == [] and s.generations() == []


# --- during: stopped, interrupted, re-judged without a new call --------------------------------


def test_image_deleted_mid_campaign_stops_it_and_resume_rejudges_without_a_new_call(
        home, own_image_tag, monkeypatch):
    from rig.image import docker_client

    monkeypatch.setenv("CAMBRIAN_RIG_IMAGE", own_image_tag)
    cid = _new_campaign(home, 3)
    client = docker_client()
    # the image disappears right after generation #1's LLM call, before its rig run
    sim = CountingSim({2: lambda: client.images.remove(own_image_tag)})
    state = run_campaign(home, cid, provider_factory=lambda _s: sim)
    assert state == "stopped"
    with Store.open(db_path(home)) as s:
        c = s.campaign(cid)
        assert c["reason"].startswith("rig unavailable: rig image") and "resume" in c["reason"]
        gens = {g.number: g for g in s.generations(cid)}
        assert len(gens) == 2, gens  # nothing created after the stop
        hit = gens[max(gens)]
        assert hit.outcome.value == "interrupted"
        assert hit.reason.startswith("rig unavailable") and hit.artifact_hash
        assert not [g for g in gens.values() if g.failure_stage == "engine"]
        calls_before = len(s.llm_calls(campaign_id=cid))
    assert calls_before == sim.calls == 2

    # the image is back: resume judges the paid-for artifact, then goes on
    repo, t = own_image_tag.split(":")
    client.images.get(_real_tag()).tag(repo, t)
    sim2 = CountingSim({})
    assert run_campaign(home, cid, provider_factory=lambda _s: sim2) == "completed"
    with Store.open(db_path(home)) as s:
        redo = [g for g in s.generations(cid) if s.redo_of(g.number) == hit.number]
        assert len(redo) == 1
        assert redo[0].artifact_hash == hit.artifact_hash
        assert redo[0].outcome.value in ("promoted", "failed")  # a real verdict this time
        assert s.report(redo[0].number) is not None
        counted = [g for g in s.generations(cid) if g.outcome.value != "interrupted"]
        assert len(counted) == 3
        # one call for the one new generation; none for the re-judged artifact
        assert sim2.calls == 1
        assert len(s.llm_calls(campaign_id=cid)) == calls_before + 1
        assert not s.llm_calls(generation=redo[0].number)


def _real_tag() -> str:
    from rig.image import image_tag

    return image_tag()


def test_engine_link_lost_mid_run_interrupts_and_leaves_nothing(home, tmp_path, rig_ready, monkeypatch):
    proxy = UnixProxy(tmp_path / "docker.sock")
    monkeypatch.setenv("DOCKER_HOST", proxy.url)
    cid = _new_campaign(home, 2)
    out: dict = {}

    def engine() -> None:
        try:
            out["state"] = run_campaign(home, cid, provider_factory=lambda _s: make_provider("sim"))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            out["error"] = exc

    t = threading.Thread(target=engine, daemon=True)
    t.start()
    try:
        # the rig is running generation #0's stages (its output is arriving): cut the link
        def rig_running():
            with Store.open(db_path(home)) as s:
                gens = s.generations(cid)
                return gens and any("[rig]" in c["text"] for c in s.log_chunks(gens[0].number))
        wait_for(rig_running, 120, "the rig to start judging the first generation")
        proxy.cut()
        t.join(180)
        assert not t.is_alive(), "the engine did not stop after losing Docker"
    finally:
        proxy.cut()
    assert "error" not in out, out.get("error")
    assert out["state"] == "stopped"
    with Store.open(db_path(home)) as s:
        assert s.campaign(cid)["reason"].startswith("rig unavailable: Docker engine unreachable")
        gens = s.generations(cid)
        assert [g.outcome.value for g in gens] == ["interrupted"]
        assert gens[0].artifact_hash and not s.report(gens[0].number)

    # the engine is reachable again (a new link): resume cleans up and finishes
    monkeypatch.delenv("DOCKER_HOST")
    assert run_campaign(home, cid, provider_factory=lambda _s: make_provider("sim")) == "completed"
    with Store.open(db_path(home)) as s:
        gens = s.generations(cid)
        assert [g.outcome.value for g in gens][0] == "interrupted"
        assert sum(g.outcome.value != "interrupted" for g in gens) == 2
        assert s.redo_of(gens[1].number) == gens[0].number
        assert len(s.llm_calls(campaign_id=cid)) == 2  # the re-judge called nobody
        events = [e["kind"] for e in s.events(campaign_id=cid)]
        assert "rig_unavailable" in events and "generation_redo" in events
    # the container the cut left behind was removed by the resume's reconcile
    wait_for(lambda: not list_managed(home_id(db_path(home))), 30, "no rig container of this home")
