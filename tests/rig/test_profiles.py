"""Faithful to the original: artifacts in the original Cambrian's form build in our rig
(uv and pip, offline, from the image's locked wheels), and where our verdict rules are
stricter the report names the rule while `--profile original` reproduces the original's
verdict. Real Docker rig; the artifacts are written from the published format facts."""

from __future__ import annotations

import pytest

from rig.api import StageTimeouts, run_artifact
from rig.profiles import RULES
from original_form import write_original  # noqa: E402 (tests/rig is on sys.path)

pytestmark = pytest.mark.docker


def judge(root, profile=None, **kw):
    lines: list[str] = []
    res = run_artifact(root, backend="docker", profile=profile,
                       on_line=lambda stream, line: lines.append(line), **kw)
    return res.report.to_wire(), "\n".join(lines)


def test_an_m2_artifact_built_with_uv_is_viable(tmp_path, rig_image):
    rep, log = judge(write_original(tmp_path / "m2"))
    assert rep["status"] == "viable", rep.get("diagnostics")
    assert "uv pip install -r requirements.txt" in log
    assert rep["checks"]["test"]["tests_run"] == 2 and rep["checks"]["test"]["tests_passed"] == 2
    assert [v["name"] for v in rep["checks"]["health"]["vectors"]] == ["sv-health-liveness",
                                                                        "sv-stats-generation"]
    assert rep["profile"] == "cambrian" and rep["stricter_rules"] == []


def test_uv_and_pip_resolve_only_from_the_locked_wheelhouse(tmp_path, rig_image):
    """Offline: a requirement the image does not hold fails the build with the resolver's
    own message (no network, nothing fetched), never a hang or a rig error."""
    root = write_original(tmp_path / "needs-more")
    (root / "requirements.txt").write_text("aiohttp>=3.9.0\nrequests-but-not-locked==99.0\n")
    import json

    from rig.hashing import artifact_hash_of
    m = json.loads((root / "manifest.json").read_text())
    files = {p: (root / p).read_bytes() for p in m["files"] if p != "manifest.json"}
    m["artifact-hash"] = artifact_hash_of(files)
    (root / "manifest.json").write_text(json.dumps(m))
    rep, log = judge(root)
    assert rep["status"] == "non-viable" and rep["failure_stage"] == "build"
    assert "rig error" not in rep["diagnostics"]["summary"]
    assert "requests-but-not-locked" in rep["diagnostics"]["stderr_tail"] + rep["diagnostics"]["stdout_tail"]


def test_an_m1_artifact_with_created_at_names_the_rule(tmp_path, rig_image):
    root = write_original(tmp_path / "m1", era="m1")
    ours, _ = judge(root)
    assert ours["status"] == "non-viable" and ours["failure_stage"] == "manifest"
    assert ours["stricter_rules"] == ["manifest_created_at"]
    assert "[rule: manifest_created_at]" in ours["diagnostics"]["summary"]
    orig, log = judge(root, profile="original")
    assert orig["status"] == "viable", orig.get("diagnostics")
    assert orig["profile"] == "original" and "pip install -r requirements.txt" in log


@pytest.mark.parametrize("case, kw, stage, rule", [
    ("duplicate", {"duplicate_path": True}, "manifest", "duplicate_manifest_paths"),
    ("unparsable", {"broken_module": True}, "build", "syntax_gate"),
    ("exit-code-only", {"failing_test": True, "test_cmd": "python -m pytest tests/ -v || true"},
     "test", "structured_test_counts"),
    # the entry URL names a route the service lacks; the vectors (the original's only
    # probes when a spec has them) pass
    ("entry-404", {"health_path": "/ready"}, "health", "health_endpoint"),
])
def test_a_stricter_rule_is_named_and_the_original_profile_reproduces(tmp_path, rig_image, case, kw,
                                                                      stage, rule):
    root = write_original(tmp_path / case, **kw)
    ours, _ = judge(root)
    assert ours["status"] == "non-viable" and ours["failure_stage"] == stage, ours.get("diagnostics")
    assert ours["stricter_rules"] == [rule] and rule in RULES
    orig, _ = judge(root, profile="original")
    assert orig["status"] == "viable", orig.get("diagnostics")
    assert orig["stricter_rules"] == []


def test_a_real_failure_names_no_rule(tmp_path, rig_image):
    root = write_original(tmp_path / "fails", failing_test=True)
    for profile in (None, "original"):
        rep, _ = judge(root, profile=profile)
        assert rep["status"] == "non-viable" and rep["failure_stage"] == "test"
        assert rep["stricter_rules"] == []


def test_the_spec_sets_the_test_timeout(tmp_path, rig_image):
    slow = "\n\ndef test_takes_its_time():\n    import time\n    time.sleep(6)\n"
    quick = write_original(tmp_path / "limited", spec_front="---\nrig-timeouts: {test: 3}\n---\n",
                           extra_test=slow)
    rep, _ = judge(quick)
    assert rep["status"] == "non-viable" and rep["failure_stage"] == "test"
    assert "timed out after 3s" in rep["diagnostics"]["summary"]
    assert rep["timeouts"]["test"] == 3
    # the same test under today's default (180 s) passes; explicit timeouts win over the spec
    rep, _ = judge(quick, timeouts=StageTimeouts())
    assert rep["status"] == "viable" and rep["timeouts"]["test"] == 180
    # the original profile keeps the original's fixed timeouts (no front matter then)
    rep, _ = judge(quick, profile="original")
    assert rep["status"] == "viable" and rep["timeouts"]["test"] == 120
