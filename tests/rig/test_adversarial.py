"""Hostile artifacts (tests/corpus/, ``"adversarial": true``): each must be contained,
get the right verdict for the right reason, and leave the host unaffected.

Docker only: the bwrap backend's weaker isolation is said loudly and not tested here.
Each test also checks what it can of the host: no container of the run survives, this
process's memory stays bounded, the host disk does not move, the host stays responsive.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
MiB = 1 << 20


def _load(name: str, path: Path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


harness = _load("cambrian_corpus_harness", CORPUS / "harness.py")
build = harness.build

pytestmark = pytest.mark.docker

ADVERSARIAL = [n for n in build.list_artifacts() if build.load_expected(n).get("adversarial")]


def known_bug(name: str):
    """xfail (not strict) for artifacts whose expected.json names an open rig bug, so the
    suite stays green for everyone while the verdict is still computed and printed.
    Remove ``known_rig_bug`` from the artifact's expected.json once the rig is fixed."""
    why = build.load_expected(name).get("known_rig_bug")
    return [pytest.mark.xfail(reason=why, strict=False)] if why else []


def corpus_param(name: str):
    return pytest.param(name, marks=known_bug(name), id=name)


@pytest.fixture(scope="module")
def docker_rig(rig_image):
    """Docker + the rig image (tests/rig/conftest.py: skipped without Docker unless
    CAMBRIAN_REQUIRE_DOCKER=1); afterwards no container of a corpus run may remain."""
    yield rig_image
    leftover = harness.leftover_containers()
    assert not leftover, f"containers labelled {harness.RIG_LABEL} left behind: {leftover}"


def _common_host_checks(run, mon=None):
    harness.assert_container_gone(run)
    if mon is not None:
        grew = (mon.rss_peak - mon.rss_start) / MiB
        assert grew < 300, f"{run.name}: host test process RSS grew by {grew:.0f} MiB"


def _all_output(run) -> str:
    rep = run.report
    parts = [run.report_json(), run.lines.text(), str(getattr(run.result, "rig_error", "") or "")]
    if rep is not None and rep.diagnostics is not None:
        parts += [rep.diagnostics.stdout_tail, rep.diagnostics.stderr_tail]
    return "\n".join(parts)


# --- resource exhaustion ----------------------------------------------------------


def test_fork_bomb_is_contained(tmp_path, docker_rig):
    with harness.HostMonitor(spawn_probe=True, interval=0.5) as mon:
        run = harness.run_artifact("fork_bomb", tmp_path)
    print(json.dumps(run.verdict(), indent=1, default=str), f"spawn max {mon.spawn_max:.2f}s")
    assert not mon.spawn_failures, f"host could not spawn processes during the bomb: {mon.spawn_failures[:3]}"
    assert mon.spawn_max < 5, f"host spawn latency {mon.spawn_max:.1f}s during the fork bomb"
    assert "refused=0" not in run.lines.text(), "the pids limit never refused a fork"
    harness.assert_as_expected(run)
    _common_host_checks(run, mon)


def test_memory_bomb_is_reported_as_oom(tmp_path, docker_rig):
    with harness.HostMonitor() as mon:
        run = harness.run_artifact("memory_bomb", tmp_path)
    print(json.dumps(run.verdict(), indent=1, default=str))
    assert run.report is not None and run.report.status == "non-viable"
    assert run.result.oom_killed is True, "OOM kill not reported as such"
    harness.assert_as_expected(run)
    _common_host_checks(run, mon)


def test_disk_fill_is_bounded_and_host_disk_untouched(tmp_path, docker_rig):
    paths = tuple(sorted({harness.docker_root_dir(), "/tmp", str(tmp_path)}))
    with harness.HostMonitor(disk_paths=paths) as mon:
        run = harness.run_artifact("disk_fill", tmp_path)
    print(json.dumps(run.verdict(), indent=1, default=str))
    # every place exists in the docker sandbox: each one was really filled, none skipped
    assert run.report.checks["test"].tests_skipped == 0, run.report.checks["test"].results
    for p in paths:
        during, after = mon.disk_drop(p)
        # Other work on this host may use some disk: allow slack, catch gigabytes.
        assert during < 1024 * MiB, f"host free space on {p} dropped by {during / MiB:.0f} MiB during the run"
        assert after < 256 * MiB, f"host free space on {p} is {after / MiB:.0f} MiB lower after the run"
    harness.assert_as_expected(run)
    _common_host_checks(run, mon)


def test_log_flood_is_bounded(tmp_path, docker_rig):
    paths = tuple(sorted({harness.docker_root_dir(), "/tmp"}))
    with harness.HostMonitor(disk_paths=paths, interval=0.1) as mon:
        run = harness.run_artifact("log_flood", tmp_path)
    v = run.verdict()
    v["forwarded_chars"], v["forwarded_lines"], v["longest_line"] = (
        run.lines.total_chars, run.lines.calls, run.lines.longest)
    v["rss_growth_mib"] = round((mon.rss_peak - mon.rss_start) / MiB)
    print(json.dumps(v, indent=1, default=str))
    # The artifact printed ~1 GiB: the rig must neither keep nor forward all of it.
    from rig.api import RigLimits

    cap = getattr(RigLimits(), "log_bytes", 2_000_000)
    assert run.lines.total_chars < 2 * cap + MiB, (
        f"forwarded {run.lines.total_chars / MiB:.1f} MiB of output (log_bytes {cap})")
    assert run.lines.longest <= 1 * MiB, f"forwarded a {run.lines.longest / MiB:.1f} MiB line"
    rep = run.report
    assert rep is not None
    if rep.diagnostics is not None:
        assert len(rep.diagnostics.stdout_tail) + len(rep.diagnostics.stderr_tail) < 1 * MiB
    assert len(run.report_json()) < 4 * MiB, "report is unbounded"
    for p in paths:
        during, after = mon.disk_drop(p)
        assert during < 1024 * MiB, f"host free space on {p} dropped by {during / MiB:.0f} MiB (logs kept on disk?)"
        assert after < 256 * MiB, f"host free space on {p} is {after / MiB:.0f} MiB lower after the run"
    harness.assert_as_expected(run)
    _common_host_checks(run, mon)


# --- escape and snooping ----------------------------------------------------------


def test_network_egress_is_blocked(tmp_path, docker_rig):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", 0))
    listener.listen(16)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    targets = {"gateway": harness.bridge_gateway(), "host_port": port}
    try:
        run = harness.run_artifact(
            "egress", tmp_path, extra_files={"egress_targets.json": json.dumps(targets).encode()})
        try:
            conn, peer = listener.accept()
        except BlockingIOError:
            peer = None
        else:
            conn.close()
    finally:
        listener.close()
    print(json.dumps(run.verdict(), indent=1, default=str), targets)
    assert peer is None, f"the sandbox connected to the host listener from {peer}"
    harness.assert_as_expected(run)
    _common_host_checks(run)


class _InspectWatcher:
    """While the rig runs, `docker inspect` every labelled container and keep its Env/Cmd."""

    def __init__(self):
        self.seen: dict[str, str] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            for cid in harness.labelled_containers():
                if cid in self.seen:
                    continue
                res = subprocess.run(["docker", "inspect", cid], capture_output=True, text=True, timeout=30)
                if res.returncode == 0:
                    self.seen[cid] = res.stdout
            self._stop.wait(0.3)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(timeout=30)


def test_secrets_never_reach_the_sandbox(tmp_path, docker_rig, monkeypatch):
    canary = f"cambrian-canary-{uuid.uuid4().hex}"
    api_key = f"sk-ant-REAL-LOOKING-{uuid.uuid4().hex}"
    monkeypatch.setenv("CAMBRIAN_TEST_SECRET", canary)
    monkeypatch.setenv("ANTHROPIC_API_KEY", api_key)
    with _InspectWatcher() as watch:
        run = harness.run_artifact("secrets", tmp_path, needles=(canary, api_key, "sk-ant-REAL", "CAMBRIAN_TEST_SECRET"),
                                   watch=("corpus environ:", "corpus start environ:"))
    print(json.dumps(run.verdict(), indent=1, default=str), f"inspected {len(watch.seen)} container(s)")
    everything = _all_output(run)
    for secret in (canary, api_key):
        assert secret not in everything, "a host secret leaked into the report or forwarded output"
        for cid, inspect in watch.seen.items():
            assert secret not in inspect, f"a host secret is in container {cid[:12]}'s configuration"
    assert not run.lines.needle_hits, f"secret-looking output forwarded: {run.lines.needle_hits[:3]}"
    # The dumps really happened and were forwarded (so the absence of secrets means something).
    assert run.lines.seen == {"corpus environ:", "corpus start environ:"}, run.lines.seen
    harness.assert_as_expected(run)
    _common_host_checks(run)


def test_writing_outside_the_workspace_fails(tmp_path, docker_rig):
    run = harness.run_artifact("write_outside", tmp_path)
    print(json.dumps(run.verdict(), indent=1, default=str))
    harness.assert_as_expected(run)
    _common_host_checks(run)


def test_privilege_escalation_fails(tmp_path, docker_rig):
    run = harness.run_artifact("privesc", tmp_path)
    print(json.dumps(run.verdict(), indent=1, default=str))
    harness.assert_as_expected(run)
    # the image has no sudo: that case is reported skipped, with its reason, not passed
    test = run.report.checks["test"]
    skipped = [r for r in test.results if r["outcome"] == "skipped"]
    assert test.tests_skipped == len(skipped) == 1, skipped
    assert "[argv0]" in skipped[0]["id"] and "sudo is not installed" in skipped[0]["message"]
    _common_host_checks(run)


# --- forging the verdict ------------------------------------------------------------


def test_forged_report_is_ignored(tmp_path, docker_rig):
    run = harness.run_artifact("forge_report", tmp_path)
    print(json.dumps(run.verdict(), indent=1, default=str))
    assert run.report is None or run.report.status == "non-viable", "a forged report was believed"
    harness.assert_as_expected(run)
    _common_host_checks(run)


@pytest.mark.parametrize("name", [corpus_param(n) for n in (
    "forge_fifo", "forge_inprocess", "forge_makereport",
    "forge_fifo_obfuscated", "forge_inprocess_obfuscated", "forge_makereport_helper")])
def test_forged_structured_results_are_not_believed(name, tmp_path, docker_rig):
    run = harness.run_artifact(name, tmp_path)
    print(json.dumps(run.verdict(), indent=1, default=str))
    assert run.report is not None
    assert run.report.status == "non-viable", f"{name}: a failing artifact was made viable by forging results"
    harness.assert_as_expected(run)
    _common_host_checks(run)


def test_fake_pass_counts_are_ignored(tmp_path, docker_rig):
    run = harness.run_artifact("fake_counts", tmp_path)
    print(json.dumps(run.verdict(), indent=1, default=str))
    harness.assert_as_expected(run)
    _common_host_checks(run)


def test_silent_exit_zero_is_not_a_pass(tmp_path, docker_rig):
    run = harness.run_artifact("forge_silent_exit", tmp_path)
    print(json.dumps(run.verdict(), indent=1, default=str))
    assert run.report is None or run.report.status == "non-viable", "exit 0 without results was a pass"
    harness.assert_as_expected(run)
    _common_host_checks(run)


# --- process control ------------------------------------------------------------------


def test_killing_everything_never_yields_a_pass(tmp_path, docker_rig):
    run = harness.run_artifact("killer", tmp_path)
    v = run.verdict()
    print(json.dumps(v, indent=1, default=str))
    assert run.report is not None, f"no report at all: {run.result.rig_error!r}"
    assert run.report.status == "non-viable", "the killer artifact (wrong /hello) was called viable"
    if run.result.rig_error:
        # The rig was disrupted: acceptable only when it says so.
        assert run.report.failure_stage != "none"
    else:
        harness.assert_as_expected(run)
    _common_host_checks(run)


def test_suicidal_killer_fails_the_test_stage_cleanly(tmp_path, docker_rig):
    run = harness.run_artifact("killer_suicide", tmp_path)
    print(json.dumps(run.verdict(), indent=1, default=str))
    assert run.report is not None and run.report.status == "non-viable"
    harness.assert_as_expected(run)
    _common_host_checks(run)


def test_daemon_is_killed_at_teardown(tmp_path, docker_rig):
    run = harness.run_artifact("daemon", tmp_path)
    print(json.dumps(run.verdict(), indent=1, default=str))
    out = run.lines.text()
    if "test-stage daemon alive at start: True" in out:
        print("NOTE: the test stage's daemon was still alive when the start stage began")
    harness.assert_as_expected(run)
    _common_host_checks(run)
    assert not harness.leftover_containers(), "a container of the run survived the daemon"


def test_forgotten_child_does_not_stall_the_test_stage(tmp_path, docker_rig):
    run = harness.run_artifact("leftover_child", tmp_path)
    print(json.dumps(run.verdict(), indent=1, default=str))
    harness.assert_as_expected(run)
    _common_host_checks(run)


def test_port_squatter_is_not_credited(tmp_path, docker_rig):
    run = harness.run_artifact("port_squatter", tmp_path)
    print(json.dumps(run.verdict(), indent=1, default=str))
    assert run.report is not None and run.report.status == "non-viable", \
        "a daemon left by the tests answered the health probes for a start command that never bound"
    harness.assert_as_expected(run)
    _common_host_checks(run)


@pytest.mark.parametrize("name", [corpus_param("slow_health")])
def test_trickling_health_response_is_bounded(name, tmp_path, docker_rig):
    run = harness.run_artifact(name, tmp_path)
    print(json.dumps(run.verdict(), indent=1, default=str))
    assert run.report is not None and run.report.status == "non-viable"
    harness.assert_as_expected(run)
    _common_host_checks(run)


# --- hostile file lists -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["symlink_file", "symlink_dir"])
def test_symlink_in_file_list_is_refused(name, tmp_path, docker_rig):
    run = harness.run_artifact(name, tmp_path)
    print(json.dumps(run.verdict(), indent=1, default=str))
    harness.assert_as_expected(run)
    assert "root:x:0:0" not in _all_output(run), "the host's /etc/passwd content reached the output"
    _common_host_checks(run)


def test_many_files_handled_or_refused_clearly(tmp_path, docker_rig):
    t0 = time.monotonic()
    run = harness.run_artifact("many_files", tmp_path)
    print(json.dumps(run.verdict(), indent=1, default=str), f"{time.monotonic() - t0:.0f}s")
    harness.assert_as_expected(run)
    _common_host_checks(run)


# --- every adversarial artifact has a test above ------------------------------------------


def test_every_adversarial_artifact_is_exercised():
    src = Path(__file__).read_text()
    missing = [n for n in ADVERSARIAL if f'"{n}"' not in src]
    assert not missing, f"adversarial artifacts without a test: {missing}"


def test_known_rig_bugs_are_adversarial_only():
    """Known-bug xfails are confined to the adversarial corpus: the plain corpus must pass."""
    for n in build.list_artifacts():
        exp = build.load_expected(n)
        if exp.get("known_rig_bug"):
            assert exp.get("adversarial"), n


def test_zz_no_rig_containers_left(docker_rig):
    leftover = harness.leftover_containers()
    assert not leftover, f"containers labelled {harness.RIG_LABEL} left behind: {leftover}"
