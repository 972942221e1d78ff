"""Sealed vectors in the real rig: an Echo that passes its own tests and every visible vector
but answers a wrong method with 404 (the prose says 405; only a sealed vector of
`spec/echo.md` looks). Gating: non-viable at health by the named rule, the sealed results
apart, the writer's diagnostics without them (its own tests do not ask either). Scoring only: viable, the rate kept."""

from __future__ import annotations

import json

import pytest

from conftest import write_artifact  # tests/rig/conftest.py
from core.home import REPO_ROOT
from core.llm.sim.build import files_for
from core.spec import parse_spec, read_spec_text
from rig.api import run_artifact

pytestmark = pytest.mark.docker

SPEC = parse_spec(read_spec_text(REPO_ROOT / "spec" / "echo.md"))
SEALED = [v.to_wire() for v in SPEC.sealed]
WRONG_METHOD = '''

async def not_here(request: web.Request) -> web.Response:
    return web.json_response({"error": "not-found"}, status=404)
'''


def _echo_that_404s_a_wrong_method(root):
    files = files_for(SPEC.visible_text, defects=set(), habits={})
    app = files["echo/app.py"]
    app = app.replace("\n\ndef make_app(", WRONG_METHOD + "\n\ndef make_app(", 1)
    app = app.replace('    app.router.add_post("/echo", echo)\n',
                      '    app.router.add_post("/echo", echo)\n    app.router.add_get("/echo", not_here)\n', 1)
    assert "not_here)" in app
    files["echo/app.py"] = app
    # and its own tests never ask (the sim's Echo tests the 405; this one does not)
    tests = files["tests/test_app.py"]
    start = tests.index("async def test_wrong_method_is_405")
    end = tests.find("\nasync def ", start + 1)
    files["tests/test_app.py"] = tests[:start] + (tests[end + 1:] if end > 0 else "")
    assert "test_wrong_method_is_405" not in files["tests/test_app.py"]
    files["spec/echo.md"] = SPEC.visible_text  # the writer's copy: no sealed vector in it
    return write_artifact(root, files, entry=SPEC.entry.model_dump(), generation=2)


def test_an_artifact_passing_every_visible_vector_fails_a_sealed_one(tmp_path, rig_image):
    art = _echo_that_404s_a_wrong_method(tmp_path / "echo")
    rep = run_artifact(art, probes={"sealed": SEALED}, gate=["sealed"]).report.to_wire()
    assert rep["status"] == "non-viable" and rep["failure_stage"] == "health"
    assert rep["checks"]["test"]["passed"] and rep["checks"]["test"]["tests_run"] > 5
    health = rep["checks"]["health"]
    assert [v["passed"] for v in health["vectors"]] == [True] * 5
    assert [(r["name"], r["passed"], r["status"]) for r in health["sealed"]] == [
        ("wrong-method-is-405", False, 404), ("reverse-counts-code-points", True, 200),
        ("reverse-empty-text", True, 200)]
    assert rep["stricter_rules"] == ["sealed_vectors"] and rep["layers"]["sealed"] == {"gate": True, "probes": 3}
    assert rep["fitness"]["sealed_pass_rate"] == round(2 / 3, 4) and rep["fitness"]["sealed_total"] == 3
    assert rep["fitness"]["vector_pass_rate"] == 1.0
    diag = json.dumps(rep["diagnostics"])
    assert "wrong-method" not in diag and "405" not in diag and "/echo" not in diag
    assert "1 sealed check(s) failed (withheld from the writer) [rule: sealed_vectors]" in diag

    # scoring only: the verdict is Layer 1's, the sealed rate is still measured
    rep = run_artifact(art, probes={"sealed": SEALED}, gate=[]).report.to_wire()
    assert rep["status"] == "viable" and rep["fitness"]["sealed_pass_rate"] == round(2 / 3, 4)
    assert rep["layers"]["sealed"]["gate"] is False
