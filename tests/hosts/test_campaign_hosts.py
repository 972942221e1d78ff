"""A sim campaign across `local` + the stand-in remote host (real Docker on both), with
fault injection: the SSH forward killed mid-run on the remote host, then the rig image
removed there. Every run the host ended is retried on the other host, no generation fails
or is interrupted for infrastructure reasons, the remote host is drained with the reason
(status --json), rejoins after a passing check, and none of its containers is left."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest

from core.engine.launch import create_campaign
from core.engine.main import run_campaign
from core.home import REPO_ROOT, db_path
from core.llm.base import make_provider
from core.store import Store
from tests.engine.test_engine import cli, settings, wait_for

ECHO = (REPO_ROOT / "spec" / "echo.md").read_text()

pytestmark = pytest.mark.docker


def _add_hosts(home: Path, remote_host) -> None:
    from core.app.hosts import add_host, check_rig_host

    add_host(home, "local", slots=1)
    add_host(home, remote_host.url, name="box", slots=1, identity=str(remote_host.key),
             known_hosts=str(remote_host.known_hosts), docker_socket=str(remote_host.docker_sock))
    check_rig_host(home, "box", calibrate=False)


def _forward_pids(home: Path) -> list[int]:
    from core.hosts.links import run_dir

    needle = f"-L {run_dir(home)}/box.".encode().replace(b" ", b"\0")
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if needle in fh.read() and int(entry) != os.getpid():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def _reports(home: Path, cid: str) -> dict[int, dict]:
    with Store.open(db_path(home)) as s:
        return {g.number: s.report(g.number) for g in s.generations(cid) if s.report(g.number)}


def test_campaign_across_hosts_survives_a_lost_forward_and_a_removed_image(remote_host, tmp_path):
    from rig.backends.docker import image_tag

    home = tmp_path / "home"
    home.mkdir()
    _add_hosts(home, remote_host)
    with Store.open(db_path(home)) as s:
        cid = create_campaign(s, settings(generations=8, parallelism=2, seed=7, examiner="off"),
                              ECHO, label="hosts")
    remote = remote_host.client()
    out: dict = {}
    faults: dict = {}

    def engine() -> None:
        try:
            out["state"] = run_campaign(home, cid, provider_factory=lambda _s: make_provider("sim"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            out["error"] = exc

    t = threading.Thread(target=engine, daemon=True)
    t.start()
    try:
        # first a verdict judged on the remote host, then a run there in flight: cut its link
        wait_for(lambda: any((r.get("rig_host") or {}).get("name") == "box"
                             for r in _reports(home, cid).values()), 300, "a verdict from box")
        from core.engine.containers import run_id_for

        def in_flight_on_box():  # a running container of a generation still being judged
            with Store.open(db_path(home)) as s:
                runs = {run_id_for(cid, n) for n in s.in_progress(cid)}
            return [c for c in remote.api.containers(filters={"label": f"cambrian.campaign={cid}"})
                    if (c.get("Labels") or {}).get("cambrian.run") in runs]

        wait_for(in_flight_on_box, 300, "a run in flight on box")
        pids = wait_for(lambda: _forward_pids(home), 30, "the engine's forward to box")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        faults["forward_killed"] = pids
        remote.api.remove_image(image_tag(), force=True)  # and the host loses the rig image
        t.join(900)
        assert not t.is_alive(), "the campaign did not finish"
    finally:
        t.join(60)
    assert "error" not in out, out.get("error")
    assert out["state"] == "completed"
    with Store.open(db_path(home)) as s:
        gens = s.generations(cid)
        events = s.events(campaign_id=cid)
        reports = {g.number: s.report(g.number) for g in gens}
    # no generation failed or was interrupted for the infrastructure's sake
    for g in gens:
        assert g.outcome.value in ("promoted", "failed"), (g.number, g.outcome, g.reason)
        assert g.failure_stage != "engine" and not (g.reason or "").startswith(("rig error", "rig unavailable")), g.reason
    assert len(gens) == 8
    judged_on = {n: (r.get("rig_host") or {}).get("name") for n, r in reports.items() if r}
    assert set(judged_on.values()) == {"local", "box"}, judged_on
    for r in reports.values():
        assert r["rig_host"]["kernel"] and r["rig_host"]["docker"]
    retries = [e for e in events if e["kind"] == "rig_host_retry"]
    assert retries and all(e["data"]["host"] == "box" for e in retries), retries
    assert any("forward" in e["data"]["reason"] or "Docker on box" in e["data"]["reason"] for e in retries)
    # the retried generations were judged on local afterwards
    assert {judged_on[e["generation"]] for e in retries} == {"local"}
    # status --json shows the hosts, box with its failures (drained with the reason when 3)
    st = json.loads(cli(home, "campaign", "status", cid, "--json").stdout)
    box = next(h for h in st["hosts"] if h["name"] == "box")
    assert box["failures"] >= 1
    if box["state"] == "drained":
        assert "infrastructure failures" in box["drained"]
    # nothing of the campaign is left on the remote host
    assert remote.api.containers(all=True, filters={"label": f"cambrian.campaign={cid}"}) == []
    # a passing check (it pushes the image back over the link) returns box to use
    from core.app.hosts import check_rig_host

    row = check_rig_host(home, "box", calibrate=False)
    assert row["state"] == "ready" and row["failures"] == 0
    assert remote.api.inspect_image(image_tag())["Id"]
    print(f"[hosts] judged on: {judged_on}; retries: {[(e['generation'], e['data']['reason'][:80]) for e in retries]}")
