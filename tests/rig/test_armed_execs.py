"""Armed execs (rig/backends/docker.py ``arm_box``) and the held test exec: started before
their step, waiting on stdin, fed by the run. What must hold: the run feeds them exactly
what a fresh exec would have run, one that is gone is replaced, and organism code cannot
stall or redirect them into a different verdict."""

from __future__ import annotations

import time

import pytest

from rig.api import StageTimeouts, prepare, run_artifact, wait_removed

from conftest import hello_files, write_artifact

pytestmark = pytest.mark.docker


def _prepared(run_id: str):
    from tests.conftest import session_labels

    prep = prepare(run_id, labels=session_labels())
    prep.thread.join(120)
    assert prep.error is None and len(prep.boxes) == 2, prep.error
    return prep


def _run(art, prep, **kw):
    from tests.conftest import session_labels

    return run_artifact(art, prepared=prep, labels=session_labels(), **kw)


def test_armed_build_gets_the_command_and_generation_exactly(tmp_path, rig_image):
    """The build reads its generation and command from stdin: quotes, a second line and
    the generation (the containers were prepared without one) arrive as written."""
    files = hello_files()
    files["tests/test_built.py"] = (
        "def test_built():\n"
        "    assert open('built.txt').read() == \"gen 3: it's built\\nsecond line\\n\"\n")
    build = ('printf "gen %s: %s\\n" "$CAMBRIAN_GENERATION" "it\'s built" > built.txt\n'
             'echo second line >> built.txt')
    art = write_artifact(tmp_path / "a", files, generation=3, entry={
        "build": build, "test": "python -m pytest -q", "start": "python app.py",
        "health": "http://localhost:8080/health"})
    res = _run(art, _prepared("armed-build"))
    assert res.viable, res.report.diagnostics
    lanes = res.report.to_wire()["lanes"]
    assert {"build", "inject", "snapshot", "test"} <= set(lanes["armed"])
    assert res.report.checks["test"].tests_passed == 2


def test_armed_execs_gone_are_replaced(tmp_path, rig_image):
    """The organism-uid armed execs of a prepared main container are killed before the run:
    fresh execs take their place and the verdict is the same."""
    from rig.backends.docker import ORGANISM_USER, _client_or_raise

    prep = _prepared("armed-gone")
    main = prep.boxes[0]
    api = _client_or_raise().api
    ex = api.exec_create(main.cid, ["sh", "-c", "kill -9 -1"], user=ORGANISM_USER)
    api.exec_start(ex["Id"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(
            main.armed[n].done.is_set() for n in ("inject", "build", "snapshot")):
        time.sleep(0.05)
    assert all(main.armed[n].done.is_set() for n in ("inject", "build", "snapshot"))
    art = write_artifact(tmp_path / "g", hello_files())
    res = _run(art, prep)
    assert res.viable, res.report.diagnostics
    lanes = res.report.to_wire()["lanes"]
    # the collector (rig uid) and the probe container's copy were untouched
    assert lanes["armed"] == ["collect", "probe:inject"] and lanes["probe_lane"] is True
    assert wait_removed(60)


# A build leftover that opens the stdin of every waiting rig exec for writing and keeps it
# open: an exec released by EOF would wait for ever; a line still releases it.
HOLDER = r'''
import os, time


def main():
    held, deadline = {}, time.monotonic() + 10
    while time.monotonic() < deadline and len(held) < 2:
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) in held or int(pid) == os.getpid():
                continue
            try:
                if b"read -r _" in open(f"/proc/{pid}/cmdline", "rb").read():
                    held[int(pid)] = os.open(f"/proc/{pid}/fd/0", os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                pass
        time.sleep(0.02)
    open("/tmp/holding", "w").write(str(len(held)))
    time.sleep(120)


if __name__ == "__main__":  # the smoke check imports every module
    main()
'''


def test_a_leftover_holding_stdin_open_cannot_stall_the_test(tmp_path, rig_image):
    files = hello_files()
    files["holder.py"] = HOLDER
    files["tests/test_held.py"] = (
        "def test_the_holder_held_both():\n"
        "    # the held test exec and the snapshot were both waiting when the build ran\n"
        "    assert open('/tmp/holding').read() == '2'\n")
    art = write_artifact(tmp_path / "h", files, entry={
        "build": ("python holder.py >/dev/null 2>&1 &\n"
                  "while [ ! -f /tmp/holding ]; do sleep 0.05; done"),
        "test": "python -m pytest -q", "start": "python app.py",
        "health": "http://localhost:8080/health"})
    # an exec waiting for EOF would wait out the test timeout: non-viable
    res = _run(art, _prepared("armed-held-open"), timeouts=StageTimeouts(build=30, test=30))
    assert res.viable, res.report.diagnostics
    assert res.report.checks["test"].tests_passed == 2
    lanes = res.report.to_wire()["lanes"]
    assert {"snapshot", "test"} <= set(lanes["armed"]) and lanes["probe_lane"] is True
    assert wait_removed(60)


def test_armed_execs_outlast_the_client_timeout(tmp_path, rig_image, monkeypatch):
    """Prepared containers wait as long as the LLM writes, minutes with a real model: their
    armed execs' streams must not end when no byte comes for the docker client's timeout
    (a hijacked exec socket carries it: 300 s locally, 120 s on a rig host; docker-py's
    reads wait for data first). Here the client's timeout is 2 s and the run comes 4 s
    later."""
    from rig.backends import docker as D

    client = D.docker_client()
    client.api.timeout = 2  # the timeout docker-py sets on each new connection
    monkeypatch.setattr(D, "_CLIENTS", {(None, None): client})
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    prep = _prepared("armed-idle")
    time.sleep(4)
    assert not any(r.done.is_set() for b in prep.boxes for r in b.armed.values())
    res = _run(write_artifact(tmp_path / "i", hello_files()), prep)
    assert res.viable, res.report.diagnostics
    lanes = res.report.to_wire()["lanes"]
    assert lanes["prepared"] is True
    assert lanes["armed"] == ["build", "collect", "inject", "probe:inject", "snapshot", "test"]
    assert wait_removed(60)
