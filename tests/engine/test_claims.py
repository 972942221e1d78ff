"""Claiming generations with several workers: a campaign never starts more generations
than it was asked for, however the workers interleave (each claim awaits the rig check,
where another worker may take the last slot)."""

from __future__ import annotations

import threading
import time

from core.engine.launch import create_campaign
from core.engine.main import run_campaign
from core.home import db_path
from core.store import Store
from tests.evolution.conftest import PRIME, make_fake_rig


def test_parallel_workers_never_claim_past_n(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    settings = dict(spec_hash="sha256:" + "0" * 64, generations=2, parallelism=4, provider="sim",
                    model="sim-1", seed=3, max_retries=0, backend="none")
    with Store.open(db_path(home)) as store:
        cid = create_campaign(store, settings, PRIME)
    checks: list[float] = []
    lock = threading.Lock()

    def slow_rig_check(backend: str) -> None:
        # every worker is inside the check at once: the race the claim must survive
        with lock:
            checks.append(time.monotonic())
        time.sleep(0.3)

    state = run_campaign(home, cid, rig_fn=make_fake_rig(home), rig_check=slow_rig_check)
    assert state == "completed"
    with Store.open(db_path(home)) as store:
        gens = store.generations(cid)
    assert len(gens) == 2, [(g.number, g.outcome.value) for g in gens]
    assert len(checks) >= 4  # the four workers did check the rig concurrently
