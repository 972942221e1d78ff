"""The home's rig hosts, in <home>/hosts.json (a small config file people may read; every
write goes through a lock and an atomic rename). Without the file there is one host,
``local``, with the machine's cores as slots -- what the engine did before hosts existed."""

from __future__ import annotations

import fcntl
import json
import os
import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

LOCAL = "local"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
DRAIN_AFTER = 3  # infrastructure failures in a row before a host is drained (K)


class HostError(ValueError):
    """Bad host input (the message says what and how to fix it); nothing was changed."""


@dataclass
class Host:
    name: str
    url: str                      # "local" or ssh://[user@]host[:port]
    slots: int | None = None      # None: the host's cores (learned by `check`)
    identity: str | None = None   # ssh -i
    known_hosts: str | None = None
    docker_socket: str = "/var/run/docker.sock"  # the engine's socket on that host
    facts: dict[str, Any] = field(default_factory=dict)  # from the last passing check
    failures: int = 0             # infrastructure failures in a row
    drained: str | None = None    # why the engine stopped using it (None: in use)

    @property
    def remote(self) -> bool:
        return self.url != LOCAL

    def effective_slots(self) -> int:
        if self.slots:
            return self.slots
        return int(self.facts.get("cpus") or os.cpu_count() or 1)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def default_name(url: str) -> str:
    from rig.remote import SshTarget

    t = SshTarget.parse(url)
    base = re.sub(r"[^a-z0-9-]+", "-", t.host.lower()).strip("-") or "host"
    return f"{base}-{t.port}" if t.port else base


def parse_new(url: str, name: str | None = None, slots: int | None = None,
              identity: str | None = None, known_hosts: str | None = None,
              docker_socket: str | None = None) -> Host:
    """A host entry from user input, or HostError saying what is wrong."""
    if url == LOCAL:
        name = name or LOCAL
        if name != LOCAL:
            raise HostError("the local engine is always named `local`")
    else:
        from rig.remote import SshTarget

        try:
            SshTarget.parse(url)
        except ValueError as exc:
            raise HostError(f"{exc}; e.g. ssh://builder@10.0.0.5 or ssh://me@box:2222") from exc
        name = name or default_name(url)
        if name == LOCAL:
            raise HostError("`local` names this machine's engine; pick another --name")
    if not NAME_RE.match(name):
        raise HostError(f"host name {name!r}: lowercase letters, digits and '-', at most 32")
    if slots is not None and slots < 1:
        raise HostError("slots must be at least 1")
    for label, path in (("identity", identity), ("known-hosts", known_hosts)):
        if path and not Path(path).expanduser().is_file():
            raise HostError(f"--{label} {path}: no such file")
    if docker_socket is not None and not docker_socket.startswith("/"):
        raise HostError("--docker-socket is an absolute path on the host")
    return Host(name=name, url=url, slots=slots,
                identity=str(Path(identity).expanduser().resolve()) if identity else None,
                known_hosts=str(Path(known_hosts).expanduser().resolve()) if known_hosts else None,
                docker_socket=docker_socket or "/var/run/docker.sock")


class HostBook:
    """Read and change <home>/hosts.json."""

    def __init__(self, home: Path):
        self.home = Path(home)
        self.path = self.home / "hosts.json"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.home / ".hosts.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _read(self) -> list[Host]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return [Host(LOCAL, LOCAL)]
        except json.JSONDecodeError as exc:
            raise HostError(f"{self.path} is not valid JSON ({exc}): fix or remove it") from exc
        known = set(Host.__dataclass_fields__)
        return [Host(**{k: v for k, v in h.items() if k in known}) for h in raw.get("hosts", [])]

    def _write(self, hosts: list[Host]) -> None:
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"hosts": [h.to_json() for h in hosts]}, indent=2) + "\n")
        os.replace(tmp, self.path)

    def hosts(self) -> list[Host]:
        with self._locked():
            return self._read()

    def get(self, name: str) -> Host:
        for h in self.hosts():
            if h.name == name:
                return h
        raise HostError(f"no rig host named {name!r} (see `cambrian hosts list`)")

    def add(self, host: Host) -> Host:
        with self._locked():
            # without the file `local` is implicit: adding it (e.g. with --slots) makes it explicit
            hosts = self._read() if self.path.exists() or host.name != LOCAL else []
            if any(h.name == host.name for h in hosts):
                raise HostError(f"a rig host named {host.name!r} exists: remove it first or pick --name")
            if host.remote and any(h.url == host.url and h.docker_socket == host.docker_socket for h in hosts):
                raise HostError(f"{host.url} is already a rig host")
            hosts.append(host)
            self._write(hosts)
        return host

    def remove(self, name: str) -> None:
        with self._locked():
            hosts = self._read()
            if not any(h.name == name for h in hosts):
                raise HostError(f"no rig host named {name!r}")
            self._write([h for h in hosts if h.name != name])

    def update(self, name: str, **changes: Any) -> Host:
        with self._locked():
            hosts = self._read()
            for h in hosts:
                if h.name == name:
                    for k, v in changes.items():
                        setattr(h, k, v)
                    self._write(hosts)
                    return h
        raise HostError(f"no rig host named {name!r}")

    def note_failure(self, name: str, reason: str, drain_after: int = DRAIN_AFTER) -> Host | None:
        """One more infrastructure failure in a row; drained at ``drain_after``."""
        with self._locked():
            hosts = self._read()
            for h in hosts:
                if h.name == name:
                    h.failures += 1
                    if h.failures >= drain_after and not h.drained:
                        h.drained = f"{h.failures} infrastructure failures in a row; last: {reason}"
                    self._write(hosts)
                    return h
        return None  # removed meanwhile

    def note_success(self, name: str) -> None:
        with self._locked():
            hosts = self._read()
            for h in hosts:
                if h.name == name and h.failures:
                    h.failures = 0
                    self._write(hosts)
