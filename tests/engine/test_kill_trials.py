"""Kill trials: SIGKILL the engine at random moments, resume each time, then check history."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from core.engine.containers import list_managed
from core.engine.launch import create_campaign, resume, spawn_engine
from core.home import REPO_ROOT, db_path
from core.models import CampaignSettings
from core.store import Store

KILLS = 20


@pytest.mark.docker
@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(tmp_path, rig_ready, capsys):
    home = tmp_path / "home"
    home.mkdir()
    rng = random.Random(int(os.environ.get("CAMBRIAN_KILL_SEED", "424242")))
    spec = (REPO_ROOT / "spec" / "echo.md").read_text()
    with Store.open(db_path(home)) as s:
        cid = create_campaign(s, CampaignSettings(
            # enough work that the campaign cannot finish before KILLS kills on a fast, quiet
            # machine (16 generations once finished after 19 kills: a flake, not a bug)
            spec_hash="sha256:" + "0" * 64, generations=32, parallelism=2, provider="sim", model="sim-1",
            seed=11, max_retries=1, backend="docker").model_dump(), spec)
    pid = spawn_engine(home, cid)
    kills = 0
    moments = []
    with Store.open(db_path(home)) as s:
        while kills < KILLS:
            delay = rng.uniform(0.2, 6.0)
            moments.append(round(delay, 2))
            time.sleep(delay)
            if not s.lease_alive(cid):
                break  # finished early: nothing left to kill
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)  # reap: a zombie must not look alive
            kills += 1
            if s.campaign(cid)["state"] in ("completed", "stopped"):
                break
            assert resume(home, cid) == "restarted"
            pid = s.lease(cid)["pid"]
        # let the last engine finish the campaign
        deadline = time.monotonic() + 600
        while s.lease_alive(cid) and time.monotonic() < deadline:
            time.sleep(0.5)
        state = s.campaign(cid)["state"]
        if state not in ("completed",):
            # the final kill may have landed after the last generation finished
            assert state in ("running",), state
            resume(home, cid)
            while s.campaign(cid)["state"] != "completed" and time.monotonic() < deadline:
                time.sleep(0.5)
        gens = s.generations(cid)
        nums = [g.number for g in gens]
        outcomes = {}
        for g in gens:
            outcomes[g.outcome.value] = outcomes.get(g.outcome.value, 0) + 1
        interrupted = [g for g in gens if g.outcome.value == "interrupted"]
        assert s.campaign(cid)["state"] == "completed"
        assert all(g.outcome.terminal for g in gens), [g for g in gens if not g.outcome.terminal]
        assert len(nums) == len(set(nums)) and nums == sorted(nums)
        assert len([g for g in gens if g.outcome.value != "interrupted"]) == 32
        assert all("died" in (g.reason or "") for g in interrupted)
        assert s.integrity_check() == "ok"
        events = s.events(campaign_id=cid, limit=100_000)
    leftover = [c for c, run in list_managed() if run.startswith(cid)]
    assert leftover == []
    with capsys.disabled():
        print(f"\nkill trials: {kills} SIGKILLs at {moments[:kills]} s; generations {len(gens)} "
              f"(numbers {nums[0]}..{nums[-1]}, no duplicates), outcomes {outcomes}, "
              f"interrupted-and-redone {len(interrupted)}, labelled containers left 0, integrity ok, "
              f"reconcile events {sum(1 for e in events if e['kind'] == 'reconciled')}")
    assert kills >= KILLS
