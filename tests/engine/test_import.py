"""Import of an original Cambrian artifacts tree, and reverify against today's rig."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.home import REPO_ROOT
from core.store import Store
from rig.hashing import artifact_hash_of, sha256_hex

ECHO_SPEC = (REPO_ROOT / "spec" / "echo.md").read_bytes()


def write_artifact(folder: Path, generation: int, parent: int, files: dict[str, bytes],
                   report: dict | None = None) -> None:
    folder.mkdir(parents=True)
    files = dict(files)
    files["spec/echo.md"] = ECHO_SPEC
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    manifest = {
        "cambrian-version": 1, "generation": generation, "parent-generation": parent,
        "spec-hash": sha256_hex(ECHO_SPEC), "artifact-hash": artifact_hash_of(files),
        "producer-model": "claude-sonnet-4-5", "token-usage": {"input": 100, "output": 50},
        "files": sorted(list(files) + ["manifest.json"]), "created-at": "2026-03-01T10:00:00Z",
        "entry": {"build": "python -m compileall -q .", "test": "python -m pytest -q",
                  "start": "python -m echo", "health": "http://localhost:8402/health"},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    if report is not None:
        (folder / "viability-report.json").write_text(json.dumps(report))


BROKEN = {"echo/__init__.py": b"", "echo/__main__.py": b"def main(:\n    pass\n",
          "tests/test_echo.py": b"def test_nothing():\n    assert 1 + 1 == 2\n"}


def original_tree(root: Path) -> Path:
    """gen-N/ at the top, campaigns/*/gen-N/, and gen-0-campaigns/*/summary.json records."""
    write_artifact(root / "gen-1", 1, 0, BROKEN, report={
        "generation": 1, "status": "non-viable", "failure_stage": "build",
        "checks": {"manifest": {"passed": True, "duration_ms": 2}, "build": {"passed": False, "duration_ms": 40}},
        "completed_at": "2026-03-01T10:01:00Z",
        "diagnostics": {"stage": "build", "summary": "syntax error", "exit_code": 1, "failures": [],
                        "stdout_tail": "", "stderr_tail": ""}})
    # recorded as viable, but the code cannot even build: reverify must notice
    write_artifact(root / "campaigns" / "camp-a" / "gen-1", 1, 0, BROKEN)
    write_artifact(root / "campaigns" / "camp-a" / "gen-2", 2, 1, BROKEN)
    summary = root / "gen-0-campaigns" / "camp-a" / "summary.json"
    summary.parent.mkdir(parents=True)
    summary.write_text(json.dumps({"campaign": "camp-a", "generations": [
        {"generation": 1, "status": "viable", "failure_stage": "none", "tests_run": 3, "tests_passed": 3},
        {"generation": 2, "status": "non-viable", "failure_stage": "build"},
    ]}))
    return root


def test_import_reads_the_original_layout(tmp_path):
    root = original_tree(tmp_path / "artifacts")
    from core.engine.importer import import_tree

    with Store.open(tmp_path / "c.db") as s:
        res = import_tree(s, root)
        assert res["generations"] == 3
        by_source = {m["source"]: m for m in res["mapping"]}
        assert set(by_source) == {"gen-1", "camp-a/gen-1", "camp-a/gen-2"}
        top = s.generation(by_source["gen-1"]["generation"])
        assert top.outcome.value == "failed" and top.failure_stage == "build"
        a1 = s.generation(by_source["camp-a/gen-1"]["generation"])
        a2 = s.generation(by_source["camp-a/gen-2"]["generation"])
        assert a1.outcome.value == "promoted"  # the recorded verdict, from summary.json
        assert a2.outcome.value == "failed"
        assert a2.parent == a1.number  # lineage mapped from parent-generation
        assert a1.campaign_id == a2.campaign_id and s.campaign(a1.campaign_id)["kind"] == "import"
        files = s.artifact_files(a1.artifact_hash)
        assert files["echo/__main__.py"] == BROKEN["echo/__main__.py"] and "manifest.json" in files
        assert s.report(a1.number)["checks"]["test"]["tests_run"] == 3
        assert s.spec_version(a1.spec_hash).origin.value == "import"


@pytest.mark.docker
def test_reverify_prints_the_comparison(tmp_path, rig_ready):
    root = original_tree(tmp_path / "artifacts")
    home = tmp_path / "home"
    env = {"CAMBRIAN_HOME": str(home), "PATH": "/usr/bin:/bin"}
    run = lambda *a: subprocess.run([sys.executable, "-m", "cambrian_tui.cli", *a], cwd=REPO_ROOT,  # noqa: E731
                                    env=env, capture_output=True, text=True, timeout=600)
    res = run("import", "cambrian-artifacts", str(root), "--json")
    assert res.returncode == 0, res.stderr
    mapping = {m["source"]: m["generation"] for m in json.loads(res.stdout)["mapping"]}
    gens = [str(mapping["gen-1"]), str(mapping["camp-a/gen-1"])]
    res = run("reverify", *gens)
    assert res.returncode == 1, res.stdout + res.stderr  # one verdict differs
    lines = res.stdout.splitlines()
    row = {ln.split()[0]: ln for ln in lines[1:]}
    assert "same" in row[gens[0]]
    assert "DIFFERS" in row[gens[1]] and "status" in row[gens[1]]
    res = run("reverify", gens[1], "--json")
    data = json.loads(res.stdout)[0]
    assert data["recorded"]["status"] == "viable" and data["now"]["status"] == "non-viable"
    assert data["now"]["failure_stage"] == "build"
