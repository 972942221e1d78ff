"""Reproduction on a remote rig host: the offspring's model calls reach the engine's LLM
gateway (served here) through a reverse-forwarded unix socket over SSH, with the same
isolation as locally (no other way out, the real key never inside)."""

from __future__ import annotations

import pytest

from rig.api import Channel, run_artifact
from tests.conftest import session_labels
from tests.rig.conftest import write_artifact
from tests.organisms import GatewayThread, breeder_entry, breeder_files

pytestmark = pytest.mark.docker

REAL_KEY = "sk-ant-REAL-KEY-must-never-enter-a-container-remote-7f"


def test_an_offspring_on_the_remote_host_breeds_through_the_reverse_forwarded_gateway(
        remote_forward, remote_host, tmp_path, monkeypatch):
    from rig.remote import ReverseSocket, SshOptions, SshTarget

    monkeypatch.setenv("ANTHROPIC_API_KEY", REAL_KEY)
    _fwd, url = remote_forward
    gw = GatewayThread(tmp_path)
    rev = ReverseSocket(SshTarget.parse(remote_host.url),
                        SshOptions(identity=str(remote_host.key), known_hosts=str(remote_host.known_hosts)),
                        gw.dir / "gw.sock", f"/tmp/cambrian-gw-test/{tmp_path.name}")
    try:
        remote_dir = rev.start()
        art = write_artifact(tmp_path / "breeder", breeder_files(), entry=breeder_entry(1))
        res = run_artifact(art, docker_url=url, labels=session_labels(),
                           channel=Channel(remote_dir, model="sim-1", timeout=120))
    finally:
        rev.stop()
        gw.close()
    rep = res.report.to_wire()
    assert rep["status"] == "viable", rep.get("diagnostics")
    repro = rep["reproduction"]
    assert repro["offered"] is True and repro["status"] == 200, repro
    b = repro["body"]["breeder"]
    assert b["errors"] == [] and len(b["answers"]) == 1  # the gateway here answered
    assert "connected" not in b["outside"].values(), b["outside"]
    assert b["key_seen"] is None and b["key"] != REAL_KEY
    assert res.offspring_files, "the offspring's artifact was not collected"
    assert len(gw.sink.calls) == 1  # ledgered here, like a local breeding
    # the remote folder is gone with the reverse forward
    import subprocess

    gone = subprocess.run(remote_host.ssh_argv("test", "-e", remote_dir), capture_output=True, timeout=30)
    assert gone.returncode != 0
