"""bwrap backend (hosts without Docker): one bubblewrap sandbox per artifact.

  * new user, pid, net, ipc, uts, cgroup namespaces (``--unshare-all``): no network
    but loopback; every process of the run lives in the sandbox's pid namespace, so
    teardown is ``kill(-1)`` there (catches setsid'd daemons) plus the sandbox dying
    with its parent (``--die-with-parent``); ``--new-session`` blocks TIOCSTI.
  * read-only binds of /usr (and /lib*, /bin, /sbin as on the host), a minimal /etc,
    the organism's Python (see ``organism_python``); private tmpfs /workspace and /tmp
    with a size; the runner read-only at /rig/runner.py.
  * limits via setrlimit inside the sandbox (fsize, nofile, nproc — per user namespace —
    and address space as a loose memory bound); no cgroup: no CPU share, no OOM counter.

The runner runs INSIDE the sandbox with the organism's uid: hostile code can forge the
step events. Reports say ``backend: "bwrap"`` and ``weaker_isolation: true``.
"""

from __future__ import annotations

import os
import shutil
import sys

from rig.api import RigSetupError
from rig.backends import ORGANISM_UID, Job
from rig.backends.local import RUNNER_PATH, LocalBackend

ETC_FILES = ["/etc/hosts", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf",
             "/etc/ld.so.cache", "/etc/localtime", "/etc/resolv.conf"]


def _python_roots(python: str) -> list[str]:
    """Directories the interpreter needs: its venv and its base installation."""
    import subprocess

    out = subprocess.run([python, "-I", "-c", "import sys;print(sys.prefix);print(sys.base_prefix)"],
                         capture_output=True, text=True, timeout=30)
    roots = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    real = os.path.realpath(python)
    roots.append(os.path.dirname(os.path.dirname(real)))
    keep = []
    for r in roots:
        r = os.path.realpath(r)
        if r.startswith("/usr") or r in keep:
            continue
        keep.append(r)
    return keep


class BwrapBackend(LocalBackend):
    name = "bwrap"
    weaker_isolation = True
    kill_mode = "all"   # inside a private pid namespace kill(-1) only reaches the run

    def check_available(self) -> None:
        if shutil.which("bwrap") is None:
            raise RigSetupError("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
        super().check_available()

    def workspace(self, tmp: str) -> str:
        return "/workspace"

    def junit_dir(self, tmp: str) -> str:
        return f"/tmp/.rigc-{os.urandom(12).hex()}"

    def env(self, job: Job, tmp: str, python: str) -> dict[str, str]:
        env = job.organism_env()
        env["PATH"] = f"{os.path.dirname(python)}:/usr/local/bin:/usr/bin:/bin"
        env["HOME"] = "/tmp"
        env["TMPDIR"] = "/tmp"
        return env

    def limits(self, job: Job) -> dict[str, int]:
        lim = job.limits
        out = super().limits(job)
        out["nproc"] = int(lim.pids)
        out["as"] = max(2048, lim.memory_mb * 4) * 1024 * 1024
        return out

    def command(self, job: Job, tmp: str, python: str) -> list[str]:
        size = job.limits.tmpfs_mb * 1024 * 1024
        argv = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
                "--uid", str(ORGANISM_UID), "--gid", str(ORGANISM_UID),
                "--hostname", "cambrian-rig", "--ro-bind", "/usr", "/usr"]
        for d in ("/lib", "/lib64", "/lib32", "/bin", "/sbin"):
            if os.path.islink(d):
                argv += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                argv += ["--ro-bind", d, d]
        for f in ETC_FILES:
            if os.path.exists(f):
                argv += ["--ro-bind", f, f]
        argv += ["--proc", "/proc", "--dev", "/dev",
                 "--size", str(size), "--tmpfs", "/tmp",
                 "--size", str(size), "--tmpfs", "/workspace"]
        # after the tmpfs mounts: a checkout (and its venv) under /tmp must stay visible
        for root in _python_roots(python):
            argv += ["--ro-bind", root, root]
        argv += ["--dir", "/rig", "--ro-bind", str(RUNNER_PATH), "/rig/runner.py",
                 "--chdir", "/workspace", "--clearenv"]
        for k, v in self.env(job, tmp, python).items():
            argv += ["--setenv", k, v]
        argv += ["--", python, "-I", "/rig/runner.py", "run"]
        return argv

    def execute(self, job: Job):
        job.sink.rig("[rig] WARNING: bwrap backend: weaker isolation than docker (no cgroup "
                     "memory/CPU limits, runner shares the organism uid)")
        return super().execute(job)


def bwrap_problem() -> str | None:
    """None when bubblewrap can run a trivial sandbox here, else why not (never empty)."""
    if shutil.which("bwrap") is None:
        return "bwrap is not installed (Debian: apt-get install bubblewrap)"
    import subprocess

    try:
        r = subprocess.run(["bwrap", "--unshare-all", "--unshare-user", "--ro-bind", "/usr", "/usr",
                            "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
                            "--symlink", "usr/lib64", "/lib64", "--", "/usr/bin/true"],
                           capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "a trivial bwrap sandbox did not finish within 20 s"
    except OSError as exc:
        return f"cannot run bwrap: {exc}"
    if r.returncode != 0:
        err = r.stderr.decode("utf-8", "replace").strip().splitlines()
        return (f"a trivial bwrap sandbox exited with {r.returncode}: {err[-1] if err else 'no error text'}"
                " (user namespaces disabled?)")
    return None


if __name__ == "__main__":  # pragma: no cover
    print(bwrap_problem() or "bwrap usable", file=sys.stderr)
