"""The stand-in remote host and the rig through an OpenSSH-forwarded socket."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import session_labels
from tests.rig.conftest import make_hello_artifact

pytestmark = pytest.mark.docker


def test_forward_reaches_the_other_engine_not_ours(remote_forward, remote_host):
    from rig.remote import client_for, engine_facts

    fwd, url = remote_forward
    remote = engine_facts(client_for(url))
    local = engine_facts(client_for(None))
    # (two engines on one machine share /etc/docker/key.json, hence the engine ID)
    assert remote["root_dir"] != local["root_dir"]
    assert remote["root_dir"] == remote_host.client().info()["DockerRootDir"]


def test_hello_is_viable_on_the_remote_host_and_leaves_nothing(remote_forward, remote_host, tmp_path):
    from rig.api import run_artifact, wait_removed

    fwd, url = remote_forward
    art = make_hello_artifact(tmp_path / "hello")
    t0 = int(time.time()) - 1
    res = run_artifact(art, docker_url=url, labels=session_labels())
    assert res.viable, res.report.to_wire()
    assert res.rig_error is None
    engine = remote_host.client()
    assert wait_removed(60.0)
    # the containers were on the stand-in: its events name them, the local engine's do not
    def created(client) -> set[str]:
        evs = client.api.events(since=t0, until=int(time.time()) + 1, decode=True,
                                filters={"type": "container", "event": "create"})
        return {e["id"] for e in evs}

    from rig.remote import client_for

    assert set(res.container_ids) <= created(engine)
    assert not set(res.container_ids) & created(client_for(None))
    # this run's containers are gone (other tests' runs on the shared stand-in are theirs)
    left = engine.api.containers(all=True, filters={"label": f"cambrian.run={res.run_id}"})
    assert left == []


def test_forward_is_restarted_after_it_dies(remote_forward):
    from rig.remote import client_for

    fwd, url = remote_forward
    os.killpg(fwd.proc.pid, signal.SIGKILL)
    fwd.proc.wait(10)
    assert not fwd.alive()
    with pytest.raises(Exception):
        client_for(url, timeout=5).ping()
    assert fwd.ensure() == url
    assert fwd.restarts == 1
    assert client_for(url).ping()


def test_a_remote_oom_kill_is_seen_from_inside(remote_forward, tmp_path):
    """The remote engine's pids mean nothing in our /proc: OOM comes from inside."""
    from rig.api import RigLimits, run_artifact
    from tests.rig.conftest import hello_files, write_artifact

    fwd, url = remote_forward
    files = hello_files()
    files["tests/test_app.py"] = ("def test_hog():\n    x = bytearray(900 * 1024 * 1024)\n"
                                  "    assert len(x)\n")
    art = write_artifact(tmp_path / "hog", files)
    res = run_artifact(art, docker_url=url, labels=session_labels(), limits=RigLimits(memory_mb=256))
    assert res.report.status != "viable"
    assert res.oom_killed, res.report.to_wire()
