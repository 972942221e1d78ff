"""Docker backend: one fresh hardened container per artifact; the host drives each
step as a separate ``exec`` and reads exit codes/outputs through the Docker API.

uids inside the container (no passwd entries needed, all numeric):
  10001  the organism: build, test, smoke, start and teardown run as this uid
  10002  the rig: the keeper process (PID 1's child under docker-init) and the
         trusted runner steps (syntax gate, the test-results collector, readiness + HTTP probes)

Findings this backend is built on (dockerd 20.10, cgroup v1; see rig/README.md):
  * ``put_archive`` is refused on a read-only-root container ("container rootfs is
    marked read-only"), also into tmpfs mounts and before start; ``get_archive`` does
    not see tmpfs contents. Files therefore stream through an exec's stdin into
    ``tar -x`` as uid 10001, and the runner's source travels in the exec's argv.
  * A tmpfs ``mode=`` is ignored when the image has the directory: /rig comes up 0755;
    the runner chmods it to 0700 (it owns it via ``uid=10002``).
  * An OOM kill of an exec'd process leaves ``State.OOMKilled`` false; the cgroup's
    ``memory.oom_control`` ``oom_kill`` counter is the reliable signal (read on the
    host when possible, else from inside by the runner).
  * An exec's output stream stays open up to ~2 s after its process exits when a
    background child holds the pipe; ``exec_inspect`` reports the exit at once.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from rig import runner as _runner
from rig.image import OFFLINE_BUILD_ENV
from rig.api import (GENERATION_LABEL, LABEL_KEY, RUN_LABEL, RigSetupError, StageTimeouts,
                     extra_labels)
from rig.backends import (ORGANISM_UID, RIG_UID, Backend, Execution, Job, LineSplitter)
from rig.steps import Step

RUNNER_PATH = Path(__file__).resolve().parent.parent / "runner.py"
RIG_PYTHON = "/opt/organism/bin/python3"
SITE_PACKAGES = "/opt/organism/lib/python3.11/site-packages"
PLUGIN_PKG = f"{SITE_PACKAGES}/{_runner.PLUGIN_MODULE}"
# the dist-info name follows the standard (normalized Name-Version): uv refuses
# to work in an environment holding one it cannot parse
PLUGIN_DIST = f"{SITE_PACKAGES}/cambrian_rig_results-1.dist-info"
ORGANISM_USER = f"{ORGANISM_UID}:{ORGANISM_UID}"
RIG_USER = f"{RIG_UID}:{RIG_UID}"
KILL_GRACE = 5.0
RUNNER_CAPTURE = 64_000_000
# fixed allowances of the steps that are not organism stages (inject, collector start and
# finish, trusted checks, teardown), summed generously
FIXED_STEPS_S = 600.0


def container_lifetime(timeouts: StageTimeouts) -> int:
    """Seconds the keeper (PID 1's child) may live: a backstop above every deadline the host
    enforces. The keeper normally ends much sooner: see :func:`keeper_command`."""
    t = timeouts
    return int(2 * (t.build + t.test) + t.smoke + t.start + t.health + t.manifest + FIXED_STEPS_S)


def keeper_command(timeouts: StageTimeouts) -> list[str]:
    """The container's main process: it reads stdin, which the orchestrator holds open
    through an attach (the "lifeline") for as long as it drives the container. When the
    orchestrator dies, even by SIGKILL, its end of the attach closes, Docker closes the
    container's stdin (StdinOnce), ``cat`` sees EOF and the container stops with every
    organism process in it, instead of running until the next engine's reconcile. The
    timeout is the backstop for a lifeline that never closes."""
    return ["timeout", str(container_lifetime(timeouts)), "cat"]


# one docker-py client per engine and process, shared by every run (its connection pool is
# thread-safe): making one costs two API round trips and ~25 ms, three times per run before
POOL_SIZE = 64  # concurrent streams of parallel runs share the pool; urllib3 warns beyond it
_CLIENTS: dict[tuple[str | None, str | None], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def docker_client(docker_url: str | None = None):
    """A new client on the local engine ($DOCKER_HOST or its socket), or on the one at
    ``docker_url`` (a rig host's forwarded socket, rig/remote.py)."""
    if docker_url is not None:
        from rig.remote import client_for

        return client_for(docker_url, max_pool_size=POOL_SIZE)
    from rig import image as _image

    return _image.docker_client(max_pool_size=POOL_SIZE)


def image_tag() -> str:
    """The rig image: $CAMBRIAN_RIG_IMAGE (development override) or rig.image's tag."""
    env = os.environ.get("CAMBRIAN_RIG_IMAGE")
    if env:
        return env
    from rig import image as _image

    return _image.image_tag()


def _client_or_raise(docker_url: str | None = None):
    """The engine's shared client, after a ping (so an engine that went away is reported,
    and a client whose connections went stale -- an engine restarted, a forward re-made --
    is replaced), or :class:`RigSetupError`."""
    key = (docker_url, None if docker_url else os.environ.get("DOCKER_HOST"))
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
    if client is not None:
        try:
            client.ping()
            return client
        except Exception:  # noqa: BLE001 - made afresh below, which reports the cause
            with _CLIENTS_LOCK:
                if _CLIENTS.get(key) is client:
                    del _CLIENTS[key]
    try:
        client = docker_client(docker_url)
        client.ping()
    except RigSetupError:
        raise
    except Exception as exc:
        raise RigSetupError(
            f"Docker engine{' at ' + docker_url if docker_url else ''} unreachable "
            f"({type(exc).__name__}: {exc}). Start dockerd, or "
            f"run with --backend bwrap (weaker isolation)") from exc
    with _CLIENTS_LOCK:
        return _CLIENTS.setdefault(key, client)


def _label_filter(only: dict[str, str] | None) -> list[str]:
    return [f"{LABEL_KEY}=1"] + [f"{k}={v}" for k, v in (only or {}).items()]


def managed_containers(only: dict[str, str] | None = None, docker_url: str | None = None) -> list[str]:
    client = _client_or_raise(docker_url)
    return [c["Id"] for c in client.api.containers(all=True, filters={"label": _label_filter(only)})]


def reconcile(live_run_ids: set[str], only: dict[str, str] | None = None,
              docker_url: str | None = None) -> list[str]:
    client = _client_or_raise(docker_url)
    removed = []
    for c in client.api.containers(all=True, filters={"label": _label_filter(only)}):
        run = (c.get("Labels") or {}).get(RUN_LABEL)
        if run in live_run_ids:
            continue
        try:
            client.api.remove_container(c["Id"], force=True, v=True)
        except Exception as exc:  # already gone is fine
            if "No such container" not in str(exc) and "is already in progress" not in str(exc):
                raise
        removed.append(c["Id"])
    return removed


class _Tail(_runner._Tail):
    pass


# --------------------------------------------------------------------------------------
# containers: created per run (or prepared ahead), removed off the critical path
# --------------------------------------------------------------------------------------

ROLE_LABEL = "cambrian.role"
ROLE_MAIN = "main"    # inject, build, test (and the rest when there is no probe lane)
ROLE_PROBE = "probe"  # the built state: smoke, start, readiness, probes -- while tests run


def host_config(api, limits) -> dict[str, Any]:
    from docker.types import LogConfig, Ulimit

    lim = limits
    mem = f"{int(lim.memory_mb)}m"
    fsize = int(lim.file_size_mb) * 1024 * 1024
    tmp = int(lim.tmpfs_mb)
    return api.create_host_config(
        init=True,
        network_mode="none",
        read_only=True,
        tmpfs={
            "/workspace": f"rw,exec,nosuid,nodev,size={tmp}m,uid={ORGANISM_UID},gid={ORGANISM_UID}",
            "/tmp": f"rw,exec,nosuid,nodev,size={tmp}m,mode=1777",
            "/rig": f"rw,noexec,nosuid,nodev,size=16m,uid={RIG_UID},gid={RIG_UID},mode=0700",
            # the results plugin: written by the rig uid, read-only for the organism
            PLUGIN_PKG: f"rw,noexec,nosuid,nodev,size=4m,uid={RIG_UID},gid={RIG_UID},mode=0755",
            PLUGIN_DIST: f"rw,noexec,nosuid,nodev,size=1m,uid={RIG_UID},gid={RIG_UID},mode=0755",
        },
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        pids_limit=int(lim.pids),
        mem_limit=mem,
        memswap_limit=mem,
        nano_cpus=int(float(lim.cpus) * 1e9),
        ulimits=[
            Ulimit(name="fsize", soft=fsize, hard=fsize),
            Ulimit(name="nofile", soft=1024, hard=1024),
            Ulimit(name="nproc", soft=int(lim.pids) * 8, hard=int(lim.pids) * 8),
            Ulimit(name="core", soft=0, hard=0),
        ],
        log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
        ipc_mode="private",
    )


def container_labels(run_id: str, generation: int | None, labels: dict[str, str],
                     role: str) -> dict[str, str]:
    out = extra_labels()
    out.update({str(k): str(v) for k, v in labels.items()})
    out.update({LABEL_KEY: "1", RUN_LABEL: run_id, ROLE_LABEL: role,
                GENERATION_LABEL: "" if generation is None else str(generation)})
    return out


def organism_base_env(generation: int | None) -> dict[str, str]:
    from rig.backends import PLACEHOLDER_API_KEY

    return {"ANTHROPIC_API_KEY": PLACEHOLDER_API_KEY,
            "CAMBRIAN_GENERATION": "" if generation is None else str(generation),
            "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1",
            "PATH": "/opt/organism/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            **OFFLINE_BUILD_ENV}


class Box:
    """One hardened container, created and started, with its lifeline attached."""

    def __init__(self, cid: str, lifeline: Any, lifeline_error: str | None, role: str,
                 spec: tuple):
        self.cid, self.lifeline, self.lifeline_error = cid, lifeline, lifeline_error
        self.role, self.spec = role, spec
        # execs started with the container, each waiting on its stdin (arm_box)
        self.armed: dict[str, ExecRun] = {}

    @property
    def collector(self) -> "ExecRun | None":
        return self.armed.get("collect")


class _On:
    """What an :class:`ExecRun` needs of a backend, for an exec made before any run owns the
    container (the armed execs of ``arm_box``)."""

    def __init__(self, api, cid: str) -> None:
        self.api, self.cid, self.job = api, cid, None


def collector_command(runner_source: str, timeout: float) -> list[str]:
    """The results collector (rig uid): installs the pytest plugin, makes the FIFO, says
    READY, and collects until the host closes its stdin or ``timeout`` passes."""
    args = {"fifo_parent": PLUGIN_PKG, "pkg_dir": PLUGIN_PKG, "dist_dir": PLUGIN_DIST,
            "workspace": "/workspace", "timeout": timeout}
    return [RIG_PYTHON, "-I", "-S", "-c", runner_source, "collect", json.dumps(args)]


def start_collector(backend: Any, timeout: float) -> "ExecRun":
    return ExecRun(backend, collector_command(RUNNER_PATH.read_text(encoding="utf-8"), timeout),
                   RIG_USER, "collect", forward=False, capture=RUNNER_CAPTURE, workdir="/rig",
                   keep_stdin=True)


INJECT_CMD = ["tar", "-x", "-f", "-", "-C", "/workspace", "--no-same-owner"]
# the build, armed: reads the generation (one line) and the command (the rest) from stdin;
# from there on it is the plain wrapper (_organism_wrapper) without its kill(-1): the build
# is the first organism step in a fresh container, where the only organism processes are
# the rig's own armed execs (the copy, done by then; the snapshot and the held test exec,
# which must live on)
ARMED_BUILD = ('IFS= read -r g; CAMBRIAN_GENERATION=$g; export CAMBRIAN_GENERATION; cmd=$(cat); '
               'sh -c "$cmd" </dev/null; exit $?')
# the built workspace, for the probe container: tar as the organism, once the rig sends a line
ARMED_SNAPSHOT = 'read -r _; exec tar -c -f - -C /workspace .'


def arm_box(api, box: Box, timeouts: StageTimeouts, limits) -> None:
    """Start, with the container, the execs a run needs first, each waiting on its stdin: an
    exec takes ~60 ms to come up, and a run then only feeds them (the main container: the
    results collector, the file copy, the build and the snapshot of the built workspace; the
    probe container: the copy of that snapshot). Nothing of the artifact exists yet, so
    nothing can touch them before they are fed; one that is gone by then is replaced by a
    fresh exec."""
    on = _On(api, box.cid)
    try:
        if box.role == ROLE_MAIN:
            # its deadline is only a backstop, like the keeper's lifetime
            box.armed["collect"] = start_collector(on, container_lifetime(timeouts))
            box.armed["build"] = ExecRun(on, ["sh", "-c", ARMED_BUILD, "rig-stage"],
                                         ORGANISM_USER, "build", forward=True, keep_stdin=True)
            box.armed["snapshot"] = ExecRun(on, ["sh", "-c", ARMED_SNAPSHOT, "rig-snapshot"],
                                            ORGANISM_USER, "snapshot", forward=False,
                                            capture=int(limits.tmpfs_mb) << 20, keep_stdin=True)
        box.armed["inject"] = ExecRun(on, INJECT_CMD, ORGANISM_USER, "inject", forward=False,
                                      keep_stdin=True)
    except Exception:  # noqa: BLE001 - the run makes what is missing itself
        pass


GATEWAY_MOUNT = "/cambrian-gw"  # the LLM gateway's socket folder inside a container (ro)


def create_box(api, run_id: str, generation: int | None, labels: dict[str, str], limits,
               timeouts: StageTimeouts, role: str, gateway_dir: str | None = None) -> Box:
    """Create, attach the lifeline to, and start one rig container. ``gateway_dir``: the
    engine-side folder of the LLM gateway's unix socket, mounted read-only (the container
    keeps network none: a socket is its one way out, and only to the gateway)."""
    hc = host_config(api, limits)
    if gateway_dir:
        hc["Binds"] = [f"{gateway_dir}:{GATEWAY_MOUNT}:ro"]
    try:
        cid = api.create_container(
            image_tag(), command=keeper_command(timeouts), user=RIG_USER,
            environment=organism_base_env(generation), working_dir="/workspace",
            labels=container_labels(run_id, generation, labels, role),
            host_config=hc,
            network_disabled=True, stop_signal="SIGKILL", stdin_open=True,
        )["Id"]
    except Exception as exc:
        raise RigSetupError(f"cannot create the rig container: {exc}") from exc
    lifeline, err = None, None
    try:
        lifeline = api.attach_socket(cid, params={"stdin": 1, "stream": 1})
    except Exception as exc:  # noqa: BLE001 - the lifetime backstop still stops an orphan
        err = f"{type(exc).__name__}: {exc}"
    try:
        api.start(cid)
    except Exception as exc:
        remove_later(api, cid, lifeline)
        raise RigSetupError(f"cannot start the rig container: {exc}") from exc
    box = Box(cid, lifeline, err, role,
              _spec_key(run_id, generation, labels, limits, timeouts, gateway_dir))
    arm_box(api, box, timeouts, limits)
    return box


def _spec_key(run_id, generation, labels, limits, timeouts, gateway_dir=None) -> tuple:
    # the generation is not part of it: organism execs carry CAMBRIAN_GENERATION themselves
    return (run_id, tuple(sorted((str(k), str(v)) for k, v in labels.items())),
            tuple(sorted(vars(limits).items())), gateway_dir, container_lifetime(timeouts), image_tag())


class _FutureBox:
    """A probe container being created in the background (while the main one works)."""

    def __init__(self, api, *args):
        self.box: Box | None = None
        self.error: str | None = None
        self.thread = threading.Thread(target=self._make, args=(api, *args), daemon=True,
                                       name="rig-probe-create")
        self.thread.start()

    def _make(self, api, run_id, generation, labels, limits, timeouts, gateway_dir=None) -> None:
        try:
            self.box = create_box(api, run_id, generation, labels, limits, timeouts, ROLE_PROBE,
                                  gateway_dir)
        except Exception as exc:  # noqa: BLE001 - then the main container does it all
            self.error = str(exc)

    def get(self, timeout: float = 60.0) -> Box | None:
        self.thread.join(timeout)
        return self.box


class Prepared:
    """The containers of a run, created ahead (``rig.api.prepare``): while an LLM call is in
    flight, or while the previous artifact is judged. A run takes them when they match it
    (run id, labels, limits, lifetime, image); otherwise they are removed and the run makes
    its own. Unused ones are removed by ``release``."""

    def __init__(self, run_id: str, generation: int | None, labels: dict[str, str], limits,
                 timeouts: StageTimeouts, gateway_dir: str | None = None,
                 docker_url: str | None = None):
        self.args = (run_id, generation, labels, limits, timeouts)
        self.docker_url = docker_url  # the engine the containers live on (None: local)
        self.gateway_dir = gateway_dir
        self.boxes: list[Box] = []
        self.error: str | None = None
        self.taken = False
        self.thread = threading.Thread(target=self._make, daemon=True, name="rig-prepare")
        self.thread.start()

    @property
    def run_id(self) -> str:
        return self.args[0]

    def _make(self) -> None:
        try:
            api = _client_or_raise(self.docker_url).api
            for role in (ROLE_MAIN, ROLE_PROBE):
                self.boxes.append(create_box(api, *self.args, role, self.gateway_dir))
        except Exception as exc:  # noqa: BLE001 - the run then creates its own
            self.error = str(exc)

    def take(self, job: Job) -> tuple[Box, Box] | None:
        self.thread.join(120.0)
        want = _spec_key(job.run_id, job.generation, job.labels, job.limits, job.timeouts,
                         job.reproduce.gateway_dir if job.reproduce else None)
        ok = (not self.taken and self.error is None and len(self.boxes) == 2
              and all(b.spec[:4] == want[:4] and b.spec[4] >= want[4] and b.spec[5] == want[5]
                      for b in self.boxes))  # same run, labels, limits, image; long enough
        if ok:  # still running? (a keeper outlives its lifetime only as long as it is used)
            try:
                api = _client_or_raise(self.docker_url).api
                col = self.boxes[0].collector  # a second one could not install the plugin
                ok = (all(api.inspect_container(b.cid)["State"].get("Running") for b in self.boxes)
                      and (col is None or not col.done.is_set()))
            except Exception:  # noqa: BLE001
                ok = False
        if not ok:
            self.release()
            return None
        self.taken = True
        return self.boxes[0], self.boxes[1]

    def release(self) -> None:
        self.thread.join(120.0)
        if not self.taken:
            self.taken = True
            try:
                api = _client_or_raise(self.docker_url).api if self.boxes else None
            except RigSetupError:
                if self.docker_url is None:
                    raise  # the local engine: the run reports it unreachable, as before
                return  # a rig host gone: its reconcile removes them when it is back
            for b in self.boxes:
                remove_later(api, b.cid, b.lifeline)


_REMOVALS: set[threading.Thread] = set()
_REMOVALS_LOCK = threading.Lock()


def remove_later(api, cid: str, lifeline: Any, on_error=None) -> None:
    """Remove a container off the critical path (the verdict is already assembled); the
    lifeline is cut last, after the removal. ``wait_removed`` joins what is pending."""
    def work() -> None:
        removed = False
        for _ in range(3):
            try:
                api.remove_container(cid, force=True, v=True)
                removed = True
                break
            except Exception as exc:  # noqa: BLE001
                if "No such container" in str(exc):
                    removed = True
                    break
                time.sleep(0.2)
        if not removed and on_error is not None:
            on_error(f"container {cid[:12]} could not be removed")
        _close_lifeline(lifeline)
        with _REMOVALS_LOCK:
            _REMOVALS.discard(threading.current_thread())

    th = threading.Thread(target=work, daemon=True, name=f"rig-remove-{cid[:12]}")
    with _REMOVALS_LOCK:
        _REMOVALS.add(th)
    th.start()


def wait_removed(timeout: float = 60.0) -> bool:
    """Join the pending removals; True when none is left."""
    deadline = time.monotonic() + timeout
    while True:
        with _REMOVALS_LOCK:
            pending = list(_REMOVALS)
        if not pending:
            return True
        for th in pending:
            th.join(max(0.0, deadline - time.monotonic()))
        if time.monotonic() >= deadline:
            with _REMOVALS_LOCK:
                return not _REMOVALS


atexit.register(wait_removed, 30.0)


def _oom_count_at(cgroup_file: str) -> int | None:
    try:
        with open(cgroup_file) as fh:
            for line in fh:
                k, _, v = line.partition(" ")
                if k == "oom_kill":
                    return int(v)
    except (OSError, ValueError):
        return None
    return None


def _close_lifeline(sock: Any) -> None:
    for s in (getattr(sock, "_sock", None), sock):  # the raw socket and docker-py's wrapper
        if s is not None:
            try:
                s.close()
            except OSError:
                pass


class ExecRun:
    """One exec: output streamed in a thread, deadline enforced by the host."""

    def __init__(self, backend: "DockerBackend", cmd: list[str], user: str, stage: str,
                 forward: bool, capture: int = 0, workdir: str = "/workspace",
                 stdin_data: bytes | None = None, env: dict[str, str] | None = None,
                 keep_stdin: bool = False):
        self.b, self.cmd, self.user, self.stage = backend, cmd, user, stage
        self.forward, self.capture_limit = forward, capture
        self.out_tail, self.err_tail = _Tail(), _Tail()
        self.captured = bytearray()
        self.capture_truncated = False
        self.error: str | None = None
        self.t0 = time.monotonic()
        self.keep_stdin = keep_stdin
        self.raw = None
        self.sock_ready = threading.Event()
        api = backend.api
        self.exec_id = api.exec_create(backend.cid, cmd, stdout=True, stderr=True,
                                       stdin=stdin_data is not None or keep_stdin, user=user,
                                       workdir=workdir, environment=env)["Id"]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._pump, args=(stdin_data,), daemon=True,
                                       name=f"rig-exec-{stage}")
        self.thread.start()

    def _pump(self, stdin_data: bytes | None) -> None:
        # made at the first output: an armed exec learns its run (and sink) when it is fed
        splitters: dict[int, LineSplitter] = {}
        try:
            if stdin_data is not None or self.keep_stdin:
                from docker.utils.socket import frames_iter

                sock = self.b.api.exec_start(self.exec_id, socket=True)
                raw = getattr(sock, "_sock", sock)
                self.raw = raw
                self.sock_ready.set()
                if stdin_data is not None:
                    raw.sendall(stdin_data)
                if not self.keep_stdin:
                    raw.shutdown(socket.SHUT_WR)
                chunks = ((data, None) if fd == 1 else (None, data)
                          for fd, data in frames_iter(sock, tty=False))
            else:
                chunks = self.b.api.exec_start(self.exec_id, stream=True, demux=True)
            for out, err in chunks:
                for fd, data in ((1, out), (2, err)):
                    if not data:
                        continue
                    (self.out_tail if fd == 1 else self.err_tail).add(data)
                    if fd == 1 and self.capture_limit:
                        room = self.capture_limit - len(self.captured)
                        if room > 0:
                            self.captured += data[:room]
                        if len(data) > room:
                            self.capture_truncated = True
                    if self.forward:
                        sp = splitters.get(fd)
                        if sp is None and getattr(self.b, "job", None) is not None:
                            sp = splitters[fd] = LineSplitter(self.b.job.sink,
                                                              "stdout" if fd == 1 else "stderr")
                        if sp is not None:
                            sp.feed(data)
        except Exception as exc:  # the stream broke: reported as a rig error if it matters
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            if self.forward:
                for s in splitters.values():
                    s.close()
            self.sock_ready.set()
            self.done.set()

    def adopt(self, backend: "DockerBackend", data: bytes) -> bool:
        """An armed exec joins ``backend``'s run: it is fed ``data`` and its stdin closed; its
        time counts from now. False when it is gone or the feed failed (make a new one)."""
        if self.done.is_set() or not self.sock_ready.wait(10.0) or self.raw is None:
            return False
        self.b = backend
        self.t0 = time.monotonic()
        try:
            self.raw.sendall(data)
            self.raw.shutdown(socket.SHUT_WR)
        except OSError:
            return False
        return True

    def close_stdin(self) -> None:
        """Signal EOF on the exec's stdin (the collector stops on it)."""
        self.sock_ready.wait(10.0)
        if self.raw is not None:
            try:
                self.raw.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def wait(self, timeout: float | None) -> bool:
        """True if the exec finished within timeout."""
        return self.done.wait(timeout)

    def running(self) -> bool:
        try:
            return bool(self.b.api.exec_inspect(self.exec_id).get("Running"))
        except Exception:
            return False

    def exit_code(self) -> int | None:
        for _ in range(50):
            info = self.b.api.exec_inspect(self.exec_id)
            if not info.get("Running"):
                return info.get("ExitCode")
            time.sleep(0.02)
        return None

    def never_started(self) -> bool:
        """runc could not start the process (e.g. the pids limit is exhausted): docker
        reports exit code 126 with no pid."""
        try:
            info = self.b.api.exec_inspect(self.exec_id)
        except Exception:
            return False
        return not info.get("Running") and info.get("ExitCode") == 126 and not info.get("Pid")

    def duration_ms(self) -> int:
        return int((time.monotonic() - self.t0) * 1000)


class DockerBackend(Backend):
    name = "docker"
    weaker_isolation = False

    def __init__(self, docker_url: str | None = None) -> None:
        # None: the local engine; else a rig host's forwarded socket (rig/remote.py). A
        # remote engine's pids mean nothing in our /proc: its OOM facts are read inside.
        self.docker_url = docker_url
        self.client = None
        self.api = None
        self.probe_box: Box | _FutureBox | None = None
        self.lane: _Lane | None = None
        self.reproduce_gate: threading.Event | None = None  # set in a lane: the tests passed
        self.reproduce_cancelled = False
        self.cid: str | None = None
        self.job: Job | None = None
        self.runner_source = RUNNER_PATH.read_text(encoding="utf-8")
        self.cgroup_file: str | None = None
        self.oom_base = 0
        self.oom_inside_seen = 0
        self.lifeline = None  # the attach that keeps the keeper alive (keeper_command)
        self.armed: dict[str, ExecRun] = {}  # the main box's (arm_box)
        self.armed_used = False  # the last organism step ran in an armed exec
        self.used_armed: list[str] = []  # for the report (lanes.armed)
        self.pending_test: ExecRun | None = None  # the held test exec, made during the build

    # -- setup ---------------------------------------------------------------------
    def check_available(self) -> None:
        self.client = _client_or_raise(self.docker_url)
        self.api = self.client.api
        tag = image_tag()
        try:
            self.api.inspect_image(tag)
        except Exception as exc:
            raise RigSetupError(
                f"rig image {tag} is missing: build it with `cambrian rig build-image` "
                f"(as root; `./cambrian` builds it on start)") from exc

    def host_config(self, job: Job) -> dict[str, Any]:
        return host_config(self.api, job.limits)

    def labels(self, job: Job) -> dict[str, str]:
        return container_labels(job.run_id, job.generation, job.labels, ROLE_MAIN)

    # -- execution -----------------------------------------------------------------
    def execute(self, job: Job) -> Execution:
        if self.api is None:
            self.check_available()
        self.job = job
        ex = Execution()
        sink = job.sink
        t0 = time.monotonic()
        sink.mark_origin()
        boxes = (job.prepared.take(job) if job.prepared is not None
                 and getattr(job.prepared, 'docker_url', None) == self.docker_url else None)
        if job.prepared is not None and boxes is None:
            job.prepared.release()  # made on another engine, or not matching: not ours to use
        if boxes is not None:
            main, self.probe_box = boxes
            ex.extra["prepared"] = True
        else:
            gw = job.reproduce.gateway_dir if job.reproduce else None
            main = create_box(self.api, job.run_id, job.generation, job.labels, job.limits,
                              job.timeouts, ROLE_MAIN, gw)  # RigSetupError when it cannot
            # the probe container comes up while the main one is filled and builds
            self.probe_box = None if job.stop_after_test or not job.parallel_start else _FutureBox(
                self.api, job.run_id, job.generation, job.labels, job.limits, job.timeouts, gw)
        self.cid, self.lifeline = main.cid, main.lifeline
        self.armed = main.armed
        ex.container_id = self.cid
        ex.container_ids = [self.cid]
        if main.lifeline_error:
            ex.extra["lifeline_error"] = main.lifeline_error
        try:
            self._run_stages(job, ex, t0)
        except Exception as exc:  # any unexpected failure is the rig's, never a pass
            if ex.rig_error is None:
                ex.rig_error = f"docker backend failed: {type(exc).__name__}: {exc}"
                ex.rig_error_stage = ex.rig_error_stage or self._current_stage(ex)
        finally:
            t1 = time.monotonic()
            self._finalize(ex)
            ex.stage_ms["remove"] = int((time.monotonic() - t1) * 1000)
        ex.first_output_ms = sink.first_output_ms()
        lane = self.lane if self.lane is not None and self.lane.adopted else None
        ex.extra["lanes"] = {"prepared": bool(ex.extra.get("prepared")),
                             "probe_lane": lane is not None,
                             # the execs that were up before their step (arm_box, the held test)
                             "armed": sorted(self.used_armed + (
                                 [f"probe:{n}" for n in lane.backend.used_armed] if lane else []))}
        return ex

    @staticmethod
    def _current_stage(ex: Execution) -> str:
        if "start" in ex.steps or "smoke" in ex.steps:
            return "start"
        if "test" in ex.steps:
            return "test"
        return "build"

    def _run_stages(self, job: Job, ex: Execution, t0: float) -> None:
        self._locate_cgroup()  # (create_box started the container)
        self.ex = ex
        self.gate_args = {"workspace": "/workspace", "files": [f for f in job.files if f.endswith(".py")]}
        # the results collector (rig uid) comes up first: its interpreter's start-up shares
        # the container's CPU quota, better with the file copy than with the build
        col = self.armed.get("collect")
        if col is not None and not col.done.is_set():
            self.collector = col
            self.used_armed.append("collect")
        else:
            self.collector = self._start_collector(job)
        # files in: tar through stdin, extracted by the organism uid
        ts = time.monotonic()
        r = self._armed_or_new("inject", job.tar_bytes(), INJECT_CMD, ORGANISM_USER)
        if not r.wait(60.0) or r.exit_code() != 0 or r.error:
            ex.rig_error = (f"could not place the artifact in the container: "
                            f"{r.error or r.err_tail.text()}{self._container_note()}")
            ex.rig_error_stage = "build"
            self.collector.close_stdin()
            return
        ex.stage_ms["setup"] = int((time.monotonic() - t0) * 1000)
        ex.stage_ms["inject"] = int((time.monotonic() - ts) * 1000)
        _runner.run_sequence(self, stop_after_test=job.stop_after_test)

    def _armed_or_new(self, name: str, stdin: bytes, cmd: list[str], user: str) -> "ExecRun":
        """The armed exec ``name`` fed ``stdin``, or a new one when there is none (left)."""
        run = self.armed.pop(name, None)
        if run is not None and run.adopt(self, stdin):
            self.used_armed.append(name)
            return run
        return ExecRun(self, cmd, user, name, forward=False, stdin_data=stdin)

    # -- the ops rig.runner.run_sequence drives (the one stage sequence) ----------------
    def _lane_wanted(self) -> bool:
        job = self.job
        return self.probe_box is not None and not job.stop_after_test and job.parallel_start

    def build(self) -> bool:
        job = self.job
        armed = self.armed.pop("build", None)
        if armed is not None and not armed.done.is_set() and self._lane_wanted():
            # the test exec comes up while the build runs (an armed build kills nothing)
            self.pending_test = self._held_test_exec()
        step = self._organism_step("build", job.entry["build"], job.timeouts.build, armed=armed)
        if not self.armed_used:
            # a fresh build exec killed every organism process first: these are gone
            self.pending_test = None
            self.armed.pop("snapshot", None)
        return self.ex.add(step).ok

    def gate(self) -> bool:
        if "gate" in self.ex.steps:
            return self.ex.steps["gate"].ok
        self.collector.close_stdin()  # a collector still waiting for a test that never comes
        self._trusted_check(self.ex, self.gate_args, None)
        gate = self.ex.steps.get("gate")
        return bool(gate and gate.ok)

    def test(self) -> bool:
        job, ex = self.job, self.ex
        if not self._collector_ready(self.collector, ex):
            return False
        hold = None
        if self._lane_wanted():
            snap = self.armed.pop("snapshot", None)
            if snap is not None and snap.adopt(self, b"\n"):
                self.used_armed.append("snapshot")
            else:
                snap = self._begin_snapshot()

            def hold(test_run: ExecRun) -> None:
                # the test exec is up (made during the build) or comes up while the snapshot
                # is taken; it starts nothing of the organism's before the snapshot is
                # complete (it gets its line)
                archive = self._finish_snapshot(snap)
                test_run.adopt(self, b"\n")
                if archive is not None:
                    self.lane = _Lane(self, self.probe_box, archive)
        step = ex.add(self._organism_step("test", job.entry["test"], job.timeouts.test,
                                          env=self._test_env(), hold=hold,
                                          armed=self.pending_test if hold else None))
        res = self._collector_result(self.collector, ex)
        if res is None:
            return False
        ex.add(Step("results", ok=bool(res.get("found")), duration_ms=res["_ms"], data=res))
        return _runner.test_passed({"ok": step.ok}, res, structured=job.on(_runner.STRUCTURED_COUNTS))

    @staticmethod
    def _test_env() -> dict[str, str]:
        return {"PYTEST_ADDOPTS": "-p no:cacheprovider -rfEP", _runner.STAGE_ENV: "test"}

    def _held_test_exec(self) -> "ExecRun":
        job = self.job
        return ExecRun(self, self._organism_wrapper(job.entry["test"], held=True), ORGANISM_USER,
                       "test", forward=True, keep_stdin=True,
                       env={"CAMBRIAN_GENERATION": str(job.generation), **self._test_env()})

    def smoke(self) -> bool:
        job = self.job
        if self._adopt_lane():
            return self.ex.steps["smoke"].ok or not job.on(_runner.IMPORT_SMOKE)
        if job.smoke_modules:
            step = self._organism_step(
                "smoke", None, job.timeouts.smoke,
                argv=["python", "-c", _runner.SMOKE_SOURCE, json.dumps(job.smoke_modules)],
                capture=1_000_000)
            step.data = {"modules": job.smoke_modules,
                         "failures": _runner.parse_smoke_output(self.last_capture)}
        else:
            step = Step("smoke", ok=True, data={"modules": []})
        self.ex.add(step)
        return step.ok or not job.on(_runner.IMPORT_SMOKE)

    def start_and_probe(self) -> None:
        if self.lane is not None and self.lane.adopted:
            return  # the probe lane already started and probed the built state
        self._start_and_probe(self.job, self.ex, self.gate_args)

    # -- the probe lane: start and probes in a second container while the tests run ------
    def _begin_snapshot(self) -> ExecRun:
        """Snapshot the built workspace for the probe container, where a lane runs the rest
        of the sequence (smoke, gate, start, readiness, probes, teardown) while the tests
        run here. Its results count only if the tests pass; any trouble with it and the main
        container does that part itself, as before."""
        return ExecRun(self, ["tar", "-c", "-f", "-", "-C", "/workspace", "."], ORGANISM_USER,
                       "snapshot", forward=False, capture=int(self.job.limits.tmpfs_mb) << 20)

    def _finish_snapshot(self, snap: ExecRun) -> bytes | None:
        if not snap.wait(60.0) or snap.exit_code() != 0 or snap.error or snap.capture_truncated:
            self.job.sink.rig("[rig] probe lane: no snapshot of the built workspace; start "
                              "runs here after the tests")
            return None
        return bytes(snap.captured)

    def _adopt_lane(self) -> bool:
        lane = self.lane
        if lane is None:
            return False
        to = self.job.timeouts
        lane.backend.reproduce_gate.set()  # we are here because the tests passed
        extra = (self.job.reproduce.timeout + 90.0) if self.job.reproduce is not None else 0.0
        if not lane.join(to.smoke + to.start + to.health + 120.0 + extra) or lane.error:
            self.job.sink.rig(f"[rig] probe lane unusable ({lane.error or 'did not finish'}); "
                              f"start runs in the main container")
            self.lane = None
            return False
        lb = lane.backend
        lane.buffer.replay(self.job.sink)  # its output, in order, after the tests'
        for step in lb.ex.steps.values():
            self.ex.add(step)
        if "offspring_files" in lb.ex.extra:
            self.ex.extra["offspring_files"] = lb.ex.extra["offspring_files"]
        for k in ("start", "health", "reproduce", "teardown"):
            if k in lb.ex.stage_ms:
                self.ex.stage_ms[k] = lb.ex.stage_ms[k]
        if lb.ex.rig_error and self.ex.rig_error is None:
            self.ex.rig_error = f"probe container: {lb.ex.rig_error}"
            self.ex.rig_error_stage = lb.ex.rig_error_stage or "start"
        lane.adopted = True
        return True

    def teardown(self) -> None:
        if "teardown" not in self.ex.steps:
            self._teardown_into(self.ex)

    # -- the results collector -------------------------------------------------------
    def _start_collector(self, job: Job) -> ExecRun:
        return start_collector(self, job.timeouts.build + job.timeouts.test + 120.0)

    def _collector_ready(self, run: ExecRun, ex: Execution) -> bool:
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            if b"READY\n" in run.captured[:16]:
                return True
            if run.done.is_set():
                break
            time.sleep(0.01)
        ex.rig_error = (f"the results collector did not come up: {run.error or ''} "
                        f"{run.err_tail.text()[-800:]}{self._container_note()}")
        ex.rig_error_stage = "test"
        run.close_stdin()
        return False

    def _collector_result(self, run: ExecRun, ex: Execution) -> dict[str, Any] | None:
        t0 = time.monotonic()
        run.close_stdin()
        if not run.wait(30.0):
            ex.rig_error = "the results collector did not finish"
            ex.rig_error_stage = "test"
            return None
        raw = bytes(run.captured)
        try:
            head, body = raw.split(b"\n", 1)
            data = json.loads(body.decode("utf-8"))
            if head != b"READY" or not isinstance(data, dict):
                raise ValueError("unexpected collector output")
        except ValueError as exc:
            ex.rig_error = (f"the results collector crashed (exit {run.exit_code()}): {exc}; "
                            f"{run.err_tail.text()[-800:]}{self._container_note()}")
            ex.rig_error_stage = "test"
            return None
        data["_ms"] = int((time.monotonic() - t0) * 1000)
        return data

    def _trusted_check(self, ex: Execution, gate_args: dict[str, Any],
                       health_args: dict[str, Any] | None,
                       timeout: float = 60.0) -> dict[str, Any] | None:
        """The syntax gate, then -- only when it is clean or not enforced -- readiness and
        the probes, in one trusted exec (fewer execs)."""
        enforce = self.job.on(_runner.SYNTAX_GATE)
        data = self._runner_step("check", {"gate": gate_args, "health": health_args,
                                           "gate_blocks": enforce},
                                 timeout=timeout, ex=ex, stage="build")
        if data is None:
            # the gate's facts are missing: the first unverified stage is build
            ex.rig_error_stage = "build"
            return None
        g = data.get("gate") or {}
        ex.add(Step("gate", ok=bool(g.get("ok")), duration_ms=int(g.get("ms", 0)), data=g))
        return data

    def _teardown_into(self, ex: Execution) -> None:
        t1 = time.monotonic()
        ex.add(self._teardown())
        ex.stage_ms["teardown"] = int((time.monotonic() - t1) * 1000)

    def _organism_wrapper(self, cmd: str, marker: str | None = None,
                          held: bool = False) -> list[str]:
        # kill(-1) first: nothing left over from an earlier stage (daemons included) may
        # serve or interfere with this one. Linux's kill(-1) spares the caller.
        # "; exit $?" keeps this shell alive as the parent (no exec of the last command),
        # so the marker argument stays visible in /proc while the command runs.
        # held: nothing runs before the rig sends a line on stdin (a leftover that releases it
        # early only makes the kill(-1) come early, which ends the rig's own organism-uid work
        # with it: the snapshot fails and start runs after the tests, as without a lane)
        # (one line, not EOF: a leftover holding the pipe open cannot stall the step)
        if held:
            return ["sh", "-c", 'read -r _; kill -9 -1 2>/dev/null; sh -c "$1" </dev/null; '
                    'exit $?', marker or "rig-stage", cmd]
        return ["sh", "-c", 'kill -9 -1 2>/dev/null; sh -c "$1"; exit $?', marker or "rig-stage",
                cmd]

    def _organism_step(self, name: str, cmd: str | None, timeout: float,
                       env: dict[str, str] | None = None, argv: list[str] | None = None,
                       capture: int = 0, hold: Any = None,
                       armed: "ExecRun | None" = None) -> Step:
        """One organism step; with ``capture``, its stdout is kept in ``self.last_capture``.
        ``hold(run)``: rig work done while the exec comes up; the step's process waits for a
        line on its stdin (``hold`` sends it) before it kills leftovers and runs ``cmd``, and
        its timeout counts from then. ``armed``: an exec already up, used instead of a new
        one: with ``hold``, a held exec of this step; else an ``ARMED_BUILD``, fed the
        generation and ``cmd`` (``self.armed_used`` says whether it was)."""
        job = self.job
        job.sink.rig(f"[rig] {name}: {(cmd or ' '.join(argv[:1]) + ' <smoke check>')[:300]}")
        if argv is not None:
            argv = ["sh", "-c", 'kill -9 -1 2>/dev/null; exec "$@"', "rig-stage"] + argv
        oom_before = self._oom_count()
        env = {"CAMBRIAN_GENERATION": str(job.generation), **(env or {})}
        self.armed_used = False
        for attempt in range(3):
            held = hold is not None and attempt == 0
            if (attempt == 0 and not held and armed is not None and cmd is not None
                    and not capture
                    and armed.adopt(self, f"{env['CAMBRIAN_GENERATION']}\n{cmd}".encode())):
                run = armed
                self.armed_used = True
                self.used_armed.append(name)
            else:
                if held and armed is not None and not armed.done.is_set():
                    run = armed  # a held exec made ahead (_held_test_exec)
                    self.used_armed.append(name)
                else:
                    full = argv or self._organism_wrapper(cmd, held=held)
                    run = ExecRun(self, full, ORGANISM_USER, name, forward=True,
                                  capture=capture, env=env, keep_stdin=held)
                if held:
                    hold(run)
                    run.t0 = time.monotonic()  # the step's time is the command's
            finished = run.wait(timeout)
            if finished and run.never_started() and attempt < 2:
                job.sink.rig(f"[rig] {name}: the exec could not start (pids exhausted by "
                             f"leftovers?); clearing organism processes and retrying")
                self._rescue_pids(bump=attempt >= 1)
                continue
            break
        timed_out = not finished
        if timed_out:
            job.sink.rig(f"[rig] {name}: timed out after {timeout:g}s, killing every organism process")
            self._kill_uid(ORGANISM_USER)
            run.wait(KILL_GRACE)
        code = run.exit_code()
        step = Step(name, ok=(code == 0 and not timed_out and run.error is None),
                    exit_code=code, timed_out=timed_out, duration_ms=run.duration_ms(),
                    stdout_tail=run.out_tail.text(), stderr_tail=run.err_tail.text(),
                    output_bytes=run.out_tail.total + run.err_tail.total)
        self.last_capture = bytes(run.captured) if capture else b""
        if run.error and not timed_out:
            step.rig_error = f"exec stream failed: {run.error}"
        self._note_oom(step, oom_before, code)
        return step

    def _runner_step(self, name: str, args: dict[str, Any], timeout: float, ex: Execution,
                     stage: str) -> dict[str, Any] | None:
        doc = json.dumps(args)
        stdin = None
        hidden = any((args.get("health") or {}).get("probes", {}).get(k)
                     for k in _runner.HIDDEN_KINDS)
        # argv is readable by every uid in /proc/<pid>/cmdline: hidden probes (their
        # expectations) travel on stdin; so does anything near the argument size limit
        if hidden or len(doc) > 60_000:
            doc, stdin = "-", doc.encode("utf-8")
        cmd = [RIG_PYTHON, "-I", "-S", "-c", self.runner_source, name, doc]
        for attempt in range(3):
            run = ExecRun(self, cmd, RIG_USER, name, forward=False, capture=RUNNER_CAPTURE,
                          workdir="/rig", stdin_data=stdin)
            done = run.wait(timeout)
            if done and run.never_started() and attempt < 2:
                self._rescue_pids(bump=attempt >= 1)
                continue
            break
        if not done:
            # no kill here: killing uid 10002 would take the keeper down; teardown and the
            # container's removal end the runner
            ex.rig_error = f"rig runner step {name!r} exceeded {timeout:g}s"
            ex.rig_error_stage = stage
            return None
        code = run.exit_code()
        try:
            data = json.loads(bytes(run.captured).decode("utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            ex.rig_error = (f"rig runner step {name!r} crashed (exit {code}): no report "
                            f"({exc}); stderr: {run.err_tail.text()[-800:]}{self._container_note()}")
            ex.rig_error_stage = stage
            return None
        if code != 0:
            ex.rig_error = f"rig runner step {name!r} exited {code}: {run.err_tail.text()[-800:]}"
            ex.rig_error_stage = stage
            return None
        data["_ms"] = run.duration_ms()
        return data

    def _start_and_probe(self, job: Job, ex: Execution, gate_args: dict[str, Any],
                         retried: bool = False) -> None:
        to = job.timeouts
        marker = f"rig-start-{os.urandom(8).hex()}"
        job.sink.rig(f"[rig] start: {job.entry['start'][:300]}")
        oom_before = self._oom_count()
        env = {"CAMBRIAN_GENERATION": str(job.generation)}
        if job.reproduce is not None:
            env.update(job.reproduce.organism_env())
        start = ExecRun(self, self._organism_wrapper(job.entry["start"], marker), ORGANISM_USER,
                        "start", forward=True, env=env)
        args = {"port": job.port, "health_path": job.health_path, "vectors": job.vectors,
                "contracts": job.contracts, "generation": job.generation,
                "ready_timeout": to.start, "health_timeout": to.health, "marker": marker,
                "endpoint_rule": job.on(_runner.HEALTH_ENDPOINT), "probes": job.probes}
        data = self._trusted_check(ex, gate_args, args, timeout=to.start + to.health + 60.0)
        if not retried and start.done.is_set() and start.never_started():
            job.sink.rig("[rig] start: the exec could not start (pids exhausted by leftovers?); "
                         "clearing organism processes and retrying")
            self._rescue_pids(bump=True)
            ex.rig_error = None
            ex.rig_error_stage = None
            return self._start_and_probe(job, ex, gate_args, retried=True)
        if data is not None and "health_step" not in data:
            # the syntax gate already decided the verdict: nothing was probed
            ex.add(self._teardown())
            return
        probe = data.get("health_step") if data is not None else None
        alive_after = start.running()
        start_code = None if alive_after else start.exit_code()
        if job.reproduce is not None and probe is not None and alive_after:
            h = probe.get("health") or {}
            ready_ok = (probe.get("ready") or {}).get("ready")
            if ready_ok and h and _runner.health_ok(h, job.gate_kinds) and self._may_reproduce():
                ex.add(self._reproduce(job, ex))
                alive_after = start.running()
                start_code = None if alive_after else start.exit_code()
        # teardown: kill every organism process (setsid'd daemons included) and verify
        t1 = time.monotonic()
        td = self._teardown()
        start.wait(KILL_GRACE)
        ex.stage_ms["teardown"] = int((time.monotonic() - t1) * 1000)
        if probe is None:
            ex.add(self._start_step(start, {"ready": False, "error": ex.rig_error}, None))
            ex.add(td)
            return
        ready = probe.get("ready") or {}
        step = self._start_step(start, ready, start_code)
        self._note_oom(step, oom_before, start_code)
        ex.stage_ms["start"] = ready.get("ms", 0)
        ex.add(step)
        if ready.get("ready"):
            h = probe.get("health") or {}
            h["process_alive_after"] = alive_after
            if not alive_after and job.on(_runner.PROCESS_ALIVE):
                h["error"] = (f"the start process exited with code {start_code} "
                              f"during the health probes")
            hs = Step("health", ok=_runner.health_ok(h, job.gate_kinds) if h else False,
                      duration_ms=h.get("ms", 0), data=h, oom=step.oom,
                      stdout_tail=step.stdout_tail, stderr_tail=step.stderr_tail)
            ex.stage_ms["health"] = h.get("ms", 0)
            ex.add(hs)
        ex.add(td)

    def _may_reproduce(self) -> bool:
        """In the probe lane, only once the tests have passed in the main container (no
        model call is paid for an artifact its own tests fail); elsewhere they have."""
        gate = self.reproduce_gate
        if gate is None:
            return True
        return gate.wait(self.job.timeouts.test + self.job.timeouts.build + 120.0) and not self.reproduce_cancelled

    def _reproduce(self, job: Job, ex: Execution) -> Step:
        """Ask the viable offspring to breed: the rig's forwarder serves the gateway on the
        container's loopback, trusted code POSTs the generate path, and the artifact the
        offspring writes is collected (as organism data: it is judged later, in a fresh
        container, like any other)."""
        r = job.reproduce
        t0 = time.monotonic()
        job.sink.rig(f"[rig] reproduce: POST {r.path} with its own spec, generation {r.generation}")
        fwd = ExecRun(self, [RIG_PYTHON, "-I", "-S", "-c", self.runner_source, "forward",
                             json.dumps({"socket": f"{GATEWAY_MOUNT}/{r.socket_name}",
                                         "port": r.port, "timeout": r.timeout + 60})],
                      RIG_USER, "forward", forward=False, capture=65536, workdir="/rig",
                      keep_stdin=True)
        data: dict[str, Any] = {"path": r.path, "generation": r.generation}
        deadline = time.monotonic() + 30
        while b"READY" not in bytes(fwd.captured[:16]) and not fwd.done.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        if b"READY" not in bytes(fwd.captured[:16]):
            data["error"] = f"the gateway forwarder did not come up: {fwd.err_tail.text()[-300:]}"
            return Step("reproduce", ok=False, duration_ms=int((time.monotonic() - t0) * 1000),
                        data=data, rig_error=data["error"])
        ans = self._runner_step("reproduce", {"port": job.port, "path": r.path, "spec": r.spec,
                                              "generation": r.generation, "timeout": r.timeout},
                                timeout=r.timeout + 30.0, ex=ex, stage="health")
        fwd.close_stdin()
        fwd.wait(10.0)
        data.update({k: v for k, v in (ans or {}).items() if k in ("status", "error", "ms", "body", "body_excerpt")})
        files, why = {}, None
        if ans is not None and ans.get("status") == 200:
            out = f"{r.output_dir}/gen-{r.generation}"
            snap = ExecRun(self, ["tar", "-c", "-f", "-", "-C", out, "."], ORGANISM_USER, "collect",
                           forward=False, capture=int(job.limits.tmpfs_mb) << 20)
            if not snap.wait(60.0) or snap.exit_code() != 0 or snap.capture_truncated:
                why = f"no artifact at {out}: {snap.err_tail.text()[-300:].strip() or 'tar failed'}"
            else:
                files, why = _offspring_files(bytes(snap.captured))
        elif ans is not None:
            why = f"{r.path} answered {ans.get('status')}: {ans.get('error') or (ans.get('body') or {}).get('message') or ans.get('body_excerpt')}"
        else:
            why = "the reproduction request did not complete"
        data["files"] = sorted(files)
        if why:
            data["why"] = why
        ex.extra["offspring_files"] = files
        # the engine adds this to the grand-offspring's judging: what reproduction costs
        ex.stage_ms["reproduce"] = int((time.monotonic() - t0) * 1000)
        return Step("reproduce", ok=bool(files) and not why,
                    duration_ms=ex.stage_ms["reproduce"], data=data)

    def _start_step(self, start: ExecRun, ready: dict[str, Any], code: int | None) -> Step:
        ok = bool(ready.get("ready"))
        return Step("start", ok=ok, exit_code=code,
                    timed_out=(not ok and not ready.get("exited") and code is None),
                    duration_ms=int(ready.get("ms") or 0), data={"ready": ready},
                    stdout_tail=start.out_tail.text(), stderr_tail=start.err_tail.text())

    def _teardown(self) -> Step:
        t0 = time.monotonic()
        for attempt in range(3):
            run = ExecRun(self, [RIG_PYTHON, "-I", "-S", "-c", _runner.TEARDOWN_SOURCE, "3"],
                          ORGANISM_USER, "teardown", forward=False, capture=200_000, workdir="/")
            ok = run.wait(15.0)
            if ok and run.never_started() and attempt < 2:
                self._rescue_pids(bump=attempt >= 1)
                continue
            break
        code = run.exit_code() if ok else None
        try:
            data = json.loads(bytes(run.captured).decode() or "{}")
        except ValueError:
            data = {}
        return Step("teardown", ok=ok and code == 0, exit_code=code,
                    duration_ms=int((time.monotonic() - t0) * 1000), data=data)

    def _rescue_pids(self, bump: bool) -> None:
        """Free the pids a fork bomb holds: kill(-1) as the organism uid. When even that
        exec cannot start, raise the container's pids limit for the moment it takes
        (kill(-1) cannot race with fork), then restore it."""
        limit = None
        if bump:
            try:
                limit = self.api.inspect_container(self.cid)["HostConfig"]["PidsLimit"]
                self.api._post_json(self.api._url("/containers/{0}/update", self.cid),
                                    data={"PidsLimit": int(limit) + 4096}).raise_for_status()
            except Exception:
                limit = None
        try:
            for _ in range(3):
                r = ExecRun(self, ["sh", "-c", "kill -9 -1"], ORGANISM_USER, "rescue",
                            forward=False, workdir="/")
                if r.wait(10.0) and not r.never_started():
                    break
        finally:
            if limit is not None:
                try:
                    self.api._post_json(self.api._url("/containers/{0}/update", self.cid),
                                        data={"PidsLimit": int(limit)}).raise_for_status()
                except Exception:
                    pass

    def _kill_uid(self, user: str) -> None:
        try:
            r = ExecRun(self, ["sh", "-c", "kill -9 -1"], user, "kill", forward=False, workdir="/")
            r.wait(10.0)
        except Exception:
            pass

    def _container_note(self) -> str:
        """Explain an exec failure caused by the container itself going away."""
        try:
            state = self.api.inspect_container(self.cid).get("State") or {}
        except Exception:
            return " (the rig container was removed from outside the rig, e.g. by another reconcile)"
        if not state.get("Running"):
            return (f" (the rig container is no longer running: status {state.get('Status')}, "
                    f"exit {state.get('ExitCode')}; killed from outside the rig?)")
        return ""

    # -- OOM -----------------------------------------------------------------------
    def _locate_cgroup(self) -> None:
        """The container's OOM counter file in this machine's cgroup tree -- only for the
        local engine, and only when the pid's cgroup path names the container (a pid from
        another engine, or one reused since, points at an unrelated process). Otherwise
        ``cgroup_file`` stays None and OOM kills are read inside the container."""
        if self.docker_url is not None:
            return
        try:
            pid = self.api.inspect_container(self.cid)["State"]["Pid"]
            with open(f"/proc/{pid}/cgroup") as fh:
                lines = fh.read().splitlines()
        except (OSError, KeyError, Exception):
            return
        for line in lines:
            _, ctrls, path = line.split(":", 2)
            if self.cid not in path:
                continue
            if "memory" in ctrls.split(","):
                cand = f"/sys/fs/cgroup/memory{path}/memory.oom_control"
                if os.access(cand, os.R_OK):
                    self.cgroup_file = cand
                    return
            if ctrls == "":
                cand = f"/sys/fs/cgroup{path}/memory.events"
                if os.access(cand, os.R_OK):
                    self.cgroup_file = cand

    def _oom_count(self) -> int | None:
        return _oom_count_at(self.cgroup_file) if self.cgroup_file else None

    def _note_oom(self, step: Step, before: int | None, code: int | None) -> None:
        after = self._oom_count()
        if before is not None and after is not None and after > before:
            step.oom = True
        elif before is None and code == 137:
            # no host view of the cgroup (a remote engine): ask inside, counting only the
            # kills since the last look
            count = self._oom_count_inside()
            if count is not None and count > self.oom_inside_seen:
                step.oom = True
                self.oom_inside_seen = count

    def _oom_count_inside(self) -> int | None:
        """The container's own oom_kill counter (cgroup v1 or v2), read by the rig uid."""
        try:
            r = ExecRun(self, ["cat", "/sys/fs/cgroup/memory/memory.oom_control",
                               "/sys/fs/cgroup/memory.events"], RIG_USER,
                        "oom", forward=False, capture=4096, workdir="/")
            r.wait(10.0)
            for line in bytes(r.captured).decode(errors="replace").splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        except Exception:  # noqa: BLE001 - no answer: the exit code alone decides nothing
            return None
        return None

    # -- finalization ----------------------------------------------------------------
    def _finalize(self, ex: Execution) -> None:
        """Container facts first (a stopped container's cgroup, and with it the OOM counter,
        is gone), then removal -- off the critical path: the verdict does not wait for it."""
        if not self.cid:
            return
        self._container_facts(ex, self.cid, self.cgroup_file, "container_state")
        for step in ex.steps.values():
            if step.oom:
                ex.oom_killed = True
                ex.oom_stage = ex.oom_stage or step.name

        def note(err: str) -> None:
            ex.extra["remove_error"] = err

        remove_later(self.api, self.cid, self.lifeline, note)
        self.lifeline = None
        lane = getattr(self, "lane", None)
        probe = self.probe_box.get(0.0) if isinstance(self.probe_box, _FutureBox) else self.probe_box
        # a lane not adopted (the tests failed) is abandoned: removing its container ends it
        if probe is not None:
            if lane is not None and lane.adopted:
                self._container_facts(ex, probe.cid, lane.backend.cgroup_file, "probe_container_state")
            remove_later(self.api, probe.cid, probe.lifeline, note)
            ex.container_ids.append(probe.cid)
        elif isinstance(self.probe_box, _FutureBox):
            self._release_future(self.probe_box)

    def _release_future(self, fut: "_FutureBox") -> None:
        """Remove a probe container still being created once it exists; ``wait_removed``
        joins this too (an engine leaving after an abort must not orphan it)."""
        def later() -> None:
            try:
                box = fut.get(120.0)
                if box is not None:
                    remove_later(self.api, box.cid, box.lifeline)
            finally:
                with _REMOVALS_LOCK:
                    _REMOVALS.discard(threading.current_thread())

        th = threading.Thread(target=later, daemon=True, name="rig-probe-release")
        with _REMOVALS_LOCK:
            _REMOVALS.add(th)
        th.start()

    def _container_facts(self, ex: Execution, cid: str, cgroup_file: str | None, key: str) -> None:
        try:
            info = self.api.inspect_container(cid)
            state = info.get("State") or {}
            if state.get("OOMKilled"):
                ex.oom_killed = True
            if cgroup_file and _oom_count_at(cgroup_file):
                ex.oom_killed = True
            ex.extra[key] = {k: state.get(k) for k in ("Status", "ExitCode", "OOMKilled")}
            if key == "container_state":
                logs = self.api.logs(cid, stdout=True, stderr=True, tail=100)
                ex.extra["container_logs"] = logs[-4096:].decode("utf-8", "replace")
        except Exception as exc:  # noqa: BLE001
            ex.extra["finalize_error"] = f"{type(exc).__name__}: {exc}"

    def _cut_lifeline(self) -> None:
        _close_lifeline(self.lifeline)
        self.lifeline = None


class _BufferSink:
    """Holds a lane's live output until the main sequence reaches it, so that the log
    reads test output, then start output -- not the two interleaved."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []
        self.lock = threading.Lock()

    def line(self, stream: str, text: str) -> None:
        with self.lock:
            self.events.append(("line", stream, text))

    def rig(self, text: str) -> None:
        with self.lock:
            self.events.append(("rig", text))

    def replay(self, sink: Any) -> None:
        with self.lock:
            events, self.events = self.events, []
        for ev in events:
            if ev[0] == "line":
                sink.line(ev[1], ev[2])
            else:
                sink.rig(ev[1])


class _Lane:
    """The probe lane: a DockerBackend driving the probe container from the built state."""

    def __init__(self, main: DockerBackend, box: Box | _FutureBox, archive: bytes):
        import dataclasses

        self.buffer = _BufferSink()
        b = self.backend = DockerBackend(main.docker_url)
        b.client, b.api, b.runner_source = main.client, main.api, main.runner_source
        b.job = dataclasses.replace(main.job, sink=self.buffer)
        b.ex = Execution()
        b.gate_args = main.gate_args
        b.reproduce_gate = threading.Event()
        self.error: str | None = None
        self.adopted = False
        self.thread = threading.Thread(target=self._run, args=(box, archive), daemon=True,
                                       name="rig-probe-lane")
        self.thread.start()

    def _run(self, box: Box | _FutureBox, archive: bytes) -> None:
        b = self.backend
        try:
            box = box.get(60.0) if isinstance(box, _FutureBox) else box
            if box is None:
                self.error = "no probe container"
                return
            b.cid = box.cid  # its lifeline and removal stay with the main backend
            b._locate_cgroup()
            b.armed = box.armed
            r = b._armed_or_new("inject", archive, INJECT_CMD, ORGANISM_USER)
            if not r.wait(60.0) or r.exit_code() != 0 or r.error:
                self.error = f"the built workspace did not unpack: {r.error or r.err_tail.text()[-300:]}"
                return
            if b.smoke():
                b.start_and_probe()
            else:
                b.teardown()
        except Exception as exc:  # noqa: BLE001 - the main container does it instead
            self.error = f"{type(exc).__name__}: {exc}"

    def join(self, timeout: float) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()


def _offspring_files(tar_bytes: bytes) -> tuple[dict[str, bytes], str | None]:
    """An offspring's artifact from a tar the organism wrote: regular files only, relative
    safe paths, bounded; anything else is a reason, never an exception."""
    import io
    import tarfile

    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
            for m in tar.getmembers():
                name = m.name[2:] if m.name.startswith("./") else m.name
                if m.isdir() or name in ("", "."):
                    continue
                if not m.isfile():
                    return {}, f"the offspring's artifact holds a non-file: {name}"
                parts = name.split("/")
                if name.startswith("/") or ".." in parts or "\x00" in name:
                    return {}, f"the offspring's artifact holds an unsafe path: {name!r}"
                if len(files) >= 5000:
                    return {}, "the offspring's artifact holds more than 5000 files"
                f = tar.extractfile(m)
                files[name] = f.read() if f is not None else b""
    except (tarfile.TarError, OSError) as exc:
        return {}, f"the offspring's artifact could not be read: {exc}"
    if "manifest.json" not in files:
        return {}, "the offspring wrote no manifest.json"
    return files, None
