"""The rig's correctness corpus: known artifacts with known verdicts (tests/corpus/).

Every folder under tests/corpus/ is an artifact plus an ``expected.json``. The
non-adversarial ones run here, on Docker; a few also run on bwrap to show that the
verdicts agree. The adversarial ones run in test_adversarial.py.

Also checks the corpus itself without any sandbox: every artifact materialises, its
manifest is (or is deliberately not) valid, and the spec's acceptance vectors parse.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def _load(name: str, path: Path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


harness = _load("cambrian_corpus_harness", CORPUS / "harness.py")
build = harness.build

ALL = build.list_artifacts()
NORMAL = [n for n in ALL if not build.load_expected(n).get("adversarial")]
BWRAP = [n for n in NORMAL if "bwrap" in (build.load_expected(n).get("backends") or ())]
STAGES = ("none", "manifest", "build", "test", "start", "health")
KNOWN_KEYS = {
    "name", "description", "inherit", "status", "failure_stage", "tests_run", "tests_passed",
    "oom_killed", "exit_code", "summary_contains", "summary_any", "failure", "failures_count",
    "vector_failed", "entry", "manifest", "manifest_drop", "raw_manifest", "symlinks", "generate",
    "timeouts", "limits", "backends", "adversarial", "max_seconds", "alternatives", "contracts",
    "rig_error_allowed", "known_rig_bug",
}


@pytest.fixture(scope="module")
def docker_rig(rig_image):
    """Docker + the rig image (tests/rig/conftest.py: skipped without Docker unless
    CAMBRIAN_REQUIRE_DOCKER=1); afterwards no container of a corpus run may remain."""
    yield rig_image
    leftover = harness.leftover_containers()
    assert not leftover, f"containers labelled {harness.RIG_LABEL} left behind: {leftover}"


# --- the corpus itself (no sandbox) -------------------------------------------------


def test_corpus_is_complete():
    must_have = {
        "viable", "manifest_bad_hash", "manifest_missing_field", "build_fails", "syntax_error",
        "syntax_gate", "test_failure", "collection_error", "app_import_error", "start_crash",
        "wrong_port", "never_binds", "wrong_health", "vector_mismatch", "tests_hang", "start_hangs",
    }
    assert must_have <= set(ALL), sorted(must_have - set(ALL))


@pytest.mark.parametrize("name", ALL)
def test_expected_json_is_well_formed(name):
    exp = build.load_expected(name)
    assert set(exp) <= KNOWN_KEYS, sorted(set(exp) - KNOWN_KEYS)
    assert exp["status"] in ("viable", "non-viable")
    assert exp["failure_stage"] in STAGES
    assert (exp["status"] == "viable") == (exp["failure_stage"] == "none")
    assert exp.get("description"), "say what the artifact does and why the verdict follows"
    if "tests_run" in exp:
        assert 0 <= exp["tests_passed"] <= exp["tests_run"]


@pytest.mark.parametrize("name", ALL)
def test_artifact_materialises_with_a_sound_manifest(name, tmp_path):
    from rig.hashing import artifact_hash_of_dir
    from rig.schema import Manifest

    exp = build.load_expected(name)
    out = build.materialise(name, tmp_path / name)
    raw = (out / "manifest.json").read_text()
    breaks_manifest = exp["failure_stage"] == "manifest"
    if "raw_manifest" in exp:
        with pytest.raises(ValueError):
            json.loads(raw)
        return
    data = json.loads(raw)
    if "manifest_drop" in exp:
        with pytest.raises(ValueError):
            Manifest.model_validate(data)
        return
    manifest = Manifest.model_validate(data)
    assert manifest.spec_file == build.SPEC_PATH
    for rel in manifest.files:
        assert (out / rel).exists() or (out / rel).is_symlink(), rel
    if exp.get("symlinks"):
        for link in exp["symlinks"]:
            assert (out / link).is_symlink() and link in manifest.files
        return
    hash_ok = artifact_hash_of_dir(str(out), manifest.files) == manifest.artifact_hash
    # The only manifest failure left at this point is the deliberately wrong hash.
    assert hash_ok is not breaks_manifest, f"artifact hash matches={hash_ok}, expected manifest failure={breaks_manifest}"


def test_spec_base_carries_two_frozen_vectors():
    import yaml
    from rig.schema import SpecVector

    text = build.SPEC_BASE.read_text()
    assert text.startswith("---\n") and yaml.safe_load(text.split("---\n")[1])["port"] == 8401
    frozen = re.search(
        r"<!-- BEGIN FROZEN: acceptance-vectors -->\n(.*?)<!-- END FROZEN: acceptance-vectors -->", text, re.S
    )
    assert frozen, "acceptance-vectors FROZEN block missing"
    blocks = re.findall(r"```spec-vector\n(.*?)```", frozen.group(1), re.S)
    vectors = [SpecVector.model_validate(yaml.safe_load(b)) for b in blocks]
    assert [v.name for v in vectors] == ["health-ok", "hello-world"]
    assert len(re.findall(r"```spec-vector", text)) == 2, "no vectors outside the FROZEN block"


def test_host_pytest_never_collects_the_corpus():
    """tests/corpus/ holds hostile 'tests' (fork bombs...): the host must ignore them."""
    conftest = (CORPUS / "conftest.py").read_text()
    assert 'collect_ignore_glob = ["*"]' in conftest


# --- the verdicts, on Docker ----------------------------------------------------------


@pytest.mark.docker
@pytest.mark.parametrize("name", NORMAL)
def test_corpus_verdict_docker(name, tmp_path, docker_rig):
    run = harness.run_artifact(name, tmp_path, backend="docker")
    print(json.dumps(run.verdict(), indent=1, default=str))
    harness.assert_as_expected(run)
    assert run.result.backend == "docker"
    harness.assert_container_gone(run)


@pytest.mark.docker
def test_viable_report_is_complete(tmp_path, docker_rig):
    """The viable artifact's report: every stage passed and both vectors checked."""
    run = harness.run_artifact("viable", tmp_path, backend="docker")
    rep = run.report
    assert rep.status == "viable" and rep.diagnostics is None
    for stage in ("manifest", "build", "test", "start", "health"):
        assert stage in rep.checks and rep.checks[stage].passed, stage
    vectors = {v.name: v.passed for v in rep.checks["health"].vectors or []}
    assert vectors == {"health-ok": True, "hello-world": True}
    assert rep.generation == 1
    assert run.lines.calls > 0, "no live output was forwarded to on_line"


# --- the same verdicts on bwrap ---------------------------------------------------------


@pytest.mark.bwrap
@pytest.mark.parametrize("name", BWRAP)
def test_corpus_verdict_bwrap_agrees(name, tmp_path, bwrap_available):
    """bwrap is weaker (no cgroup limits) but must reach the same verdicts."""
    run = harness.run_artifact(name, tmp_path, backend="bwrap")
    print(json.dumps(run.verdict(), indent=1, default=str))
    # bwrap_available proved bubblewrap runs here: a rig error now is the backend's failure
    assert run.report is not None, f"the bwrap backend failed on {name}: {run.result.rig_error}"
    harness.assert_as_expected(run)
    assert run.result.backend == "bwrap"


@pytest.mark.docker
def test_zz_no_rig_containers_left(docker_engine):
    leftover = harness.leftover_containers()
    assert not leftover, f"containers labelled {harness.RIG_LABEL} left behind: {leftover}"
