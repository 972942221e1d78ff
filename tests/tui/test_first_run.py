"""A new user's first run, in a real terminal: `./cambrian` with no rig image builds it
(visible progress), opens the TUI, and `n`, ctrl+s gives a campaign with viable
generations — no generation ever `failed@engine` for a missing image.

"Missing" without touching anyone's image: the image is built under a repository name of
this test's own (CAMBRIAN_RIG_REPOSITORY), so the recipe's tag does not exist yet. The
rootfs and wheel caches of the machine's earlier build are reused when present (a fresh
machine's debootstrap is what the README's first run does; here it only costs time).
"""

from __future__ import annotations

import shlex
import uuid
from pathlib import Path

import pytest

from core.home import REPO_ROOT, db_path
from core.store import Store
from tests.tui.termtools import Tmux, require_tools

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]


def _warm_cache() -> Path | None:
    """A rig cache that already holds a bootstrapped rootfs (of this machine's build)."""
    from rig import image

    for cand in (image.default_cache_dir(), REPO_ROOT / "data" / "cache" / "rig"):
        if any(cand.glob("rootfs-*.tar")):
            return cand
    return None


def _remove_images(repo: str) -> None:
    from rig.image import docker_client

    client = docker_client()
    for img in client.images.list(name=repo) + client.images.list(name=f"{repo}-candidate"):
        for tag in img.tags:
            try:
                client.images.remove(tag, force=True)
            except Exception:  # noqa: BLE001 - best effort cleanup
                pass


def test_first_run_builds_the_rig_image_then_a_campaign_works(tmp_path, require_docker):
    require_tools("tmux")
    home = tmp_path / "home"
    (home / "cache").mkdir(parents=True)
    warm = _warm_cache()
    if warm is not None:
        (home / "cache" / "rig").symlink_to(warm, target_is_directory=True)
    repo = f"cambrian-rig-firstrun-{uuid.uuid4().hex[:8]}"
    env = {"CAMBRIAN_HOME": str(home), "CAMBRIAN_RIG_REPOSITORY": repo}
    cmd = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + f" {shlex.quote(str(REPO_ROOT / 'cambrian'))}"
    t = Tmux(f"cd {shlex.quote(str(REPO_ROOT))} && {cmd}", 120, 36)
    cid = None
    try:
        t.wait_for("is missing: building it now", 120)
        # the build shows its steps as it goes, then the TUI opens
        t.wait_for("Campaigns (0)", 600)
        t.wait_until(lambda s: "n: start a campaign" in s, 30, "the empty-home hint")
        t.keys("n")
        t.wait_for("New campaign", 30)
        t.keys("C-s")
        t.wait_for("Campaigns (1)", 60)
        with Store.open(db_path(home)) as s:
            cid = s.campaigns()[0]["id"]

        def finished(_screen: str) -> bool:
            with Store.open(db_path(home)) as s:
                return s.campaign(cid)["state"] in ("completed", "stopped", "aborted", "crashed")

        t.wait_until(finished, 600, "the first campaign to finish")
        with Store.open(db_path(home)) as s:
            c = s.campaign(cid)
            gens = s.generations(cid)
            assert c["state"] == "completed", c
            assert not [g for g in gens if g.failure_stage == "engine"]
            assert any(g.outcome.value == "promoted" for g in gens), [g.reason for g in gens]
            assert all(s.rig_runs(g.number)[0].backend == "docker" for g in gens
                       if g.outcome.value in ("promoted", "failed") and g.failure_stage != "generate")
        t.wait_for("completed", 30)
        t.keys("q")
        t.wait_for("[exited]", 30)
    finally:
        t.kill()
        if cid is not None:
            with Store.open(db_path(home)) as s:
                if s.lease_alive(cid):
                    s.send_command(cid, "abort")
        _remove_images(repo)
