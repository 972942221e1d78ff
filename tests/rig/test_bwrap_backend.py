"""bwrap backend (and the explicit none backend): same pipeline, weaker isolation,
labelled loudly."""

from __future__ import annotations

import pytest

from rig.api import StageTimeouts, run_artifact

from conftest import HELLO_APP, hello_files, write_artifact

# Uses only aiohttp + pytest, which the rig's own venv has (pytest-aiohttp may be absent
# outside the image: the report lists missing organism packages).
SYNC_TEST = '''\
import asyncio

from aiohttp.test_utils import TestClient, TestServer

from app import make_app


def test_hello():
    async def go():
        async with TestClient(TestServer(make_app())) as client:
            resp = await client.get("/hello")
            return resp.status, await resp.json()
    status, body = asyncio.run(go())
    assert status == 200 and body["message"] == "hello"
'''


def _files(**over):
    files = hello_files()
    files["tests/test_app.py"] = SYNC_TEST
    files.update(over)
    return files


def test_bwrap_viable_and_labelled(tmp_path, bwrap_available):
    lines = []
    res = run_artifact(write_artifact(tmp_path / "a", _files()), backend="bwrap",
                       on_line=lambda s, l: lines.append((s, l)))
    rep = res.report
    assert rep.status == "viable", rep.diagnostics
    wire = rep.to_wire()
    assert wire["backend"] == "bwrap" and wire["weaker_isolation"] is True
    assert res.backend == "bwrap" and res.container_id is None
    assert rep.checks["test"].tests_run == 1 and rep.checks["test"].tests_passed == 1
    assert all(v.passed for v in rep.checks["health"].vectors)
    assert any(s == "rig" and "WEAKER" in l for s, l in lines)
    assert any("1 passed" in l for s, l in lines if s == "stdout")


def test_bwrap_no_network_and_daemons_killed(tmp_path, bwrap_available):
    probe = ('import socket, subprocess\n'
             'def test_offline():\n'
             '    s = socket.socket()\n'
             '    s.settimeout(2)\n'
             '    try:\n'
             '        s.connect(("1.1.1.1", 53))\n'
             '        raise AssertionError("network reachable")\n'
             '    except OSError:\n'
             '        pass\n'
             '    subprocess.Popen(["setsid", "sleep", "1000"], start_new_session=True)\n')
    res = run_artifact(write_artifact(tmp_path / "b", _files(**{"tests/test_net.py": probe})),
                       backend="bwrap")
    rep = res.report
    assert rep.status == "viable", rep.diagnostics
    assert rep.checks["test"].tests_run == 2
    assert rep.to_wire()["teardown"]["passed"] is True


def test_bwrap_failure_stages(tmp_path, bwrap_available):
    files = _files(**{"app.py": HELLO_APP + "\ndef broken(:\n"})
    rep = run_artifact(write_artifact(tmp_path / "c", files), backend="bwrap").report
    assert rep.failure_stage == "build"
    assert any(f.file == "app.py" and f.line for f in rep.diagnostics.failures)
    files = _files()
    root = write_artifact(tmp_path / "d", files, entry={
        "build": "true", "test": "sleep 60", "start": "true",
        "health": "http://localhost:8080/health"})
    rep = run_artifact(root, backend="bwrap", timeouts=StageTimeouts(test=2)).report
    assert rep.failure_stage == "test" and "timed out" in rep.diagnostics.summary


def test_none_backend_runs_and_warns(tmp_path):
    lines = []
    root = write_artifact(tmp_path / "e", _files(), entry={
        "build": "true", "test": "python -m pytest -q", "start": "python app.py",
        "health": "http://localhost:8080/health"})
    res = run_artifact(root, backend="none", on_line=lambda s, l: lines.append((s, l)))
    wire = res.report.to_wire()
    assert wire["backend"] == "none" and wire["weaker_isolation"] is True
    assert any(s == "rig" and "WEAKER" in l for s, l in lines)
    assert res.report.checks["test"].tests_run == 1


def test_bwrap_problem_names_the_cause(tmp_path, monkeypatch):
    """A bwrap skip (or a CI failure) says exactly why bubblewrap cannot run: missing, or the
    sandbox's own error line."""
    from rig.backends.bwrap import bwrap_problem

    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap anywhere
    assert "not installed" in bwrap_problem()
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    why = bwrap_problem()
    assert "exited with 1" in why and "setting up uid map: Permission denied" in why
