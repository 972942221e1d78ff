"""Parity: the same artifacts get the same verdicts on the stand-in remote host (through
the OpenSSH forward) as on the local engine -- the adversarial corpus (a representative
subset by default, the whole of it with CAMBRIAN_HOSTS_PARITY=full) and the shipped
specs' sample artifacts (what the sim provider writes for spec/echo.md and spec/prime.md).

The subset covers each kind of verdict: viable, a failed build, a failed test, a bad
manifest, an OOM kill (read inside the container on the remote host), a fork bomb, a
forged report, egress attempts, a service that never binds, a vector mismatch, a killer.
The pair of runs of one artifact goes side by side (local and remote at once).
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core.home import REPO_ROOT
from tests.conftest import session_labels
from tests.corpus.harness import DEFAULT_TIMEOUTS, _construct, build

pytestmark = pytest.mark.docker

SUBSET = ["viable", "build_fails", "test_failure", "manifest_bad_hash", "memory_bomb", "fork_bomb",
          "forge_report", "egress", "never_binds", "vector_mismatch", "killer"]
ALL = sorted(p.name for p in (REPO_ROOT / "tests" / "corpus").iterdir()
             if (p / "expected.json").exists())
CORPUS = ALL if os.environ.get("CAMBRIAN_HOSTS_PARITY") == "full" else SUBSET


def verdict(res) -> dict:
    """What must be identical across hosts (not timings, ids or free text)."""
    rep = res.report
    checks = {stage: bool(c.passed) for stage, c in (rep.checks or {}).items()}
    vectors = {v.name: v.passed for v in ((rep.checks or {}).get("health").vectors or [])} \
        if (rep.checks or {}).get("health") else {}
    return {"status": rep.status, "failure_stage": rep.failure_stage, "oom_killed": res.oom_killed,
            "checks": checks, "vectors": vectors, "rig_error": res.rig_error is not None}


def _pair(art: Path, url: str, **kw):
    from rig.api import run_artifact

    with ThreadPoolExecutor(2) as pool:
        here = pool.submit(run_artifact, art, labels=session_labels(), **kw)
        there = pool.submit(run_artifact, art, labels=session_labels(), docker_url=url, **kw)
        return here.result(), there.result()


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_verdict_same_on_remote(name, remote_forward, tmp_path):
    from rig.api import RigLimits, StageTimeouts

    _fwd, url = remote_forward
    expected = build.load_expected(name)
    art = build.materialise(name, tmp_path / name)
    t = {**DEFAULT_TIMEOUTS, **(expected.get("timeouts") or {})}
    kw = {"timeouts": _construct(StageTimeouts, t)}
    if expected.get("limits"):
        kw["limits"] = _construct(RigLimits, expected["limits"])
    local, remote = _pair(art, url, **kw)
    assert verdict(remote) == verdict(local), (verdict(local), verdict(remote))
    # and both are the corpus's expected verdict (or one of its listed alternatives)
    allowed = [(expected["status"], expected.get("failure_stage"))] + [
        (a["status"], a.get("failure_stage")) for a in expected.get("alternatives") or []]
    got = (remote.report.status, remote.report.failure_stage or "none")
    assert any(got[0] == s and (f is None or got[1] == f) for s, f in allowed), (got, allowed)
    if "oom_killed" in expected:
        assert remote.oom_killed == expected["oom_killed"] == local.oom_killed


@pytest.mark.parametrize("spec", ["echo", "prime"])
def test_shipped_spec_sample_same_on_remote(spec, remote_forward, tmp_path):
    _fwd, url = remote_forward
    out = tmp_path / spec
    r = subprocess.run([sys.executable, "-m", "cambrian_tui.cli", "--home", str(tmp_path / "home"),
                        "generate", str(REPO_ROOT / "spec" / f"{spec}.md"), "--out", str(out),
                        "--provider", "sim", "--seed", "0"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    local, remote = _pair(out, url)
    assert verdict(remote) == verdict(local), (verdict(local), verdict(remote))
    assert local.rig_error is None and remote.rig_error is None
