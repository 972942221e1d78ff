"""Detached processes that hold a lease: the one spawn / lease / wait helper.

Campaign engines (``core.engine.main``) and evolution runs (``core.evolution.main``) are
both started the same way (DESIGN §3): a Python module in its own session (so a closed
terminal or a dropped SSH link does not kill it), output appended to ``HOME/logs/``, and
the caller waits until the child holds the lease of what it runs — or reports why not.
``follow`` is the matching wait for the end (``--wait`` on the command line).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generic, TypeVar

from core.home import REPO_ROOT, db_path

StatusT = TypeVar("StatusT")


class SpawnError(RuntimeError):
    """The child exited, or never took the lease; the message carries its log's tail."""


@dataclass(frozen=True)
class Detached:
    pid: int
    owner: str
    log_path: Path


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def spawn_detached(home: Path, module: str, owner: str, *, log_name: str, what: str,
                   wait_s: float = 30.0) -> Detached:
    """Run ``python -m MODULE --home HOME OWNER`` in its own session and return once it
    holds the lease named ``owner`` (``what`` names it in errors: "engine", "evolution")."""
    from core.store import Store

    home = Path(home)
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / log_name
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--home", str(home), owner],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=str(REPO_ROOT), env=child_env(), start_new_session=True, close_fds=True,
        )
    deadline = time.monotonic() + wait_s
    with Store.open(db_path(home)) as store:
        while time.monotonic() < deadline:
            lease = store.lease(owner)
            if lease and lease["pid"] == proc.pid:
                return Detached(proc.pid, owner, log_path)
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise SpawnError(f"{what} exited with {proc.returncode} before starting:\n{tail}")
            time.sleep(0.05)
    raise SpawnError(f"{what} pid {proc.pid} did not take the lease within {wait_s:.0f} s")


@dataclass
class FollowResult(Generic[StatusT]):
    status: StatusT
    gone: bool  # the process disappeared before the end (resume continues it)


def follow(read: Callable[[], StatusT], *, finished: Callable[[StatusT], bool],
           alive: Callable[[StatusT], bool], on_update: Callable[[StatusT], None] | None = None,
           poll_s: float = 1.0, gone_after: int = 3) -> FollowResult[StatusT]:
    """Poll ``read()`` until ``finished``; stop early when no process has run it for
    ``gone_after`` polls in a row (killed, machine rebooted)."""
    gone = 0
    while True:
        st = read()
        if on_update is not None:
            on_update(st)
        if finished(st):
            return FollowResult(st, False)
        gone = gone + 1 if not alive(st) else 0
        if gone >= gone_after:
            return FollowResult(st, True)
        time.sleep(poll_s)
