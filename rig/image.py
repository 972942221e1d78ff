"""Build the rig image without a container registry (DESIGN §7 "Image", §13).

The image is made from Debian packages and PyPI wheels only:

1. ``debootstrap --variant=minbase`` a Debian root filesystem on the host, slim it
   and keep it as a tarball in the cache (keyed by suite, architecture and package
   list, so a change of the Python pins does not bootstrap again);
2. ``docker import`` the tarball as a temporary base image;
3. ``pip download`` the pinned organism packages as wheels on the host, for
   CPython 3.11 on manylinux (bookworm has CPython 3.11.2 and glibc 2.36);
4. install them into ``/opt/organism`` inside a container that has **no network**,
   then commit it as ``cambrian-rig:<recipe hash[:12]>``;
5. check the result in a throw-away container (no network, read-only root, the
   organism uid): every pinned package imports at its pinned version.

The tag encodes :func:`recipe_hash`, the image carries the full hash as the label
``cambrian.rig.recipe``. This module must not import ``core`` (DESIGN §4).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

Progress = Callable[[str], None]

# --------------------------------------------------------------------------- recipe

RECIPE_VERSION = 1  # bump to force a new image when the recipe logic changes

RIG_DIR = Path(__file__).resolve().parent
REPO_ROOT = RIG_DIR.parent
REQUIREMENTS_FILE = RIG_DIR / "organism_requirements.txt"  # the direct pins (what specs name)
TOOLS_FILE = RIG_DIR / "organism_tools.txt"  # build tools (uv), locked with the libraries
LOCK_FILE = RIG_DIR / "organism.lock"  # what is installed: every package, hash-checked (.ci/lock)
RECIPE_DIR = RIG_DIR / "image_recipe"
INSTALL_SCRIPT = RECIPE_DIR / "install.sh"
VERIFY_SCRIPT = RECIPE_DIR / "verify.py"

IMAGE_REPOSITORY = "cambrian-rig"
REPOSITORY_ENV = "CAMBRIAN_RIG_REPOSITORY"  # another name for side-by-side images (tests)


def image_repository() -> str:
    return os.environ.get(REPOSITORY_ENV) or IMAGE_REPOSITORY
BASE_REPOSITORY = "cambrian-rig-base"
BUILD_CONTAINER_PREFIX = "cambrian-rig-build-"
LABEL_RECIPE = "cambrian.rig.recipe"
LABEL_PREFIX = "cambrian.rig."

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP_VARIANT = "minbase"
DEBIAN_PACKAGES = ("python3", "python3-venv", "ca-certificates", "procps", "iproute2")

# What is removed from the bootstrapped tree before it becomes an image (globs,
# relative to the root). /dev is provided by the container runtime.
ROOTFS_PRUNE = (
    "var/lib/apt/lists/*",
    "var/cache/apt/*.bin",
    "var/cache/apt/archives/*.deb",
    "var/cache/debconf/*-old",
    "var/lib/dpkg/*-old",
    "var/log/*",
    "usr/share/doc/*",
    "usr/share/man/*",
    "usr/share/info/*",
    "usr/share/lintian/*",
    "usr/share/locale/*",
    "dev/*",
    "tmp/*",
    "root/.*",
    "etc/hostname",
    "etc/resolv.conf",
)
ROOTFS_KEEP = ("usr/share/locale/locale.alias",)

# Image layout (part of the recipe hash; the rig backends rely on it).
PYTHON_VERSION = "3.11"  # bookworm's python3
VENV_DIR = "/opt/organism"
WHEELS_DIR = "/opt/wheels"  # the locked wheelhouse, for artifacts' offline build lines
WORKSPACE_DIR = "/workspace"
RIG_MOUNT_DIR = "/rig"
ORGANISM_UID = 10001
ORGANISM_GID = 10001
IMAGE_PATH = f"{VENV_DIR}/bin:/usr/local/bin:/usr/bin:/bin"
IMAGE_ENV = {
    "PATH": IMAGE_PATH,
    "PYTHONDONTWRITEBYTECODE": "1",
    "LANG": "C.UTF-8",
}
IMAGE_USER = f"{ORGANISM_UID}:{ORGANISM_GID}"
# What organisms' build lines see (rig/backends put it in every organism environment): pip
# and uv install only from the locked wheelhouse, never from a network, into the image's venv.
OFFLINE_BUILD_ENV = {
    "VIRTUAL_ENV": VENV_DIR,
    "PIP_NO_INDEX": "1",
    "PIP_FIND_LINKS": WHEELS_DIR,
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_INPUT": "1",
    "UV_OFFLINE": "1",
    "UV_NO_INDEX": "1",
    "UV_FIND_LINKS": WHEELS_DIR,
    "UV_PYTHON_DOWNLOADS": "never",
    "UV_NO_PROGRESS": "1",
    "UV_CACHE_DIR": "/tmp/.uv-cache",
}
IMAGE_CMD = ["python"]

# Wheels fetched on the host. pip expands manylinux_2_36 to every older glibc tag
# (and the manylinux1/2010/2014 aliases); we still name the common ones.
PIP_IMPLEMENTATION = "cp"
PIP_ABI = "cp311"
_PIP_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}


def _pip_platforms(arch: str) -> list[str]:
    m = _PIP_ARCH.get(arch, arch)
    return [f"manylinux_2_36_{m}", f"manylinux_2_28_{m}", f"manylinux_2_17_{m}",
            f"manylinux2014_{m}"]


class ImageBuildError(RuntimeError):
    """The rig image could not be built; the message says why and what to do."""


class DockerUnavailable(RuntimeError):
    """The Docker engine cannot be reached."""


def host_arch() -> str:
    try:
        out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
        if out:
            return out
    except (OSError, subprocess.SubprocessError):
        pass
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def rootfs_recipe(arch: str | None = None) -> dict[str, Any]:
    """Everything that decides the bootstrapped root filesystem (not the mirror)."""
    return {
        "suite": SUITE,
        "arch": arch or host_arch(),
        "variant": DEBOOTSTRAP_VARIANT,
        "packages": sorted(DEBIAN_PACKAGES),
        "prune": list(ROOTFS_PRUNE),
        "keep": list(ROOTFS_KEEP),
        "recipe_version": RECIPE_VERSION,
    }


def rootfs_key(arch: str | None = None) -> str:
    return _sha256(_canonical(rootfs_recipe(arch)))


def _recipe_files() -> dict[str, str]:
    files = {}
    if RECIPE_DIR.is_dir():
        for p in sorted(RECIPE_DIR.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                files[p.relative_to(RECIPE_DIR).as_posix()] = _sha256(p.read_bytes())
    return files


def recipe(requirements: str | os.PathLike[str] | None = None,
           arch: str | None = None) -> dict[str, Any]:
    """The full recipe as a JSON-able dict (what :func:`recipe_hash` hashes)."""
    arch = arch or host_arch()
    req = Path(requirements) if requirements is not None else REQUIREMENTS_FILE
    return {
        "recipe_version": RECIPE_VERSION,
        "rootfs": rootfs_recipe(arch),
        "requirements_sha256": _sha256(req.read_bytes()),
        "lock_sha256": _sha256(LOCK_FILE.read_bytes()),
        "tools_sha256": _sha256(TOOLS_FILE.read_bytes()),
        "recipe_files": _recipe_files(),
        "pip": {"python_version": PYTHON_VERSION, "implementation": PIP_IMPLEMENTATION,
                "abi": PIP_ABI, "platforms": _pip_platforms(arch)},
        "layout": {"venv": VENV_DIR, "wheels": WHEELS_DIR, "workspace": WORKSPACE_DIR, "rig": RIG_MOUNT_DIR,
                   "uid": ORGANISM_UID, "gid": ORGANISM_GID},
        "config": {"env": IMAGE_ENV, "workdir": WORKSPACE_DIR, "user": IMAGE_USER,
                   "cmd": IMAGE_CMD},
    }


def recipe_hash(requirements: str | os.PathLike[str] | None = None) -> str:
    """sha256 (hex) of everything that determines the image."""
    return _sha256(_canonical(recipe(requirements)))


def image_tag(requirements: str | os.PathLike[str] | None = None) -> str:
    return f"{image_repository()}:{recipe_hash(requirements)[:12]}"


def read_pins(requirements: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """{distribution: pinned version} from the requirements file ('' if unpinned)."""
    req = Path(requirements) if requirements is not None else REQUIREMENTS_FILE
    pins: dict[str, str] = {}
    for raw in req.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?:==\s*([^\s;]+))?", line)
        if m:
            pins[m.group(1)] = m.group(2) or ""
    return pins


_LOCK_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def read_lock(lock: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """{distribution: version} of every lock entry that applies inside the image
    (CPython 3.11 on Linux); entries whose marker excludes it are left out."""
    from packaging.markers import Marker  # host side only; packaging is in the app's lock

    env = {"python_version": PYTHON_VERSION, "python_full_version": PYTHON_VERSION + ".2",
           "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
           "implementation_name": "cpython", "platform_python_implementation": "CPython"}
    out: dict[str, str] = {}
    for line in Path(lock or LOCK_FILE).read_text().splitlines():
        m = _LOCK_ENTRY.match(line)
        if m and (not m.group(3) or Marker(m.group(3)).evaluate(env)):
            out[m.group(1)] = m.group(2)
    return out


def default_cache_dir() -> Path:
    home = os.environ.get("CAMBRIAN_HOME")
    base = Path(home).expanduser() if home else REPO_ROOT / "data"
    return base / "cache" / "rig"


# --------------------------------------------------------------------------- docker

def docker_client(timeout: int = 300, max_pool_size: int = 10):
    """A docker SDK client that has answered a ping, or :class:`DockerUnavailable`."""
    try:
        import docker  # lazy: rig.image is importable on hosts without the SDK
    except ImportError as exc:  # pragma: no cover - the SDK is a dependency
        raise DockerUnavailable("the docker Python SDK is not installed "
                                "(pip install docker)") from exc
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=timeout, max_pool_size=max_pool_size)
        client.ping()
    except Exception as exc:
        raise DockerUnavailable(
            f"Docker engine not reachable at {where}: {exc}. Start it (as root: "
            "`dockerd` or `systemctl start docker`) or set DOCKER_HOST.") from exc
    return client


def image_present(client=None, tag: str | None = None) -> bool:
    """True when the current recipe's tag exists and carries the matching label."""
    client = client or docker_client()
    tag = tag or image_tag()
    import docker.errors
    try:
        img = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    labels = (img.attrs.get("Config") or {}).get("Labels") or {}
    return labels.get(LABEL_RECIPE, "")[:12] == tag.rsplit(":", 1)[-1]


# --------------------------------------------------------------------------- helpers

def _noop(_msg: str) -> None:
    pass


TICK_S = 5.0  # how often a long step says it is still working


class _Step:
    """Reports a numbered step through progress, with its duration; while it runs, a line
    every TICK_S seconds with the time elapsed and, where the step can say, the bytes so far
    (a first build takes minutes: the user must see it move)."""

    def __init__(self, progress: Progress, timings: dict[str, float], total: int):
        self.progress, self.timings, self.total, self.n = progress, timings, total, 0

    @contextlib.contextmanager
    def __call__(self, name: str, what: str,
                 measure: Callable[[], int] | None = None) -> Iterator[None]:
        self.n += 1
        tag = f"[{self.n}/{self.total}] {name}"
        self.progress(f"{tag}: {what}")
        t0 = time.monotonic()
        done = threading.Event()

        def tick() -> None:
            while not done.wait(TICK_S):
                size = ""
                if measure is not None:
                    with contextlib.suppress(Exception):
                        size = f", {measure() / 1e6:.0f} MB so far"
                self.progress(f"{tag}: {time.monotonic() - t0:.0f}s elapsed{size}")

        ticker = threading.Thread(target=tick, daemon=True, name=f"image-step-{name}")
        ticker.start()
        try:
            yield
        except BaseException:
            self.timings[name] = time.monotonic() - t0
            self.progress(f"{tag}: FAILED after {self.timings[name]:.1f}s")
            raise
        finally:
            done.set()
            ticker.join()
        self.timings[name] = time.monotonic() - t0
        self.progress(f"{tag}: done in {self.timings[name]:.1f}s")


def _mirror_from_sources(paths: Iterable[Path]) -> str | None:
    """The first http(s) Debian mirror serving SUITE/main in apt's sources."""
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if path.suffix == ".sources":  # deb822
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    k, v = line.split(":", 1)
                    fields[k.strip().lower()] = v.strip()
                if ("deb" in fields.get("types", "").split()
                        and SUITE in fields.get("suites", "").split()
                        and "main" in fields.get("components", "").split()
                        and fields.get("enabled", "yes").lower() != "no"):
                    for uri in fields.get("uris", "").split():
                        if uri.startswith(("http://", "https://")):
                            return uri.rstrip("/")
        else:  # one-line format
            for line in text.splitlines():
                line = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
                if (len(line) >= 4 and line[0] == "deb" and line[2] == SUITE
                        and "main" in line[3:] and line[1].startswith(("http://", "https://"))):
                    return line[1].rstrip("/")
    return None


def debian_mirror() -> str:
    """CAMBRIAN_DEBIAN_MIRROR, else apt's configured mirror, else deb.debian.org."""
    env = os.environ.get("CAMBRIAN_DEBIAN_MIRROR")
    if env:
        return env.rstrip("/")
    apt = Path("/etc/apt")
    paths = [apt / "sources.list"] + sorted((apt / "sources.list.d").glob("*.list")) \
        + sorted((apt / "sources.list.d").glob("*.sources"))
    return _mirror_from_sources(paths) or DEFAULT_MIRROR


def _check_mirror(mirror: str) -> None:
    url = f"{mirror}/dists/{SUITE}/Release"
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            resp.read(256)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ImageBuildError(
            f"Debian mirror unreachable: {url}: {exc}. Set CAMBRIAN_DEBIAN_MIRROR to a "
            "reachable mirror (or fix the apt sources).") from exc


def _mounts_under(root: Path) -> list[str]:
    found = []
    prefix = str(root.resolve()) + "/"
    with contextlib.suppress(OSError), open("/proc/mounts") as f:
        for line in f:
            mnt = line.split()[1].replace("\\040", " ")
            if mnt.startswith(prefix) or mnt == prefix[:-1]:
                found.append(mnt)
    return found


def _remove_tree(root: Path) -> None:
    """rm -rf, but never through a mount debootstrap may have left (proc, sys)."""
    if not root.exists():
        return
    for mnt in sorted(_mounts_under(root), key=len, reverse=True):
        subprocess.run(["umount", "-l", mnt], capture_output=True)
    if _mounts_under(root):
        raise ImageBuildError(f"refusing to delete {root}: still has mounts inside")
    shutil.rmtree(root, ignore_errors=True)


def _run_streaming(cmd: list[str], on_line: Callable[[str], None],
                   env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """Run cmd, feeding merged stdout/stderr lines to on_line; return (rc, last lines)."""
    tail: list[str] = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", env=env, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        tail.append(line)
        del tail[:-60]
        on_line(line)
    return proc.wait(), tail


_PER_PACKAGE = re.compile(r"^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) (\S+)")
_PHASE_WORDS = {"InRelease", "Release", "Packages", "required", "the", "base"}


# --------------------------------------------------------------------------- steps

def _bootstrap_rootfs(cache_dir: Path, arch: str, mirror: str, progress: Progress) -> Path:
    """Return the cached rootfs tarball, running debootstrap when it is missing."""
    key = rootfs_key(arch)
    tarball = cache_dir / f"rootfs-{SUITE}-{arch}-{key[:16]}.tar"
    if tarball.is_file():
        progress(f"  cached rootfs {tarball} ({tarball.stat().st_size / 1e6:.0f} MB)")
        return tarball
    if os.geteuid() != 0:
        raise ImageBuildError("building the rig image needs root once (debootstrap makes its "
                              "Debian root filesystem): run `sudo ./cambrian rig build-image`"
                              + ("" if shutil.which("debootstrap") else
                                 " (it installs debootstrap; or `sudo apt-get install "
                                 "debootstrap` first)"))
    if not shutil.which("debootstrap"):
        _install_debootstrap(progress)
    _check_mirror(mirror)

    work = cache_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="rootfs-", dir=work))
    counted = {"n": 0}

    def on_line(line: str) -> None:
        m = _PER_PACKAGE.match(line)
        if m and m.group(2).rstrip(".") not in _PHASE_WORDS:
            counted["n"] += 1
            return
        progress(f"  debootstrap: {line}")

    try:
        cmd = ["debootstrap", f"--variant={DEBOOTSTRAP_VARIANT}", f"--arch={arch}",
               f"--include={','.join(DEBIAN_PACKAGES)}", SUITE, str(root), mirror]
        progress("  $ " + " ".join(cmd))
        rc, tail = _run_streaming(cmd, on_line)
        if rc != 0:
            text = "\n".join(tail[-25:])
            hint = ""
            if re.search(r"Failed getting release file|Couldn't download|Unable to fetch|"
                         r"Temporary failure in name resolution|Connection refused", text):
                hint = f" The mirror {mirror} looks unreachable (CAMBRIAN_DEBIAN_MIRROR)."
            elif "mknod" in text or "Operation not permitted" in text:
                hint = " debootstrap needs real root (mknod, mount); is this an unprivileged container?"
            raise ImageBuildError(f"debootstrap failed (exit {rc}).{hint}\n{text}")
        progress(f"  debootstrap: {counted['n']} per-package lines not shown")

        before = _du(root)
        keep = {str(root / k) for k in ROOTFS_KEEP}
        for pattern in ROOTFS_PRUNE:
            for p in root.glob(pattern):
                if str(p) in keep:
                    continue
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
        progress(f"  slimmed rootfs {before / 1e6:.0f} MB -> {_du(root) / 1e6:.0f} MB")

        partial = tarball.with_suffix(".tar.partial")
        res = subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(root),
                              "-cf", str(partial), "."], capture_output=True, text=True)
        if res.returncode != 0:
            partial.unlink(missing_ok=True)
            raise ImageBuildError(f"tar of the rootfs failed: {res.stderr.strip()}")
        os.replace(partial, tarball)
        progress(f"  cached {tarball} ({tarball.stat().st_size / 1e6:.0f} MB)")
        return tarball
    finally:
        _remove_tree(root)


def _install_debootstrap(progress: Progress) -> None:
    """We run as root here (checked above): install Debian's debootstrap like ./cambrian
    installs docker.io, instead of failing on a fresh machine."""
    if not shutil.which("apt-get"):
        raise ImageBuildError("debootstrap is not installed and there is no apt-get to "
                              "install it: install debootstrap with your package manager")
    progress("  debootstrap is missing: apt-get install debootstrap")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "debootstrap"]):
        rc, tail = _run_streaming(cmd, lambda line: None, env=env)
        if rc != 0:
            raise ImageBuildError(f"`{' '.join(cmd)}` failed (exit {rc}); install debootstrap "
                                  "by hand (sudo apt-get install debootstrap):\n"
                                  + "\n".join(tail[-15:]))
    if not shutil.which("debootstrap"):
        raise ImageBuildError("apt-get installed debootstrap but it is not on PATH")
    progress("  installed debootstrap")


def _du(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def _import_base(client, tarball: Path, base_tag: str, progress: Progress) -> str:
    """docker import the rootfs tarball; return the new image id."""
    if not tarball.is_file():  # a missing path would be sent to the engine as a URL
        raise ImageBuildError(f"rootfs tarball missing: {tarball}")
    repo, tag = base_tag.rsplit(":", 1)
    raw = client.api.import_image(
        src=str(tarball), repository=repo, tag=tag,
        changes=["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    # The engine answers with JSON lines (status / errorDetail), even on HTTP 200.
    image_id = None
    for line in str(raw).splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("error") or msg.get("errorDetail"):
            raise ImageBuildError(f"docker import failed: {msg.get('error') or msg['errorDetail']}")
        status = msg.get("status", "")
        if status.startswith("sha256:"):
            image_id = status
    img = client.images.get(base_tag)
    progress(f"  imported {base_tag} ({img.id[:19]}, {img.attrs.get('Size', 0) / 1e6:.0f} MB)")
    return image_id or img.id


def _pip_download(wheel_dir: Path, arch: str, requirements: Path, progress: Progress) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
           "--no-input", "--progress-bar", "off", "--only-binary=:all:",
           "--python-version", PYTHON_VERSION, "--implementation", PIP_IMPLEMENTATION,
           "--abi", PIP_ABI]
    for plat in _pip_platforms(arch):
        cmd += ["--platform", plat]
    # the lock names every package with its hashes: nothing is resolved, nothing unhashed
    cmd += ["--require-hashes", "--no-deps", "-r", str(requirements), "-d", str(wheel_dir)]
    progress("  $ " + " ".join(cmd[2:]))

    ignored = {"n": 0}

    def on_line(line: str) -> None:
        # A host pip.conf may name find-links folders that do not exist; pip warns once
        # per package about them. That is host noise, not a build problem: count it.
        if re.match(r"^WARNING: Location '.*' is ignored", line):
            ignored["n"] += 1
        elif line.startswith(("Saved ", "Successfully", "ERROR", "WARNING", "File was already")):
            progress(f"  pip: {line}")

    rc, tail = _run_streaming(cmd, on_line, env={**os.environ, "PIP_NO_INPUT": "1"})
    if ignored["n"]:
        progress(f"  pip: {ignored['n']} warnings about missing find-links folders "
                 "(host pip config) not shown")
    if rc != 0:
        text = "\n".join(tail[-20:])
        m = re.search(r"(?:No matching distribution found for|Could not find a version that "
                      r"satisfies the requirement)\s+(\S+)", text)
        what = f" for {m.group(1)}" if m else ""
        raise ImageBuildError(
            f"pip download failed{what} (CPython {PYTHON_VERSION}, "
            f"{', '.join(_pip_platforms(arch))}; is PyPI reachable and does the pin have a "
            f"wheel for this platform?)\n{text}")


def _wheelhouse(cache_dir: Path, arch: str, requirements: Path, progress: Progress) -> Path:
    """Cached wheel directory for these requirements (so a --force rebuild is offline)."""
    key = _sha256(_canonical({"req": _sha256(requirements.read_bytes()), "arch": arch,
                              "py": PYTHON_VERSION, "abi": PIP_ABI,
                              "platforms": _pip_platforms(arch)}))[:16]
    final = cache_dir / f"wheels-{key}"
    if (final / ".complete").is_file():
        n = len(list(final.glob("*.whl")))
        progress(f"  cached wheelhouse {final} ({n} wheels)")
        return final
    work = cache_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="wheels-", dir=work))
    try:
        _pip_download(tmp, arch, requirements, progress)
        (tmp / ".complete").write_text("")
        tmp.chmod(0o755)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = len(list(final.glob("*.whl")))
    size = sum(p.stat().st_size for p in final.glob("*.whl"))
    progress(f"  {n} wheels, {size / 1e6:.1f} MB in {final}")
    return final


def install_container_config(base: str, name: str) -> dict[str, Any]:
    """kwargs for the install container: no network, root, no labels (they would be
    inherited by the committed image), no env (likewise)."""
    return {
        "image": base,
        "name": name,
        "command": ["/bin/sh", "/wheels/install.sh", VENV_DIR, str(ORGANISM_UID),
                    str(ORGANISM_GID), WORKSPACE_DIR, RIG_MOUNT_DIR, WHEELS_DIR],
        "network_mode": "none",
        "working_dir": "/",
        "detach": True,
    }


def _wheels_tar(wheel_dir: Path, requirements: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w") as tar:
        def add(path: Path, arcname: str, mode: int = 0o644) -> None:
            info = tar.gettarinfo(str(path), arcname)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = mode
            with open(path, "rb") as f:
                tar.addfile(info, f)
        d = tarfile.TarInfo("wheels")
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
        tar.addfile(d)
        for whl in sorted(wheel_dir.glob("*.whl")):
            add(whl, f"wheels/{whl.name}")
        add(requirements, "wheels/requirements.txt")
        add(INSTALL_SCRIPT, "wheels/install.sh", 0o755)
    return dest


def _install(client, base: str, wheel_dir: Path, requirements: Path, name: str,
             work: Path, progress: Progress) -> tuple[Any, dict[str, Any]]:
    """Create, fill, run the install container; return (container, facts)."""
    kwargs = install_container_config(base, name)
    container = client.containers.create(**kwargs)
    tar_path = _wheels_tar(wheel_dir, requirements, work / f"{name}.tar")
    try:
        with open(tar_path, "rb") as f:
            if not container.put_archive("/", f):
                raise ImageBuildError("put_archive of the wheels into the install container failed")
    finally:
        tar_path.unlink(missing_ok=True)
    container.start()
    quiet = 0
    for chunk in container.logs(stream=True, follow=True):
        for line in chunk.decode(errors="replace").splitlines():
            if line.startswith(("Processing /wheels/", "Ignoring ")):
                quiet += 1  # one line per wheel: counted, not shown
                continue
            progress(f"  {line}")
    if quiet:
        progress(f"  ({quiet} per-wheel lines not shown)")
    rc = container.wait().get("StatusCode", -1)
    container.reload()
    network_mode = container.attrs["HostConfig"].get("NetworkMode")
    if network_mode != "none":  # never commit something built with a network
        raise ImageBuildError(f"install container ran with network {network_mode!r}")
    if rc != 0:
        tail = container.logs(tail=30).decode(errors="replace")
        raise ImageBuildError(f"installing the wheels in the image failed (exit {rc}):\n{tail}")
    return container, {"network_mode": network_mode}


def verify_config() -> dict[str, Any]:
    return {
        "pins": read_pins(),
        "locked": read_lock(),
        "venv": VENV_DIR,
        "python_prefix": PYTHON_VERSION + ".",
        "user": [ORGANISM_UID, ORGANISM_GID],
        "dirs": [WORKSPACE_DIR, RIG_MOUNT_DIR, WHEELS_DIR],
        "tools": sorted(read_pins(TOOLS_FILE)),
        "offline_env": OFFLINE_BUILD_ENV,
    }


def verify_image(client, tag: str, pins: dict[str, str] | None = None,
                 locked: dict[str, str] | None = None, owner: str = "") -> dict[str, Any]:
    """Run the self-check in a hardened throw-away container; raise on any problem."""
    cfg = verify_config()
    if pins is not None:
        cfg["pins"] = pins
    if locked is not None:
        cfg["locked"] = locked
    name = f"{BUILD_CONTAINER_PREFIX}{owner}verify-{uuid.uuid4().hex[:8]}"
    container = client.containers.create(
        tag, name=name, command=["python", "-c", VERIFY_SCRIPT.read_text(), json.dumps(cfg)],
        network_mode="none", read_only=True, user=IMAGE_USER, cap_drop=["ALL"],
        security_opt=["no-new-privileges"], tmpfs={"/tmp": "size=16m"}, detach=True)
    try:
        container.start()
        rc = container.wait().get("StatusCode", -1)
        out = container.logs(stdout=True, stderr=False).decode(errors="replace")
        err = container.logs(stdout=False, stderr=True).decode(errors="replace")
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)
    result: dict[str, Any] = {}
    lines = out.strip().splitlines()
    if lines:
        with contextlib.suppress(ValueError):
            result = json.loads(lines[-1])
    if rc != 0 or not result:
        problems = result.get("problems") or [err.strip()[-2000:] or out.strip()[-2000:]]
        raise ImageBuildError(f"image check failed for {tag} (exit {rc}):\n  - "
                              + "\n  - ".join(problems))
    return result


def build_owner(cache: Path) -> str:
    """The name part that ties build containers to one build cache (and its lock): builds
    from other caches, other homes or users on the same engine, are not ours to remove."""
    return hashlib.sha256(str(Path(cache).resolve()).encode()).hexdigest()[:8] + "-"


def _cleanup_stale(client, progress: Progress, owner: str) -> None:
    """Remove build containers a crashed build of this cache left (we hold its lock)."""
    prefix = BUILD_CONTAINER_PREFIX + owner
    for c in client.containers.list(all=True, filters={"name": prefix}):
        if c.name.startswith(prefix):
            progress(f"  removing stale build container {c.name}")
            with contextlib.suppress(Exception):
                c.remove(force=True)


@contextlib.contextmanager
def _build_lock(cache_dir: Path, progress: Progress) -> Iterator[None]:
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / "build.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("waiting for another image build to finish ...")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- public

def build_image(force: bool = False, progress: Progress | None = None,
                cache_dir: str | os.PathLike[str] | None = None, client=None) -> str:
    """Build the rig image for the current recipe; return its tag.

    Without ``force`` an existing image with the right tag and label is kept.
    """
    progress = progress or _noop
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    client = client or docker_client()
    with _build_lock(cache, progress):
        return _build_locked(client, force, progress, cache)


def _build_locked(client, force: bool, progress: Progress, cache: Path) -> str:
    import docker.errors

    requirements = LOCK_FILE
    full = recipe_hash()
    tag = f"{image_repository()}:{full[:12]}"
    if not force and image_present(client, tag):
        progress(f"{tag} is present (recipe {full[:12]})")
        return tag

    arch = host_arch()
    mirror = debian_mirror()
    timings: dict[str, float] = {}
    step = _Step(progress, timings, 5)
    t_all = time.monotonic()
    work = cache / "work"
    work.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:8]
    base_tag = f"{BASE_REPOSITORY}:{full[:12]}-{run_id}"
    owner = build_owner(cache)
    install_name = f"{BUILD_CONTAINER_PREFIX}{owner}{full[:12]}-{run_id}"
    # Committed under a candidate tag first: a failed check (even with --force) leaves
    # the current good image and its tag untouched.
    candidate = f"{image_repository()}-candidate:{full[:12]}-{run_id}"
    install_container = None
    committed = False
    progress(f"building {tag} (recipe {full}) for {SUITE}/{arch} from {mirror}")
    _cleanup_stale(client, progress, owner)
    try:
        with step("rootfs", f"debootstrap {DEBOOTSTRAP_VARIANT} {SUITE} with "
                            f"{', '.join(DEBIAN_PACKAGES)} (cached by package list)",
                  measure=lambda: _du(work)):
            tarball = _bootstrap_rootfs(cache, arch, mirror, progress)
        with step("import", f"docker import {tarball.name} as {base_tag}"):
            _import_base(client, tarball, base_tag, progress)
        with step("wheels", f"pip download {len(read_lock(requirements))} locked packages "
                            f"for CPython {PYTHON_VERSION} ({arch})", measure=lambda: _du(work)):
            wheel_dir = _wheelhouse(cache, arch, requirements, progress)
        with step("install", f"install the wheels into {VENV_DIR} (network none), commit"):
            install_container, facts = _install(client, base_tag, wheel_dir, requirements,
                                                install_name, work, progress)
            labels = {
                LABEL_RECIPE: full,
                LABEL_PREFIX + "suite": SUITE,
                LABEL_PREFIX + "arch": arch,
                LABEL_PREFIX + "rootfs": rootfs_key(arch),
                LABEL_PREFIX + "requirements": _sha256(REQUIREMENTS_FILE.read_bytes()),
                LABEL_PREFIX + "lock": _sha256(requirements.read_bytes()),
                LABEL_PREFIX + "build-network": facts["network_mode"],
                LABEL_PREFIX + "venv": VENV_DIR,
                LABEL_PREFIX + "uid": str(ORGANISM_UID),
            }
            conf = {
                "Env": [f"{k}={v}" for k, v in IMAGE_ENV.items()],
                "WorkingDir": WORKSPACE_DIR,
                "User": IMAGE_USER,
                "Cmd": IMAGE_CMD,
                "Entrypoint": None,
                "Labels": labels,
            }
            c_repo, c_tag = candidate.rsplit(":", 1)
            install_container.commit(repository=c_repo, tag=c_tag, conf=conf,
                                     message=f"cambrian rig image, recipe {full}")
            committed = True
        with step("verify", "import every organism package (network none, read-only, "
                            f"uid {ORGANISM_UID})"):
            result = verify_image(client, candidate, owner=owner)
            progress(f"  python {result['python']} at {result['which'].get('python')}")
            progress("  " + ", ".join(f"{k}=={v}" for k, v in sorted(result["packages"].items())))
        replaced = None
        with contextlib.suppress(docker.errors.ImageNotFound):
            replaced = client.images.get(tag).id  # --force: the image being replaced
        img = client.images.get(candidate)
        repo, t = tag.rsplit(":", 1)
        if not img.tag(repo, t):
            raise ImageBuildError(f"could not tag {candidate} as {tag}")
        img = client.images.get(tag)
        size = img.attrs.get("Size", 0)
        record = {"tag": tag, "recipe": full, "image_id": img.id, "size": size,
                  "timings_s": {k: round(v, 2) for k, v in timings.items()},
                  "total_s": round(time.monotonic() - t_all, 2),
                  "install_network_mode": facts["network_mode"],
                  "python": result["python"], "packages": result["packages"],
                  "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (cache / f"build-{full[:12]}.json").write_text(json.dumps(record, indent=2) + "\n")
        progress(f"built {tag}: {size / 1e6:.0f} MB in {record['total_s']:.1f}s ("
                 + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()) + ")")
        if replaced and replaced != img.id:
            with contextlib.suppress(docker.errors.DockerException):  # still in use: keep
                client.images.remove(replaced)
                progress(f"  removed the replaced image {replaced[:19]}")
        return tag
    except docker.errors.DockerException as exc:
        raise ImageBuildError(f"docker engine error while building {tag}: {exc}") from exc
    finally:
        if install_container is not None:
            with contextlib.suppress(Exception):
                install_container.remove(force=True)
        with contextlib.suppress(docker.errors.NotFound):
            for c in client.containers.list(all=True, filters={"name": install_name}):
                c.remove(force=True)
        if committed:  # untag the candidate; on failure this deletes the bad image
            with contextlib.suppress(Exception):
                client.images.remove(candidate)
        with contextlib.suppress(Exception):
            client.images.remove(base_tag)  # untags; layers stay under the final image


def last_build_record(cache_dir: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The record written by the last successful build of the current recipe."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache / f"build-{recipe_hash()[:12]}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def ensure_image(progress: Progress | None = None, client=None,
                 cache_dir: str | os.PathLike[str] | None = None) -> str:
    """Return the rig image tag, building it first when it is missing."""
    progress = progress or _noop
    client = client or docker_client()
    tag = image_tag()
    if image_present(client, tag):
        return tag
    return build_image(force=False, progress=progress, cache_dir=cache_dir, client=client)


def main_build(force: bool = False, if_missing: bool = False) -> int:
    """`cambrian rig build-image [--force | --if-missing]`: progress lines on stdout; 0 on
    success. ``if_missing`` prints nothing when the image is already there (./cambrian runs
    it on every start)."""
    def say(msg: str) -> None:
        print(msg, flush=True)

    try:
        if if_missing and not force and image_present(docker_client(timeout=30)):
            return 0
        if if_missing:
            say(f"the rig image {image_tag()} is missing: building it now (a few minutes the "
                "first time; later builds reuse the cached root filesystem and wheels)")
        tag = build_image(force=force, progress=say)
    except (ImageBuildError, DockerUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr, flush=True)
        return 130
    print(tag, flush=True)
    return 0


if __name__ == "__main__":  # python -m rig.image [--force]
    raise SystemExit(main_build("--force" in sys.argv[1:]))
