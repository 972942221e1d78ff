"""Rig backends: where the organism's commands run.

Every backend takes a ``Job`` (the artifact's bytes, its entry commands, the checks to
probe, timeouts and limits) and returns an ``Execution``: per-step facts keyed by step
name (build, gate, test, junit, smoke, start, health, teardown). The orchestrator turns
those facts into the verdict; backends never decide viability.
"""

from __future__ import annotations

import io
import tarfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from rig.api import RigLimits, RigSetupError, StageTimeouts
from rig.runner import DEFAULT_RULES
from rig.steps import Step

ORGANISM_UID = 10001
RIG_UID = 10002
ORGANISM_PACKAGES = ["aiohttp", "pytest", "pytest_asyncio", "pytest_aiohttp", "pydantic",
                     "structlog", "yaml", "anthropic"]
PLACEHOLDER_API_KEY = "sk-ant-placeholder-offline"


@dataclass
class Job:
    run_id: str
    generation: int
    files: dict[str, bytes]          # listed artifact files (manifest.json included)
    modes: dict[str, int]            # path -> permission bits (0o644 / 0o755)
    entry: dict[str, str]            # build, test, start commands
    port: int
    health_path: str
    vectors: list[dict[str, Any]]
    contracts: list[dict[str, Any]]
    smoke_modules: list[str]
    timeouts: StageTimeouts
    limits: RigLimits
    labels: dict[str, str]
    sink: "OutputSink"
    stop_after_test: bool = False    # the static tamper gate already failed the test stage
    rules: frozenset[str] = frozenset(DEFAULT_RULES)  # the profile's named rules (profiles.py)
    prepared: Any = None  # containers created ahead for this run (docker: rig.api.prepare)
    parallel_start: bool = True  # docker: start/probe the built state while the tests run
    # hidden probe layers {kind: [contract dicts]} (runner.HIDDEN_KINDS) and those that gate
    probes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    gate_kinds: tuple[str, ...] = ()
    # reproduction (docker): once the artifact is viable, ask it to breed through the LLM
    # gateway (rig/api.py Reproduce); None: not this run
    reproduce: Any = None

    def on(self, rule: str) -> bool:
        return rule in self.rules

    def organism_env(self) -> dict[str, str]:
        """The organism's whole environment: no host variable is passed through."""
        return {
            "ANTHROPIC_API_KEY": PLACEHOLDER_API_KEY,
            "CAMBRIAN_GENERATION": str(self.generation),
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PATH": "/opt/organism/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        }

    def tar_bytes(self, uid: int = ORGANISM_UID) -> bytes:
        """In-memory tar of the listed files: regular files only, owned by uid."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            dirs: set[str] = set()
            for path in sorted(self.files):
                parts = path.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    d = "/".join(parts[:i])
                    if d not in dirs:
                        dirs.add(d)
                        ti = tarfile.TarInfo(d)
                        ti.type, ti.mode, ti.uid, ti.gid = tarfile.DIRTYPE, 0o755, uid, uid
                        tf.addfile(ti)
                data = self.files[path]
                ti = tarfile.TarInfo(path)
                ti.size, ti.mode, ti.uid, ti.gid = len(data), self.modes.get(path, 0o644), uid, uid
                ti.mtime = int(time.time())
                tf.addfile(ti, io.BytesIO(data))
        return buf.getvalue()


@dataclass
class Execution:
    steps: dict[str, Step] = field(default_factory=dict)
    container_id: str | None = None
    container_ids: list[str] = field(default_factory=list)
    first_output_ms: int | None = None
    oom_killed: bool = False
    oom_stage: str | None = None
    rig_error: str | None = None
    rig_error_stage: str | None = None
    stage_ms: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, step: Step | dict[str, Any]) -> Step:
        if isinstance(step, dict):
            step = Step.from_wire(step)
        self.steps[step.name] = step
        return step


class OutputSink:
    """Forwards live output lines to on_line, bounded: after ``cap`` bytes it keeps
    counting but stops forwarding, and says so once. Callback errors never break a run."""

    def __init__(self, on_line: Callable[[str, str], None] | None, cap: int):
        self.on_line = on_line
        self.cap = cap
        self.lock = threading.Lock()
        self.forwarded = 0
        self.total = 0
        self.lines = 0
        self.capped = False
        self.t0 = time.monotonic()
        self.first_output: float | None = None
        self.callback_errors = 0

    def mark_origin(self) -> None:
        self.t0 = time.monotonic()

    def _call(self, stream: str, text: str) -> None:
        if self.on_line is None:
            return
        try:
            self.on_line(stream, text)
        except Exception:  # a broken UI callback must not change a verdict
            self.callback_errors += 1

    def line(self, stream: str, text: str) -> None:
        with self.lock:
            if self.first_output is None:
                self.first_output = time.monotonic()
            self.total += len(text) + 1
            self.lines += 1
            if self.capped:
                return
            if self.forwarded + len(text) + 1 > self.cap:
                self.capped = True
                msg = (f"[rig] live output cap of {self.cap} bytes reached: further output is "
                       f"counted but not shown (tails are kept in the report)")
                self._call("rig", msg)
                return
            self.forwarded += len(text) + 1
            self._call(stream, text)

    def rig(self, text: str) -> None:
        with self.lock:
            self._call("rig", text)

    def first_output_ms(self) -> int | None:
        if self.first_output is None:
            return None
        return max(0, int((self.first_output - self.t0) * 1000))


class LineSplitter:
    """Bytes -> lines for one stream; a line longer than max_line is cut into pieces."""

    def __init__(self, sink: OutputSink, stream: str, max_line: int = 8192):
        self.sink, self.stream, self.max_line = sink, stream, max_line
        self.pending = b""

    def feed(self, data: bytes) -> None:
        self.pending += data
        while b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            self._emit(line)
        while len(self.pending) > self.max_line:
            self._emit(self.pending[: self.max_line])
            self.pending = self.pending[self.max_line:]

    def _emit(self, line: bytes) -> None:
        text = line.rstrip(b"\r")[: self.max_line].decode("utf-8", "replace")
        self.sink.line(self.stream, text)

    def close(self) -> None:
        if self.pending:
            self._emit(self.pending)
            self.pending = b""


class Backend:
    name = "?"
    weaker_isolation = False

    def check_available(self) -> None:  # raises RigSetupError
        raise NotImplementedError

    def execute(self, job: Job) -> Execution:
        raise NotImplementedError


def get_backend(name: str, docker_url: str | None = None) -> Backend:
    """``docker_url``: the docker backend's engine when it is not the local one (a rig
    host's forwarded socket); the other backends run here only."""
    if docker_url is not None and name != "docker":
        raise RigSetupError(f"backend {name!r} runs on this machine only: remote rig hosts "
                            f"need the docker backend")
    if name == "docker":
        from rig.backends.docker import DockerBackend

        return DockerBackend(docker_url)
    if name == "bwrap":
        from rig.backends.bwrap import BwrapBackend

        return BwrapBackend()
    if name == "none":
        from rig.backends.local import LocalBackend

        return LocalBackend()
    raise RigSetupError(f"unknown rig backend {name!r}: choose docker, bwrap or none")
