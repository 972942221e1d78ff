"""Sealed vectors in the verdict, without a sandbox: a sealed failure alone names its rule,
and the writer never gets the service's output from a run that probed sealed vectors."""

from __future__ import annotations

import json

from conftest import make_hello_artifact  # tests/rig/conftest.py
from rig.backends import Execution
from rig.orchestrator import WITHHELD_TAIL, assemble, manifest_stage
from rig.profiles import CAMBRIAN
from rig.steps import Step
from test_runner_unit import _steps

MARK = "QX-SEALED-7731"


def test_a_sealed_failure_alone_names_its_rule_and_withholds_the_service_output(tmp_path):
    def health(visible_ok: bool) -> dict:
        return {"name": "health", "ok": False, "duration_ms": 9,
                "stdout_tail": f"GET /count?{MARK} 200\n", "stderr_tail": f"log {MARK}\n",
                "data": {"endpoint": {"name": "entry.health", "passed": True, "status": 200},
                         "vectors": [{"name": "v", "passed": visible_ok, "status": 200,
                                      "error": None if visible_ok else "status 500"}],
                         "contracts": [],
                         "sealed": [{"name": f"{MARK}-counts", "passed": False, "status": 200,
                                     "error": f"body is {{'count': 0}} ({MARK})"}]}}

    mo = manifest_stage(make_hello_artifact(tmp_path / "a"))
    for visible_ok, rules in ((True, ["sealed_vectors"]), (False, [])):
        ex_steps = {k: Step.from_wire(v) for k, v in _steps(health=health(visible_ok)).items()}
        rep, _ = assemble(mo, Execution(steps=ex_steps), generation=1, backend="docker",
                          timeouts=CAMBRIAN.timeouts, weaker=False, run_id="r", gate_kinds=("sealed",))
        wire = rep.to_wire()
        assert wire["status"] == "non-viable" and wire["stricter_rules"] == rules
        diag = json.dumps(wire["diagnostics"])
        assert MARK not in diag and wire["diagnostics"]["stdout_tail"] == WITHHELD_TAIL
        assert wire["checks"]["health"]["sealed"][0]["name"] == f"{MARK}-counts"  # kept for people
