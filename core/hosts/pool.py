"""The engine's rig slots across hosts, and what an infrastructure failure does.

A run takes a slot on the host with the most free slots (no other policy). When the run
ends without a clean verdict -- an exception from the rig, or a rig error -- the host is
looked at again (forward up, Docker answering, the rig image there, the run's containers
not killed from outside). If the host is at fault the run was no attempt: the pool counts
a failure against the host (drained after K in a row, recorded in hosts.json with the
reason) and the engine runs the same artifact again on another host. A drained host
rejoins after a passing `cambrian hosts check`.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from core.hosts.config import DRAIN_AFTER, LOCAL, Host, HostBook
from core.hosts.links import HostLinks

# phrases of the rig's own note on a container that vanished or stopped under it
# (DockerBackend._container_note); only the rig error is searched, never artifact output
KILLED_OUTSIDE = ("removed from outside the rig", "killed from outside the rig?")
OUTSIDE_PREFIX = "the run's container on"
FACT_KEYS = ("docker", "api", "kernel", "os", "cgroup_version", "cgroup_driver", "cpus")


class NoHostLeft(RuntimeError):
    """Every rig host is drained or busy failing: the rig cannot judge now."""


@dataclass
class Lease:
    host: Host
    docker_url: str | None
    facts: dict[str, Any] = field(default_factory=dict)
    link_start: int = 0  # which start of the host's forward the run began under

    @property
    def name(self) -> str:
        return self.host.name

    def report_block(self) -> dict[str, Any]:
        """What a report records about where it was judged."""
        return {"name": self.host.name, "url": self.host.url,
                **{k: self.facts.get(k) for k in FACT_KEYS if self.facts.get(k) is not None}}


class HostPool:
    def __init__(self, home: Path, *, drain_after: int = DRAIN_AFTER,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None):
        self.home = Path(home)
        self.book = HostBook(home)
        self.links = HostLinks(home)
        self.drain_after = drain_after
        self.busy: dict[str, int] = {}
        self.cond = asyncio.Condition()
        self.on_event = on_event or (lambda _k, _d: None)
        self.facts: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    @staticmethod
    def configured(home: Path) -> bool:
        """Hosts are in use once the home has a hosts.json (else the engine runs locally,
        as it always did)."""
        return (Path(home) / "hosts.json").exists()

    def usable(self) -> list[Host]:
        return [h for h in self.book.hosts() if not h.drained]

    def total_slots(self) -> int:
        return sum(h.effective_slots() for h in self.usable())

    def _pick(self, exclude: set[str]) -> Host | None:
        hosts = [h for h in self.usable() if h.name not in exclude]
        if not hosts:
            raise NoHostLeft("no rig host left: " + self._why_none(exclude))
        free = [(h.effective_slots() - self.busy.get(h.name, 0), h) for h in hosts]
        free = [(f, h) for f, h in free if f > 0]
        if not free:
            return None
        free.sort(key=lambda fh: (-fh[0], fh[1].name != LOCAL, fh[1].name))
        return free[0][1]

    def _why_none(self, exclude: set[str]) -> str:
        parts = []
        for h in self.book.hosts():
            if h.drained:
                parts.append(f"{h.name} drained ({h.drained})")
            elif h.name in exclude:
                parts.append(f"{h.name} failed this run")
        return "; ".join(parts) or "none configured (`cambrian hosts add local`)"

    @asynccontextmanager
    async def slot(self, exclude: set[str]) -> AsyncIterator[Host]:
        async with self.cond:
            while True:
                host = self._pick(exclude)  # NoHostLeft when every host is out
                if host is not None:
                    break
                await self._wait()
            self.busy[host.name] = self.busy.get(host.name, 0) + 1
        try:
            yield host
        finally:
            async with self.cond:
                self.busy[host.name] -= 1
                self.cond.notify_all()

    async def _wait(self) -> None:
        # drained hosts never notify: look again now and then
        try:
            await asyncio.wait_for(self.cond.wait(), 2.0)
        except asyncio.TimeoutError:
            pass

    # -- in the rig thread ------------------------------------------------------------
    def lease(self, host: Host) -> Lease:
        """Bring the host's link up; HostTrouble when it cannot be."""
        from rig.remote import client_for, engine_facts

        try:
            url = self.links.docker_url(host)
        except Exception as exc:  # noqa: BLE001 - HostLinkError and friends
            raise HostTrouble(f"link to {host.name} down: {exc}") from exc
        with self.lock:
            facts = self.facts.get(host.name)
        if facts is None:
            try:
                facts = engine_facts(client_for(url, timeout=30))
            except Exception as exc:  # noqa: BLE001
                raise HostTrouble(f"Docker on {host.name} unreachable: {exc}") from exc
            with self.lock:
                self.facts[host.name] = facts
        return Lease(host, url, facts,
                     self.links.forward(host).starts if host.remote else 0)

    def trouble(self, lease: Lease, rig_error: str | None) -> str | None:
        """Why the host, not the artifact, ended this run -- or None (the verdict stands)."""
        from rig.backends.docker import image_tag
        from rig.remote import client_for, image_id

        host = lease.host
        if host.remote:
            fwd = self.links.forward(host)
            # (another run may have brought it back meanwhile: then it restarted since)
            if not fwd.alive() or fwd.starts != lease.link_start:
                return f"the SSH forward to {host.name} went down during the run"
        try:
            client = client_for(lease.docker_url, timeout=20)
            client.ping()
        except Exception as exc:  # noqa: BLE001
            return f"Docker on {host.name} stopped answering: {type(exc).__name__}: {exc}"
        try:
            if image_id(client, image_tag()) is None:
                return f"the rig image vanished from {host.name}"
        except Exception as exc:  # noqa: BLE001
            return f"Docker on {host.name} failed an image lookup: {exc}"
        if rig_error and any(k in rig_error for k in KILLED_OUTSIDE):
            return f"{OUTSIDE_PREFIX} {host.name} was killed from outside: {rig_error[:200]}"
        return None

    def failed(self, lease: Lease, reason: str) -> Host | None:
        host = self.book.note_failure(lease.name, reason, self.drain_after)
        with self.lock:
            self.facts.pop(lease.name, None)
        if host is not None:
            self.on_event("host_failure", {"host": lease.name, "reason": reason[:500],
                                           "failures": host.failures, "drained": host.drained})
        return host

    def succeeded(self, lease: Lease) -> None:
        if lease.host.failures:
            self.book.note_success(lease.name)

    def reconcile(self, live_runs: set[str], only: dict[str, str],
                  only_host: str | None = None, drained_too: bool = False) -> dict[str, list[str]]:
        """Remove rig containers carrying ``only`` of runs not live on every remote host in
        use (drained ones: when their check passes) or on ``only_host``. The local engine is
        the engine's startup reconcile's."""
        from rig.api import reconcile

        out: dict[str, list[str]] = {}
        for h in self.book.hosts():
            if not h.remote or (h.name != only_host if only_host else (h.drained and not drained_too)):
                continue
            try:
                url = self.links.docker_url(h)
                out[h.name] = reconcile(live_runs, only, docker_url=url)
            except Exception:  # noqa: BLE001 - unreachable now: done when it is back
                continue
        return out

    def close(self) -> None:
        self.links.close()


class HostTrouble(RuntimeError):
    """The host cannot take or finish this run (never a verdict)."""
