"""The explicit ``none`` backend (trusted local debugging only) and the pipeline driver
shared with the bwrap backend.

Both run ``rig/runner.py run``: the runner reads a plan JSON line and the artifact tar on
stdin, extracts it, runs every step as its own child process and streams JSON-lines
events on stdout. The runner shares the organism's uid here, so hostile code could forge
events: these backends are labelled ``weaker_isolation`` in every report, loudly.

``none`` runs the organism as a plain subprocess on the host, in a temporary directory,
with the host's network, filesystem and uid. Never use it on untrusted artifacts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rig import runner as _runner
from rig.api import RigSetupError
from rig.backends import ORGANISM_PACKAGES, Backend, Execution, Job

RUNNER_PATH = Path(__file__).resolve().parent.parent / "runner.py"
MAX_EVENT_LINE = 64_000_000


def organism_python() -> str:
    """The Python the organism gets outside Docker: $CAMBRIAN_ORGANISM_PYTHON, else the
    rig's own interpreter (its venv may lack organism packages: reported per run)."""
    return os.environ.get("CAMBRIAN_ORGANISM_PYTHON") or sys.executable


class LocalBackend(Backend):
    name = "none"
    weaker_isolation = True
    kill_mode = "tree"

    def check_available(self) -> None:
        if not os.path.exists(organism_python()):
            raise RigSetupError(f"organism python not found: {organism_python()}")

    # -- hooks overridden by bwrap -------------------------------------------------
    def workspace(self, tmp: str) -> str:
        return os.path.join(tmp, "workspace")

    def junit_dir(self, tmp: str) -> str:
        return os.path.join(tmp, f".rig-{os.urandom(12).hex()}")

    def command(self, job: Job, tmp: str, python: str) -> list[str]:
        return [python, "-I", str(RUNNER_PATH), "run"]

    def env(self, job: Job, tmp: str, python: str) -> dict[str, str]:
        env = job.organism_env()
        env["PATH"] = f"{os.path.dirname(python)}:/usr/local/bin:/usr/bin:/bin"
        env["HOME"] = tmp
        env["TMPDIR"] = os.path.join(tmp, "tmp")
        os.makedirs(env["TMPDIR"], exist_ok=True)
        return env

    def limits(self, job: Job) -> dict[str, int]:
        lim = job.limits
        return {"fsize": lim.file_size_mb * 1024 * 1024, "nofile": 1024, "core": 0}

    # -- run -----------------------------------------------------------------------
    def execute(self, job: Job) -> Execution:
        ex = Execution()
        sink = job.sink
        sink.mark_origin()
        python = organism_python()
        tmp = tempfile.mkdtemp(prefix="cambrian-rig-")
        os.chmod(tmp, 0o755)
        try:
            plan = {
                "workspace": self.workspace(tmp),
                "generation": job.generation, "entry": job.entry, "port": job.port,
                "health_path": job.health_path, "vectors": job.vectors,
                "contracts": job.contracts, "files": sorted(job.files),
                "smoke_modules": job.smoke_modules, "python": python, "shell": "/bin/sh",
                "collect_dir": self.junit_dir(tmp),
                "timeouts": {k: getattr(job.timeouts, k) for k in
                             ("build", "test", "smoke", "start", "health")},
                "env": self.env(job, tmp, python), "kill_mode": self.kill_mode,
                "limits": self.limits(job), "check_packages": ORGANISM_PACKAGES,
                "stop_after_test": job.stop_after_test, "rules": sorted(job.rules),
                "probes": job.probes, "gate_kinds": list(job.gate_kinds),
            }
            self._drive(job, ex, self.command(job, tmp, python), plan, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        ex.first_output_ms = sink.first_output_ms()
        ex.extra["organism_python"] = python
        return ex

    def _drive(self, job: Job, ex: Execution, argv: list[str], plan: dict[str, Any],
               tmp: str) -> None:
        sink = job.sink
        to = job.timeouts
        budget = to.build + to.test + to.smoke + to.start + to.health + 60.0
        payload = json.dumps(plan).encode() + b"\n" + job.tar_bytes(uid=os.getuid())
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=plan["env"], cwd=tmp,
                                start_new_session=True)
        err_tail = _runner._Tail()
        state: dict[str, Any] = {"done": False, "bad": None}

        def feed() -> None:
            try:
                proc.stdin.write(payload)
                proc.stdin.close()
            except OSError:
                pass

        def read_err() -> None:
            for chunk in iter(lambda: proc.stderr.read1(65536), b""):
                err_tail.add(chunk)

        def read_out() -> None:
            for raw in proc.stdout:
                if len(raw) > MAX_EVENT_LINE:
                    continue
                try:
                    ev = json.loads(raw)
                except ValueError:
                    state["bad"] = raw[:200].decode("utf-8", "replace")
                    continue
                if not isinstance(ev, dict):
                    continue
                kind = ev.get("t")
                if kind == "line":
                    sink.line(str(ev.get("s", "stdout")), str(ev.get("l", "")))
                elif kind == "rig":
                    sink.rig(str(ev.get("l", "")))
                elif kind == "step" and isinstance(ev.get("step"), dict):
                    if isinstance(ev["step"].get("name"), str):
                        ex.add(ev["step"])  # typed by Step.from_wire
                elif kind == "info":
                    missing = ev.get("missing_packages") or []
                    if missing:
                        ex.extra["missing_packages"] = missing
                        sink.rig(f"[rig] WARNING: organism packages missing from "
                                 f"{plan['python']}: {', '.join(missing)}")
                    ex.extra["limits_applied"] = ev.get("limits")
                elif kind == "done":
                    state["done"] = True
                    if ev.get("oom_kills"):
                        ex.oom_killed = True

        threads = [threading.Thread(target=f, daemon=True) for f in (feed, read_err, read_out)]
        for th in threads:
            th.start()
        try:
            proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            ex.rig_error = f"the runner exceeded the overall budget of {budget:g}s"
            self._kill(proc)
            proc.wait()
        for th in threads:
            th.join(5.0)
        ex.stage_ms["pipeline"] = int((time.monotonic() - t0) * 1000)
        if not state["done"] and ex.rig_error is None:
            ex.rig_error = (f"the runner ended without a report (exit code {proc.returncode}); "
                            f"stderr: {err_tail.text()[-1500:]}")
        if ex.rig_error:
            ex.rig_error_stage = ("start" if "smoke" in ex.steps or "start" in ex.steps else
                                  "test" if "test" in ex.steps else "build")
        for step in ex.steps.values():
            if step.name in ("build", "test", "smoke", "start") and step.exit_code == 137:
                step.maybe_oom = True

    def _kill(self, proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
