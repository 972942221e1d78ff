"""`cambrian hosts add|list|check|remove` against the stand-in remote host."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import session_labels

pytestmark = pytest.mark.docker


def cambrian(home, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "cambrian_tui.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=timeout)


def test_bad_input_is_refused_and_changes_nothing(tmp_path):
    from core.app.hosts import HostError, add_host, list_hosts

    before = list_hosts(tmp_path)
    for url, kw in [("http://box", {}), ("ssh://box/path", {}), ("ssh://box", {"slots": 0}),
                    ("ssh://box", {"name": "Bad Name"}), ("ssh://box", {"name": "local"}),
                    ("ssh://box", {"identity": str(tmp_path / "nope")}), ("local", {"name": "x"})]:
        with pytest.raises(HostError):
            add_host(tmp_path, url, **kw)
    assert list_hosts(tmp_path) == before == [dict(before[0], name="local")]
    r = cambrian(tmp_path, "hosts", "add", "ssh://box:99999")
    assert r.returncode == 2 and "port" in r.stderr


def test_add_check_remove_with_an_image_push(remote_host, tmp_path):
    from rig.backends.docker import image_tag

    tag = image_tag()
    remote = remote_host.client()
    want = remote.api.inspect_image(tag)["Id"]
    remote.api.remove_image(tag, force=True)  # the host lost it: check pushes it back
    home = tmp_path / "home"
    home.mkdir()
    r = cambrian(home, "hosts", "add", remote_host.url, "--name", "box", "--identity", str(remote_host.key),
                 "--known-hosts", str(remote_host.known_hosts), "--docker-socket", str(remote_host.docker_sock))
    assert r.returncode == 0, r.stderr
    rows = json.loads(cambrian(home, "hosts", "list", "--json").stdout)
    box = next(x for x in rows if x["name"] == "box")
    assert box["state"] == "drained" and "not checked" in box["drained"]
    r = cambrian(home, "hosts", "check", "box", "--json", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)[0]
    assert out["ok"] and out["state"] == "ready" and out["image"] == want
    assert remote.api.inspect_image(tag)["Id"] == want
    assert "pushed" in r.stderr
    assert out["calibration_s"] > 0 and out["docker"] and out["cgroup"] in ("1", "2")
    assert out["slots"] == out["cpus"]
    facts = json.loads((home / "hosts.json").read_text())["hosts"][-1]["facts"]
    print(f"[hosts] image push over the forward: {facts['image_push']['bytes'] / 1e6:.0f} MB "
          f"in {facts['image_push']['seconds']}s; calibration run {facts['calibration_s']}s")
    assert cambrian(home, "hosts", "remove", "box").returncode == 0
    assert [x["name"] for x in json.loads(cambrian(home, "hosts", "list", "--json").stdout)] == ["local"]
    # nothing of the forward is left: the check closed it
    assert not list((home / "run").glob("*.sock"))


def test_a_failed_check_says_why_and_keeps_the_host_drained(tmp_path, remote_host):
    from core.app.hosts import PreflightFailed, add_host, check_rig_host, list_hosts

    add_host(tmp_path, "ssh://root@127.0.0.1:1", name="gone", identity=str(remote_host.key))
    with pytest.raises(PreflightFailed, match="refused"):
        check_rig_host(tmp_path, "gone", labels=session_labels())
    row = next(r for r in list_hosts(tmp_path) if r["name"] == "gone")
    assert row["state"] == "drained" and "refused" in row["last_check_error"]
    # the drain reason is this failure, no longer "not checked yet"
    assert row["drained"].startswith("check failed:") and "refused" in row["drained"]


def test_a_passing_check_removes_what_dead_engines_of_the_home_left_on_the_host(remote_host, remote_forward, tmp_path):
    from core.app.hosts import add_host, check_rig_host
    from core.engine.containers import HOME_LABEL, home_id
    from core.home import db_path
    from core.store import Store
    from rig.api import RigLimits, StageTimeouts
    from rig.backends.docker import ROLE_MAIN, create_box, _close_lifeline

    home = tmp_path / "home"
    home.mkdir()
    Store.open(db_path(home)).close()
    _fwd, url = remote_forward
    from rig.remote import client_for

    api = client_for(url).api
    mine = {HOME_LABEL: home_id(db_path(home)), **session_labels()}
    other = {HOME_LABEL: "another-home", **session_labels()}
    left = create_box(api, "deadrun0001", 1, mine, RigLimits(), StageTimeouts(), ROLE_MAIN)
    foreign = create_box(api, "deadrun0002", 1, other, RigLimits(), StageTimeouts(), ROLE_MAIN)
    try:
        add_host(home, remote_host.url, name="box", identity=str(remote_host.key),
                 known_hosts=str(remote_host.known_hosts), docker_socket=str(remote_host.docker_sock))
        check_rig_host(home, "box", calibrate=False)
        ids = {c["Id"] for c in remote_host.client().api.containers(all=True)}
        assert left.cid not in ids          # this home's, of a run nobody owns: removed
        assert foreign.cid in ids           # another home's: left alone
    finally:
        for box in (left, foreign):
            _close_lifeline(box.lifeline)
            try:
                remote_host.client().api.remove_container(box.cid, force=True)
            except Exception:  # noqa: BLE001 - already removed by the check
                pass
