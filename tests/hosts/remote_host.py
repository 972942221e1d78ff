"""A stand-in remote rig host on this machine: a second dockerd in its own network
namespace (own data root, exec-root, pidfile, socket and cgroup parent) behind a
loopback-only sshd (own config and host key, key-only auth with a generated key,
``StreamLocalBindMask 0111``, ``ClientAliveInterval``).

Everything is started here and stopped by :meth:`RemoteHost.stop` -- also after a failed
start -- and every wait has a deadline. Needs root, dockerd, sshd, ssh-keygen, unshare.
``python -m tests.hosts.remote_host`` starts one, prints how to reach it, and stops it on
Enter (for trying `cambrian hosts` by hand).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from tests.ports import free_port

TOOLS = ("dockerd", "sshd", "ssh", "ssh-keygen", "unshare")
START_S = 60.0
STOP_S = 20.0


def missing_tools() -> list[str]:
    found = [shutil.which(t) or (os.path.exists(f"/usr/sbin/{t}") and f"/usr/sbin/{t}") for t in TOOLS]
    return [t for t, f in zip(TOOLS, found) if not f]


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "the stand-in remote host needs root (a second dockerd, sshd)"
    missing = missing_tools()
    if missing:
        return f"missing for the stand-in remote host: {', '.join(missing)} (apt: docker.io openssh-server openssh-client util-linux)"
    return None


def _wait(pred, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} not ready within {timeout:g}s"
                       f"{' (exited ' + str(proc.returncode) + ')' if proc and proc.poll() is not None else ''}:\n{tail}")


@dataclass
class RemoteHost:
    root: Path                      # everything of this host lives under here
    ssh_port: int = 0
    dockerd: subprocess.Popen | None = None
    sshd: subprocess.Popen | None = None

    # -- layout ----------------------------------------------------------------------
    @property
    def docker_sock(self) -> Path:  # the "remote" engine's socket (what the forward reaches)
        return self.root / "docker.sock"

    @property
    def key(self) -> Path:          # the client's private key
        return self.root / "client_key"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def url(self) -> str:
        return f"ssh://root@127.0.0.1:{self.ssh_port}"

    @property
    def cgroup_parent(self) -> str:
        return f"cambrian-remote-{self.root.name}"

    # -- start -----------------------------------------------------------------------
    @classmethod
    def start(cls, base: Path | None = None) -> "RemoteHost":
        # short paths: unix socket paths are limited to 107 bytes
        root = Path(tempfile.mkdtemp(prefix="cr-", dir=str(base) if base else "/tmp"))
        host = cls(root)
        try:
            host._start_dockerd()
            host._start_sshd()
        except BaseException:
            host.stop()
            raise
        return host

    def _start_dockerd(self) -> None:
        r = self.root
        (r / "daemon.json").write_text("{}\n")  # not the machine's /etc/docker/daemon.json
        log = r / "dockerd.log"
        argv = ["unshare", "--net", "--fork", "--kill-child", "--",
                "dockerd", "--config-file", str(r / "daemon.json"),
                "--data-root", str(r / "data"), "--exec-root", str(r / "x"),
                "--pidfile", str(r / "dockerd.pid"), "--host", f"unix://{self.docker_sock}",
                "--bridge", "none", "--iptables=false", "--ip-masq=false",
                "--cgroup-parent", self.cgroup_parent, "--log-level", "warn"]
        with open(log, "ab") as fh:
            self.dockerd = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=fh,
                                            start_new_session=True)
        _wait(self._engine_answers, START_S, "the second dockerd", self.dockerd, log)

    def _engine_answers(self) -> bool:
        if not self.docker_sock.exists():
            return False
        try:
            import docker

            docker.DockerClient(base_url=f"unix://{self.docker_sock}", timeout=5).ping()
            return True
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def client(self, timeout: int = 300):
        """A client straight on the stand-in's socket (for the fixture's own checks)."""
        import docker

        return docker.DockerClient(base_url=f"unix://{self.docker_sock}", timeout=timeout)

    def _start_sshd(self) -> None:
        r = self.root
        for name in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"cambrian-test-{name}",
                            "-f", str(r / name)], check=True, timeout=30, stdin=subprocess.DEVNULL)
        shutil.copy(r / "client_key.pub", r / "authorized_keys")
        os.chmod(r / "authorized_keys", 0o600)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        self.ssh_port = free_port()
        host_pub = (r / "host_key.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.ssh_port} {host_pub[0]} {host_pub[1]}\n")
        (r / "sshd_config").write_text("\n".join([
            f"Port {self.ssh_port}", "ListenAddress 127.0.0.1", f"HostKey {r / 'host_key'}",
            f"PidFile {r / 'sshd.pid'}", f"AuthorizedKeysFile {r / 'authorized_keys'}",
            "PubkeyAuthentication yes", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
            "UsePAM no", "StrictModes no", "AllowTcpForwarding yes",
            "AllowStreamLocalForwarding yes", "StreamLocalBindMask 0111",
            "StreamLocalBindUnlink yes", "ClientAliveInterval 2", "ClientAliveCountMax 3",
            "MaxSessions 50", "MaxStartups 50:30:100", "LogLevel ERROR",
            # the "remote" docker CLI reaches the stand-in engine
            f"SetEnv DOCKER_HOST=unix://{self.docker_sock}", ""]))
        log = r / "sshd.log"
        with open(log, "ab") as fh:
            self.sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(r / "sshd_config")],
                                         stdin=subprocess.DEVNULL, stdout=fh, stderr=fh,
                                         start_new_session=True)
        _wait(self._ssh_answers, START_S, "the loopback sshd", self.sshd, log)

    def ssh_argv(self, *remote: str) -> list[str]:
        return ["ssh", "-p", str(self.ssh_port), "-i", str(self.key), "-o", "IdentitiesOnly=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "root@127.0.0.1", "--", *remote]

    def _ssh_answers(self) -> bool:
        try:
            return subprocess.run(self.ssh_argv("true"), capture_output=True, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def load_image(self, tag: str) -> float:
        """`docker save | docker load` from the machine's engine into this one; seconds."""
        t0 = time.monotonic()
        save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
        try:
            load = subprocess.run(["docker", "-H", f"unix://{self.docker_sock}", "load", "-q"],
                                  stdin=save.stdout, capture_output=True, timeout=300)
        finally:
            assert save.stdout is not None
            save.stdout.close()
            save.wait(60)
        if save.returncode != 0 or load.returncode != 0:
            raise RuntimeError(f"docker save|load of {tag} failed: {load.stderr.decode()[-500:]}")
        return time.monotonic() - t0

    # -- stop ------------------------------------------------------------------------
    def stop(self) -> list[str]:
        """Stop everything; what had to be cleaned by force (for the fixture to report)."""
        notes: list[str] = []
        if self.dockerd is not None and self._engine_answers():
            try:
                cl = self.client(timeout=30)
                for c in cl.api.containers(all=True):
                    try:
                        cl.api.remove_container(c["Id"], force=True)
                    except Exception as exc:  # noqa: BLE001 - removed meanwhile (a rig removal)
                        if "No such container" not in str(exc) and "already in progress" not in str(exc):
                            raise
            except Exception as exc:  # noqa: BLE001 - stopping the engine still ends them
                notes.append(f"container cleanup: {exc}")
        for name in ("sshd", "dockerd"):
            proc = getattr(self, name)
            if proc is None or proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(STOP_S)
            except subprocess.TimeoutExpired:
                notes.append(f"{name} ignored SIGTERM for {STOP_S:g}s: killed")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(STOP_S)
            except ProcessLookupError:
                pass
        # containerd-shims and sshd's per-connection children live in other process groups:
        # anything still running with this host's folder in its command line is ours
        for pid in self._own_processes():
            notes.append(f"left-over process {pid} killed")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for mnt in self._own_mounts():
            subprocess.run(["umount", "-l", mnt], capture_output=True, timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)
        return notes

    def _own_processes(self) -> list[int]:
        mine = str(self.root).encode()
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if mine in fh.read():
                        out.append(int(entry))
            except OSError:
                continue
        return out

    def _own_mounts(self) -> list[str]:
        with open("/proc/self/mountinfo") as fh:
            points = [line.split()[4] for line in fh]
        return sorted((p for p in points if p.startswith(str(self.root) + "/")), key=len, reverse=True)

    def running(self) -> bool:
        return bool(self._own_processes())


if __name__ == "__main__":  # pragma: no cover - by hand
    from rig.image import image_tag

    h = RemoteHost.start()
    print(f"second engine up; image load took {h.load_image(image_tag()):.1f}s")
    print(f"cambrian hosts add {h.url} --identity {h.key} --known-hosts {h.known_hosts} "
          f"--docker-socket {h.docker_sock}")
    try:
        input("Enter stops it ")
    finally:
        print(h.stop())
