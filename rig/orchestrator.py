"""Host side of the rig: the manifest stage, the backend run, and the verdict.

The verdict is assembled HERE, on the host, from per-step facts that the backend
collected (exec exit codes through the Docker API, trusted runner output). Nothing the
organism writes into its workspace is read as a result. See rig/README.md.

Stage mapping into the §6.2 report (``checks`` is keyed by the five stage names):
  manifest  host-side: manifest.json, files, hash, spec vectors
  build     build command + syntax gate (every listed .py parses; nothing executed)
  test      test command + streamed per-test records from the rig's pytest plugin
  start     import smoke check + start command + readiness (port open, process alive)
  health    entry health URL (2xx), spec vectors, then manifest contracts
A stage that never ran is absent. ``failure_stage`` is the first stage that failed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from rig.api import RigLimits, RigResult, RigSetupError, StageTimeouts
from rig.backends import Execution, Job, OutputSink, get_backend
from rig.fitness import compute_fitness
from rig.hashing import artifact_hash_of, sha256_hex
from rig.runner import smoke_modules, test_passed
from rig.schema import (STAGES, CheckResult, Diagnostics, Failure, Manifest, StageCheck,
                        ViabilityReport)
from rig.profiles import (BUILD_TIMEOUT, CAMBRIAN, CREATED_AT_KEY, DUPLICATE_PATHS,
                          EXAMINER_PROBES, HASH_MATCH, ORIGINAL_TIMEOUTS, SEALED_VECTORS,
                          TAMPER_GATE, TEST_TIMEOUT, Profile, get_profile)
from rig.runner import (HEALTH_ENDPOINT, HIDDEN_KINDS, IMPORT_SMOKE, PROCESS_ALIVE,
                        STRUCTURED_COUNTS, SYNTAX_GATE)
from rig.steps import Step
from rig.vectors import VectorError, extract_vectors, spec_timeouts

TAIL = 4096
# named rules for the hidden layers that gate (the red team gets its own with it)
HIDDEN_RULES = {"sealed": SEALED_VECTORS, "examiner": EXAMINER_PROBES}
WITHHELD_TAIL = ("(withheld: the service's output during the health stage also covers probes the "
                 "writer may not see; the rig log has it)")
MAX_FILES = 5000
MAX_TOTAL_BYTES = 64 * 1024 * 1024
MAX_MANIFEST_BYTES = 2 * 1024 * 1024


# --------------------------------------------------------------------------------------
# manifest stage (host, before any artifact code runs)
# --------------------------------------------------------------------------------------


@dataclass
class ManifestOutcome:
    ok: bool
    duration_ms: int
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    manifest: Manifest | None = None
    files: dict[str, bytes] | None = None
    modes: dict[str, int] = field(default_factory=dict)
    vectors: list[dict[str, Any]] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    raw_generation: int | None = None
    tamper: list[dict[str, Any]] = field(default_factory=list)
    # errors that only a named rule of ours makes errors (rig/profiles.py), by rule
    rule_errors: dict[str, list[str]] = field(default_factory=dict)
    spec_timeouts: dict[str, float] = field(default_factory=dict)

    def rule_error(self, rule: str, message: str) -> None:
        """Kept apart until the stage ends, so that every other check still runs: a verdict
        names a rule only when nothing else failed."""
        self.rule_errors.setdefault(rule, []).append(message)

    def only_rules_failed(self) -> list[str]:
        """The rules whose errors are the only errors (else the original failed it too)."""
        ruled = {m for msgs in self.rule_errors.values() for m in msgs}
        if self.rule_errors and all(e in ruled for e in self.errors):
            return sorted(self.rule_errors)
        return []

    def check(self) -> StageCheck:
        extra: dict[str, Any] = {}
        if self.errors:
            extra["errors"] = self.errors
        if self.warnings:
            extra["warnings"] = self.warnings
        if self.unlisted:
            extra["unlisted_files"] = self.unlisted
        if self.ok:
            extra["vector_count"] = len(self.vectors)
            extra["contract_count"] = len(self.manifest.contracts or []) if self.manifest else 0
        return StageCheck(passed=self.ok, duration_ms=self.duration_ms, **extra)


def _walk(root: str, errors: list[str]) -> tuple[dict[str, os.stat_result], bool]:
    """Every non-directory entry under root by relative path, symlinks NOT followed, and
    whether the walk stopped early at MAX_FILES (then absent files were never looked for)."""
    found: dict[str, os.stat_result] = {}
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            entries = list(os.scandir(os.path.join(root, rel_dir) if rel_dir else root))
        except OSError as exc:
            errors.append(f"cannot list {rel_dir or '.'}: {exc.strerror}")
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                try:
                    target = os.readlink(entry.path)
                except OSError:
                    target = "?"
                errors.append(f"symlink not allowed: {rel} -> {target}")
            elif stat.S_ISDIR(st.st_mode):
                stack.append(rel)
            elif stat.S_ISREG(st.st_mode):
                found[rel] = st
            else:
                errors.append(f"not a regular file (device, fifo or socket): {rel}")
            if len(found) > MAX_FILES:
                errors.append(f"more than {MAX_FILES} files in the artifact directory")
                return found, True
    return found, False


def _read_regular(path: str, limit: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError("not a regular file")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"larger than {limit} bytes")
    return data


def manifest_stage(artifact_dir: str | Path, profile: Profile = CAMBRIAN) -> ManifestOutcome:
    t0 = time.monotonic()
    root = os.path.abspath(str(artifact_dir))
    out = ManifestOutcome(ok=False, duration_ms=0)

    def done() -> ManifestOutcome:
        for msgs in out.rule_errors.values():
            out.errors.extend(m for m in msgs if m not in out.errors)
        out.ok = not out.errors
        out.duration_ms = int((time.monotonic() - t0) * 1000)
        return out

    if os.path.islink(root) or not os.path.isdir(root):
        out.errors.append(f"artifact directory not found: {artifact_dir}")
        return done()
    mpath = os.path.join(root, "manifest.json")
    try:
        raw = _read_regular(mpath, MAX_MANIFEST_BYTES)
    except OSError as exc:
        out.errors.append(f"manifest.json: cannot read it as a regular file "
                          f"({exc.strerror or exc})")
        raw = None
    entries, truncated = _walk(root, out.errors)
    if raw is None:
        return done()
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        out.errors.append(f"manifest.json is not valid JSON: {exc}")
        return done()
    if isinstance(doc, dict) and isinstance(doc.get("generation"), int):
        out.raw_generation = doc["generation"]
    if isinstance(doc, dict):
        doc = _apply_manifest_rules(doc, out, profile)
    try:
        manifest = Manifest.model_validate(doc)
    except ValidationError as exc:
        for e in exc.errors():
            loc = ".".join(str(p) for p in e["loc"]) or "<root>"
            out.errors.append(f"manifest.json: {loc}: {e['msg']}")
        return done()
    out.manifest = manifest
    listed = [f for f in manifest.files if f != "manifest.json"]
    # after a truncated walk a file not seen may simply not have been reached
    missing = [] if truncated else [f for f in listed if f not in entries]
    for f in missing:
        out.errors.append(f"listed file missing or not a regular file: {f}")
    out.unlisted = sorted(set(entries) - set(manifest.files))
    if out.unlisted:
        out.warnings.append(f"{len(out.unlisted)} file(s) not listed in the manifest are ignored")
    if out.errors:
        return done()
    files: dict[str, bytes] = {"manifest.json": raw}
    total = 0
    for rel in listed:
        try:
            data = _read_regular(os.path.join(root, rel), MAX_TOTAL_BYTES)
        except OSError as exc:
            out.errors.append(f"cannot read {rel}: {exc.strerror or exc}")
            continue
        total += len(data)
        if total > MAX_TOTAL_BYTES:
            out.errors.append(f"artifact larger than {MAX_TOTAL_BYTES} bytes")
            return done()
        files[rel] = data
        out.modes[rel] = 0o755 if entries[rel].st_mode & 0o111 else 0o644
    out.modes["manifest.json"] = 0o644
    if out.errors:
        return done()
    actual = artifact_hash_of(files)
    if actual != manifest.artifact_hash:
        msg = f"artifact hash mismatch: manifest says {manifest.artifact_hash}, files hash to {actual}"
        if profile.on(HASH_MATCH):
            out.rule_error(HASH_MATCH, msg)
        else:
            out.warnings.append(msg + " (accepted: original profile)")
    spec = files.get(manifest.spec_file, b"")
    if sha256_hex(spec) != manifest.spec_hash:
        out.warnings.append(f"spec copy {manifest.spec_file} does not hash to spec-hash")
    try:
        spec_text = spec.decode("utf-8")
        vs = extract_vectors(spec_text)
        out.vectors = [v.to_wire() for v in vs.vectors]
        out.warnings.extend(vs.warnings)
        out.spec_timeouts, problems = spec_timeouts(spec_text)
        out.errors.extend(f"{manifest.spec_file}: {p}" for p in problems)
    except UnicodeDecodeError as exc:
        out.errors.append(f"{manifest.spec_file}: not UTF-8 ({exc})")
    except VectorError as exc:
        out.errors.append(f"{manifest.spec_file}: {exc}")
    out.files = files
    if profile.on(TAMPER_GATE):
        out.tamper = tamper_scan(files)
    return done()


def _apply_manifest_rules(doc: dict[str, Any], out: ManifestOutcome,
                          profile: Profile) -> dict[str, Any]:
    """The manifest rules where ours is stricter than the original: an error under ours
    (named), accepted with a warning under the original profile."""
    doc = dict(doc)
    files = doc.get("files")
    if isinstance(files, list):
        seen: set[Any] = set()
        dups = [f for f in files if f in seen or seen.add(f)]  # type: ignore[func-returns-value]
        if dups:
            msg = f"manifest.json: files: lists {len(dups)} path(s) twice, e.g. {dups[0]!r}"
            if profile.on(DUPLICATE_PATHS):
                out.rule_error(DUPLICATE_PATHS, msg)
            else:
                out.warnings.append(msg + " (accepted: original profile)")
            doc["files"] = list(dict.fromkeys(files))  # validate the rest either way
    if "created-at" not in doc and "created_at" in doc:
        msg = "manifest.json: created-at: missing (the M1-era key created_at is not the format)"
        if profile.on(CREATED_AT_KEY):
            out.rule_error(CREATED_AT_KEY, msg)
        else:
            out.warnings.append("manifest.json: M1-era created_at accepted (original profile)")
        doc["created-at"] = doc["created_at"]
    return doc


# --------------------------------------------------------------------------------------
# static tamper gate (host, never executes anything)
# --------------------------------------------------------------------------------------

_RIG_NAMES = ("_cambrian_rig", "cambrian_rig", "CAMBRIAN_RIG")
_RIG_NAMES_LOW = tuple(sorted({n.lower() for n in _RIG_NAMES}))
_REPORT_ATTRS = {"outcome", "longrepr", "exitstatus", "wasxfail", "passed", "failed", "skipped"}
# outside the hooks themselves (helpers, module level) of a file that defines hooks: only the
# attributes that carry pytest's verdict — passed/failed/skipped are read-only properties of
# a report and common names in ordinary code
_VERDICT_ATTRS = {"outcome", "longrepr", "exitstatus", "wasxfail"}


def tamper_scan(files: dict[str, bytes]) -> list[dict[str, Any]]:
    """Find code that rewrites pytest's verdict or touches the rig's results plugin.

    Flags (with file:line): any identifier, attribute or string naming the rig plugin;
    inside a pytest hook implementation (a function named ``pytest_*``) an assignment
    to a report/session outcome attribute (``outcome``, ``longrepr``, ``exitstatus``,
    ...), ``setattr`` of one, or forcing a hook result (``force_result``,
    ``force_exception``); anywhere else in a file that implements a hook, the same for
    the verdict-carrying attributes (a helper the hook calls). A heuristic defence in
    depth: the documented limit stands that code inside the pytest process can forge its
    own results."""
    import ast

    from rig.pysource import parse_python

    found: list[dict[str, Any]] = []

    def add(path: str, node: ast.AST, what: str) -> None:
        if len(found) < 50:
            found.append({"file": path, "line": getattr(node, "lineno", None), "what": what})

    for path, data in sorted(files.items()):
        if not path.endswith(".py"):
            continue
        tree = parse_python(data)
        if tree is None:
            continue
        hooks = []
        for node in ast.walk(tree):  # one pass: names of the plugin, and the hooks
            t = type(node)
            if t is ast.Name:
                text = node.id
            elif t is ast.Attribute:
                text = node.attr
            elif t is ast.Constant:
                text = node.value if type(node.value) is str else None
            elif t is ast.alias:
                text = node.name
            elif t is ast.ImportFrom:
                text = node.module
            else:
                if (t is ast.FunctionDef or t is ast.AsyncFunctionDef) and node.name.startswith("pytest_"):
                    hooks.append(node)
                continue
            if text:
                low = text.lower()
                if any(n in low for n in _RIG_NAMES_LOW):
                    add(path, node, "references the rig's results plugin")
        hook_of = {id(node): fn.name for fn in hooks for node in ast.walk(fn)}
        # a file that implements hooks is a pytest plugin: its helpers (called from a hook)
        # and its module level are checked too, for the verdict-carrying attributes
        for node in (ast.walk(tree) if hooks else ()):
            hook = hook_of.get(id(node))
            attrs = _REPORT_ATTRS if hook else _VERDICT_ATTRS
            place = f"inside hook {hook}" if hook else "in a file that implements pytest hooks"
            targets: list[ast.AST] = []
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            for t in targets:
                for sub in ast.walk(t):
                    if isinstance(sub, ast.Attribute) and sub.attr in attrs:
                        add(path, node, f"assigns .{sub.attr} {place}")
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if name in ("force_result", "force_exception"):
                    add(path, node, f"forces a hook result ({name}) {place}")
                if name == "setattr" and len(node.args) >= 2 and isinstance(
                        node.args[1], ast.Constant) and node.args[1].value in attrs:
                    add(path, node, f"setattr(..., {node.args[1].value!r}) {place}")
    return found


# --------------------------------------------------------------------------------------
# verdict assembly
# --------------------------------------------------------------------------------------


def _tail(s: str | None) -> str:
    s = s or ""
    return s[-TAIL:]


def _why(step: Step, what: str, timeout: float) -> str:
    if step.oom:
        return f"{what}: out of memory (killed by the OOM killer, exit code {step.exit_code})"
    if step.timed_out:
        return f"{what}: timed out after {timeout:g}s"
    if step.rig_error:
        return f"{what}: rig error: {step.rig_error}"
    return f"{what}: exited with code {step.exit_code}"


def assemble(mo: ManifestOutcome, ex: Execution | None, *, generation: int, backend: str,
             timeouts: StageTimeouts, weaker: bool, run_id: str,
             extra: dict[str, Any] | None = None, profile: Profile = CAMBRIAN,
             timeout_rules: bool = True,
             gate_kinds: tuple[str, ...] = ()) -> tuple[ViabilityReport, dict[str, int]]:
    """The verdict from the manifest outcome and the backend's steps. ``timeout_rules``:
    name build/test timeout rules (not when the caller chose the timeouts)."""
    checks: dict[str, StageCheck] = {"manifest": mo.check()}
    stage_ms: dict[str, int] = {"manifest": mo.duration_ms}
    diag: Diagnostics | None = None
    failure = "none"
    stricter: list[str] = []  # our rules that decided this non-viable verdict
    lenient: list[str] = []   # our settings that let a stage pass the original's would fail

    def fail(stage: str, summary: str, *, exit_code: int | None = None,
             failures: list[Failure] | None = None, out: str = "", err: str = "",
             rules: list[str] | None = None) -> None:
        nonlocal diag, failure
        if diag is not None:
            return
        failure = stage
        if rules:
            stricter.extend(rules)
            summary += f" [rule: {', '.join(rules)}]"
        diag = Diagnostics(stage=stage, summary=summary, exit_code=exit_code,
                           failures=failures or [], stdout_tail=_tail(out), stderr_tail=_tail(err))

    if not mo.ok:
        fail("manifest", "manifest stage failed: " + "; ".join(mo.errors[:5]),
             failures=[Failure(test="manifest", error=e) for e in mo.errors[:100]],
             rules=mo.only_rules_failed())
    steps = ex.steps if ex is not None else {}

    # build = build command + syntax gate
    b, g = steps.get("build"), steps.get("gate")
    if b is not None and diag is None:
        gate_enforced = profile.on(SYNTAX_GATE)
        gate_ok = g is not None and g.ok
        ok = b.ok and (gate_ok or (not gate_enforced and g is not None))
        kw: dict[str, Any] = {"exit_code": b.exit_code, "build_ms": b.duration_ms}
        kw = {k: v for k, v in kw.items() if v is not None}
        if b.timed_out:
            kw["timed_out"] = True
        if g is not None:
            kw["syntax_gate"] = {"passed": g.ok, "duration_ms": g.duration_ms,
                                 "files_checked": g.data.get("files_checked"),
                                 "errors": g.data.get("errors", [])}
            if not gate_enforced:
                kw["syntax_gate"]["enforced"] = False
        dur = b.duration_ms + (g.duration_ms if g else 0)
        checks["build"] = StageCheck(passed=ok, duration_ms=dur, **kw)
        stage_ms["build"] = dur
        gate_errs = g.data.get("errors", []) if g is not None else []
        gate_fails = [Failure(test=f"syntax:{e['file']}", error=e["error"], file=e["file"],
                              line=e.get("line")) for e in gate_errs[:100]]
        if not b.ok:
            summary = _why(b, "build command", timeouts.build)
            if gate_errs:
                summary += (f"; syntax gate: {len(gate_errs)} file(s) do not parse, first "
                            f"{gate_errs[0]['file']}:{gate_errs[0].get('line')}")
            rules = ([BUILD_TIMEOUT] if b.timed_out and profile.on(BUILD_TIMEOUT) and timeout_rules
                     and timeouts.build < ORIGINAL_TIMEOUTS.build else [])
            fail("build", summary, exit_code=b.exit_code, failures=gate_fails,
                 out=b.stdout_tail, err=b.stderr_tail, rules=rules)
        elif not ok:
            first = gate_errs[0] if gate_errs else {}
            fail("build", f"syntax gate: {len(gate_errs)} file(s) do not parse; first: "
                          f"{first.get('file')}:{first.get('line')}: {first.get('error')}",
                 failures=gate_fails, out=b.stdout_tail, err=b.stderr_tail,
                 rules=[SYNTAX_GATE] if g is not None else None)

    # test = test command + the structured results (plugin records, read by trusted code)
    t, j = steps.get("test"), steps.get("results")
    if t is not None and diag is None:
        jd = j.data if j is not None else {}
        kw = {"results_found": bool(jd.get("found"))}
        if t.exit_code is not None:
            kw["exit_code"] = t.exit_code
        if jd.get("found"):
            kw.update(tests_run=jd["tests_run"], tests_passed=jd["tests_passed"],
                      tests_failed=jd["failed"], tests_errors=jd["errors"],
                      tests_skipped=jd["skipped"], results=jd.get("results", [])[:500])
        if t.timed_out:
            kw["timed_out"] = True
        structured = profile.on(STRUCTURED_COUNTS)
        by_exit = bool(test_passed({"ok": t.ok}, jd, structured=False))
        passed = bool(test_passed({"ok": t.ok}, jd, structured=structured))
        tampered = bool(mo.tamper)  # scanned only under the tamper_gate rule
        ok = passed and not tampered
        if mo.tamper:
            kw["tamper_findings"] = mo.tamper
        if not structured:
            kw["decided_by"] = "exit code (original profile)"
        dur = t.duration_ms + (j.duration_ms if j else 0)
        checks["test"] = StageCheck(passed=ok, duration_ms=dur, **kw)
        stage_ms["test"] = dur
        if (ok and t.duration_ms > ORIGINAL_TIMEOUTS.test * 1000 and profile.on(TEST_TIMEOUT)
                and timeout_rules):
            lenient.append(TEST_TIMEOUT)
        if not ok:
            bad = [r for r in jd.get("results", []) if r["outcome"] in ("failed", "error")]
            failures = [Failure(test=r["id"], error=r.get("message") or r["outcome"],
                                file=r.get("file"), line=r.get("line")) for r in bad[:100]]
            rules: list[str] = []
            if tampered:
                first = mo.tamper[0]
                summary = (f"test-result tampering refused: {first['file']}:{first['line']}: "
                           f"{first['what']}"
                           + (f" (+{len(mo.tamper) - 1} more)" if len(mo.tamper) > 1 else ""))
                failures = [Failure(test=f"tamper:{f['file']}", error=f["what"], file=f["file"],
                                    line=f["line"]) for f in mo.tamper] + failures
                if by_exit:
                    rules = [TAMPER_GATE]
            elif t.timed_out or t.oom or t.rig_error:
                summary = _why(t, "test command", timeouts.test)
                if (t.timed_out and profile.on(TEST_TIMEOUT) and timeout_rules
                        and timeouts.test < ORIGINAL_TIMEOUTS.test):
                    rules = [TEST_TIMEOUT]
            elif jd.get("tampering"):
                summary = ("the test results stream shows tampering: "
                           + "; ".join(jd["tampering"][:3]))
            elif not jd.get("found"):
                summary = (f"test command exited with code {t.exit_code} and no pytest "
                           f"session reported results; the rig needs pytest for exact test "
                           f"counts")
            elif jd.get("finished", 1) < max(1, jd.get("sessions", 0)) and not bad:
                summary = (f"the pytest session did not finish normally (exit code "
                           f"{t.exit_code}); {jd['tests_passed']}/{jd['tests_run']} "
                           f"passed before it stopped")
            elif jd["tests_run"] == 0:
                summary = f"no tests ran (exit code {t.exit_code})"
            elif bad:
                summary = (f"{len(bad)} of {jd['tests_run']} test(s) failed or errored "
                           f"(exit code {t.exit_code}); first: {bad[0]['id']}")
            else:
                summary = (f"test command exited with code {t.exit_code} although the "
                           f"results show {jd['tests_passed']}/{jd['tests_run']} passed")
            if not rules and by_exit and structured:
                rules = [STRUCTURED_COUNTS]  # exit code 0: the original would have gone on
            fail("test", summary, exit_code=t.exit_code, failures=failures,
                 out=t.stdout_tail, err=t.stderr_tail, rules=rules)

    # start = import smoke check + start + readiness
    sm, st = steps.get("smoke"), steps.get("start")
    if sm is not None and diag is None:
        ready = (st.data.get("ready") if st is not None else None) or {}
        smoke_enforced = profile.on(IMPORT_SMOKE)
        ok = bool((sm.ok or not smoke_enforced) and st is not None and st.ok)
        kw = {"smoke": {"passed": sm.ok, "duration_ms": sm.duration_ms,
                        "modules": sm.data.get("modules", []),
                        "exit_code": sm.exit_code,
                        "failures": sm.data.get("failures", [])}}
        if not smoke_enforced:
            kw["smoke"]["enforced"] = False
        if st is not None:
            kw.update(ready=bool(ready.get("ready")), ready_ms=ready.get("ms") or 0)
            if st.exit_code is not None:
                kw["exit_code"] = st.exit_code
        dur = sm.duration_ms + (st.duration_ms if st else 0)
        checks["start"] = StageCheck(passed=ok, duration_ms=dur, **kw)
        stage_ms["start"] = dur
        if not sm.ok and smoke_enforced:
            fails = sm.data.get("failures", [])
            if sm.timed_out or sm.oom:
                summary = _why(sm, "import smoke check", timeouts.smoke) + (
                    " (does a module block at import time?)" if sm.timed_out else "")
            elif fails:
                summary = f"import smoke check: {fails[0]['module']}: {fails[0]['error']}"
            else:
                summary = f"import smoke check exited with code {sm.exit_code}"
            fail("start", summary, exit_code=sm.exit_code,
                 failures=[Failure(test=f"import:{f['module']}", error=f["error"], file=f.get("file"),
                                   line=f.get("line")) for f in fails],
                 out=sm.stdout_tail, err=sm.stderr_tail, rules=[IMPORT_SMOKE])
        elif st is not None and not st.ok:
            if st.oom:
                summary = _why(st, "start command", timeouts.start)
            else:
                summary = "start: " + str(ready.get("error") or "the service did not become ready")
                if st.exit_code is not None and "code" not in summary:
                    summary += f" (exit code {st.exit_code})"
            fail("start", summary, exit_code=st.exit_code, out=st.stdout_tail, err=st.stderr_tail)

    # health = entry health URL, vectors, contracts
    h = steps.get("health")
    if h is not None and diag is None:
        hd = h.data
        vec = [CheckResult(**_cr(r)) for r in hd.get("vectors", [])]
        con = [CheckResult(**_cr(r)) for r in hd.get("contracts", [])]
        endpoint = hd.get("endpoint")
        kw = {"endpoint": _cr(endpoint) if endpoint else None,
              "process_alive_after": hd.get("process_alive_after")}
        for kind in HIDDEN_KINDS:
            if hd.get(kind):
                kw[kind] = [_cr(r) for r in hd[kind]]
        checks["health"] = StageCheck(passed=bool(h.ok), duration_ms=h.duration_ms,
                                      vectors=vec, contracts=con,
                                      **{k: v for k, v in kw.items() if v is not None})
        stage_ms["health"] = h.duration_ms
        if not h.ok:
            probes = hd.get("vectors", []) + hd.get("contracts", [])
            bad = ([endpoint] if endpoint and not endpoint["passed"] else []) + [
                r for r in probes if not r["passed"]]
            parts = []
            if h.oom:
                parts.append("out of memory: the service was killed by the OOM killer")
            if hd.get("error"):
                parts.append(hd["error"])
            if bad:
                parts.append(f"{len(bad)} check(s) failed; first: {bad[0]['name']}: {bad[0].get('error')}")
            # gating hidden layers: counted, never named or described (the diagnostics go
            # back to the writer on a retry; the report's checks keep the details)
            hidden_bad = [(kind, i) for kind in gate_kinds
                          for i, r in enumerate(hd.get(kind, []), 1) if not r["passed"]]
            for kind in sorted({k for k, _ in hidden_bad}):
                n = sum(1 for k, _ in hidden_bad if k == kind)
                parts.append(f"{n} {kind} check(s) failed (withheld from the writer)")
            rules = []
            if hidden_bad and not h.oom and not hd.get("error") and not bad:
                # only a hidden layer failed: the original had no such layer
                rules = [HIDDEN_RULES[k] for k in sorted({k for k, _ in hidden_bad}) if k in HIDDEN_RULES]
            if not h.oom and not hidden_bad and all(r["passed"] for r in probes):
                endpoint_only = endpoint is not None and not endpoint["passed"] and probes
                died_only = hd.get("error") and (endpoint is None or endpoint["passed"])
                if endpoint_only and not hd.get("error") and profile.on(HEALTH_ENDPOINT):
                    rules = [HEALTH_ENDPOINT]
                elif died_only and profile.on(PROCESS_ALIVE):
                    rules = [PROCESS_ALIVE]
            out, err = h.stdout_tail, h.stderr_tail
            if any(hd.get(kind) for kind in HIDDEN_KINDS):
                # the service's output covers the hidden probes too (it may log their paths
                # and bodies), and there is no trusted boundary in it: the writer gets none
                # of it; people have it in the rig log
                out = err = WITHHELD_TAIL
            fail("health", "health: " + "; ".join(parts or ["failed"]),
                 failures=[Failure(test=f"{r.get('kind', 'endpoint')}:{r['name']}",
                                   error=r.get("error") or "failed") for r in bad]
                          + [Failure(test=f"{kind}:#{i}", error="a hidden probe failed")
                             for kind, i in hidden_bad],
                 out=out, err=err, rules=rules)

    # the rig itself failed: never a pass, reported as such. The rig error wins over
    # anything the artifact seemed to do at or after the stage where the rig broke.
    if ex is not None and ex.rig_error:
        stage = ex.rig_error_stage or next(
            (s for s in STAGES if s not in checks or not checks[s].passed), "health")
        order = list(STAGES)
        if diag is None or order.index(failure) >= order.index(stage):
            for later in order[order.index(stage) + 1:]:
                checks.pop(later, None)
            if stage in checks:
                checks[stage] = checks[stage].model_copy(update={"passed": False})
            else:
                checks[stage] = StageCheck(passed=False, duration_ms=0, rig_error=True)
            diag = None
            stricter.clear()
            fail(stage, f"rig error (not the artifact's verdict): {ex.rig_error}")
    if diag is None:
        # every stage must be present and passed for a viable verdict
        missing = [s for s in STAGES if s not in checks]
        if missing:
            fail(missing[0], f"rig error: stage {missing[0]} did not run and no failure was "
                             f"recorded")
    teardown = steps.get("teardown")
    report_extra: dict[str, Any] = {"backend": backend, "run_id": run_id,
                                    "profile": profile.name, "stricter_rules": stricter,
                                    "lenient_rules": lenient if diag is None else []}
    if weaker:
        report_extra["weaker_isolation"] = True
    if ex is not None:
        report_extra["oom_killed"] = ex.oom_killed
        if ex.rig_error:
            report_extra["rig_error"] = ex.rig_error
        if teardown is not None:
            report_extra["teardown"] = {"passed": teardown.ok,
                                        "remaining": teardown.data.get("remaining")}
    report_extra.update(extra or {})
    status = "viable" if diag is None else "non-viable"
    if diag is not None and ex is not None and ex.oom_killed and "out of memory" not in diag.summary:
        if diag.stage != "manifest":
            diag = diag.model_copy(update={"summary": diag.summary + " (out of memory: the OOM "
                                                                     "killer fired in this run)"})
    report = ViabilityReport(
        generation=generation, status=status, failure_stage=failure, checks=checks,
        fitness={}, completed_at=datetime.now(timezone.utc).isoformat(), diagnostics=diag,
        **report_extra)
    return report, stage_ms


def _cr(r: dict[str, Any]) -> dict[str, Any]:
    out = {"name": str(r.get("name")), "passed": bool(r.get("passed")),
           "status": r.get("status"), "error": r.get("error")}
    for k in ("kind", "ms", "body_excerpt"):
        if r.get(k) is not None:
            out[k] = r[k]
    return out


# --------------------------------------------------------------------------------------
# entry point used by rig.api.run_artifact
# --------------------------------------------------------------------------------------


def _checked_probes(probes: dict[str, list[dict[str, Any]]] | None,
                    gate: tuple[str, ...] | list[str]) -> tuple[dict[str, list[dict[str, Any]]],
                                                                tuple[str, ...]]:
    """Hidden probe layers, validated against the contract schema on the host."""
    from rig.runner import HIDDEN_KINDS
    from rig.schema import Contract

    out: dict[str, list[dict[str, Any]]] = {}
    for kind, items in (probes or {}).items():
        if kind not in HIDDEN_KINDS:
            raise RigSetupError(f"unknown probe layer {kind!r}: {', '.join(HIDDEN_KINDS)}")
        try:
            out[kind] = [Contract.model_validate(p).to_wire() for p in items]
        except ValidationError as exc:
            raise RigSetupError(f"a {kind} probe does not match the contract schema: {exc}") from exc
    bad = [k for k in gate if k not in HIDDEN_KINDS]
    if bad:
        raise RigSetupError(f"unknown probe layer(s) to gate on: {bad}")
    return out, tuple(k for k in gate if k in out)


def _reproduction_request(mo: ManifestOutcome, channel: Any, generation: int,
                          backend: str) -> tuple[Any, str | None]:
    """The run's reproduction request, or (None, why not)."""
    if channel is None:
        return None, None
    if backend != "docker":
        return None, (f"the {backend} backend cannot run reproduction (no way to mount the "
                      f"gateway's socket into its sandbox); use docker")
    if not mo.ok or mo.manifest is None or mo.files is None:
        return None, "the manifest stage failed"
    from rig.api import Reproduce
    from rig.vectors import spec_reproduce

    spec = mo.files.get(mo.manifest.spec_file, b"").decode("utf-8", "replace")
    decl, problems = spec_reproduce(spec)
    if decl is None:
        return None, ("; ".join(problems) if problems else
                      "the spec declares no reproduction (front matter `reproduce`)")
    return Reproduce(channel=channel, path=decl["path"], output_env=decl["output_env"],
                     model_env=decl["model_env"], spec=spec, generation=generation + 1), None


def resolve_timeouts(profile: Profile, explicit: StageTimeouts | None,
                     spec: dict[str, float]) -> tuple[StageTimeouts, str]:
    """(timeouts, where they came from). Explicit timeouts win; else the profile's, with the
    spec's `rig-timeouts` front matter on top where the profile honours it (ours does; the
    original had fixed ones)."""
    if explicit is not None:
        return explicit, "explicit"
    base = profile.timeouts
    if not (profile.spec_timeouts and spec):
        return base, "profile"
    return dataclasses.replace(base, **spec), "spec"


def run(artifact_dir: str | Path, *, backend: str, run_id: str | None, generation: int | None,
        on_line: Callable[[str, str], None] | None, timeouts: StageTimeouts | None,
        limits: RigLimits, labels: dict[str, str], profile: str | None = None,
        prepared: Any = None, probes: dict[str, list[dict[str, Any]]] | None = None,
        gate: tuple[str, ...] | list[str] = (), channel: Any = None,
        docker_url: str | None = None) -> RigResult:
    t0 = time.monotonic()
    prof = get_profile(profile)           # RigSetupError for an unknown profile
    probes, gate = _checked_probes(probes, gate)  # RigSetupError for a malformed probe
    # the original had neither: under its profile they only score
    gate = tuple(k for k in gate if prof.on(HIDDEN_RULES.get(k, "")) or k not in HIDDEN_RULES)
    impl = get_backend(backend, docker_url)  # RigSetupError for an unknown backend
    impl.check_available()               # RigSetupError when the engine is unreachable
    run_id = run_id or uuid.uuid4().hex[:16]
    sink = OutputSink(on_line, limits.log_bytes)
    if impl.weaker_isolation:
        sink.rig(f"[rig] WARNING: backend {backend!r} gives WEAKER isolation than docker: the "
                 f"runner shares the organism's uid, so the verdict can be forged by hostile code")
    mo = manifest_stage(artifact_dir, prof)
    if not mo.ok and prepared is not None:
        prepared.release()  # nothing will run
    timeouts, timeouts_from = resolve_timeouts(prof, timeouts, mo.spec_timeouts)
    if mo.duration_ms > timeouts.manifest * 1000:
        mo.errors.append(f"manifest stage exceeded {timeouts.manifest:g}s")
        mo.ok = False
    gen = generation if generation is not None else (
        mo.manifest.generation if mo.manifest else (mo.raw_generation or 0))
    sink.rig(f"[rig] manifest: {'ok' if mo.ok else 'FAILED: ' + '; '.join(mo.errors[:3])}"
             + ("" if prof is CAMBRIAN else f" (profile {prof.name})"))
    ex: Execution | None = None
    reproduce, repro_note = _reproduction_request(mo, channel, gen, backend)
    if mo.ok:
        m = mo.manifest
        job = Job(run_id=run_id, generation=gen, files=mo.files or {}, modes=mo.modes,
                  entry={"build": m.entry.build, "test": m.entry.test, "start": m.entry.start},
                  port=m.entry.port, health_path=m.entry.health_path, vectors=mo.vectors,
                  contracts=[c.to_wire() for c in (m.contracts or [])],
                  smoke_modules=smoke_modules([f for f in m.files], m.entry.start),
                  timeouts=timeouts, limits=limits, labels=labels, sink=sink,
                  stop_after_test=bool(mo.tamper), rules=prof.rules, prepared=prepared,
                  parallel_start=prof.parallel_start, probes=probes, gate_kinds=gate,
                  reproduce=reproduce)
        try:
            ex = impl.execute(job)
        except RigSetupError:
            raise
        except Exception as exc:  # never raise for the artifact's sake
            ex = Execution(rig_error=f"backend {backend} crashed: {type(exc).__name__}: {exc}")
    extra: dict[str, Any] = {}
    if ex is not None:
        for k in ("missing_packages", "organism_python", "limits_applied", "warnings", "lanes"):
            if ex.extra.get(k):
                extra[k] = ex.extra[k]
    if sink.capped:
        extra["output_capped"] = {"forwarded_bytes": sink.forwarded, "total_bytes": sink.total}
    extra["timeouts"] = {k: getattr(timeouts, k) for k in ("build", "test", "smoke", "start", "health")}
    extra["timeouts_from"] = timeouts_from
    if channel is not None:
        step = ex.steps.get("reproduce") if ex is not None else None
        extra["reproduction"] = (dict(step.data, offered=step.ok) if step is not None else
                                 {"offered": False, "why": repro_note or "not asked: the artifact "
                                  "was not viable"})
    if probes:  # the viability policy this verdict was reached under
        extra["layers"] = {k: {"gate": k in gate, "probes": len(v)} for k, v in probes.items()}
    report, stage_ms = assemble(mo, ex, generation=gen, backend=backend, timeouts=timeouts,
                                weaker=impl.weaker_isolation, run_id=run_id, extra=extra,
                                profile=prof, timeout_rules=timeouts_from != "explicit",
                                gate_kinds=gate)
    all_ms = dict(stage_ms)
    if ex is not None:
        for k, v in ex.stage_ms.items():
            all_ms.setdefault(k, v)
    tok = (mo.manifest.token_usage.input, mo.manifest.token_usage.output) if mo.manifest else None
    report.fitness = compute_fitness(files=mo.files, token_usage=tok, checks=report.checks,
                                     stage_ms=stage_ms)
    total = int((time.monotonic() - t0) * 1000)
    all_ms["total"] = total
    sink.rig(f"[rig] verdict: {report.status}"
             + (f" at {report.failure_stage}: {report.diagnostics.summary}" if report.diagnostics else ""))
    return RigResult(report=report, backend=backend, run_id=run_id,
                     container_id=ex.container_id if ex else None,
                     container_ids=list(ex.container_ids) if ex else [], stage_ms=all_ms,
                     offspring_files=(ex.extra.get("offspring_files") or None) if ex else None,
                     total_ms=total, first_output_ms=ex.first_output_ms if ex else None,
                     oom_killed=bool(ex and ex.oom_killed), rig_error=ex.rig_error if ex else None)
