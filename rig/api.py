"""Public API of the test rig (host side).

    result = run_artifact("path/to/artifact", backend="docker", on_line=print_line)
    result.report.to_wire()   # the §6.2 viability report, plus "backend"

``run_artifact`` never raises for problems of the artifact: every outcome is a report.
It raises ``RigSetupError`` (a ``RuntimeError``) only when the rig itself cannot run
(engine unreachable, image missing, unknown backend). See rig/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rig.schema import ViabilityReport

LABEL_KEY = "cambrian.rig"
RUN_LABEL = "cambrian.run"
GENERATION_LABEL = "cambrian.generation"
BACKENDS = ("docker", "bwrap", "none")
EXTRA_LABELS_ENV = "CAMBRIAN_RIG_LABELS"


class RigSetupError(RuntimeError):
    """The rig cannot run at all (not a verdict on the artifact)."""


@dataclass
class StageTimeouts:
    """Seconds per stage. ``start`` is the readiness wait (port open, process alive)."""

    manifest: float = 10.0
    build: float = 120.0
    test: float = 180.0
    smoke: float = 30.0
    start: float = 30.0
    health: float = 30.0


@dataclass
class Channel:
    """The way out a run's offspring may use to breed (DESIGN §7 "Reproduction"): the folder
    of the engine's LLM gateway socket (mounted read-only), the model the gateway answers
    with, and how long the offspring may take."""

    gateway_dir: str
    socket_name: str = "gw.sock"
    model: str = "sim-1"
    timeout: float = 600.0
    port: int = 18400  # where the rig's forwarder serves it inside the container


@dataclass
class Reproduce:
    """A reproduction request for one run (built by the orchestrator from the spec's
    ``reproduce`` declaration and the caller's Channel)."""

    channel: Channel
    path: str
    output_env: str
    model_env: str
    spec: str
    generation: int
    output_dir: str = "/tmp/offspring"

    @property
    def gateway_dir(self) -> str:
        return self.channel.gateway_dir

    @property
    def socket_name(self) -> str:
        return self.channel.socket_name

    @property
    def port(self) -> int:
        return self.channel.port

    @property
    def timeout(self) -> float:
        return self.channel.timeout

    def organism_env(self) -> dict[str, str]:
        """What the offspring's start process sees: the gateway (through the forwarder) as
        its Messages API, a placeholder key, where to write, which model to name."""
        return {"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{self.port}",
                self.output_env: self.output_dir, self.model_env: self.channel.model}


@dataclass
class RigLimits:
    memory_mb: int = 512
    pids: int = 256
    cpus: float = 1.0
    file_size_mb: int = 64
    tmpfs_mb: int = 256
    log_bytes: int = 2_000_000


@dataclass
class RigResult:
    report: ViabilityReport
    backend: str
    run_id: str
    container_id: str | None
    stage_ms: dict[str, int]
    total_ms: int
    first_output_ms: int | None
    oom_killed: bool
    rig_error: str | None
    container_ids: list[str] = field(default_factory=list)  # main (and probe) containers
    # reproduction: the artifact the offspring wrote ({path: bytes}), when it wrote one
    offspring_files: dict[str, bytes] | None = None

    @property
    def viable(self) -> bool:
        return self.report.status == "viable"


def run_artifact(
    artifact_dir: str | Path,
    *,
    backend: str = "docker",
    run_id: str | None = None,
    generation: int | None = None,
    on_line: Callable[[str, str], None] | None = None,
    timeouts: StageTimeouts | None = None,
    limits: RigLimits | None = None,
    labels: dict[str, str] | None = None,
    profile: str | None = None,
    prepared: "Any" = None,
    probes: dict[str, list[dict]] | None = None,
    gate: tuple[str, ...] | list[str] = (),
    channel: Channel | None = None,
    docker_url: str | None = None,
) -> RigResult:
    """Run every rig stage on one artifact directory and return the verdict.

    ``profile``: "cambrian" (default: our rules) or "original" (the original Cambrian's
    rules and timeouts, for re-verifying imported history; rig/profiles.py). ``timeouts``:
    explicit stage timeouts; by default the profile's, with the spec's `rig-timeouts`.
    ``probes``: hidden probe layers the writer never saw, {"sealed" | "examiner" |
    "redteam": [contract dicts]}, run in the health stage after the visible checks and
    reported apart; ``gate``: the layers whose failure makes the artifact non-viable (the
    campaign's viability policy); the others only score. ``channel``: ask a viable offspring
    of a spec that declares ``reproduce`` to breed through the engine's LLM gateway (docker
    backend); the report's ``reproduction`` says what happened and ``offspring_files`` holds
    what it wrote, for the caller to judge in a fresh run. ``docker_url``: the engine to run
    on when it is not the local one (a rig host's forwarded unix socket, rig/remote.py)."""
    from rig.orchestrator import run

    if prepared is not None and run_id is None:
        run_id = prepared.run_id
    return run(artifact_dir, backend=backend, run_id=run_id, generation=generation,
               on_line=on_line, timeouts=timeouts, limits=limits or RigLimits(),
               labels=labels or {}, profile=profile, prepared=prepared, probes=probes,
               gate=tuple(gate), channel=channel, docker_url=docker_url)


def prepare(run_id: str, *, generation: int | None = None, labels: dict[str, str] | None = None,
            timeouts: StageTimeouts | None = None, limits: RigLimits | None = None,
            backend: str = "docker", channel: Channel | None = None,
            docker_url: str | None = None) -> "Any":
    """Create a run's containers ahead, in the background (docker only; None otherwise):
    while an LLM call is in flight, or while the previous artifact is judged. Pass the
    result to ``run_artifact(..., prepared=...)`` with the same run id, labels, limits and
    timeouts no longer than these (then it is used; otherwise removed and replaced), or
    call its ``release()``. The containers carry the run's labels from the start, so a
    reconcile or an abort treats them like any of the run's containers."""
    if backend != "docker":
        return None
    from rig.backends.docker import Prepared

    return Prepared(run_id, generation, labels or {}, limits or RigLimits(),
                    timeouts or StageTimeouts(), channel.gateway_dir if channel else None,
                    docker_url)


def wait_removed(timeout: float = 60.0) -> bool:
    """Wait for the rig containers being removed in the background; True when none is left.
    (``run_artifact`` returns once the verdict is assembled; removal is off its path.)"""
    from rig.backends.docker import wait_removed as _wait

    return _wait(timeout)


def check_rig(backend: str = "docker", docker_url: str | None = None) -> None:
    """Raise ``RigSetupError`` (reason and fix) unless the backend can judge an artifact now:
    for docker, the engine answers and the current recipe's image is present. Cheap (a ping
    and an inspect), so engines call it before every generation they would pay for."""
    from rig.backends import get_backend

    get_backend(backend, docker_url).check_available()


def reconcile(live_run_ids: set[str], only: dict[str, str] | None = None,
              docker_url: str | None = None) -> list[str]:
    """Kill and remove rig containers whose run is not live; return their ids. ``only``
    narrows it to containers carrying all of those labels (e.g. one home's, one test
    session's): other people's runs on a shared engine are never touched."""
    from rig.backends.docker import reconcile as _reconcile

    return _reconcile(live_run_ids, only, docker_url)


def managed_containers(only: dict[str, str] | None = None, docker_url: str | None = None) -> list[str]:
    """Ids of every container (running or not) labelled cambrian.rig=1 (and ``only``)."""
    from rig.backends.docker import managed_containers as _managed

    return _managed(only, docker_url)


def extra_labels() -> dict[str, str]:
    """Labels from $CAMBRIAN_RIG_LABELS ("key=value,key=value") that every rig container
    also carries: lets a CI job or a test session find exactly its own containers."""
    import os

    out: dict[str, str] = {}
    for part in os.environ.get(EXTRA_LABELS_ENV, "").split(","):
        key, sep, value = part.strip().partition("=")
        if key and sep:
            out[key.strip()] = value.strip()
    return out
