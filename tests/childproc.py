"""Child processes for tests that can never hang a test run.

A :class:`Child` collects the child's merged output in a reader thread, so every wait has a
deadline: ``wait_for`` returns the first line matching, or fails with what the child printed
so far (and kills it). ``stop`` terminates and then kills, always bounded. The ``children``
fixture (tests/conftest.py) stops every child a test started, also when the test fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Callable

STOP_S = 5.0


class Child:
    def __init__(self, args: list[str], *, cwd: str | os.PathLike[str] | None = None,
                 env: dict[str, str] | None = None, new_session: bool = True,
                 stdin_pipe: bool = False):
        self.args = args
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self.new_session = new_session
        # stdin_pipe: the child's stdin stays open until stop() (a child that ends on EOF)
        self.proc = subprocess.Popen(args, cwd=cwd, env=env,
                                     stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, errors="replace", bufsize=1,
                                     start_new_session=new_session)
        self._reader = threading.Thread(target=self._read, daemon=True, name="child-reader")
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, match: Callable[[str], bool] | str, timeout: float, what: str = "") -> str:
        """The first output line that matches (a substring or a predicate), within timeout
        seconds; otherwise the child is killed and the test fails with its output so far."""
        pred = (lambda line: match in line) if isinstance(match, str) else match
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if pred(line):
                        return line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
        out = self.output()
        rc = self.proc.poll()
        if rc is None and self._eof:  # its output closed: it is exiting, give it a moment
            try:
                rc = self.proc.wait(STOP_S)
            except subprocess.TimeoutExpired:
                rc = None
        self.stop()
        state = f"exited with {rc}" if rc is not None else f"still silent after {timeout:g}s (killed)"
        raise AssertionError(f"{what or repr(match)}: not seen; child {state}; "
                             f"its output so far:\n{out[-3000:]}")

    def first_line(self, timeout: float) -> str:
        return self.wait_for(lambda _line: True, timeout, "a first output line")

    def wait(self, timeout: float) -> int:
        """The exit status within timeout seconds, else kill and fail."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            out = self.output()
            self.stop()
            raise AssertionError(f"child did not exit within {timeout:g}s (killed); "
                                 f"output:\n{out[-3000:]}") from None

    def stop(self) -> None:
        """SIGTERM (the whole session when it has one), then SIGKILL; bounded."""
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_S)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(STOP_S)
        self._reader.join(STOP_S)

    def _signal(self, sig: int) -> None:
        try:
            if self.new_session:  # its own process group: reach its children too
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)
        except ProcessLookupError:
            pass


class Children:
    """Every child a test starts; ``stop_all`` in the fixture's teardown."""

    def __init__(self) -> None:
        self.started: list[Child] = []

    def __call__(self, args: list[str], **kw) -> Child:
        child = Child(args, **kw)
        self.started.append(child)
        return child

    def stop_all(self) -> None:
        for child in reversed(self.started):
            child.stop()
