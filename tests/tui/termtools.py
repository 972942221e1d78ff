"""Driving real terminals for tests: tmux sessions (send-keys / capture-pane)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

from core.home import REPO_ROOT


def require_tools(*tools: str) -> None:
    """Skip with the missing tools named as the reason — or fail under
    CAMBRIAN_REQUIRE_TERMINAL=1 (CI installs them: a skip there would hide missing work)."""
    import pytest

    missing = [t for t in tools if shutil.which(t) is None]
    if not missing:
        return
    why = "not installed: " + ", ".join(missing)
    if os.environ.get("CAMBRIAN_REQUIRE_TERMINAL") == "1":
        pytest.fail(f"CAMBRIAN_REQUIRE_TERMINAL=1 but {why}")
    pytest.skip(why)


class Tmux:
    """One private tmux server (own socket) with one session running a command."""

    def __init__(self, command: str, width: int = 120, height: int = 40, env: dict[str, str] | None = None):
        self.socket = f"cambrian-test-{uuid.uuid4().hex[:8]}"
        self.name = "t"
        self.width, self.height = width, height
        self.env = dict(os.environ, **(env or {}))
        self.env.setdefault("TERM", "xterm-256color")
        for key in ("COLUMNS", "LINES"):  # the pane decides the size
            self.env.pop(key, None)
        # keep the shell around after the command ends so the last screen stays capturable
        self._run("new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                  f"{command}; echo '[exited]'; sleep 600")
        self._run("set-option", "-g", "escape-time", "0")

    def _run(self, *args: str, check: bool = True) -> str:
        res = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                             env=self.env, timeout=30)
        if check and res.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {res.stderr.strip()}")
        return res.stdout

    def keys(self, *keys: str, delay: float = 0.15) -> None:
        for k in keys:
            self._run("send-keys", "-t", self.name, k)
            # a lone ESC waits for a possible escape sequence: give it time to stand alone
            time.sleep(max(delay, 0.5) if k == "Escape" else delay)

    def capture(self) -> str:
        return self._run("capture-pane", "-p", "-t", self.name)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not on screen after {timeout:.0f} s; screen:\n{screen}")

    def wait_until(self, pred, timeout: float = 20.0, what: str = "condition") -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if pred(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; screen:\n{screen}")

    def resize(self, width: int, height: int) -> None:
        self._run("resize-window", "-t", self.name, "-x", str(width), "-y", str(height))

    def pane_size(self) -> tuple[int, int]:
        out = self._run("display-message", "-p", "-t", self.name, "#{pane_width} #{pane_height}")
        w, h = out.split()
        return int(w), int(h)

    def kill(self) -> None:
        self._run("kill-server", check=False)


def cambrian_cmd(home: Path, *args: str) -> str:
    """The cambrian CLI from this checkout, as a shell command string."""
    parts = [sys.executable, "-m", "cambrian_tui.cli", "--home", str(home), *args]
    return f"cd {shlex.quote(str(REPO_ROOT))} && " + " ".join(shlex.quote(p) for p in parts)
