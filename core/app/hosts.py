"""The application layer's rig-host commands (the CLI and the TUI call these)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from core.hosts.check import PreflightFailed, check_host
from core.hosts.config import LOCAL, Host, HostBook, HostError, parse_new

__all__ = ["HostError", "PreflightFailed", "LOCAL", "add_host", "list_hosts", "remove_host",
           "check_rig_host", "host_rows"]


def add_host(home: Path, url: str, *, name: str | None = None, slots: int | None = None,
             identity: str | None = None, known_hosts: str | None = None,
             docker_socket: str | None = None) -> dict[str, Any]:
    """Record a rig host (HostError for bad input; nothing changes then). Not used by the
    engine until a `check` passes: a new remote host starts drained."""
    host = parse_new(url, name, slots, identity, known_hosts, docker_socket)
    if host.remote:
        host.drained = "not checked yet: run `cambrian hosts check " + host.name + "`"
    return _row(HostBook(home).add(host))


def remove_host(home: Path, name: str) -> None:
    HostBook(home).remove(name)


def list_hosts(home: Path) -> list[dict[str, Any]]:
    return [_row(h) for h in HostBook(home).hosts()]


def host_rows(home: Path) -> list[dict[str, Any]]:
    """What `status --json` and the TUI show per host."""
    return list_hosts(home)


def check_rig_host(home: Path, name: str, *, calibrate: bool = True,
                   progress: Callable[[str], None] | None = None,
                   labels: dict[str, str] | None = None) -> dict[str, Any]:
    """Preflight + calibration; the host's row (PreflightFailed with the reason otherwise)."""
    return _row(check_host(home, name, calibrate_run=calibrate, progress=progress, labels=labels))


def _row(h: Host) -> dict[str, Any]:
    f = h.facts
    return {"name": h.name, "url": h.url, "slots": h.effective_slots(),
            "slots_set": h.slots is not None, "state": "drained" if h.drained else "ready",
            "drained": h.drained, "failures": h.failures,
            "docker": f.get("docker"), "kernel": f.get("kernel"), "cgroup": f.get("cgroup_version"),
            "cpus": f.get("cpus"), "calibration_s": f.get("calibration_s"),
            "clock_skew_s": f.get("clock_skew_s"), "image": (f.get("image") or {}).get("id"),
            "last_check_error": f.get("last_check_error"),
            "identity": h.identity, "known_hosts": h.known_hosts, "docker_socket": h.docker_socket}
