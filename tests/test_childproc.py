"""The helper every test uses for child processes: a silent child fails its test within the
deadline (with what it printed), and teardown leaves nothing running."""

from __future__ import annotations

import os
import sys
import time

import pytest

from tests.childproc import Child, Children


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_a_silent_child_fails_within_its_deadline_and_is_killed():
    # prints one line, then blocks forever without output (what a server with a hung
    # start looks like): the old `proc.stdout.readline()` would have blocked until
    # pytest's 600 s timeout
    child = Child([sys.executable, "-c",
                   "import time; print('starting', flush=True); time.sleep(600)"])
    t0 = time.monotonic()
    with pytest.raises(AssertionError) as err:
        child.wait_for("listening on", timeout=1.0)
    elapsed = time.monotonic() - t0
    assert elapsed < 30, elapsed  # the deadline (1 s) plus a bounded stop, never the 600 s
    assert "still silent after 1s" in str(err.value)
    assert "starting" in str(err.value)  # what it printed so far is in the failure
    assert child.proc.poll() is not None  # and it was killed


def test_a_child_that_exits_early_fails_at_once_with_its_output():
    child = Child([sys.executable, "-c", "print('boom: no port'); raise SystemExit(3)"])
    with pytest.raises(AssertionError) as err:
        child.wait_for("listening on", timeout=60)
    assert "exited with 3" in str(err.value) and "boom: no port" in str(err.value)


def test_wait_for_returns_the_matching_line():
    child = Child([sys.executable, "-c", "print('a'); print('ready on 1234', flush=True); "
                   "import time; time.sleep(600)"])
    try:
        assert child.wait_for("ready on", timeout=30) == "ready on 1234"
    finally:
        child.stop()
    assert child.proc.poll() is not None


def test_stop_all_kills_children_that_ignore_sigterm_and_their_own_children():
    started = Children()
    code = ("import os, signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "p = subprocess.Popen(['sleep', '600'])\n"
            "print(p.pid, flush=True)\n"
            "time.sleep(600)\n")
    child = started([sys.executable, "-c", code])
    grandchild = int(child.first_line(30))
    assert _alive(child.pid) and _alive(grandchild)
    started.stop_all()
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child.pid)
    assert not _alive(grandchild)


def test_wait_kills_a_child_that_does_not_exit():
    child = Child(["sleep", "600"])
    with pytest.raises(AssertionError, match="did not exit within 0.5s"):
        child.wait(0.5)
    assert child.proc.poll() is not None
