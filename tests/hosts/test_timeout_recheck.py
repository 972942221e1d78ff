"""A rig timeout on one host counts only when it reproduces on another: the engine runs the
artifact again on another host and keeps that verdict; the slow host is not charged.

The hosts and their links are real (local + the stand-in remote host through its forward);
the rig is a stand-in that says "timed out" where the test wants it (a real hang costs
minutes per host)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from core.engine.launch import create_campaign
from core.engine.main import run_campaign
from core.home import db_path
from core.llm.base import make_provider
from core.store import Store
from rig.api import RigResult
from rig.schema import Diagnostics, StageCheck, ViabilityReport
from tests.engine.test_engine import settings
from tests.hosts.test_campaign_hosts import ECHO

pytestmark = pytest.mark.docker


def rig_timing_out(where: dict[int, set[str]], calls: list):
    """Times out generation n's test stage on the hosts in where[n] ("local"/"remote")."""

    def rig(artifact_dir, *, generation=None, run_id=None, docker_url=None, **_kw) -> RigResult:
        side = "remote" if docker_url else "local"
        calls.append((generation, side))
        slow = side in where.get(generation, set())
        checks = {s: StageCheck(passed=True, duration_ms=1) for s in ("manifest", "build", "test", "start", "health")}
        if slow:
            checks["test"] = StageCheck.model_validate({"passed": False, "duration_ms": 60000, "timed_out": True})
        report = ViabilityReport(
            generation=generation, status="non-viable" if slow else "viable",
            failure_stage="test" if slow else "none", checks=checks,
            completed_at=datetime.now(timezone.utc).isoformat(),
            diagnostics=Diagnostics(stage="test", summary="tests: timed out after 60s") if slow else None)
        return RigResult(report=report, backend="docker", run_id=run_id, container_id=None,
                         stage_ms={}, total_ms=5, first_output_ms=1, oom_killed=False, rig_error=None)

    return rig


def test_a_timeout_on_one_host_is_rechecked_on_another(remote_host, tmp_path):
    from core.app.hosts import add_host, check_rig_host, list_hosts

    home = tmp_path / "home"
    home.mkdir()
    add_host(home, "local", slots=1)
    add_host(home, remote_host.url, name="box", slots=2, identity=str(remote_host.key),  # box first
             known_hosts=str(remote_host.known_hosts), docker_socket=str(remote_host.docker_sock))
    check_rig_host(home, "box", calibrate=False)
    with Store.open(db_path(home)) as s:
        cid = create_campaign(s, settings(generations=2, parallelism=1, examiner="off"), ECHO, label="t")
    calls: list = []
    # the first generation times out on box only; the second everywhere
    where: dict[int, set[str]] = {}

    def rig(artifact_dir, **kw):
        g = kw["generation"]
        if not where:
            where[g] = {"remote"}
            where[g + 1] = {"remote", "local"}
        return rig_timing_out(where, calls)(artifact_dir, **kw)

    assert run_campaign(home, cid, rig_fn=rig, use_hosts=True,
                        provider_factory=lambda _s: make_provider("sim")) == "completed"
    g0, g1 = sorted(where)
    assert [c for c in calls if c[0] == g0] == [(g0, "remote"), (g0, "local")]
    assert [c for c in calls if c[0] == g1] == [(g1, "remote"), (g1, "local")]
    with Store.open(db_path(home)) as s:
        gens = {g.number: g for g in s.generations(cid)}
        events = [e for e in s.events(campaign_id=cid) if e["kind"] == "rig_timeout_recheck"]
        r0, r1 = s.report(g0), s.report(g1)
    # not reproduced: the other host's verdict stands
    assert gens[g0].outcome.value == "promoted" and r0["rig_host"]["name"] == "local"
    assert r0["rig_host"]["timeout_rechecked"] is True
    # reproduced: a timeout verdict
    assert gens[g1].outcome.value == "failed" and r1["failure_stage"] == "test"
    assert [e["generation"] for e in events] == [g0, g1]
    box = next(h for h in list_hosts(home) if h["name"] == "box")
    assert box["failures"] == 0 and box["state"] == "ready"  # a slow run is not the host's fault
