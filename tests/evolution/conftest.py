"""Fixtures for evolution tests: a deterministic, spec-sensitive fake rig (no Docker)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from core.home import REPO_ROOT, db_path
from core.store import Store
from rig.api import RigResult
from rig.schema import Diagnostics, StageCheck, ViabilityReport

ECHO = (REPO_ROOT / "spec" / "echo.md").read_bytes().decode("utf-8")
PRIME = (REPO_ROOT / "spec" / "prime.md").read_bytes().decode("utf-8")


def sim_verdict(store: Store, generation: int) -> bool:
    """What the real rig would find for a first attempt of the sim: viable iff the sim's
    defect model drew no defect for (spec, seed, draw, model) of this generation."""
    from core.llm.sim import defects as dm
    from core.llm.sim.specinfo import parse_spec_text

    row = store.conn.execute("SELECT campaign_id, spec_hash, draw FROM generations WHERE number=?",
                             (generation,)).fetchone()
    settings = store.campaign(row[0])["settings"]
    spec = parse_spec_text(store.spec_text(row[1]))
    key = row[2] if row[2] is not None else generation
    return dm.decide(spec, int(settings["seed"]), int(key), 0, settings["model"]).viable


def make_fake_rig(home: Path, delay: float = 0.0):
    """A rig_fn for ``run_campaign``: no Docker; the verdict is :func:`sim_verdict`."""

    def rig(artifact_dir, *, backend="none", run_id=None, generation=None, **_kw) -> RigResult:
        if delay:
            time.sleep(delay)
        with Store.open(db_path(home)) as store:
            ok = sim_verdict(store, int(generation))
        checks = {s: StageCheck(passed=True, duration_ms=1) for s in ("manifest", "build", "test", "start", "health")}
        if not ok:
            checks["health"] = StageCheck(passed=False, duration_ms=1)
        report = ViabilityReport(
            generation=generation or 0, status="viable" if ok else "non-viable",
            failure_stage="none" if ok else "health", checks=checks,
            completed_at=datetime.now(timezone.utc).isoformat(),
            diagnostics=None if ok else Diagnostics(stage="health", summary="fake rig: a sim defect"),
        )
        return RigResult(report=report, backend="none", run_id=run_id or "fake", container_id=None,
                         stage_ms={"build": 1}, total_ms=5, first_output_ms=1, oom_killed=False, rig_error=None)

    return rig


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def store(home):
    s = Store.open(db_path(home))
    yield s
    s.close()

