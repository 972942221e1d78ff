"""Exact resume with the real rig: SIGKILL the detached evolution process at >= 10 random
moments, restart it each time, and compare with an uninterrupted run of the same seed."""

from __future__ import annotations

import json
import os
import random
import signal
import time

import pytest

from core.engine.containers import list_managed
from core.evolution import records as rec
from core.evolution.runs import create_run, resume_run, spawn_evolution
from core.home import db_path
from core.store import Store
from tests.evolution.conftest import ECHO

KILLS = 10
RUN = "e-kill-trial"
# random initial points: the five observations then include rewrites and GP asks (the sweep
# design would spend all five on model and hat choices)
SETTINGS = dict(budget_generations=100, seed=20240611, screen_generations=2, full_generations=3,
                parallelism=2, backend="docker", max_observations=5, n_initial_points=3,
                initial_design="random")


def _fingerprint(store: Store) -> list[tuple]:
    return [(o.index, json.dumps(o.params, sort_keys=True), o.spec_hash, o.parent_spec_hash, o.campaign_id,
             o.viability_rate, o.interval, o.generations, o.accepted, o.rejected_reason)
            for o in store.observations(RUN)]


def _start(home) -> int:
    home.mkdir()
    with Store.open(db_path(home)) as s:
        create_run(s, ECHO, run_id=RUN, **SETTINGS)
    return spawn_evolution(home, RUN)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _wait_done(store: Store, pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while store.lease_alive(RUN) and time.monotonic() < deadline:
        time.sleep(0.5)
    _reap(pid)


@pytest.mark.docker
@pytest.mark.slow
def test_sigkill_at_random_moments_resumes_exactly(tmp_path, rig_ready, capsys):
    rng = random.Random(int(os.environ.get("CAMBRIAN_KILL_SEED", "777")))
    t0 = time.monotonic()
    ref_home, home = tmp_path / "ref", tmp_path / "killed"

    # the uninterrupted reference run
    pid = _start(ref_home)
    with Store.open(db_path(ref_home)) as s:
        _wait_done(s, pid, 600)
        assert s.campaign(RUN)["state"] == "completed", s.campaign(RUN)
        reference = _fingerprint(s)
    t_ref = time.monotonic() - t0

    # the same run, SIGKILLed at random moments
    pid = _start(home)
    kills, moments = 0, []
    with Store.open(db_path(home)) as s:
        while kills < KILLS * 2:
            delay = rng.uniform(0.5, 5.0)
            time.sleep(delay)
            if not s.lease_alive(RUN):
                break  # finished: nothing left to kill
            os.kill(pid, signal.SIGKILL)
            _reap(pid)
            kills += 1
            moments.append(round(delay, 2))
            if s.campaign(RUN)["state"] == "completed":
                break
            assert s.campaign(RUN)["state"] in ("running", "pending", "crashed"), s.campaign(RUN)
            assert resume_run(home, RUN) == "restarted"  # what `cambrian evolve resume` does
            pid = s.lease(RUN)["pid"]
            if kills >= KILLS and rng.random() < 0.5:
                break
        _wait_done(s, pid, 600)
        if s.campaign(RUN)["state"] != "completed":
            # the last kill may have landed after the last observation but before the state write
            pid = spawn_evolution(home, RUN)
            _wait_done(s, pid, 600)
        assert s.campaign(RUN)["state"] == "completed", s.campaign(RUN)
        got = _fingerprint(s)
        children = rec.child_campaigns(s, RUN)
        interrupted = sum(1 for c in children for g in s.generations(c["id"]) if g.outcome.value == "interrupted")
        assert s.integrity_check() == "ok"
        assert s.in_progress() == []
    leftover = [c for c, run in list_managed() if run.startswith(RUN)]
    assert kills >= KILLS, f"only {kills} kills landed before the run finished"
    assert got == reference
    assert leftover == []
    with capsys.disabled():
        accepted = sum(1 for r in got if r[8])
        rejected = sum(1 for r in got if r[9])
        print(f"\nevolution kill trials: {kills} SIGKILLs at {moments} s; {len(got)} observations "
              f"identical to the uninterrupted run ({accepted} accepted, {rejected} rejected); "
              f"{interrupted} interrupted generations redone; reference run {t_ref:.0f} s, "
              f"total {time.monotonic() - t0:.0f} s")
