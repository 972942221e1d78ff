"""Docker backend, end to end on the real engine and the rig image."""

from __future__ import annotations

import threading
import time

import pytest

from rig.api import (LABEL_KEY, RUN_LABEL, RigLimits, RigSetupError, StageTimeouts,
                     managed_containers, reconcile, run_artifact)

from conftest import HELLO_APP, hello_files, make_hello_artifact, write_artifact

pytestmark = pytest.mark.docker


def _api():
    from rig.backends.docker import docker_client

    return docker_client().api


def test_minimal_viable_artifact(hello_artifact, rig_image):
    lines: list[tuple[float, str, str]] = []
    result = run_artifact(hello_artifact, on_line=lambda s, l: lines.append((time.monotonic(), s, l)))
    t_return = time.monotonic()
    rep = result.report
    assert rep.status == "viable", rep.diagnostics
    assert result.backend == "docker" and rep.to_wire()["backend"] == "docker"
    assert rep.checks["test"].tests_run == 1 and rep.checks["test"].tests_passed == 1
    vec = {v.name: v.passed for v in rep.checks["health"].vectors}
    assert vec == {"health-ok": True, "hello-generation": True}
    assert [c.passed for c in rep.checks["health"].contracts] == [True]
    assert rep.generation == 3 and result.rig_error is None and not result.oom_killed
    assert rep.fitness["stages_completed"] == 5 and rep.fitness["tests_run"] == 1
    assert result.first_output_ms is not None and result.total_ms > 0
    # live output arrived while the run was going on, not only at the end
    organism = [t for t, s, l in lines if s in ("stdout", "stderr")]
    assert organism and min(organism) < t_return - 0.05
    assert any("1 passed" in l for _, _, l in lines)
    # both containers of the run (main, and the probe that started the built state while
    # the tests ran) are gone once the background removal is done
    from rig.api import wait_removed

    assert len(result.container_ids) == 2 and result.container_id == result.container_ids[0]
    assert wait_removed(60)
    assert not set(result.container_ids) & set(managed_containers())


def test_hardening_is_applied(tmp_path, rig_image):
    """Inspect the container while the organism runs (its build blocks on a file)."""
    files = hello_files()
    root = write_artifact(tmp_path / "slow", files, entry={
        "build": "sleep 6", "test": "python -m pytest -q", "start": "python app.py",
        "health": "http://localhost:8080/health"})
    seen: dict = {}

    def probe():
        api = _api()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for c in api.containers(filters={"label": f"{RUN_LABEL}=hardening-probe"}):
                info = api.inspect_container(c["Id"])
                if info["State"]["Running"]:
                    seen["info"] = info
                    ex = api.exec_create(c["Id"], ["sh", "-c", "ulimit -f; ulimit -n; id -u; "
                                                   "stat -c '%a %u' /workspace /rig; "
                                                   "cat /proc/1/status | grep ^Uid; "
                                                   "grep -c . /proc/net/dev; "
                                                   "echo $ANTHROPIC_API_KEY $CAMBRIAN_GENERATION"],
                                         user="10001:10001")
                    seen["exec"] = api.exec_start(ex["Id"]).decode()
                    return
            time.sleep(0.1)

    th = threading.Thread(target=probe)
    th.start()
    run_artifact(root, run_id="hardening-probe", labels={"purpose": "test"},
                 timeouts=StageTimeouts(build=20))
    th.join()
    info = seen["info"]
    hc, cfg = info["HostConfig"], info["Config"]
    assert hc["ReadonlyRootfs"] is True
    assert hc["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in hc["SecurityOpt"]
    assert hc["NetworkMode"] == "none"
    assert hc["PidsLimit"] == RigLimits().pids
    assert hc["Memory"] == hc["MemorySwap"] == RigLimits().memory_mb * 1024 * 1024
    assert hc["NanoCpus"] == int(RigLimits().cpus * 1e9)
    assert hc["Init"] is True
    assert hc["LogConfig"]["Type"] == "json-file" and hc["LogConfig"]["Config"]["max-size"]
    assert {u["Name"] for u in hc["Ulimits"]} >= {"fsize", "nofile", "nproc"}
    assert set(hc["Tmpfs"]) >= {"/workspace", "/tmp", "/rig"}
    from rig.backends.docker import PLUGIN_DIST, PLUGIN_PKG

    plugin_mounts = [m for m in hc["Tmpfs"] if m in (PLUGIN_PKG, PLUGIN_DIST)]
    assert len(plugin_mounts) == 2 and all("uid=10002" in hc["Tmpfs"][m] for m in plugin_mounts)
    assert "exec" in hc["Tmpfs"]["/workspace"] and "uid=10001" in hc["Tmpfs"]["/workspace"]
    assert cfg["User"] not in ("", "0", "root") and cfg["User"].split(":")[0].isdigit()
    assert cfg["Labels"][LABEL_KEY] == "1" and cfg["Labels"][RUN_LABEL] == "hardening-probe"
    # the keeper reads the lifeline (stdin, closed once) and has a finite lifetime
    from rig.backends.docker import keeper_command

    assert cfg["Cmd"] == keeper_command(StageTimeouts(build=20))
    assert cfg["OpenStdin"] is True and cfg["StdinOnce"] is True
    assert cfg["Labels"]["cambrian.generation"] == "3" and cfg["Labels"]["purpose"] == "test"
    # $CAMBRIAN_RIG_LABELS (the test session's label): the leftover checks rely on it
    from tests.conftest import session_labels

    assert session_labels().items() <= cfg["Labels"].items()
    env = dict(e.split("=", 1) for e in cfg["Env"])
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-placeholder-offline"
    assert env["CAMBRIAN_GENERATION"] == "3"
    out = seen["exec"].split("\n")
    assert out[0] == str(64 * 1024 * 1024 // 512) or out[0] == str(64 * 1024)  # blocks
    assert out[1] == "1024" and out[2] == "10001"
    assert "10001" in out[3]                      # /workspace owned by the organism
    assert "Uid:\t10002" in seen["exec"]          # the keeper is not the organism's uid
    assert "sk-ant-placeholder-offline 3" in seen["exec"]


def test_failures_are_reports_not_exceptions(tmp_path, rig_image):
    files = hello_files()
    files["tests/test_app.py"] += "\n\ndef test_broken():\n    assert 1 == 2\n"
    root = write_artifact(tmp_path / "failing", files)
    res = run_artifact(root)
    rep = res.report
    assert rep.status == "non-viable" and rep.failure_stage == "test"
    assert rep.checks["test"].tests_run == 2 and rep.checks["test"].tests_passed == 1
    f = [f for f in rep.diagnostics.failures if "test_broken" in f.test][0]
    assert f.file == "tests/test_app.py" and f.line == 13
    assert "start" not in rep.checks and "health" not in rep.checks


def test_printing_999_passed_changes_nothing(tmp_path, rig_image):
    files = hello_files()
    files["tests/conftest.py"] = ("def pytest_sessionfinish(session):\n"
                                  "    print('\\n===== 999 passed in 0.01s =====')\n")
    files["tests/test_app.py"] += "\n\ndef test_broken():\n    assert False\n"
    res = run_artifact(write_artifact(tmp_path / "liar", files))
    assert res.report.checks["test"].tests_run == 2
    assert res.report.checks["test"].tests_passed == 1


def test_setsid_daemon_is_killed_and_report_file_ignored(tmp_path, rig_image):
    files = hello_files()
    files["app.py"] = HELLO_APP.replace(
        'if __name__ == "__main__":',
        'if __name__ == "__main__":\n'
        '    import subprocess\n'
        '    subprocess.Popen(["setsid", "sh", "-c", "sleep 1000"], start_new_session=True)\n'
        '    open("/workspace/report.json", "w").write(\'{"status": "viable"}\')\n'
        '    open("/tmp/report.json", "w").write(\'{"status": "viable"}\')')
    res = run_artifact(write_artifact(tmp_path / "daemon", files))
    assert res.report.status == "viable"
    td = res.report.to_wire()["teardown"]
    assert td["passed"] is True and td["remaining"] == []


def test_start_crash_and_timeout(tmp_path, rig_image):
    files = hello_files()
    files["app.py"] = HELLO_APP.replace('    print("serving', '    raise SystemExit(3)\n    print("serving')
    res = run_artifact(write_artifact(tmp_path / "crash", files))
    assert res.report.failure_stage == "start" and "exit" in res.report.diagnostics.summary
    files = hello_files()
    root = write_artifact(tmp_path / "hang", files, entry={
        "build": "sleep 100", "test": "true", "start": "true",
        "health": "http://localhost:8080/health"})
    t0 = time.monotonic()
    res = run_artifact(root, timeouts=StageTimeouts(build=2))
    assert time.monotonic() - t0 < 20
    assert res.report.failure_stage == "build" and "timed out" in res.report.diagnostics.summary


def test_oom_is_reported(tmp_path, rig_image):
    files = hello_files()
    files["tests/test_app.py"] = ("def test_eat():\n    x = []\n    while True:\n"
                                  "        x.append(bytearray(10**7))\n")
    res = run_artifact(write_artifact(tmp_path / "oom", files), limits=RigLimits(memory_mb=128))
    assert res.oom_killed is True
    assert res.report.failure_stage == "test"
    assert "out of memory" in res.report.diagnostics.summary


def test_reconcile_removes_orphans(rig_image):
    from rig.backends.docker import image_tag

    from tests.conftest import session_labels

    api = _api()
    mine = {**session_labels(), RUN_LABEL: "orphan-run"}
    cid = api.create_container(image_tag(), command=["sleep", "infinity"],
                               labels={LABEL_KEY: "1", **mine})["Id"]
    api.start(cid)
    try:
        assert cid in managed_containers(only=mine)
        assert cid not in managed_containers(only={**mine, RUN_LABEL: "another-run"})
        # a reconcile scoped to this test's labels: a user's campaign on this engine is safe
        assert cid not in reconcile({"orphan-run"}, only=mine)
        assert cid in reconcile(set(), only=mine)
        assert cid not in managed_containers(only=mine)
    finally:
        try:
            api.remove_container(cid, force=True)
        except Exception:
            pass


def test_a_sigkilled_orchestrator_takes_its_container_down(tmp_path, rig_image):
    """The lifeline: the process driving the rig is SIGKILLed while the organism's build
    runs (it would sleep 300 s); the container stops within seconds, with no engine left to
    reconcile it, instead of living until its lifetime backstop (~20 min)."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = write_artifact(tmp_path / "slow", hello_files(), entry={
        "build": "sleep 300", "test": "python -m pytest -q", "start": "python app.py",
        "health": "http://localhost:8080/health"})
    repo = Path(__file__).resolve().parents[2]
    code = ("import sys; from rig.api import run_artifact, StageTimeouts; "
            f"run_artifact({str(root)!r}, run_id='lifeline-probe', timeouts=StageTimeouts(build=600))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)})
    api = _api()
    flt = {"label": f"{RUN_LABEL}=lifeline-probe"}
    try:
        deadline = time.monotonic() + 60
        building = False
        while time.monotonic() < deadline and not building:
            for c in api.containers(filters=flt):
                top = api.top(c["Id"]).get("Processes") or []
                building = any("sleep 300" in " ".join(p) for p in top)
            time.sleep(0.2)
        assert building, "the organism's build never started"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and api.containers(filters=flt):  # running ones only
            time.sleep(0.2)
        assert not api.containers(filters=flt), "the container outlived its orchestrator"
        stopped = api.containers(all=True, filters=flt)
        assert stopped and all(c["State"] == "exited" for c in stopped)
    finally:
        if proc.poll() is None:
            proc.kill()
        for c in api.containers(all=True, filters=flt):
            api.remove_container(c["Id"], force=True)


def test_unknown_backend_raises(hello_artifact):
    with pytest.raises(RigSetupError, match="unknown rig backend"):
        run_artifact(hello_artifact, backend="podman")


def test_many_contracts_travel_on_stdin(tmp_path, rig_image):
    """More than 60 KB of checks does not fit one exec argument: it goes through stdin."""
    contracts = [{"name": f"contract-{i:04d}-" + "x" * 150, "type": "http", "method": "GET",
                  "path": "/health", "expect": {"status": 200, "body_contains": {"status": "ok"}}}
                 for i in range(450)]
    root = write_artifact(tmp_path / "many", hello_files(), contracts=contracts)
    res = run_artifact(root, timeouts=StageTimeouts(health=60))
    assert res.report.status == "viable", res.report.diagnostics
    assert len(res.report.checks["health"].contracts) == 450


def test_prepared_containers_are_taken_or_replaced(tmp_path, rig_image):
    """Containers made ahead carry the run's labels and are used by the run that matches
    them; a run they do not fit (other limits) removes them and makes its own."""
    from rig.api import RigLimits, prepare, wait_removed
    from tests.conftest import session_labels

    art = make_hello_artifact(tmp_path / "p")
    prep = prepare("prep-match", labels=session_labels())
    res = run_artifact(art, prepared=prep, labels=session_labels())
    assert res.run_id == "prep-match" and res.viable
    assert [b.cid for b in prep.boxes] == res.container_ids  # main, then probe
    lanes = res.report.to_wire()["lanes"]
    assert lanes["prepared"] is True and lanes["probe_lane"] is True
    # every exec the run needed first was already up, waiting for its input
    assert lanes["armed"] == ["build", "collect", "inject", "probe:inject", "snapshot", "test"]

    other = prepare("prep-mismatch", labels=session_labels())
    made = [b.cid for b in (other.thread.join(60) or other.boxes)]
    res = run_artifact(art, prepared=other, labels=session_labels(), limits=RigLimits(memory_mb=384))
    assert res.viable and not set(made) & set(res.container_ids)
    assert res.report.to_wire()["lanes"]["prepared"] is False
    assert wait_removed(60)
    assert not set(made + res.container_ids) & set(managed_containers())
