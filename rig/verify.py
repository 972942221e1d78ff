"""`cambrian verify DIR [--backend docker|bwrap|none] [--json]`: run the rig on any
artifact directory and print the report.

Exit code: 0 viable, 1 non-viable, 2 the rig could not run (setup problem).
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from rig.api import RigResult, RigSetupError, run_artifact


def _progress(msg: str) -> None:
    print(f"[rig image] {msg}", file=sys.stderr, flush=True)


def _ensure_image() -> None:
    from rig import image

    try:
        image.ensure_image(progress=_progress)
    except Exception as exc:  # DockerUnavailable, ImageBuildError
        raise RigSetupError(f"{type(exc).__name__}: {exc}") from exc


def _details(stage: str, chk: dict) -> str:
    if stage == "manifest":
        bits = [f"{chk.get('vector_count', 0)} vectors, {chk.get('contract_count', 0)} contracts"]
        if chk.get("unlisted_files"):
            bits.append(f"{len(chk['unlisted_files'])} unlisted file(s) ignored")
        if chk.get("errors"):
            bits = [chk["errors"][0]]
        return "; ".join(bits)
    if stage == "build":
        gate = chk.get("syntax_gate") or {}
        return (f"exit {chk.get('exit_code')}, syntax gate "
                f"{'ok' if gate.get('passed') else 'FAILED' if gate else 'not run'}"
                f" ({gate.get('files_checked', 0)} files)")
    if stage == "test":
        if chk.get("tests_run") is None:
            return f"exit {chk.get('exit_code')}, no structured test results"
        return (f"{chk['tests_passed']}/{chk['tests_run']} passed"
                + (f", {chk.get('tests_skipped')} skipped" if chk.get("tests_skipped") else "")
                + f" (exit {chk.get('exit_code')})")
    if stage == "start":
        smoke = chk.get("smoke") or {}
        return (f"smoke {'ok' if smoke.get('passed') else 'FAILED'} "
                f"({len(smoke.get('modules') or [])} modules), ready "
                f"{'yes' if chk.get('ready') else 'no'}"
                + (f" in {chk.get('ready_ms')} ms" if chk.get("ready") else ""))
    if stage == "health":
        vec, con = chk.get("vectors") or [], chk.get("contracts") or []
        return (f"vectors {sum(v['passed'] for v in vec)}/{len(vec)}, "
                f"contracts {sum(c['passed'] for c in con)}/{len(con)}")
    return ""


def format_human(result: RigResult) -> str:
    rep = result.report.to_wire()
    out = []
    head = f"{rep['status'].upper()}  generation {rep['generation']}  backend {result.backend}"
    if rep.get("weaker_isolation"):
        head += "  (WEAKER ISOLATION: verdict forgeable by hostile code)"
    out.append(head)
    out.append(f"run {result.run_id}  total {result.total_ms} ms"
               + (f"  first output {result.first_output_ms} ms" if result.first_output_ms is not None else "")
               + ("  OOM-KILLED" if result.oom_killed else ""))
    if result.rig_error:
        out.append(f"RIG ERROR: {result.rig_error}")
    out.append("")
    out.append(f"{'stage':<9} {'passed':<7} {'ms':>7}  details")
    for stage in ("manifest", "build", "test", "start", "health"):
        chk = rep["checks"].get(stage)
        if chk is None:
            out.append(f"{stage:<9} {'-':<7} {'-':>7}  not run")
            continue
        out.append(f"{stage:<9} {'yes' if chk['passed'] else 'NO':<7} {chk['duration_ms']:>7}  "
                   f"{_details(stage, chk)}")
    health = rep["checks"].get("health")
    if health:
        for kind in ("vectors", "contracts"):
            for r in health.get(kind) or []:
                mark = "ok " if r["passed"] else "FAIL"
                out.append(f"  {mark} {kind[:-1]} {r['name']}: status {r.get('status')}"
                           + (f" — {r['error']}" if r.get("error") else ""))
    diag = rep.get("diagnostics")
    if diag:
        out.append("")
        out.append(f"failed at {diag['stage']}: {diag['summary']}")
        if diag.get("exit_code") is not None:
            out.append(f"exit code {diag['exit_code']}")
        for f in diag.get("failures") or []:
            loc = f"{f.get('file')}:{f.get('line')}" if f.get("file") else ""
            out.append(f"  - {f['test']}  {loc}")
            out.append(f"      {str(f.get('error', '')).splitlines()[0][:300] if f.get('error') else ''}")
        for name in ("stdout_tail", "stderr_tail"):
            if diag.get(name):
                out.append("")
                out.append(f"--- {name.replace('_', ' ')} ---")
                out.append(diag[name].rstrip())
    fit = rep.get("fitness") or {}
    if fit:
        out.append("")
        keys = ("stages_completed", "tests_run", "test_pass_rate", "vector_pass_rate",
                "contract_pass_rate", "source_lines", "test_lines", "dependency_count",
                "assertion_density", "trivial_assert_rate")
        out.append("fitness: " + ", ".join(f"{k}={fit[k]}" for k in keys if k in fit))
    return "\n".join(out) + "\n"


def verify_main(path: str, backend: str = "docker", as_json: bool = False,
                stream: TextIO = sys.stdout) -> int:
    try:
        if backend == "docker":
            _ensure_image()

        def on_line(s: str, line: str) -> None:
            if not as_json:
                print(f"{'[' + s + ']':<9} {line}", file=sys.stderr, flush=True)

        result = run_artifact(path, backend=backend, on_line=on_line)
    except RigSetupError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    if as_json:
        doc = result.report.to_wire()
        doc["backend"] = result.backend
        doc.setdefault("stage_ms", result.stage_ms)
        stream.write(json.dumps(doc, indent=2) + "\n")
    else:
        stream.write(format_human(result))
    stream.flush()
    return 0 if result.report.status == "viable" else 1


if __name__ == "__main__":  # python -m rig.verify DIR [--backend B] [--json]
    import argparse

    ap = argparse.ArgumentParser(prog="python -m rig.verify")
    ap.add_argument("path")
    ap.add_argument("--backend", default="docker", choices=["docker", "bwrap", "none"])
    ap.add_argument("--json", action="store_true")
    ns = ap.parse_args()
    raise SystemExit(verify_main(ns.path, ns.backend, ns.json))
