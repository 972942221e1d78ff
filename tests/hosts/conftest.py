"""Fixtures for the multi-host tests: a stand-in remote rig host (tests/hosts/remote_host.py),
started once per session and stopped at its end, also when tests fail.

Without root or the tools (dockerd, sshd, ssh, ssh-keygen, unshare) these tests skip, with
the reason -- unless CAMBRIAN_REQUIRE_HOSTS=1 (CI sets it), in which case they fail.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.hosts.remote_host import RemoteHost, unavailable_reason

REQUIRE_ENV = "CAMBRIAN_REQUIRE_HOSTS"
TIMINGS: dict[str, float] = {}


def _skip_or_fail(why: str):
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but the stand-in remote host cannot run: {why}")
    pytest.skip(f"stand-in remote host unavailable: {why} (set {REQUIRE_ENV}=1 to fail instead)")


@pytest.fixture(scope="session")
def remote_host(require_docker, rig_ready) -> RemoteHost:
    """A second Docker engine behind a loopback sshd, holding the rig image (same id)."""
    why = unavailable_reason()
    if why:
        _skip_or_fail(why)
    host = RemoteHost.start()
    try:
        TIMINGS["image_load_s"] = host.load_image(rig_ready)
        print(f"[hosts] stand-in remote host {host.url}: rig image loaded in "
              f"{TIMINGS['image_load_s']:.1f}s", file=sys.stderr)
        yield host
    finally:
        notes = host.stop()
        assert not host.running(), "the stand-in remote host left processes running"
        assert not Path(host.root).exists() or not any(Path(host.root).iterdir())
        if notes:
            print(f"[hosts] teardown had to force: {notes}", file=sys.stderr)


@pytest.fixture
def remote_forward(remote_host, tmp_path_factory):
    """An OpenSSH forward to the stand-in's engine: (Forward, docker_url); stopped after."""
    from rig.remote import Forward, SshOptions, SshTarget

    fwd = Forward(SshTarget.parse(remote_host.url),
                  SshOptions(identity=str(remote_host.key), known_hosts=str(remote_host.known_hosts)),
                  tmp_path_factory.mktemp("fwd") / "h.sock", str(remote_host.docker_sock))
    try:
        yield fwd, fwd.ensure()
    finally:
        fwd.stop()


@pytest.fixture(autouse=True)
def _rig_image_on_the_stand_in(request):
    """Tests that take the rig image away from the stand-in (a fault, a push) must not fail
    the ones after them: before each test using the host, its image is there again."""
    if "remote_host" not in request.fixturenames:
        yield
        return
    host = request.getfixturevalue("remote_host")
    tag = request.getfixturevalue("rig_ready")
    try:
        host.client().api.inspect_image(tag)
    except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound (or NotFound): load it again
        seconds = host.load_image(tag)
        print(f"[hosts] rig image reloaded into the stand-in in {seconds:.1f}s", file=sys.stderr)
    yield
