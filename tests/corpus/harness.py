"""Host-side harness shared by tests/rig/test_corpus.py and tests/rig/test_adversarial.py.

Runs one corpus artifact through ``rig.api.run_artifact`` and compares the result with
the artifact's ``expected.json`` (see ``build.py`` for the keys). Collects live output
with bounded memory (the log-flood artifact prints about a gigabyte), and watches the
host while the rig runs (RSS of this process, free disk, spawn latency).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

CORPUS_DIR = Path(__file__).resolve().parent
RIG_LABEL = "cambrian.rig=1"

# Defaults for the corpus: generous for the normal stages, small enough that the whole
# corpus stays within a few minutes; hang cases override per artifact (expected.json).
DEFAULT_TIMEOUTS = {"manifest": 30, "build": 60, "test": 60, "smoke": 20, "start": 15, "health": 20}


def _load_build():
    spec = importlib.util.spec_from_file_location("cambrian_corpus_build", CORPUS_DIR / "build.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


build = _load_build()


# --- docker helpers (CLI, so they do not depend on the rig's own code) ------------------


def docker_reachable() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        res = subprocess.run(["docker", "info", "-f", "{{.ServerVersion}}"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def labelled_containers() -> list[str]:
    """IDs of this test session's rig containers (running or not): the rig label and the
    session label (tests/conftest.py), never another session's or a user's campaign's."""
    from tests.conftest import SESSION_LABEL_KEY, SESSION_LABEL_VALUE

    res = subprocess.run(
        ["docker", "ps", "-a", "-q", "--no-trunc", "--filter", f"label={RIG_LABEL}",
         "--filter", f"label={SESSION_LABEL_KEY}={SESSION_LABEL_VALUE}"],
        capture_output=True, text=True, timeout=30,
    )
    return [line for line in res.stdout.split() if line]


def run_prefix() -> str:
    """Run ids of this process's corpus runs start with this (labels ``cambrian.run``)."""
    return f"corpus-{os.getpid()}-"


def leftover_containers() -> list[str]:
    """Rig containers of this process's corpus runs (run label ``corpus-<pid>-...``, within
    this session's containers) that still exist."""
    ids = labelled_containers()
    if not ids:
        return []
    res = subprocess.run(
        ["docker", "inspect", "-f", '{{.Id}} {{index .Config.Labels "cambrian.run"}}', *ids],
        capture_output=True, text=True, timeout=30,
    )
    out = []
    for line in res.stdout.splitlines():
        cid, _, run = line.partition(" ")
        if run.startswith(run_prefix()):
            out.append(cid)
    return out


def container_exists(container_id: str) -> bool:
    res = subprocess.run(["docker", "inspect", container_id], capture_output=True, timeout=30)
    return res.returncode == 0


def docker_root_dir() -> str:
    res = subprocess.run(["docker", "info", "-f", "{{.DockerRootDir}}"], capture_output=True, text=True, timeout=20)
    path = res.stdout.strip()
    return path if path and os.path.isdir(path) else "/var/lib/docker" if os.path.isdir("/var/lib/docker") else "/"


def bridge_gateway() -> str:
    res = subprocess.run(
        ["docker", "network", "inspect", "bridge", "-f", "{{range .IPAM.Config}}{{.Gateway}} {{end}}"],
        capture_output=True, text=True, timeout=20,
    )
    parts = res.stdout.split()
    return parts[0] if parts else "172.17.0.1"


# --- live output collector ---------------------------------------------------------------


class LineCollector:
    """``on_line`` callback with bounded memory: counts everything, keeps head and tail."""

    def __init__(self, needles: Iterable[str] = (), keep: int = 200, max_line: int = 4096,
                 watch: Iterable[str] = ()):
        self.needles = [n for n in needles if n]
        self.watch = [w for w in watch if w]
        self.seen: set[str] = set()
        self.keep = keep
        self.max_line = max_line
        self.calls = 0
        self.total_chars = 0
        self.longest = 0
        self.head: list[str] = []
        self.tail: list[str] = []
        self.needle_hits: list[str] = []
        self.bad_calls: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        parts = [a for a in args] + list(kwargs.values())
        text = " ".join(a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a) for a in parts)
        with self._lock:
            self.calls += 1
            self.total_chars += len(text)
            self.longest = max(self.longest, len(text))
            for needle in self.needles:
                if needle in text:
                    self.needle_hits.append(text[:300])
            for w in self.watch:
                if w in text:
                    self.seen.add(w)
            short = text[: self.max_line]
            if len(self.head) < self.keep:
                self.head.append(short)
            else:
                self.tail.append(short)
                if len(self.tail) > self.keep:
                    del self.tail[0]

    def text(self) -> str:
        return "\n".join(self.head + self.tail)


# --- host monitor -------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class HostMonitor:
    """Samples this process's RSS, free disk and /bin/true spawn latency while running."""

    disk_paths: tuple[str, ...] = ("/",)
    interval: float = 0.2
    spawn_probe: bool = False
    rss_start: int = 0
    rss_peak: int = 0
    disk_start: dict[str, int] = field(default_factory=dict)
    disk_min: dict[str, int] = field(default_factory=dict)
    disk_end: dict[str, int] = field(default_factory=dict)
    spawn_max: float = 0.0
    spawn_failures: list[str] = field(default_factory=list)
    loop_lag_max: float = 0.0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="corpus-host-monitor", daemon=True)

    def _free(self) -> dict[str, int]:
        return {p: shutil.disk_usage(p).free for p in self.disk_paths}

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            self.rss_peak = max(self.rss_peak, _rss_bytes())
            for p, free in self._free().items():
                self.disk_min[p] = min(self.disk_min.get(p, free), free)
            if self.spawn_probe:
                s0 = time.monotonic()
                try:
                    subprocess.run(["/bin/true"], timeout=30, check=True)
                except Exception as exc:  # noqa: BLE001 - recorded, asserted by the test
                    self.spawn_failures.append(repr(exc))
                self.spawn_max = max(self.spawn_max, time.monotonic() - s0)
            self._stop.wait(self.interval)
            lag = time.monotonic() - t0 - self.interval
            self.loop_lag_max = max(self.loop_lag_max, lag)

    def __enter__(self) -> "HostMonitor":
        self.rss_start = self.rss_peak = _rss_bytes()
        self.disk_start = self._free()
        self.disk_min = dict(self.disk_start)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self.disk_end = self._free()

    def disk_drop(self, path: str) -> tuple[int, int]:
        """(largest drop during the run, drop at the end) in bytes for ``path``."""
        return self.disk_start[path] - self.disk_min[path], self.disk_start[path] - self.disk_end[path]


# --- running the rig --------------------------------------------------------------------


def _construct(cls: Any, values: dict[str, Any]) -> Any:
    """Build StageTimeouts/RigLimits from the keys the class actually accepts."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}
    accepts_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    fields = getattr(cls, "model_fields", None) or getattr(cls, "__dataclass_fields__", None) or params
    kwargs = {k: v for k, v in values.items() if accepts_all or k in fields}
    return cls(**kwargs)


@dataclass
class Run:
    name: str
    expected: dict[str, Any]
    result: Any
    lines: LineCollector
    elapsed: float
    artifact_dir: Path
    retries: list = field(default_factory=list)

    @property
    def report(self) -> Any:
        return self.result.report

    def report_json(self) -> str:
        rep = self.report
        if rep is None:
            return ""
        return rep.to_json() if hasattr(rep, "to_json") else json.dumps(rep, default=str)

    def verdict(self) -> dict[str, Any]:
        """A compact, printable verdict (for the results log and failure messages)."""
        rep, res = self.report, self.result
        out: dict[str, Any] = {
            "artifact": self.name,
            "backend": getattr(res, "backend", None),
            "elapsed_s": round(self.elapsed, 1),
            "rig_error": getattr(res, "rig_error", None),
            "oom_killed": getattr(res, "oom_killed", None),
        }
        if self.retries:
            out["retried_after_outside_removal"] = len(self.retries)
        if getattr(res, "stage_ms", None):
            out["stage_ms"] = res.stage_ms
        if rep is None:
            out["status"] = None
            return out
        out["status"] = rep.status
        out["failure_stage"] = rep.failure_stage
        test = rep.checks.get("test")
        if test is not None:
            out["tests_run"], out["tests_passed"] = test.tests_run, test.tests_passed
        health = rep.checks.get("health")
        if health is not None and health.vectors:
            out["vectors"] = {v.name: v.passed for v in health.vectors}
        if rep.diagnostics is not None:
            d = rep.diagnostics
            out["summary"] = d.summary[:300]
            out["exit_code"] = d.exit_code
            out["failures"] = [
                {"test": f.test[:120], "file": f.file, "line": f.line, "error": (f.error or "")[:120]}
                for f in d.failures[:5]
            ]
            out["n_failures"] = len(d.failures)
        return out


def run_artifact(
    name: str,
    workdir: Path,
    *,
    backend: str = "docker",
    extra_files: dict[str, bytes] | None = None,
    needles: Iterable[str] = (),
    watch: Iterable[str] = (),
    timeouts: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
) -> Run:
    from rig.api import RigLimits, StageTimeouts
    from rig.api import run_artifact as rig_run

    expected = build.load_expected(name)
    artifact_dir = build.materialise(name, workdir / name, extra_files=extra_files)
    t = {**DEFAULT_TIMEOUTS, **(expected.get("timeouts") or {}), **(timeouts or {})}
    lim = {**(expected.get("limits") or {}), **(limits or {})}
    collector = LineCollector(needles, watch=watch)
    run_id = f"{run_prefix()}{name}-{int(time.time() * 1000) % 10**8}"
    kwargs: dict[str, Any] = {"backend": backend, "run_id": run_id, "on_line": collector,
                              "timeouts": _construct(StageTimeouts, t)}
    if lim:
        kwargs["limits"] = _construct(RigLimits, lim)
    retries = []
    while True:
        t0 = time.monotonic()
        result = rig_run(artifact_dir, **kwargs)
        elapsed = time.monotonic() - t0
        # On a shared Docker host another process's reconcile may remove our container
        # mid-run; the rig reports that as a rig_error. Re-run (twice at most) only then.
        if not _removed_from_outside(result) or len(retries) >= 2:
            break
        retries.append(result.rig_error)
        collector = LineCollector(needles, watch=watch)
        kwargs["on_line"] = collector
        kwargs["run_id"] = f"{run_id}-retry{len(retries)}"
    run = Run(name, expected, result, collector, elapsed, artifact_dir)
    run.retries = retries
    record(run)
    return run


_OUTSIDE_MARKERS = ("killed from outside", "No such exec instance", "No such container",
                    "is not running", "no longer running")


def _removed_from_outside(result: Any) -> bool:
    err = getattr(result, "rig_error", None) or ""
    return any(m in err for m in _OUTSIDE_MARKERS)


def record(run: Run) -> None:
    """Append the verdict to $CORPUS_RESULTS (JSON lines) when set, for the summary table."""
    path = os.environ.get("CORPUS_RESULTS")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(run.verdict(), default=str) + "\n")


# --- comparing with expected.json -----------------------------------------------------


def _ci_contains(haystack: str, needle: str) -> bool:
    return needle.lower() in (haystack or "").lower()


def mismatches(run: Run, expected: dict[str, Any] | None = None) -> list[str]:
    """Every way the verdict differs from ``expected`` (empty list: as expected)."""
    exp = expected if expected is not None else run.expected
    rep, res = run.report, run.result
    errs: list[str] = []
    if rep is None:
        return [f"no report at all (rig_error={getattr(res, 'rig_error', None)!r})"]
    if rep.status != exp["status"]:
        errs.append(f"status {rep.status!r}, expected {exp['status']!r}")
    if rep.failure_stage != exp["failure_stage"]:
        errs.append(f"failure_stage {rep.failure_stage!r}, expected {exp['failure_stage']!r}")
    if getattr(res, "rig_error", None) and not exp.get("rig_error_allowed"):
        errs.append(f"unexpected rig_error {res.rig_error!r}")
    test = rep.checks.get("test")
    for key in ("tests_run", "tests_passed"):
        if key in exp:
            got = getattr(test, key, None) if test is not None else None
            if got != exp[key]:
                errs.append(f"{key} {got!r}, expected {exp[key]!r}")
    if "oom_killed" in exp and bool(getattr(res, "oom_killed", False)) != exp["oom_killed"]:
        errs.append(f"oom_killed {getattr(res, 'oom_killed', None)!r}, expected {exp['oom_killed']!r}")

    diag = rep.diagnostics
    if exp["status"] == "non-viable":
        if diag is None:
            errs.append("non-viable without diagnostics")
            return errs
        summary = diag.summary or ""
        for s in exp.get("summary_contains") or ():
            if not _ci_contains(summary, s):
                errs.append(f"summary lacks {s!r}: {summary[:200]!r}")
        anyof = exp.get("summary_any")
        if anyof and not any(_ci_contains(summary, s) for s in anyof):
            errs.append(f"summary has none of {anyof}: {summary[:200]!r}")
        if "exit_code" in exp and diag.exit_code != exp["exit_code"]:
            errs.append(f"exit_code {diag.exit_code!r}, expected {exp['exit_code']!r}")
        if "failures_count" in exp and len(diag.failures) != exp["failures_count"]:
            errs.append(f"{len(diag.failures)} failures, expected {exp['failures_count']}: "
                        f"{[f.test for f in diag.failures][:5]}")
        want = exp.get("failure")
        if want and not any(_failure_matches(f, want) for f in diag.failures):
            errs.append(f"no failure matching {want}: "
                        f"{[(f.test, f.file, f.line) for f in diag.failures][:5]}")
    vname = exp.get("vector_failed")
    if vname:
        health = rep.checks.get("health")
        vectors = {v.name: v for v in (health.vectors or [])} if health is not None else {}
        if vname not in vectors:
            errs.append(f"vector {vname!r} not reported (got {sorted(vectors)})")
        elif vectors[vname].passed:
            errs.append(f"vector {vname!r} reported as passed")
    limit = exp.get("max_seconds", 120)
    if run.elapsed > limit:
        errs.append(f"took {run.elapsed:.0f}s, bound {limit}s")
    return errs


def _failure_matches(f: Any, want: dict[str, Any]) -> bool:
    if "test" in want and want["test"] not in (f.test or ""):
        return False
    if "file" in want:
        if f.file is None:
            # A failure without a file must at least name it in its id.
            if Path(want["file"]).stem not in (f.test or ""):
                return False
        elif not (f.file.replace("\\", "/").endswith(want["file"])):
            return False
    if "lines" in want and f.line not in want["lines"]:
        return False
    return True


def assert_as_expected(run: Run, expected: dict[str, Any] | None = None) -> None:
    base = expected if expected is not None else run.expected
    errs = mismatches(run, base)
    for alt in base.get("alternatives") or ():
        # An alternative verdict replaces the verdict keys wholesale.
        verdict_keys = {"status", "failure_stage", "tests_run", "tests_passed", "oom_killed",
                        "exit_code", "summary_contains", "summary_any", "failure",
                        "failures_count", "vector_failed"}
        merged = {k: v for k, v in base.items() if k not in verdict_keys}
        merged.update(alt)
        if not mismatches(run, merged):
            return
    assert not errs, f"{run.name}: " + "; ".join(errs) + f"\nverdict: {json.dumps(run.verdict(), indent=1, default=str)}"


def assert_container_gone(run: Run) -> None:
    from rig.api import wait_removed

    ids = list(getattr(run.result, "container_ids", None) or [])
    cid = getattr(run.result, "container_id", None)
    if cid and cid not in ids:
        ids.append(cid)
    # removal runs after the verdict, off its critical path: wait for it, bounded
    assert wait_removed(60), f"{run.name}: container removal still pending after 60 s"
    for cid in ids:
        assert not container_exists(cid), f"{run.name}: container {cid[:12]} still exists after the run"
