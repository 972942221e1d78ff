"""Hidden probe layers (sealed vectors, examiner and red-team probes) in the real rig: run
after the visible checks, reported apart, gating only when the policy says so, and their
expectations never visible to the organism's processes (they travel on stdin, not argv)."""

from __future__ import annotations

import pytest

from conftest import HELLO_APP, hello_files, write_artifact  # tests/rig/conftest.py
from rig.api import run_artifact

pytestmark = pytest.mark.docker

MARKER = "SEALED-MARKER-7f3a"

# The service also scans every process's argv and environment it can read, for the
# marker, while the rig probes it; whatever it finds goes to its stdout (the live log).
SNOOPER = '''
import os, threading, time

def snoop():
    t0 = time.monotonic()
    while time.monotonic() - t0 < 20:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            for name in ("cmdline", "environ"):
                try:
                    with open(f"/proc/{pid}/{name}", "rb") as fh:
                        data = fh.read()
                except OSError:
                    continue
                if b"SEALED-MARKER" in data:
                    print("FOUND in", pid, name, data[:300], flush=True)
        time.sleep(0.01)

threading.Thread(target=snoop, daemon=True).start()
'''

SEALED = [{"name": "secret-shape", "method": "GET", "path": "/hello",
           "expect": {"status": 200, "body_contains": {"secret": MARKER}}}]
EXAMINER = [{"name": "ex-health-is-json", "method": "GET", "path": "/health",
             "expect": {"status": 200, "body_has_keys": ["status"]}}]


def _artifact(tmp_path):
    files = hello_files()
    files["app.py"] = HELLO_APP.replace('if __name__ == "__main__":',
                                        SNOOPER + '\nif __name__ == "__main__":')
    return write_artifact(tmp_path / "snoop", files)


def test_hidden_layers_run_apart_and_gate_by_policy(tmp_path, rig_image):
    art = _artifact(tmp_path)
    lines: list[str] = []
    res = run_artifact(art, probes={"sealed": SEALED, "examiner": EXAMINER}, gate=["sealed"],
                       on_line=lambda s, line: lines.append(line))
    rep = res.report.to_wire()
    assert rep["status"] == "non-viable" and rep["failure_stage"] == "health"
    health = rep["checks"]["health"]
    assert [p["passed"] for p in health["sealed"]] == [False]
    assert [p["passed"] for p in health["examiner"]] == [True]
    assert [v["passed"] for v in health["vectors"]] == [True, True]  # the visible layer passed
    assert rep["layers"] == {"sealed": {"gate": True, "probes": 1}, "examiner": {"gate": False, "probes": 1}}
    assert rep["fitness"]["sealed_pass_rate"] == 0.0 and rep["fitness"]["examiner_pass_rate"] == 1.0
    assert MARKER not in str(rep["diagnostics"])
    # the organism looked at every process it could read, all through the probes
    assert not [line for line in lines if "FOUND" in line], [line for line in lines if "FOUND" in line]
    # the same layers only scoring: viable, with the scores kept
    rep = run_artifact(art, probes={"sealed": SEALED, "examiner": EXAMINER}).report.to_wire()
    assert rep["status"] == "viable" and rep["fitness"]["sealed_pass_rate"] == 0.0


def test_a_malformed_probe_is_a_setup_error_not_a_verdict(tmp_path, rig_image):
    from rig.api import RigSetupError

    with pytest.raises(RigSetupError, match="sealed probe does not match the contract schema"):
        run_artifact(_artifact(tmp_path), probes={"sealed": [{"name": "x", "path": "no-slash",
                                                              "expect": {"status": 200}}]})
