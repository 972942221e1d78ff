"""Remote rig hosts: one OpenSSH unix-socket forward per host, and the host's preflight.

docker-py talks to a remote engine through ``ssh -N -L <local.sock>:<remote docker.sock>``:
at local speed, with the rig's stdin half-close intact. (docker-py's own ``ssh://``
transport was measured ~3x slower under concurrency, leaves ``dial-stdio`` processes
behind, and with ``use_ssh_client`` breaks the half-close; rig/README.md "Remote hosts".)

This module knows nothing of the home or the engine: core/hosts.py keeps the host list.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

DEFAULT_REMOTE_SOCKET = "/var/run/docker.sock"
FORWARD_WAIT_S = 20.0
CLOCK_SKEW_MAX_S = 30.0


class HostLinkError(RuntimeError):
    """The link to a rig host is down or cannot be made (never a verdict on an artifact)."""


@dataclass
class SshTarget:
    user: str | None
    host: str
    port: int | None

    @classmethod
    def parse(cls, url: str) -> "SshTarget":
        parts = urlsplit(url)
        if parts.scheme != "ssh" or not parts.hostname:
            raise ValueError(f"not an ssh://[user@]host[:port] address: {url!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"an ssh host address has no path or query: {url!r}")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port in {url!r}") from exc
        return cls(parts.username, parts.hostname, port)

    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host


@dataclass
class SshOptions:
    """What ssh needs beyond the user's own ~/.ssh/config (all optional)."""

    identity: str | None = None
    known_hosts: str | None = None
    extra: list[str] = field(default_factory=list)

    def args(self, target: SshTarget) -> list[str]:
        out = ["-o", "BatchMode=yes", "-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=3",
               "-o", "ConnectTimeout=10"]
        if target.port:
            out += ["-p", str(target.port)]
        if self.identity:
            out += ["-i", self.identity, "-o", "IdentitiesOnly=yes"]
        if self.known_hosts:
            out += ["-o", f"UserKnownHostsFile={self.known_hosts}",
                    "-o", "StrictHostKeyChecking=yes"]
        return out + list(self.extra)


def ssh_command(target: SshTarget, opts: SshOptions, remote_cmd: list[str]) -> list[str]:
    """An argv running ``remote_cmd`` on the host (quoted for the remote shell)."""
    return ["ssh", *opts.args(target), target.destination(), "--",
            " ".join(shlex.quote(a) for a in remote_cmd)]


class Forward:
    """``ssh -N -L local_sock:remote_sock``, restarted when it dies (``ensure``).

    The ssh process runs in its own session, so stopping it reaches nothing else; the
    local socket is removed before each start (ssh refuses to bind over a stale one)."""

    def __init__(self, target: SshTarget, opts: SshOptions, local_sock: Path,
                 remote_sock: str = DEFAULT_REMOTE_SOCKET, log: Path | None = None):
        self.target, self.opts = target, opts
        self.local_sock = Path(local_sock)
        self.remote_sock = remote_sock
        self.log = log or self.local_sock.with_suffix(".ssh.log")
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.restarts = 0
        self.starts = 0  # a run that began under another start saw its link go down

    @property
    def docker_url(self) -> str:
        return f"unix://{self.local_sock}"

    def argv(self) -> list[str]:
        return ["ssh", "-N", *self.opts.args(self.target), "-o", "ExitOnForwardFailure=yes",
                "-o", "StreamLocalBindUnlink=yes",
                "-L", f"{self.local_sock}:{self.remote_sock}", self.target.destination()]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.local_sock.exists()

    def ensure(self, timeout: float = FORWARD_WAIT_S) -> str:
        """Start (or restart) the forward when it is not up; the docker URL once the local
        socket accepts connections. HostLinkError with ssh's own words otherwise."""
        with self.lock:
            if self.alive() and _connectable(self.local_sock):
                return self.docker_url
            if self.proc is not None:
                self.restarts += 1
            self._stop_locked()
            self.local_sock.parent.mkdir(parents=True, exist_ok=True)
            try:
                self.local_sock.unlink()
            except FileNotFoundError:
                pass
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=log, start_new_session=True)
            self.starts += 1
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if _connectable(self.local_sock):
                    return self.docker_url
                time.sleep(0.05)
            ended = self.proc.poll() is not None
            self._stop_locked()
            raise HostLinkError(f"ssh forward to {self.target.destination()} "
                                + ("failed" if ended else f"did not come up within {timeout:g}s")
                                + f": {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no ssh output)"
        return " | ".join(text[-3:]) or "(no ssh output)"

    def stop(self) -> None:
        with self.lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5.0)
        try:
            self.local_sock.unlink()
        except FileNotFoundError:
            pass


def _connectable(path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


# --------------------------------------------------------------------------------------
# docker clients and preflight
# --------------------------------------------------------------------------------------

def client_for(docker_url: str | None, timeout: int = 120, max_pool_size: int = 10):
    """A docker-py client on ``docker_url`` (a forwarded unix socket), or the local engine."""
    import docker

    if docker_url is None:
        return docker.from_env(timeout=timeout, max_pool_size=max_pool_size)
    return docker.DockerClient(base_url=docker_url, timeout=timeout, max_pool_size=max_pool_size)


def engine_facts(client) -> dict[str, Any]:
    """What a report records about the engine that judged it (and preflight checks)."""
    info = client.info()
    ver = client.version()
    return {"engine_id": info.get("ID"), "name": info.get("Name"),
            "docker": ver.get("Version"), "api": ver.get("ApiVersion"),
            "kernel": info.get("KernelVersion"), "os": info.get("OperatingSystem"),
            "cgroup_version": info.get("CgroupVersion"), "cgroup_driver": info.get("CgroupDriver"),
            "cpus": info.get("NCPU"), "memory": info.get("MemTotal"),
            "root_dir": info.get("DockerRootDir"), "labels": info.get("Labels") or [],
            "system_time": info.get("SystemTime")}


def clock_skew_s(system_time: str | None) -> float | None:
    """Seconds between the engine's clock and ours (None when it did not say)."""
    if not system_time:
        return None
    from datetime import datetime, timezone

    import re

    # Docker prints nanoseconds; fromisoformat takes at most microseconds
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", system_time)
    if not m:
        return None
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        theirs = datetime.fromisoformat(f"{m.group(1)}.{(m.group(2) or '0')[:6].ljust(6, '0')}{tz}")
    except ValueError:
        return None
    return abs((datetime.now(timezone.utc) - theirs).total_seconds())


def image_id(client, tag: str) -> str | None:
    import docker.errors

    try:
        return client.api.inspect_image(tag)["Id"]
    except docker.errors.ImageNotFound:
        return None


def push_image(local, remote, tag: str, progress: Callable[[str], None] | None = None,
               chunk: int = 1 << 20) -> dict[str, Any]:
    """``docker save`` on the local engine streamed into ``docker load`` on the remote one
    through the forwarded socket (the same SSH link): the same image id arrives. Returns
    {"bytes", "seconds", "id"}; raises HostLinkError when the id differs afterwards."""
    want = local.api.inspect_image(tag)["Id"]
    t0 = time.monotonic()
    sent = [0]
    last = [0.0]

    def stream():
        raw = local.api.get_image(tag, chunk_size=chunk)
        for piece in raw:
            sent[0] += len(piece)
            now = time.monotonic()
            if progress and now - last[0] >= 1.0:
                last[0] = now
                progress(f"pushing {tag}: {sent[0] / 1e6:.0f} MB in {now - t0:.0f}s")
            yield piece

    for msg in remote.api.load_image(stream(), quiet=True) or ():
        if isinstance(msg, dict) and msg.get("error"):
            raise HostLinkError(f"docker load on the host failed: {msg['error']}")
    got = image_id(remote, tag)
    secs = time.monotonic() - t0
    if got != want:
        raise HostLinkError(f"image push of {tag} ended with id {got}, expected {want}")
    if progress:
        progress(f"pushed {tag}: {sent[0] / 1e6:.0f} MB in {secs:.1f}s, id {want[:19]}")
    return {"bytes": sent[0], "seconds": round(secs, 2), "id": want}


class ReverseSocket:
    """The engine's LLM gateway socket made present on a rig host: ``ssh -N -R
    <remote dir>/<name>:<local socket>``, in a folder of its own there (bind-mounted
    read-only into the run's container, as the local gateway folder is). The host's sshd
    needs ``StreamLocalBindMask 0111`` so that the container's uid may connect, and
    ``AllowStreamLocalForwarding`` (the default)."""

    def __init__(self, target: SshTarget, opts: SshOptions, local_sock: Path, remote_dir: str,
                 name: str = "gw.sock", log: Path | None = None):
        self.target, self.opts = target, opts
        self.local_sock = Path(local_sock)
        self.remote_dir = remote_dir.rstrip("/")
        self.remote_sock = f"{self.remote_dir}/{name}"
        self.log = log or self.local_sock.with_suffix(".rev.log")
        self.proc: subprocess.Popen | None = None

    def _ssh(self, *cmd: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return subprocess.run(ssh_command(self.target, self.opts, list(cmd)), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def start(self, timeout: float = FORWARD_WAIT_S) -> str:
        """The remote folder holding the socket, once the socket is there (HostLinkError)."""
        try:
            r = self._ssh("mkdir", "-p", "-m", "0755", self.remote_dir)
        except subprocess.TimeoutExpired as exc:
            raise HostLinkError(f"mkdir on {self.target.destination()} timed out") from exc
        if r.returncode != 0:
            raise HostLinkError(f"cannot make {self.remote_dir} on {self.target.destination()}: "
                                f"{r.stderr.strip()[-300:]}")
        argv = ["ssh", "-N", *self.opts.args(self.target), "-o", "ExitOnForwardFailure=yes",
                "-o", "StreamLocalBindUnlink=yes", "-R", f"{self.remote_sock}:{self.local_sock}",
                self.target.destination()]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if self._ssh("test", "-S", self.remote_sock, timeout=10).returncode == 0:
                    return self.remote_dir
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.2)
        self.stop()
        raise HostLinkError(f"reverse forward of the LLM gateway to {self.target.destination()} "
                            f"did not come up")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5.0)
            except ProcessLookupError:
                pass
        try:
            self._ssh("rm", "-rf", self.remote_dir, timeout=15)
        except (subprocess.TimeoutExpired, OSError):
            pass  # the host is gone: nothing more to do from here
