"""One OpenSSH forward per remote rig host, for one engine (or one `hosts check`).

The local end is <home>/run/<host>.<pid>.sock -- or, when that path is too long for a unix
socket (107 bytes), a folder under /tmp named after the home. ``docker_url`` brings a
dead forward back (rig/remote.py Forward.ensure)."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from core.hosts.config import Host
from rig.remote import Forward, ReverseSocket, SshOptions, SshTarget

SOCK_MAX = 100


def run_dir(home: Path) -> Path:
    d = Path(home) / "run"
    if len(str(d)) + 40 > SOCK_MAX:  # room for "/<name>.sock"
        d = Path("/tmp") / f"cambrian-run-{hashlib.sha256(str(home).encode()).hexdigest()[:12]}"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


class HostLinks:
    def __init__(self, home: Path):
        self.dir = run_dir(home)
        self.forwards: dict[str, Forward] = {}
        self.lock = threading.Lock()

    def forward(self, host: Host) -> Forward:
        with self.lock:
            fwd = self.forwards.get(host.name)
            if fwd is None or fwd.remote_sock != host.docker_socket:
                if fwd is not None:
                    fwd.stop()
                # one per process: engines of several campaigns and a `hosts check` in the
                # same home each keep their own forward (ssh unlinks a socket it rebinds)
                fwd = Forward(SshTarget.parse(host.url),
                              SshOptions(identity=host.identity, known_hosts=host.known_hosts),
                              self.dir / f"{host.name}.{os.getpid()}.sock", host.docker_socket,
                              log=self.dir / f"{host.name}.ssh.log")
                self.forwards[host.name] = fwd
            return fwd

    def docker_url(self, host: Host) -> str | None:
        """None for the local engine; the forwarded socket's URL (HostLinkError when the
        link cannot be made)."""
        if not host.remote:
            return None
        return self.forward(host).ensure()

    def reverse(self, host: Host, local_sock: Path, remote_dir: str) -> ReverseSocket:
        """The LLM gateway's socket made present on the host (not started)."""
        return ReverseSocket(SshTarget.parse(host.url),
                             SshOptions(identity=host.identity, known_hosts=host.known_hosts),
                             Path(local_sock), remote_dir, log=self.dir / f"{host.name}.rev.log")

    def close(self) -> None:
        with self.lock:
            for fwd in self.forwards.values():
                fwd.stop()
            self.forwards.clear()
        if self.dir.name.startswith("cambrian-run-"):  # the /tmp stand-in folder: gone when empty
            for log in self.dir.glob("*.log"):
                if not any(self.dir.glob("*.sock")):
                    log.unlink(missing_ok=True)
            try:
                self.dir.rmdir()
            except OSError:
                pass  # another process of this home still uses it
