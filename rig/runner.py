#!/usr/bin/env python3
"""Cambrian rig runner: the trusted helper that runs next to the organism.

STANDARD LIBRARY ONLY and self-contained: the docker backend ships this file's
source to the container per run (as the argument of ``python3 -I -S -c``) and runs
it as the rig uid (10002), out of the organism's reach. The bwrap and none backends
run it as a file, in ``run`` (pipeline) mode, inside the same sandbox as the organism.

Subcommands (each prints exactly one JSON document on stdout):

    gate    ARGS_JSON   syntax gate: every listed .py file parses (ast, never executed)
    collect ARGS_JSON   install the results plugin, read its records until stdin closes
    check   ARGS_JSON   syntax gate, then (if clean) readiness + probes: one exec
    junit   ARGS_JSON   parse a pytest junit XML report (legacy/diagnostic reader)
    health  ARGS_JSON   readiness (port open AND start process alive), then the entry
                        health URL, the spec vectors and the manifest contracts
    run                 pipeline mode (bwrap/none): plan JSON line + tar on stdin; streams
                        JSON-lines events on stdout: {"t":"line"|"step"|"rig"|"done", ...}

The host assembles the verdict; this file only produces per-step facts.
"""

from __future__ import annotations

import ast
import io
import json
import os
import signal
import socket
import sys
import threading
import time

RUNNER_VERSION = 1
TAIL_BYTES = 4096
MAX_BODY_BYTES = 1_000_000
MAX_JUNIT_BYTES = 32_000_000
MAX_RESULTS = 2000
MAX_MESSAGE = 2000
ORGANISM_UID = 10001
RIG_UID = 10002

# Verdict rules where Cambrian is deliberately stricter than the original project, named so
# that a verdict which differs says why (rig/profiles.py lists and documents all of them).
# These are the ones that steer steps run here; a plan without "rules" applies them all.
SYNTAX_GATE = "syntax_gate"
STRUCTURED_COUNTS = "structured_test_counts"
IMPORT_SMOKE = "import_smoke"
PROCESS_ALIVE = "process_alive"
HEALTH_ENDPOINT = "health_endpoint"
DEFAULT_RULES = (SYNTAX_GATE, STRUCTURED_COUNTS, IMPORT_SMOKE, PROCESS_ALIVE, HEALTH_ENDPOINT)

# --------------------------------------------------------------------------------------
# expectations: $GENERATION, exact JSON equality, recursive subset, keys
# --------------------------------------------------------------------------------------

GENERATION_TOKEN = "$GENERATION"


def substitute_generation(value, generation):
    """Replace every string value exactly equal to "$GENERATION" by the generation number."""
    if isinstance(value, str):
        return generation if value == GENERATION_TOKEN else value
    if isinstance(value, list):
        return [substitute_generation(v, generation) for v in value]
    if isinstance(value, dict):
        return {k: substitute_generation(v, generation) for k, v in value.items()}
    return value


def substitute_path(path, generation):
    """In a request path "$GENERATION" is replaced as a substring (e.g. /gen/$GENERATION)."""
    return path.replace(GENERATION_TOKEN, str(generation))


def _is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def json_equal(expected, actual):
    """Exact JSON equality: bools are not numbers, 1 == 1.0, dict order is irrelevant."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if _is_num(expected) or _is_num(actual):
        return _is_num(expected) and _is_num(actual) and expected == actual
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, str) or isinstance(actual, str):
        return isinstance(expected, str) and isinstance(actual, str) and expected == actual
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(json_equal(e, a) for e, a in zip(expected, actual)))
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and set(expected) == set(actual)
                and all(json_equal(expected[k], actual[k]) for k in expected))
    return False


def subset_mismatch(expected, actual, where="$"):
    """Recursive subset match. Returns None on match, else a description of the first
    mismatch. Dicts: every expected key present and matching (extra keys allowed).
    Lists: same length, element-wise subset. Scalars: exact JSON equality."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where}: expected an object, got {_type_name(actual)}"
        for key, sub in expected.items():
            if key not in actual:
                return f"{where}: missing key {key!r}"
            miss = subset_mismatch(sub, actual[key], f"{where}.{key}")
            if miss:
                return miss
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{where}: expected an array, got {_type_name(actual)}"
        if len(expected) != len(actual):
            return f"{where}: expected {len(expected)} elements, got {len(actual)}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            miss = subset_mismatch(e, a, f"{where}[{i}]")
            if miss:
                return miss
        return None
    if not json_equal(expected, actual):
        return f"{where}: expected {_short(expected)}, got {_short(actual)}"
    return None


def subset_match(expected, actual):
    return subset_mismatch(expected, actual) is None


def _type_name(x):
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "boolean"
    if _is_num(x):
        return "number"
    if isinstance(x, str):
        return "string"
    if isinstance(x, list):
        return "array"
    if isinstance(x, dict):
        return "object"
    return type(x).__name__


def _short(x, limit=120):
    try:
        s = json.dumps(x, sort_keys=True)
    except (TypeError, ValueError):
        s = repr(x)
    return s if len(s) <= limit else s[: limit - 3] + "..."


_MISSING = object()


def check_expectation(expect, status, body_bytes, generation):
    """Compare one HTTP response with an expectation dict ({status, body?, body_contains?,
    body_has_keys?}). Returns (passed, error-or-None)."""
    expect = substitute_generation(expect, generation)
    if status != expect.get("status"):
        return False, f"status {status}, expected {expect.get('status')}"
    wants_body = any(expect.get(k) is not None for k in ("body", "body_contains", "body_has_keys"))
    if not wants_body:
        return True, None
    try:
        parsed = json.loads(body_bytes.decode("utf-8")) if body_bytes else _MISSING
    except (UnicodeDecodeError, ValueError, RecursionError):
        parsed = _MISSING
    if parsed is _MISSING:
        return False, "response body is not JSON: " + _excerpt(body_bytes)
    if expect.get("body") is not None and not json_equal(expect["body"], parsed):
        return False, f"body {_short(parsed)} != expected {_short(expect['body'])}"
    if expect.get("body_contains") is not None:
        miss = subset_mismatch(expect["body_contains"], parsed)
        if miss:
            return False, "body_contains: " + miss
    if expect.get("body_has_keys") is not None:
        if not isinstance(parsed, dict):
            return False, f"body_has_keys: body is {_type_name(parsed)}, not an object"
        missing = [k for k in expect["body_has_keys"] if k not in parsed]
        if missing:
            return False, f"body_has_keys: missing {missing}"
    return True, None


def _excerpt(data, limit=200):
    text = data[:limit].decode("utf-8", "replace")
    return repr(text) + ("..." if len(data) > limit else "")


# --------------------------------------------------------------------------------------
# syntax gate (parse only; nothing is executed)
# --------------------------------------------------------------------------------------


def syntax_gate(root, files):
    """Parse every listed .py file under root with ast (compile-only, no execution)."""
    errors = []
    checked = 0
    for rel in sorted(files):
        if not rel.endswith(".py"):
            continue
        full = os.path.join(root, rel)
        try:
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as fh:
                if not _is_regular(fh.fileno()):
                    raise OSError("not a regular file")
                source = fh.read(MAX_JUNIT_BYTES)
        except OSError as exc:
            errors.append({"file": rel, "line": None, "error": f"unreadable: {exc.strerror or exc}"})
            continue
        checked += 1
        try:
            ast.parse(source, filename=rel)
        except SyntaxError as exc:
            errors.append({"file": rel, "line": exc.lineno,
                           "error": f"{type(exc).__name__}: {exc.msg}"})
        except (ValueError, RecursionError, MemoryError) as exc:
            errors.append({"file": rel, "line": None, "error": f"{type(exc).__name__}: {exc}"})
    return {"ok": not errors, "files_checked": checked, "errors": errors}


def _is_regular(fd):
    import stat

    return stat.S_ISREG(os.fstat(fd).st_mode)


# --------------------------------------------------------------------------------------
# junit XML (pytest --junitxml): the structured source of test counts
# --------------------------------------------------------------------------------------


def parse_junit(path, workspace="/workspace"):
    """Exact counts from a pytest junit XML report.

    One <testcase> is one test. Outcome: "failed" if it has <failure>, "error" if it has
    <error> (a collection error is one testcase with one <error>: it counts as ONE test
    run, not passed), "skipped" if it has <skipped> (not counted as run), else "passed".
    tests_run = passed + failed + error; tests_passed = passed. Console text is never read.
    """
    import xml.etree.ElementTree as ET

    out = {"found": False, "tests_run": 0, "tests_passed": 0, "failed": 0, "errors": 0,
           "skipped": 0, "results": [], "truncated": False, "parse_error": None}
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        out["parse_error"] = f"no junit report at {path}: {exc.strerror or exc}"
        return out
    with os.fdopen(fd, "rb") as fh:
        if not _is_regular(fh.fileno()):
            out["parse_error"] = "junit report is not a regular file"
            return out
        data = fh.read(MAX_JUNIT_BYTES + 1)
    if len(data) > MAX_JUNIT_BYTES:
        out["parse_error"] = "junit report too large"
        return out
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        out["parse_error"] = "junit report contains a DTD/entity declaration (refused)"
        return out
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, ValueError, RecursionError) as exc:
        out["parse_error"] = f"junit report is not valid XML: {exc}"
        return out
    out["found"] = True
    for case in root.iter("testcase"):
        classname = case.get("classname") or ""
        name = case.get("name") or ""
        test_id = f"{classname}::{name}" if classname else name
        failure = case.find("failure")
        error = case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            outcome, node = "failed", failure
        elif error is not None:
            outcome, node = "error", error
        elif skipped is not None:
            outcome, node = "skipped", skipped
        else:
            outcome, node = "passed", None
        key = {"passed": "tests_passed", "failed": "failed", "error": "errors",
               "skipped": "skipped"}[outcome]
        out[key] += 1
        if outcome != "skipped":
            out["tests_run"] += 1
        if len(out["results"]) >= MAX_RESULTS:
            out["truncated"] = True
            continue
        message = None
        file, line = case.get("file"), _int(case.get("line"))
        if line is not None:
            line += 1  # pytest writes 0-based line numbers
        if node is not None:
            message = (node.get("message") or "").strip()
            text = node.text or ""
            if not message:
                message = text.strip().splitlines()[-1] if text.strip() else outcome
            loc = _location_from_trace(text, workspace)
            if loc:
                file, line = loc
        out["results"].append({"id": test_id, "outcome": outcome,
                               "message": (message or "")[:MAX_MESSAGE] or None,
                               "file": file, "line": line})
    return out


def _int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _location_from_trace(text, workspace):
    """Last 'path:line:' frame of a pytest long traceback that lies in the artifact."""
    best = None
    prefix = workspace.rstrip("/") + "/"
    for raw in text.splitlines():
        s = raw.strip()
        if s.startswith("File \""):  # python-style traceback
            try:
                path = s.split('"', 2)[1]
                lineno = int(s.split("line ", 1)[1].split(",", 1)[0])
            except (IndexError, ValueError):
                continue
        else:
            parts = s.split(":")
            if len(parts) < 3 or not parts[1].isdigit():
                continue
            path, lineno = parts[0], int(parts[1])
        if not path.endswith(".py"):
            continue
        if path.startswith(prefix):
            path = path[len(prefix):]
        if path.startswith("/") or "site-packages" in path:
            continue
        best = (path, lineno)
    return best


# --------------------------------------------------------------------------------------
# streamed test results: the structured source of test counts
# --------------------------------------------------------------------------------------
#
# A tiny pytest plugin (PLUGIN_SOURCE) sends one JSON line per test report into a FIFO
# that only trusted code reads. In docker it is installed by the collector (uid 10002)
# into tmpfs mounts inside the organism venv's site-packages and auto-loaded through a
# ``pytest11`` entry point, so a test command that sets PYTHONPATH or PYTEST_ADDOPTS
# cannot unload it. Records flow while the tests run: a conftest that forges report
# files, prints fake summaries or forces pytest's exit status to 0 changes nothing.

PLUGIN_MODULE = "_cambrian_rig"
STAGE_ENV = "CAMBRIAN_RIG_STAGE"
MAX_RECORD = 3500  # < PIPE_BUF (4096): one write per record is atomic

PLUGIN_SOURCE = r"""
import json, os, fcntl
_DIR = os.path.dirname(os.path.abspath(__file__))
def _target():
    if os.environ.get("CAMBRIAN_RIG_STAGE") != "test":
        return None
    try:
        with open(os.path.join(_DIR, "target")) as fh:
            return fh.read().strip() or None
    except OSError:
        return os.environ.get("CAMBRIAN_RIG_RESULTS")
def _send(rec):
    path = _target()
    if not path:
        return
    rec["pid"] = os.getpid()
    data = json.dumps(rec, default=str)
    for key, size in (("trace", 800), ("message", 800), ("trace", 0), ("message", 200),
                      ("nodeid", 1500)):
        if len(data) <= 3500:
            break
        if isinstance(rec.get(key), str):
            rec[key] = rec[key][-size:] if key == "trace" else rec[key][:size]
        data = json.dumps(rec, default=str)
    if len(data) > 3500:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        os.write(fd, (data + "\n").encode("utf-8", "replace"))
    except OSError:
        pass
    finally:
        os.close(fd)
def _message(report):
    lr = report.longrepr
    if lr is None:
        return None
    if isinstance(lr, tuple) and len(lr) == 3:
        return str(lr[2])
    crash = getattr(lr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return str(crash.message)
    text = str(lr).strip().splitlines()
    return text[-1] if text else None
def _crash(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return [str(crash.path), crash.lineno]
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        return [str(lr[0]), lr[1]]
    return None
def pytest_sessionstart(session):
    _send({"t": "start"})
def pytest_collectreport(report):
    if report.failed:
        _send({"t": "collect", "nodeid": report.nodeid, "outcome": "failed",
               "message": _message(report), "crash": _crash(report),
               "trace": str(report.longrepr)[-1500:]})
def pytest_runtest_logreport(report):
    rec = {"t": "report", "nodeid": report.nodeid, "when": report.when,
           "outcome": report.outcome, "xfail": hasattr(report, "wasxfail"),
           "location": [report.location[0], report.location[1]] if report.location else None}
    if not report.passed:
        rec["message"] = _message(report)
        rec["crash"] = _crash(report)
    _send(rec)
def pytest_sessionfinish(session, exitstatus):
    _send({"t": "end", "exitstatus": int(exitstatus)})
"""

PLUGIN_METADATA = "Metadata-Version: 2.1\nName: cambrian-rig-results\nVersion: 1\n"
PLUGIN_ENTRY_POINTS = "[pytest11]\n_cambrian_rig = _cambrian_rig\n"


def aggregate_results(records, workspace="/workspace"):
    """Exact counts from the plugin's records. One test per nodeid (and one per failed
    collector: a collection error counts as ONE test run, not passed). Outcome: failed if
    its call failed, error if setup/teardown or collection failed, skipped if skipped
    (xfail included; not counted as run), else passed."""
    tests = {}
    order = []
    starts = ends = 0
    exitstatus = None
    tamper = []
    open_sessions = {}   # pid -> session number
    seen = set()         # (pid, session, nodeid, phase)
    sessions_by_pid = {}

    def flag(msg):
        if len(tamper) < 20:
            tamper.append(msg)

    for rec in records:
        kind = rec.get("t")
        pid = rec.get("pid")
        if not isinstance(pid, int):
            flag(f"a {kind!r} record without a process id")
            continue
        if kind == "start":
            if pid in open_sessions:
                flag(f"a second session start from pid {pid} before its session ended")
                continue
            starts += 1
            sessions_by_pid[pid] = sessions_by_pid.get(pid, 0) + 1
            open_sessions[pid] = sessions_by_pid[pid]
            continue
        if kind == "end":
            if pid not in open_sessions:
                flag(f"a session end from pid {pid} without a session start")
                continue
            del open_sessions[pid]
            ends += 1
            if isinstance(rec.get("exitstatus"), int):
                exitstatus = rec["exitstatus"] if exitstatus is None else max(exitstatus, rec["exitstatus"])
            continue
        if kind in ("report", "collect"):
            if pid not in open_sessions:
                flag(f"a {kind} record for {str(rec.get('nodeid'))[:200]!r} outside any pytest "
                     f"session")
                continue
            key = (pid, open_sessions[pid], rec.get("nodeid"),
                   "collect" if kind == "collect" else rec.get("when"))
            if key in seen:
                flag(f"a second {key[3]} record for {str(rec.get('nodeid'))[:200]!r}")
                continue
            seen.add(key)
        nodeid = rec.get("nodeid")
        if kind not in ("report", "collect") or not isinstance(nodeid, str):
            continue
        t = tests.get(nodeid)
        if t is None:
            t = tests[nodeid] = {"id": nodeid, "outcome": None, "message": None, "file": None,
                                 "line": None, "phases": {}}
            order.append(nodeid)
        when = "collect" if kind == "collect" else str(rec.get("when"))
        outcome = str(rec.get("outcome"))
        # a phase's outcome only ever gets worse (failed > skipped > passed)
        rank = {"passed": 0, "skipped": 1, "failed": 2}
        if rank.get(outcome, 2) >= rank.get(t["phases"].get(when), -1):
            t["phases"][when] = outcome if outcome in rank else "failed"
        if outcome in ("failed", "skipped") and (
                t["message"] is None or (outcome == "failed" and when == "call")):
            # the call-phase failure wins; otherwise the first report that did not pass
            t["message"] = (str(rec.get("message"))[:MAX_MESSAGE]
                            if rec.get("message") is not None else outcome)
            loc = _record_location(rec, workspace)
            if loc:
                t["file"], t["line"] = loc
        if t["file"] is None and kind == "collect":
            loc = _location_from_trace(str(rec.get("trace") or ""), workspace)
            if loc:
                t["file"], t["line"] = loc
            elif nodeid.split("::")[0].endswith(".py"):
                t["file"] = nodeid.split("::")[0]
        if t["file"] is None:
            loc = rec.get("location")
            if isinstance(loc, list) and len(loc) == 2 and isinstance(loc[0], str):
                t["file"] = loc[0]
                t["line"] = loc[1] + 1 if isinstance(loc[1], int) else None
        if rec.get("xfail"):
            t["xfail"] = True
    out = {"found": bool(starts or tests), "sessions": starts, "finished": ends,
           "exitstatus": exitstatus, "tampering": tamper, "tests_run": 0, "tests_passed": 0, "failed": 0,
           "errors": 0, "skipped": 0, "results": [], "truncated": False, "source": "plugin"}
    for nodeid in order:
        t = tests[nodeid]
        ph = t.pop("phases")
        if ph.get("collect") == "failed":
            outcome = "error"
        elif ph.get("call") == "failed":
            outcome = "failed"
        elif "failed" in (ph.get("setup"), ph.get("teardown")):
            outcome = "error"
        elif "skipped" in (ph.get("setup"), ph.get("call")):
            outcome = "skipped"
        elif ph.get("call") == "passed":
            outcome = "passed"
        else:
            outcome = "error"  # a test that never reported its call phase
            t["message"] = t["message"] or "the test did not complete (no call phase reported)"
        t["outcome"] = outcome
        key = {"passed": "tests_passed", "failed": "failed", "error": "errors",
               "skipped": "skipped"}[outcome]
        out[key] += 1
        if outcome != "skipped":
            out["tests_run"] += 1
        if outcome == "passed":
            t["message"] = None
        if len(out["results"]) < MAX_RESULTS:
            out["results"].append(t)
        else:
            out["truncated"] = True
    return out


def _record_location(rec, workspace):
    crash = rec.get("crash")
    if not (isinstance(crash, list) and len(crash) == 2 and isinstance(crash[0], str)):
        return None
    path, line = crash  # reprcrash and skip locations are 1-based
    prefix = workspace.rstrip("/") + "/"
    if path.startswith(prefix):
        path = path[len(prefix):]
    if path.startswith("/") or "site-packages" in path:
        return None
    return path, line if isinstance(line, int) else None


def install_plugin(pkg_dir, dist_dir, fifo):
    """Write the plugin package (+ its entry-point metadata when dist_dir is given)."""
    os.makedirs(pkg_dir, exist_ok=True)
    with open(os.path.join(pkg_dir, "__init__.py"), "w") as fh:
        fh.write(PLUGIN_SOURCE)
    with open(os.path.join(pkg_dir, "target"), "w") as fh:
        fh.write(fifo + "\n")
    for name in ("__init__.py", "target"):
        os.chmod(os.path.join(pkg_dir, name), 0o644)
    if dist_dir:
        os.makedirs(dist_dir, exist_ok=True)
        for name, text in (("METADATA", PLUGIN_METADATA), ("entry_points.txt", PLUGIN_ENTRY_POINTS),
                           ("top_level.txt", PLUGIN_MODULE + "\n")):
            with open(os.path.join(dist_dir, name), "w") as fh:
                fh.write(text)
            os.chmod(os.path.join(dist_dir, name), 0o644)


def make_fifo(parent):
    """A FIFO with a random name inside a fresh 0711 directory (not listable)."""
    secret_dir = os.path.join(parent, os.urandom(12).hex())
    os.mkdir(secret_dir, 0o711)
    os.chmod(secret_dir, 0o711)
    fifo = os.path.join(secret_dir, os.urandom(12).hex())
    os.mkfifo(fifo, 0o622)
    os.chmod(fifo, 0o622)
    return fifo


class ResultReader:
    """Reads plugin records from a FIFO (held open O_RDWR, so never EOF) until stopped."""

    MAX_BYTES = 64_000_000

    def __init__(self, fifo):
        self.fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        self.buf = b""
        self.records = []
        self.bad = 0
        self.bytes = 0

    def pump(self):
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                return
            self.bytes += len(chunk)
            if self.bytes > self.MAX_BYTES:
                self.bad += 1
                continue
            self.buf += chunk
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                try:
                    rec = json.loads(line.decode("utf-8", "replace"))
                except ValueError:
                    self.bad += 1
                    continue
                if isinstance(rec, dict) and len(self.records) < 200_000:
                    self.records.append(rec)
                else:
                    self.bad += 1

    def wait(self, stop_fd=None, deadline=None, stop_flag=None):
        import select

        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        if stop_fd is not None:
            poller.register(stop_fd, select.POLLIN | select.POLLHUP)
        while True:
            if stop_flag is not None and stop_flag.is_set():
                break
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            timeout = 200 if left is None else max(1, min(200, int(left * 1000)))
            for fd, ev in poller.poll(timeout):
                if fd == self.fd:
                    self.pump()
                elif fd == stop_fd:
                    try:
                        data = os.read(stop_fd, 4096)
                    except OSError:
                        data = b""
                    if not data:
                        self.pump()
                        return
        self.pump()

    def result(self, workspace):
        out = aggregate_results(self.records, workspace)
        out["bad_records"] = self.bad
        return out


def forward_main(args, stdin=None):
    """The LLM gateway's last metre inside the container: serve ``127.0.0.1:port`` and
    forward every connection to the gateway's unix socket (mounted read-only by the rig),
    until the host closes this exec's stdin or ``timeout`` passes. The organism reaches its
    model only through this (ANTHROPIC_BASE_URL); the container keeps no network."""
    import selectors

    target, port = args["socket"], int(args["port"])
    deadline = time.monotonic() + float(args.get("timeout", 900))
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(16)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    stop = threading.Event()
    served = {"connections": 0, "refused": 0}

    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def handle(client):
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            up.connect(target)
        except OSError:
            served["refused"] += 1
            client.close()
            return
        served["connections"] += 1
        t = threading.Thread(target=pump, args=(up, client), daemon=True)
        t.start()
        pump(client, up)
        t.join()
        client.close()
        up.close()

    def watch_stdin():
        try:
            while (stdin or sys.stdin.buffer).read(4096):
                pass
        except OSError:
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    sel = selectors.DefaultSelector()
    sel.register(server, selectors.EVENT_READ)
    while not stop.is_set() and time.monotonic() < deadline:
        if sel.select(timeout=0.2):
            client, _ = server.accept()
            threading.Thread(target=handle, args=(client,), daemon=True).start()
    server.close()
    return served


def reproduce_main(args):
    """Ask the running offspring to do its job: POST its generate path with its own spec
    and the next generation number (trusted code, the rig uid; the organism answers, its
    model calls go through the gateway). The answer is bounded and returned as facts."""
    t0 = time.monotonic()
    status, payload, err = http_request("127.0.0.1", int(args["port"]), "POST", args["path"],
                                        {"spec": args["spec"], "generation": int(args["generation"])},
                                        float(args["timeout"]))
    body = None
    if payload:
        try:
            body = json.loads(payload.decode("utf-8"))
        except ValueError:
            body = None
    return {"status": status, "error": err, "ms": _ms(t0),
            "body": body if isinstance(body, dict) else None,
            "body_excerpt": None if isinstance(body, dict) else _excerpt(payload or b"", 500)}


def collect_main(args):
    """Docker: install the plugin into its tmpfs mounts, create the FIFO, say READY, then
    collect records until the host closes our stdin (or the deadline)."""
    fifo = make_fifo(args["fifo_parent"])
    install_plugin(args["pkg_dir"], args.get("dist_dir"), fifo)
    reader = ResultReader(fifo)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    reader.wait(stop_fd=0, deadline=time.monotonic() + float(args["timeout"]))
    return reader.result(args.get("workspace", "/workspace"))


# --------------------------------------------------------------------------------------
# readiness and HTTP probes (loopback only)
# --------------------------------------------------------------------------------------


def port_open(port, hosts=("127.0.0.1", "::1"), timeout=0.2):
    for host in hosts:
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((host, port))
            return host
        except OSError:
            pass
        finally:
            s.close()
    return None


def wait_ready(port, timeout, alive):
    """Wait until the port accepts connections while the start process is alive.
    alive() returns None while alive, else a description of how it ended."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        dead = alive()
        if dead:
            return {"ready": False, "host": None, "ms": _ms(t0), "error": dead, "exited": True}
        host = port_open(port)
        if host:
            dead = alive()
            if dead:
                return {"ready": False, "host": None, "ms": _ms(t0),
                        "error": dead + " (the port is open but the start process is gone)",
                        "exited": True}
            return {"ready": True, "host": host, "ms": _ms(t0), "error": None, "exited": False}
        if time.monotonic() >= deadline:
            return {"ready": False, "host": None, "ms": _ms(t0), "exited": False,
                    "error": f"port {port} not open after {timeout:g}s (readiness timeout)"}
        time.sleep(0.03)


def _ms(t0):
    return int((time.monotonic() - t0) * 1000)


def http_request(host, port, method, path, body, timeout):
    """One HTTP/1.1 request with http.client; returns (status, body_bytes, error).

    The whole exchange (connect, headers, body) is bounded by ``timeout``: a watchdog
    shuts the socket down at the deadline, so a server that trickles bytes cannot keep
    the probe alive (a per-recv timeout alone would not)."""
    import http.client

    headers = {"Connection": "close", "Host": f"localhost:{port}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    timeout = max(0.05, float(timeout))
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    expired = threading.Event()
    held = {}

    def cut():
        # the socket captured at connect time: http.client drops conn.sock once the
        # response says "Connection: close", while the response keeps reading from it
        expired.set()
        sock = held.get("sock")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(timeout, cut)
    timer.daemon = True
    timer.start()
    status = None
    chunks, total = [], 0
    try:
        conn.connect()
        held["sock"] = conn.sock
        if expired.is_set():
            raise TimeoutError("deadline")
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        status = resp.status
        while method != "HEAD":
            chunk = resp.read1(65536)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_BODY_BYTES:
                return status, b"".join(chunks)[:MAX_BODY_BYTES], "response body larger than 1 MB"
        if expired.is_set():
            raise TimeoutError("cut at the deadline")
        return status, b"".join(chunks), None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if expired.is_set():
            what = "response" if status is None else "response body"
            return status, b"".join(chunks), f"{what} not complete within {timeout:.1f}s"
        return status, b"".join(chunks), f"{type(exc).__name__}: {exc}"
    finally:
        timer.cancel()
        conn.close()


def probe_checks(host, port, checks, generation, deadline, kind):
    results = []
    for check in checks:
        name = str(check.get("name", "?"))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            results.append({"name": name, "passed": False, "status": None,
                             "error": "not probed: health timeout reached"})
            continue
        method = check.get("method", "GET")
        path = substitute_path(check.get("path", "/"), generation)
        body = substitute_generation(check.get("body"), generation)
        t0 = time.monotonic()
        status, payload, err = http_request(host, port, method, path, body, min(10.0, remaining))
        res = {"name": name, "passed": False, "status": status, "error": err,
               "ms": _ms(t0), "kind": kind}
        if err is None or status is not None:
            ok, why = check_expectation(check.get("expect") or {}, status, payload, generation)
            res["passed"] = bool(ok and err is None)
            res["error"] = err or why
        if not res["passed"]:
            res["body_excerpt"] = _excerpt(payload, 300) if payload else None
        results.append(res)
    return results


HIDDEN_KINDS = ("sealed", "examiner", "redteam")  # probe layers the writer never sees


def health_checks(port, health_path, vectors, contracts, generation, timeout, host,
                  endpoint_rule=True, probes=None):
    """Entry health URL (status 2xx), then spec vectors, then manifest contracts.

    Without the ``health_endpoint`` rule (the original's): the entry URL is probed only when
    there are neither vectors nor contracts, and then as the original's fallback: GET it
    (200) and GET /stats (200, a JSON object with "generation")."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    if not endpoint_rule and (vectors or contracts):
        endpoint = {"name": "entry.health", "passed": True, "status": None, "error": None,
                    "skipped": "not probed: vectors or contracts exist (original profile)"}
    elif not endpoint_rule:
        endpoint = _original_fallback(host, port, health_path, min(10.0, timeout))
    else:
        status, payload, err = http_request(host, port, "GET", health_path, None, min(10.0, timeout))
        endpoint = {"name": "entry.health", "passed": err is None and status is not None
                    and 200 <= status < 300, "status": status, "error": err}
        if not endpoint["passed"] and endpoint["error"] is None:
            endpoint["error"] = f"GET {health_path} answered {status}, expected 2xx"
    out = {
        "endpoint": endpoint,
        "vectors": probe_checks(host, port, vectors, generation, deadline, "vector"),
        "contracts": probe_checks(host, port, contracts, generation, deadline, "contract"),
    }
    # the hidden layers (sealed vectors, examiner and red-team probes), after what the
    # writer could see; each gets the rest of the health budget, in order
    for kind in HIDDEN_KINDS:
        if (probes or {}).get(kind):
            out[kind] = probe_checks(host, port, probes[kind], generation, deadline, kind)
    out["ms"] = _ms(t0)
    return out


def _original_fallback(host, port, health_path, timeout):
    errors = []
    status, _payload, err = http_request(host, port, "GET", health_path, None, timeout)
    if err or status != 200:
        errors.append(err or f"GET {health_path} returned {status} (expected 200)")
    st2, payload, err2 = http_request(host, port, "GET", "/stats", None, timeout)
    if err2 or st2 != 200:
        errors.append(err2 or f"GET /stats returned {st2} (expected 200)")
    else:
        try:
            doc = json.loads(payload.decode("utf-8"))
            if not isinstance(doc, dict) or "generation" not in doc:
                errors.append("GET /stats response missing 'generation' field")
        except ValueError:
            errors.append("GET /stats response is not valid JSON")
    return {"name": "entry.health+stats", "passed": not errors, "status": status,
            "error": "; ".join(errors) or None}


def _proc_alive_by_marker(marker, grace=2.0):
    """Docker mode: the start wrapper carries a per-run marker argument. Until it has been
    seen once (up to ``grace`` seconds) the process counts as starting; afterwards its
    absence means it exited. The host's exec_inspect stays the authority."""
    want = marker.encode()
    state = {"seen": False, "t0": time.monotonic()}

    def present():
        try:
            pids = [p for p in os.listdir("/proc") if p.isdigit()]
        except OSError:
            return True
        for pid in pids:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    if want not in fh.read(1 << 16).split(b"\0"):
                        continue
                with open(f"/proc/{pid}/stat", "rb") as st:
                    if st.read().rsplit(b")", 1)[-1].split()[0] not in (b"Z", b"X"):
                        return True
            except OSError:
                continue
        return False

    def alive():
        if present():
            state["seen"] = True
            return None
        if not state["seen"] and time.monotonic() - state["t0"] < grace:
            return None
        return "the start process exited"
    return alive


def cgroup_oom_kills():
    """OOM-kill counter of this cgroup (v1 memory.oom_control or v2 memory.events)."""
    for path, key in (("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill"),
                      ("/sys/fs/cgroup/memory.events", "oom_kill")):
        try:
            with open(path) as fh:
                for line in fh:
                    parts = line.split()
                    if len(parts) == 2 and parts[0] == key:
                        return int(parts[1])
        except (OSError, ValueError):
            continue
    return None


# --------------------------------------------------------------------------------------
# code run as the ORGANISM uid (import smoke check, teardown)
# --------------------------------------------------------------------------------------

SMOKE_MARK = "@@cambrian-smoke@@ "

SMOKE_SOURCE = r'''
import importlib, json, os, sys, traceback
sys.path.insert(0, os.getcwd())
mods = json.loads(sys.argv[1])
failed = 0
for m in mods:
    try:
        importlib.import_module(m)
    except BaseException as e:
        failed += 1
        f = l = None
        if isinstance(e, SyntaxError):
            f, l = e.filename, e.lineno
        for fr in traceback.extract_tb(e.__traceback__):
            if fr.filename.startswith(os.getcwd() + os.sep):
                f, l = fr.filename, fr.lineno
        if f and f.startswith(os.getcwd() + os.sep):
            f = f[len(os.getcwd()) + 1:]
        msg = (type(e).__name__ + ": " + str(e))[:2000]
        sys.stdout.write("@@cambrian-smoke@@ " + json.dumps({"module": m, "error": msg, "file": f, "line": l}) + "\n")
        sys.stdout.flush()
sys.stdout.flush()
os._exit(1 if failed else 0)
'''

TEARDOWN_SOURCE = r'''
import json, os, signal, sys, time
me = os.getpid()
uid = os.getuid()
def others():
    left = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == me:
            continue
        try:
            st = os.stat("/proc/" + p)
            if st.st_uid != uid:
                continue
            with open("/proc/" + p + "/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[-1].split()[0]
            if state in (b"Z", b"X"):
                continue
            with open("/proc/" + p + "/cmdline", "rb") as fh:
                left.append([int(p), fh.read(200).replace(b"\0", b" ").decode("utf-8", "replace")])
        except OSError:
            continue
    return left
try:
    os.kill(-1, signal.SIGKILL)
except ProcessLookupError:
    pass
deadline = time.monotonic() + float(sys.argv[1])
left = others()
while left and time.monotonic() < deadline:
    time.sleep(0.02)
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass
    left = others()
sys.stdout.write(json.dumps({"remaining": left}) + "\n")
sys.exit(3 if left else 0)
'''


def smoke_modules(files, start_command):
    """Dotted module names to import in the smoke check: every non-test .py module of the
    artifact, except __main__ modules and the module the start command runs as a script."""
    skip = set()
    words = (start_command or "").replace("'", " ").replace('"', " ").split()
    for i, w in enumerate(words):
        if w == "-m" and i + 1 < len(words):
            skip.add(words[i + 1])
        elif w.endswith(".py"):
            skip.add(w[:-3].lstrip("./").replace("/", "."))
    mods = []
    for rel in sorted(files):
        if not rel.endswith(".py") or is_test_file(rel) or rel.startswith("spec/"):
            continue
        parts = rel[:-3].split("/")
        if parts[-1] in ("__main__", "setup", "conftest") or any(
                not p.isidentifier() for p in parts):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
            if not parts:
                continue
        name = ".".join(parts)
        if name in skip:
            continue
        mods.append(name)
    return mods


def is_test_file(rel):
    base = rel.rsplit("/", 1)[-1]
    return (rel.startswith("tests/") or rel.startswith("test/") or "/tests/" in rel
            or base.startswith("test_") or base.endswith("_test.py") or base == "conftest.py")


# --------------------------------------------------------------------------------------
# pipeline mode (bwrap / none): the same steps, run as subprocesses of this runner
# --------------------------------------------------------------------------------------


class _Emitter:
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()

    def __call__(self, obj):
        line = json.dumps(obj) + "\n"
        with self.lock:
            self.out.write(line)
            self.out.flush()


class _Tail:
    def __init__(self, limit=TAIL_BYTES):
        self.buf = bytearray()
        self.limit = limit
        self.total = 0

    def add(self, data):
        self.total += len(data)
        self.buf += data
        if len(self.buf) > 2 * self.limit:
            del self.buf[: len(self.buf) - self.limit]

    def text(self):
        return bytes(self.buf[-self.limit:]).decode("utf-8", "replace")


def _pump(pipe, stream, emit, tail, sink=None):
    pending = b""
    while True:
        chunk = pipe.read1(65536) if hasattr(pipe, "read1") else pipe.read(65536)
        if not chunk:
            break
        tail.add(chunk)
        if sink is not None:
            sink.append(chunk)
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            emit({"t": "line", "s": stream, "l": line[:8192].decode("utf-8", "replace")})
        if len(pending) > 8192:
            emit({"t": "line", "s": stream, "l": pending[:8192].decode("utf-8", "replace")})
            pending = b""
    if pending:
        emit({"t": "line", "s": stream, "l": pending[:8192].decode("utf-8", "replace")})


def run_sequence(ops, stop_after_test=False):
    """The rig's stage sequence -- the only one. The docker backend drives it from the host
    (one exec per step), the bwrap/none runner inside its sandbox (``Pipeline``); a stage
    rule or an ordering change is made here, once.

    Each op records its own steps; the booleans it returns only steer:
      build()            the build command; False when it failed
      test()             the test command and its structured results; False unless the
                         profile's test rule passes
      smoke()            the import smoke check (part of the start stage)
      gate()             the syntax gate, when it has not run yet (it never executes code)
      start_and_probe()  the gate first, then -- only when it is clean -- start, readiness
                         and the HTTP probes
      teardown()         kill every organism process (idempotent)
    After a failure the gate still runs, for file:line diagnostics."""
    if not ops.build():
        ops.gate()
    elif not ops.test() or stop_after_test:
        ops.gate()
    elif not ops.smoke():
        ops.gate()
    else:
        ops.start_and_probe()
    ops.teardown()


class Pipeline:
    """Runs the stages as child processes of this runner (bwrap / none backends)."""

    def __init__(self, plan, emit):
        self.plan = plan
        self.emit = emit
        self.ws = plan["workspace"]
        self.env = dict(plan.get("env") or {})
        self.kill_mode = plan.get("kill_mode", "tree")  # "all" only inside a pid namespace
        self.rules = frozenset(plan.get("rules", DEFAULT_RULES))
        self.steps = []
        self._become_subreaper()

    # -- process control ---------------------------------------------------------
    def _become_subreaper(self):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans come to us
        except Exception:  # pragma: no cover - best effort
            pass

    def _descendants(self):
        found, todo = set(), [os.getpid()]
        while todo:
            pid = todo.pop()
            try:
                tasks = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tasks:
                try:
                    with open(f"/proc/{pid}/task/{tid}/children") as fh:
                        kids = [int(x) for x in fh.read().split()]
                except OSError:
                    continue
                for k in kids:
                    if k not in found:
                        found.add(k)
                        todo.append(k)
        return found

    def kill_everything(self, wait=2.0):
        """Kill every organism process: kill(-1) inside a pid namespace, else walk our
        (subreaper) descendant tree. Returns the pids still alive afterwards."""
        deadline = time.monotonic() + wait
        while True:
            if self.kill_mode == "all":
                try:
                    os.kill(-1, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            victims = self._descendants()
            for pid in victims:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self._reap()
            left = [p for p in self._descendants() if not _is_zombie(p)]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.02)

    def _reap(self):
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def spawn(self, argv, stage, stdin=None):
        import subprocess

        env = dict(self.env)
        proc = subprocess.Popen(argv, cwd=self.ws, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, close_fds=True)
        outt, errt = _Tail(), _Tail()
        sink = []
        ths = [threading.Thread(target=_pump, args=(proc.stdout, "stdout", self.emit, outt, sink),
                                daemon=True),
               threading.Thread(target=_pump, args=(proc.stderr, "stderr", self.emit, errt),
                                daemon=True)]
        for t in ths:
            t.start()
        return proc, ths, outt, errt, sink

    def run_cmd(self, stage, argv, timeout):
        self.emit({"t": "rig", "l": f"[rig] {stage}: {' '.join(argv[-1:])[:200]}"})
        self.kill_everything(wait=1.0)  # leftovers of earlier stages never serve later ones
        t0 = time.monotonic()
        proc, ths, outt, errt, sink = self.spawn(argv, stage)
        timed_out = False
        try:
            code = proc.wait(timeout=timeout)
        except Exception:
            timed_out = True
            self.kill_everything()
            code = proc.wait()
        for t in ths:
            t.join(2.0)
        if not timed_out:
            # the stage is over: background processes it left must not outlive it
            pass
        step = {"name": stage, "ok": code == 0 and not timed_out, "exit_code": code,
                "timed_out": timed_out, "duration_ms": _ms(t0),
                "stdout_tail": outt.text(), "stderr_tail": errt.text(), "data": {}}
        if code is not None and code < 0:
            step["exit_code"] = 128 - code
            step["signal"] = -code
        return step, b"".join(sink)

    # -- stages ------------------------------------------------------------------
    def step(self, step):
        self.steps.append(step)
        self.emit({"t": "step", "step": step})
        return step

    def run(self):
        run_sequence(self, stop_after_test=bool(self.plan.get("stop_after_test")))
        return self.finish()

    # -- the ops run_sequence drives ---------------------------------------------------
    def _sh(self):
        return self.plan.get("shell", "/bin/sh")

    def build(self):
        to = self.plan["timeouts"]
        st, _ = self.run_cmd("build", [self._sh(), "-c", self.plan["entry"]["build"]], to["build"])
        return self.step(st)["ok"]

    def gate(self):
        if any(s["name"] == "gate" for s in self.steps):
            return next(s for s in self.steps if s["name"] == "gate")["ok"]
        t0 = time.monotonic()
        gate = syntax_gate(self.ws, self.plan["files"])
        return self.step({"name": "gate", "ok": gate["ok"], "duration_ms": _ms(t0),
                          "data": gate})["ok"]

    def test(self):
        plan, to = self.plan, self.plan["timeouts"]
        # structured results: the plugin streams records into a FIFO read by a thread
        coll = plan["collect_dir"]
        os.makedirs(coll, exist_ok=True)
        os.chmod(coll, 0o755)
        fifo = make_fifo(coll)
        install_plugin(os.path.join(coll, PLUGIN_MODULE), None, fifo)
        reader = ResultReader(fifo)
        stop = threading.Event()
        th = threading.Thread(target=reader.wait, daemon=True,
                              kwargs={"stop_flag": stop,
                                      "deadline": time.monotonic() + to["test"] + 60})
        th.start()
        saved = {k: self.env.get(k) for k in ("PYTHONPATH", "PYTEST_ADDOPTS", STAGE_ENV)}
        self.env["PYTHONPATH"] = coll + (":" + saved["PYTHONPATH"] if saved["PYTHONPATH"] else "")
        self.env["PYTEST_ADDOPTS"] = f"-p {PLUGIN_MODULE} -p no:cacheprovider -rfEP"
        self.env[STAGE_ENV] = "test"
        st, _ = self.run_cmd("test", [self._sh(), "-c", plan["entry"]["test"]], to["test"])
        for k, v in saved.items():
            if v is None:
                self.env.pop(k, None)
            else:
                self.env[k] = v
        self.step(st)
        t0 = time.monotonic()
        stop.set()
        th.join(5.0)
        res = reader.result(self.ws)
        self.step({"name": "results", "ok": res["found"], "duration_ms": _ms(t0), "data": res})
        return test_passed(st, res, structured=STRUCTURED_COUNTS in self.rules)

    def smoke(self):
        plan, to = self.plan, self.plan["timeouts"]
        mods = plan.get("smoke_modules") or []
        if mods:
            st, out = self.run_cmd("smoke", [plan["python"], "-c", SMOKE_SOURCE, json.dumps(mods)],
                                   to["smoke"])
            st["data"] = {"modules": mods, "failures": parse_smoke_output(out)}
        else:
            st = {"name": "smoke", "ok": True, "duration_ms": 0, "data": {"modules": []}}
        ok = self.step(st)["ok"]
        return ok or IMPORT_SMOKE not in self.rules

    def teardown(self):
        if not any(s["name"] == "teardown" for s in self.steps):
            t1 = time.monotonic()
            left = self.kill_everything()
            self.step({"name": "teardown", "ok": not left, "duration_ms": _ms(t1),
                       "data": {"remaining": left}})

    def start_and_probe(self):
        plan, to = self.plan, self.plan["timeouts"]
        sh, cmd = self._sh(), self.plan["entry"]["start"]
        if not self.gate() and SYNTAX_GATE in self.rules:
            return  # a file that does not parse: nothing is started
        self.kill_everything(wait=1.0)
        self.emit({"t": "rig", "l": f"[rig] start: {cmd[:200]}"})
        t0 = time.monotonic()
        proc, ths, outt, errt, _ = self.spawn([sh, "-c", cmd], "start")

        def alive():
            code = proc.poll()
            return None if code is None else f"the start process exited with code {code}"

        ready = wait_ready(plan["port"], to["start"], alive)
        start = {"name": "start", "ok": ready["ready"], "duration_ms": _ms(t0),
                 "exit_code": proc.poll(), "timed_out": not ready["ready"] and not ready["exited"],
                 "data": {"ready": ready}}
        health = None
        if ready["ready"]:
            h = health_checks(plan["port"], plan["health_path"], plan["vectors"],
                              plan["contracts"], plan["generation"], to["health"], ready["host"],
                              endpoint_rule=HEALTH_ENDPOINT in self.rules,
                              probes=plan.get("probes"))
            code = proc.poll()
            h["process_alive_after"] = code is None
            if code is not None and PROCESS_ALIVE in self.rules:
                h["error"] = f"the start process exited with code {code} during the health probes"
            health = {"name": "health", "ok": health_ok(h, plan.get("gate_kinds", ())),
                      "duration_ms": h["ms"], "data": h}
        t1 = time.monotonic()
        left = self.kill_everything()
        for t in ths:
            t.join(2.0)
        start["stdout_tail"], start["stderr_tail"] = outt.text(), errt.text()
        if start["exit_code"] is None and not ready["ready"]:
            start["exit_code"] = proc.poll()
        self.step(start)
        if health is not None:
            health["stdout_tail"], health["stderr_tail"] = start["stdout_tail"], start["stderr_tail"]
            self.step(health)
        self.step({"name": "teardown", "ok": not left, "duration_ms": _ms(t1),
                   "data": {"remaining": left}})

    def finish(self):
        self.teardown()
        self.emit({"t": "done", "oom_kills": cgroup_oom_kills()})
        return self.steps


def _is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] in (b"Z", b"X")
    except OSError:
        return True


def test_passed(step, res, structured=True):
    """The test stage passes only if the command exited 0, structured results exist, at
    least one test ran, every test that ran passed, and (for plugin results) every pytest
    session that started also finished. Without the ``structured_test_counts`` rule (the
    original Cambrian's): the exit code alone decides."""
    if not structured:
        return bool(step.get("ok"))
    if not (step.get("ok") and res.get("found") and res.get("tests_run", 0) > 0
            and res.get("tests_passed") == res.get("tests_run")):
        return False
    if res.get("source") == "plugin" and res.get("finished", 0) < max(1, res.get("sessions", 0)):
        return False
    if res.get("tampering"):
        return False
    return True


def health_ok(h, gate=()):
    """Visible checks always gate; a hidden layer gates only when named in ``gate`` (the
    campaign's viability policy), else it only scores."""
    return (h["endpoint"]["passed"] and all(r["passed"] for r in h["vectors"])
            and all(r["passed"] for r in h["contracts"]) and not h.get("error")
            and all(r["passed"] for kind in gate for r in h.get(kind, [])))


def parse_smoke_output(raw):
    """Failures reported by the smoke script (organism-uid output: diagnostics only)."""
    fails = []
    for line in raw.decode("utf-8", "replace").splitlines():
        if not line.startswith(SMOKE_MARK):
            continue
        try:
            obj = json.loads(line[len(SMOKE_MARK):])
        except ValueError:
            continue
        if isinstance(obj, dict):
            fails.append({"module": str(obj.get("module"))[:200],
                          "error": str(obj.get("error"))[:MAX_MESSAGE],
                          "file": obj.get("file") if isinstance(obj.get("file"), str) else None,
                          "line": obj.get("line") if isinstance(obj.get("line"), int) else None})
        if len(fails) >= 50:
            break
    return fails


def _extract_tar(stream, dest):
    """Extract the host-built tar (regular files and directories only) into dest."""
    import tarfile

    with tarfile.open(fileobj=stream, mode="r|") as tf:
        for member in tf:
            name = member.name
            if name.startswith("/") or ".." in name.split("/"):
                raise ValueError(f"unsafe path in artifact tar: {name!r}")
            target = os.path.join(dest, name)
            if member.isdir():
                os.makedirs(target, exist_ok=True)
            elif member.isreg():
                os.makedirs(os.path.dirname(target), exist_ok=True)
                src = tf.extractfile(member)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                with os.fdopen(fd, "wb") as fh:
                    while True:
                        chunk = src.read(65536)
                        if not chunk:
                            break
                        fh.write(chunk)
            else:
                raise ValueError(f"artifact tar member is not a regular file: {name!r}")


def _apply_limits(limits):
    import resource

    pairs = {"fsize": resource.RLIMIT_FSIZE, "nofile": resource.RLIMIT_NOFILE,
             "as": resource.RLIMIT_AS, "core": resource.RLIMIT_CORE}
    applied = {}
    for key, res in pairs.items():
        if key in limits and limits[key] is not None:
            val = int(limits[key])
            try:
                soft, hard = resource.getrlimit(res)
                if hard != resource.RLIM_INFINITY:
                    val = min(val, hard)
                resource.setrlimit(res, (val, val))
                applied[key] = val
            except (ValueError, OSError):
                pass
    return applied


def main_run(stdin, stdout):
    emit = _Emitter(stdout)
    header = stdin.readline()
    plan = json.loads(header.decode("utf-8"))
    os.makedirs(plan["workspace"], exist_ok=True)
    _extract_tar(stdin, plan["workspace"])
    applied = _apply_limits(plan.get("limits") or {})
    missing = []
    if plan.get("check_packages"):
        import importlib.util

        for mod in plan["check_packages"]:
            try:
                found = importlib.util.find_spec(mod) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                missing.append(mod)
    emit({"t": "info", "limits": applied, "missing_packages": missing,
          "python": sys.version.split()[0]})
    Pipeline(plan, emit).run()
    return 0


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def health_main(args):
    ready = wait_ready(args["port"], args["ready_timeout"], _proc_alive_by_marker(args["marker"]))
    out = {"ready": ready}
    if ready["ready"]:
        out["health"] = health_checks(args["port"], args["health_path"], args["vectors"],
                                      args["contracts"], args["generation"],
                                      args["health_timeout"], ready["host"],
                                      endpoint_rule=args.get("endpoint_rule", True),
                                      probes=args.get("probes"))
    return out


def check_main(args):
    """The merged trusted step: syntax gate, then -- only if it is clean and a health
    section is given -- readiness and the HTTP probes."""
    out = {}
    t0 = time.monotonic()
    if args.get("gate") is not None:
        out["gate"] = syntax_gate(args["gate"]["workspace"], args["gate"]["files"])
        out["gate"]["ms"] = _ms(t0)
    gate_clean = out.get("gate", {}).get("ok", True) or not args.get("gate_blocks", True)
    if args.get("health") is not None and gate_clean:
        out["health_step"] = health_main(args["health"])
    return out


def _secure_rig_dir():
    # A tmpfs `mode=` is ignored when the image already has the directory: fix it here.
    try:
        if os.path.isdir("/rig") and os.stat("/rig").st_uid == os.getuid():
            os.chmod("/rig", 0o700)
    except OSError:
        pass


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        sys.stderr.write(__doc__ or "")
        return 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "run":
        return main_run(sys.stdin.buffer, sys.stdout)
    if rest and rest[0] == "-":  # large argument documents arrive on stdin
        args = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    else:
        args = json.loads(rest[0]) if rest else {}
    _secure_rig_dir()
    if cmd == "gate":
        out = syntax_gate(args["workspace"], args["files"])
    elif cmd == "junit":
        out = parse_junit(args["path"], args.get("workspace", "/workspace"))
    elif cmd == "health":
        out = health_main(args)
    elif cmd == "check":
        out = check_main(args)
    elif cmd == "collect":
        out = collect_main(args)
    elif cmd == "forward":
        out = forward_main(args)
    elif cmd == "reproduce":
        out = reproduce_main(args)
    else:
        sys.stderr.write(f"unknown subcommand {cmd!r}\n")
        return 2
    out["oom_kills"] = cgroup_oom_kills()
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
