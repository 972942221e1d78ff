"""Fixtures for evolution tests: a deterministic, spec-sensitive fake rig (no Docker)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from core.home import REPO_ROOT, db_path
from core.store import Store
from rig.api import RigResult
from rig.schema import Diagnostics, StageCheck, ViabilityReport

ECHO = (REPO_ROOT / "spec" / "echo.md").read_bytes().decode("utf-8")
PRIME = (REPO_ROOT / "spec" / "prime.md").read_bytes().decode("utf-8")


def fake_rig(artifact_dir, *, backend="none", run_id=None, generation=None, **_kw) -> RigResult:
    """Viable iff U(artifact bytes) < expected viability of the artifact's spec copy under
    the sim model. Deterministic per artifact; better specs pass more often."""
    from core.llm.sim import defects as dm
    from core.llm.sim.specinfo import parse_spec_text

    root = Path(artifact_dir)
    h = hashlib.sha256()
    spec_text = ""
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
            if p.parent.name == "spec" and p.suffix == ".md":
                spec_text = p.read_text()
    u = int.from_bytes(h.digest()[:8], "big") / 2**64
    model = "sim-1"
    manifest = root / "manifest.json"
    if manifest.exists():
        model = json.loads(manifest.read_text()).get("producer-model") or model
    ev = dm.expected_viability(parse_spec_text(spec_text), model) if spec_text else 0.5
    ok = u < ev
    checks = {s: StageCheck(passed=True, duration_ms=1) for s in ("manifest", "build", "test", "start", "health")}
    if not ok:
        checks["health"] = StageCheck(passed=False, duration_ms=1)
    report = ViabilityReport(
        generation=generation or 0, status="viable" if ok else "non-viable",
        failure_stage="none" if ok else "health", checks=checks,
        completed_at=datetime.now(timezone.utc).isoformat(),
        diagnostics=None if ok else Diagnostics(stage="health", summary="fake rig: vector failed"),
    )
    return RigResult(report=report, backend="none", run_id=run_id or "fake", container_id=None,
                     stage_ms={"build": 1}, total_ms=5, first_output_ms=1, oom_killed=False, rig_error=None)


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


class DrawKeyedSim:
    """Test scaffolding until the sim keys its randomness on the campaign-local ``draw``:
    passes ``metadata["draw"]`` as the generation the sim seeds on, so a campaign's results
    do not depend on global generation numbers (which shift when a crash interrupts one)."""

    def __init__(self, inner=None):
        from core.llm.sim import SimProvider

        self.inner = inner or SimProvider()
        self.name = getattr(self.inner, "name", "sim")
        self.simulated = True

    async def complete(self, req, on_delta=None):
        draw = (req.metadata or {}).get("draw")
        if draw is not None:
            from dataclasses import replace

            req = replace(req, metadata={**req.metadata, "generation": int(draw)})
        return await self.inner.complete(req, on_delta)

    async def aclose(self):
        return None


def draw_keyed_factory(settings):
    return DrawKeyedSim()
