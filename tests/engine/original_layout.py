"""An artifacts tree in the original Cambrian's published layout, built from the facts
(issue 19): top-level gen-N/, campaigns/<c>/gen-N/, gen-0-campaigns/<id>/summary.json with
``generations`` an integer count and ``records`` the full records, viable artifacts at
gen-0-campaigns/<id>/gen-N/ and failed ones at .../failed/gen-N/, a record without an
artifact, an artifact without a record, a manifest listing a file twice, an M1-era
manifest with ``created_at``.

The artifacts are the rig corpus's small aiohttp service (tests/corpus/viable) in the
original's manifest form, so that the rig can really judge them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.home import REPO_ROOT
from rig.hashing import artifact_hash_of, sha256_hex

CORPUS = REPO_ROOT / "tests" / "corpus"
SPEC_FILE = "spec/CORPUS-BASE.md"
SPEC = (CORPUS / "spec_base.md").read_bytes()
SPEC_HASH = sha256_hex(SPEC)
REQUIREMENTS = b"aiohttp>=3.9.0,<4.0\npytest>=8.0.0\npytest-aiohttp>=1.0.0\n"
MODEL = "claude-sonnet-4-6"


def _corpus(name: str) -> dict[str, bytes]:
    base = CORPUS / name
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(base.rglob("*"))
            if p.is_file() and p.name != "expected.json" and "__pycache__" not in p.parts}


VIABLE = _corpus("viable") | {"requirements.txt": REQUIREMENTS, SPEC_FILE: SPEC}
# an unimported module that does not parse: only our syntax gate (a stricter rule) sees it
SYNTAX_GATE = VIABLE | {"app/broken.py": b"VALUE = 1\n\ndef oops(:\n    return VALUE\n"}
# one failing test: non-viable at test under every profile
TEST_FAILS = VIABLE | {"tests/test_more.py": b"def test_fails():\n    assert 1 + 1 == 3\n"}
# the service module itself does not parse: the tests cannot import it
BROKEN = VIABLE | {"app/server.py": b"from aiohttp import web\n\ndef make_app(:\n    pass\n"}
# a main-line (M1) artifact: a different file set, so a different artifact hash
MAIN_LINE = VIABLE | {"app/version.py": b"VERSION = 1\n"}
# a campaigns/ artifact of its own
OTHER = VIABLE | {"app/version.py": b"VERSION = 4\n"}
ORPHAN = VIABLE | {"app/version.py": b"VERSION = 10\n"}


def write_artifact(folder: Path, generation: int, parent: int, files: dict[str, bytes], *,
                   m1: bool = False, duplicate: str | None = None,
                   tokens: tuple[int, int] = (1000, 500)) -> str:
    """Write files + manifest.json as the original did; return the artifact hash."""
    folder.mkdir(parents=True)
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    ahash = artifact_hash_of(files)
    listed = sorted(list(files) + ["manifest.json"])
    if duplicate:
        listed.append(duplicate)
    manifest = {
        "cambrian-version": 1, "generation": generation, "parent-generation": parent,
        "spec-hash": SPEC_HASH, "artifact-hash": ahash, "producer-model": MODEL,
        "token-usage": {"input": tokens[0], "output": tokens[1]}, "files": listed,
        ("created_at" if m1 else "created-at"): "2026-04-04T06:24:44.870191+00:00",
        "entry": {"build": ("pip" if m1 else "uv pip") + " install -r requirements.txt",
                  "test": "python -m pytest tests/ -v", "start": "python -m app",
                  "health": "http://localhost:8401/health"},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return ahash


def viability(gen: int, status: str, stage: str = "none", run: int = 3, passed: int = 3,
              failed: list[str] | None = None, tokens: tuple[int, int] = (1000, 500)) -> dict[str, Any]:
    """A viability report as the original wrote it (its keys and shapes)."""
    ok = status == "viable"
    order = ["manifest", "build", "test", "start", "health"]
    reached = order.index(stage) if stage in order else len(order)
    checks: dict[str, Any] = {}
    for i, s in enumerate(order):
        checks[s] = {"passed": ok or i < reached, "duration_ms": 0 if i > reached else 100 + i}
    checks["test"] |= {"tests_passed": passed, "tests_run": run}
    rep: dict[str, Any] = {
        "generation": gen, "status": status, "failure_stage": stage, "checks": checks,
        "fitness": {"test_count": run, "token_input": tokens[0], "token_output": tokens[1]},
        "completed_at": "2026-04-04T06:25:00.000000+00:00"}
    if not ok:
        rep["diagnostics"] = {"stage": stage, "summary": f"{run - passed} of {run} tests failed",
                              "exit_code": 1, "stdout_tail": "", "stderr_tail": "",
                              "failures": [{"test": "\nFAILED ".join(failed or []), "error": "assert 2 == 3",
                                            "file": "tests/test_more.py", "line": 2}]}
    return rep


def record(gen: int, parent: int, ahash: str, campaign: str, report: dict[str, Any]) -> dict[str, Any]:
    return {"generation": gen, "parent": parent, "spec-hash": SPEC_HASH, "artifact-hash": ahash,
            "outcome": "promoted" if report["status"] == "viable" else "failed",
            "created": "2026-04-04T06:24:44.870191+00:00", "container-id": f"lab-gen-{gen}",
            "campaign-id": campaign, "viability": report}


def write_summary(folder: Path, campaign: str, start: int, records: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps({
        "campaign_id": campaign, "spec_path": SPEC_FILE, "spec_hash": SPEC_HASH, "model": MODEL,
        "supervisor_url": "http://localhost:8400", "start_generation": start,
        "generations": len(records), "viable": sum(r["viability"]["status"] == "viable" for r in records),
        "records": records}, indent=2))


def original_tree(root: Path) -> dict[str, Any]:
    """Build the tree; returns facts the tests check against."""
    c1, c2 = "gen0-1775283677", "gen0-1775225335"
    g0 = root / "gen-0-campaigns" / c1
    h: dict[str, str] = {}
    h["main-1"] = write_artifact(root / "gen-1", 1, 0, MAIN_LINE, m1=True, tokens=(0, 0))  # no record
    h["abc-3"] = write_artifact(root / "campaigns" / "campaign-9cb3d7e5" / "gen-3", 3, 2, VIABLE)  # copy of gen-5
    h["abc-4"] = write_artifact(root / "campaigns" / "campaign-9cb3d7e5" / "gen-4", 4, 3, OTHER, tokens=(40, 4))
    h[5] = write_artifact(g0 / "gen-5", 5, 4, VIABLE, tokens=(100, 10))
    h[6] = write_artifact(g0 / "failed" / "gen-6", 6, 5, TEST_FAILS, tokens=(200, 20))
    h[7] = write_artifact(g0 / "gen-7", 7, 6, SYNTAX_GATE, tokens=(300, 30))
    h[8] = write_artifact(g0 / "gen-8", 8, 7, VIABLE | {"app/version.py": b"VERSION = 8\n"},
                          duplicate=SPEC_FILE, tokens=(400, 40))
    h[9] = "sha256:" + "9" * 64  # recorded, but its folder is not in the tree
    h[10] = write_artifact(g0 / "failed" / "gen-10", 10, 9, ORPHAN, tokens=(500, 50))  # no record
    h[11] = write_artifact(g0 / "gen-11", 11, 10, BROKEN, tokens=(600, 60))
    records = [
        record(5, 4, h[5], c1, viability(5, "viable", tokens=(100, 10))),
        record(6, 5, h[6], c1, viability(6, "non-viable", "test", 4, 3, ["tests/test_more.py::test_fails"],
                                         tokens=(200, 20))),
        record(7, 6, h[7], c1, viability(7, "viable", tokens=(300, 30))),
        record(8, 7, h[8], c1, viability(8, "viable", tokens=(400, 40))),
        record(9, 8, h[9], c1, viability(9, "viable", tokens=(700, 70))),
        record(11, 10, h[11], c1, viability(11, "viable", tokens=(600, 60))),
    ]
    write_summary(g0, c1, 5, records)
    # a campaign of which only the summary survives
    write_summary(root / "gen-0-campaigns" / c2, c2, 12,
                  [record(12, 11, "sha256:" + "c" * 64, c2,
                          viability(12, "non-viable", "test", 3, 2, ["tests/test_app.py::test_hello"],
                                    tokens=(800, 80)))])
    return {"hashes": h, "campaign": c1, "record_only_campaign": c2, "main": root.name,
            # tokens the original recorded per campaign (manifest token-usage; the record's
            # fitness when there is no artifact)
            "tokens": {c1: 110 + 220 + 330 + 440 + 770 + 550 + 660, c2: 880, "campaign-9cb3d7e5": 44,
                       root.name: 0}}
