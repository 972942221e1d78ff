"""The rig image builder (rig/image.py, DESIGN §7 "Image").

Tests without the docker marker need neither Docker nor the network. Docker tests
skip when no engine is reachable, unless CAMBRIAN_REQUIRE_DOCKER=1 (then they fail).
They reuse the image (ensure_image) and never force a rebuild.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from rig import image
from tests import docker_policy

IMPORTS = "import aiohttp, pytest, pydantic, structlog, yaml, anthropic, pytest_asyncio, pytest_aiohttp"


# --------------------------------------------------------------------------- recipe


def test_recipe_hash_is_stable_and_names_the_tag():
    h = image.recipe_hash()
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    assert image.recipe_hash() == h
    assert image.image_tag() == f"cambrian-rig:{h[:12]}"


def test_recipe_hash_follows_the_requirements(tmp_path, monkeypatch):
    copy = tmp_path / "organism_requirements.txt"
    shutil.copy(image.REQUIREMENTS_FILE, copy)
    assert image.recipe_hash(copy) == image.recipe_hash()

    text = copy.read_text()
    copy.write_text(re.sub(r"structlog==\S+", "structlog==0.0.1", text))
    changed = image.recipe_hash(copy)
    assert changed != image.recipe_hash()

    rootfs_before = image.rootfs_key()
    monkeypatch.setattr(image, "REQUIREMENTS_FILE", copy)
    assert image.recipe_hash() == changed
    assert image.image_tag() == f"cambrian-rig:{changed[:12]}"
    # a pin change must not invalidate the cached debootstrap tarball
    assert image.rootfs_key() == rootfs_before


def test_recipe_hash_follows_the_lock(tmp_path, monkeypatch):
    """The organism lock (every transitive package, hashed) is part of the recipe: a
    transitive bump makes a new image tag, without a new debootstrap."""
    base, rootfs = image.recipe_hash(), image.rootfs_key()
    copy = tmp_path / "organism.lock"
    copy.write_text(re.sub(r"^multidict==\S+", "multidict==0.0.1", image.LOCK_FILE.read_text(),
                           flags=re.M))
    monkeypatch.setattr(image, "LOCK_FILE", copy)
    assert image.recipe_hash() != base
    assert image.rootfs_key() == rootfs


def test_read_lock_applies_markers_for_the_image():
    locked = image.read_lock()
    assert locked["multidict"]  # transitive, via aiohttp
    assert "colorama" not in locked  # sys_platform == 'win32'
    for dist, version in image.read_pins().items():
        assert locked[dist.lower()] == version, dist


def test_recipe_hash_follows_recipe_files_and_layout(tmp_path, monkeypatch):
    base = image.recipe_hash()
    recipe_copy = tmp_path / "image_recipe"
    shutil.copytree(image.RECIPE_DIR, recipe_copy)
    monkeypatch.setattr(image, "RECIPE_DIR", recipe_copy)
    assert image.recipe_hash() == base
    (recipe_copy / "install.sh").write_text((recipe_copy / "install.sh").read_text() + "\n# x\n")
    assert image.recipe_hash() != base
    monkeypatch.setattr(image, "RECIPE_DIR", image.RIG_DIR / "image_recipe")
    assert image.recipe_hash() == base

    monkeypatch.setattr(image, "ORGANISM_UID", 10002)
    assert image.recipe_hash() != base
    monkeypatch.undo()
    rootfs = image.rootfs_key()
    monkeypatch.setattr(image, "DEBIAN_PACKAGES", image.DEBIAN_PACKAGES + ("curl",))
    assert image.recipe_hash() != base
    assert image.rootfs_key() != rootfs  # a package change does bootstrap again
    monkeypatch.undo()
    monkeypatch.setattr(image, "SUITE", "trixie")
    assert image.recipe_hash() != base


def test_read_pins():
    pins = image.read_pins()
    for dist in ("aiohttp", "pytest", "pytest-asyncio", "pytest-aiohttp", "pydantic",
                 "structlog", "PyYAML", "anthropic"):
        assert re.fullmatch(r"\d+(\.\d+)+", pins[dist]), dist


def test_mirror_from_apt_sources(tmp_path):
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\n# comment\nURIs: http://mirror.example/debian/\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n")
    assert image._mirror_from_sources([deb822]) == "http://mirror.example/debian"

    one_line = tmp_path / "sources.list"
    one_line.write_text("deb https://other.example/x cloud main\n"
                        "# deb http://commented.example/debian bookworm main\n"
                        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main contrib\n")
    assert image._mirror_from_sources([one_line]) == "http://one.example/debian"
    assert image._mirror_from_sources([tmp_path / "missing.list"]) is None


def test_mirror_env_override(monkeypatch):
    monkeypatch.setenv("CAMBRIAN_DEBIAN_MIRROR", "http://m.example/debian/")
    assert image.debian_mirror() == "http://m.example/debian"


def test_install_container_has_no_network_labels_or_env():
    cfg = image.install_container_config("base:tag", "cambrian-rig-build-x")
    assert cfg["network_mode"] == "none"
    # labels/env on the install container would leak into the committed image
    assert "labels" not in cfg and "environment" not in cfg
    assert cfg["name"].startswith(image.BUILD_CONTAINER_PREFIX)


def test_cache_dir_follows_cambrian_home(monkeypatch, tmp_path):
    monkeypatch.setenv("CAMBRIAN_HOME", str(tmp_path))
    assert image.default_cache_dir() == tmp_path / "cache" / "rig"
    monkeypatch.delenv("CAMBRIAN_HOME")
    assert image.default_cache_dir() == image.REPO_ROOT / "data" / "cache" / "rig"


# --------------------------------------------------------------------------- errors


def test_error_when_not_root(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(image.ImageBuildError, match="root"):
        image._bootstrap_rootfs(tmp_path, "amd64", "http://127.0.0.1:9", lambda m: None)


def test_error_when_debootstrap_missing_and_no_apt(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(image.shutil, "which", lambda name: None)
    with pytest.raises(image.ImageBuildError, match="install debootstrap with your package manager"):
        image._bootstrap_rootfs(tmp_path, "amd64", "http://127.0.0.1:9", lambda m: None)


def test_root_build_installs_debootstrap_with_apt(monkeypatch, tmp_path):
    """As root on a fresh machine the build installs its own prerequisite (a stand-in
    apt-get on PATH records its calls and 'installs' a debootstrap next to itself)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "apt-calls"
    apt = bindir / "apt-get"
    apt.write_text(f"""#!/bin/sh
echo "$*" >> {calls}
if [ "$1" = install ]; then printf '#!/bin/sh\\nexit 0\\n' > {bindir}/debootstrap; chmod +x {bindir}/debootstrap; fi
""")
    apt.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    real_which = image.shutil.which
    # the host's own debootstrap (if any) must not count: only ours in bindir
    monkeypatch.setattr(image.shutil, "which", lambda name: real_which(name, path=str(bindir))
                        if name in ("debootstrap", "apt-get") else real_which(name))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    said: list[str] = []
    with pytest.raises(image.ImageBuildError, match="mirror unreachable"):  # the next step
        image._bootstrap_rootfs(tmp_path / "cache", "amd64", "http://127.0.0.1:9", said.append)
    assert calls.read_text().splitlines() == ["update -qq", "install -y -qq debootstrap"]
    assert (bindir / "debootstrap").exists()
    assert "  installed debootstrap" in said


def test_non_root_build_says_what_to_run(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(image.ImageBuildError, match=r"sudo \./cambrian rig build-image"):
        image._bootstrap_rootfs(tmp_path, "amd64", "http://127.0.0.1:9", lambda m: None)


def test_error_when_mirror_unreachable():
    with pytest.raises(image.ImageBuildError, match="mirror unreachable"):
        image._check_mirror("http://127.0.0.1:9/debian")


def test_pip_download_failure_names_the_package(monkeypatch, tmp_path):
    # An empty local index: pip fails on the first requirement, offline.
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    req = tmp_path / "req.txt"
    req.write_text("aiohttp==3.14.5\n")
    with pytest.raises(image.ImageBuildError, match=r"pip download failed for aiohttp"):
        image._pip_download(tmp_path / "out", "amd64", req, lambda m: None)


def test_docker_unreachable_is_clear(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    with pytest.raises(image.DockerUnavailable, match="not reachable"):
        image.docker_client(timeout=5)
    assert image.main_build(force=False) == 1
    assert "not reachable" in capsys.readouterr().err


def test_import_of_missing_tarball_is_refused(tmp_path):
    # docker-py would send a missing path to the engine as a URL to fetch
    with pytest.raises(image.ImageBuildError, match="missing"):
        image._import_base(object(), tmp_path / "nope.tar", "x:y", lambda m: None)


# --------------------------------------------------------------------------- docker


@pytest.fixture(scope="module")
def client():
    try:
        return image.docker_client(timeout=120)
    except image.DockerUnavailable as exc:
        docker_policy.skip_or_fail(exc)


@pytest.fixture(scope="module")
def rig_image(client):
    lines: list[str] = []
    tag = image.ensure_image(progress=lines.append, client=client)
    return tag


def _run(client, tag, command, **extra):
    """Run a hardened throw-away container; return (exit code, stdout+stderr)."""
    kwargs = dict(network_mode="none", read_only=True, user="10001:10001",
                  cap_drop=["ALL"], security_opt=["no-new-privileges"],
                  tmpfs={"/tmp": "size=16m"}, detach=True)
    kwargs.update(extra)
    container = client.containers.create(tag, command=command, **kwargs)
    try:
        container.start()
        rc = container.wait()["StatusCode"]
        return rc, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


@pytest.mark.docker
def test_ensure_image_tag_encodes_recipe_hash(client, rig_image):
    full = image.recipe_hash()
    assert rig_image == image.image_tag() == f"cambrian-rig:{full[:12]}"
    labels = client.images.get(rig_image).attrs["Config"]["Labels"]
    assert labels[image.LABEL_RECIPE] == full
    assert image.image_present(client)

    # a second call reuses the image: no build step is reported
    lines: list[str] = []
    assert image.ensure_image(progress=lines.append, client=client) == rig_image
    assert not any(line.startswith("[") for line in lines)


@pytest.mark.docker
def test_image_config(client, rig_image):
    cfg = client.images.get(rig_image).attrs["Config"]
    env = dict(e.split("=", 1) for e in cfg["Env"])
    assert env["PATH"] == "/opt/organism/bin:/usr/local/bin:/usr/bin:/bin"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert cfg["WorkingDir"] == "/workspace"
    assert cfg["User"] == "10001:10001"


@pytest.mark.docker
def test_organism_packages_import_hardened(client, rig_image):
    rc, out = _run(client, rig_image, ["python", "-c", IMPORTS + "; print('ok')"])
    assert rc == 0, out
    assert out.strip().endswith("ok")

    rc, out = _run(client, rig_image, ["python", "--version"])
    assert rc == 0, out
    assert re.fullmatch(r"Python 3\.11\.\d+", out.strip()), out

    rc, out = _run(client, rig_image, ["sh", "-c", "command -v python; command -v python3; id -u; id -g"])
    assert rc == 0, out
    assert out.split() == ["/opt/organism/bin/python", "/opt/organism/bin/python3", "10001", "10001"]


@pytest.mark.docker
def test_image_layout(client, rig_image):
    rc, out = _run(client, rig_image, ["sh", "-c",
                                       "stat -c '%n %u %a' /workspace /rig; ls -A /rig /workspace | wc -l; "
                                       "touch /opt/organism/x 2>/dev/null && echo writable || echo readonly"])
    assert rc == 0, out
    lines = out.strip().splitlines()
    assert lines[0] == "/workspace 10001 755"
    assert lines[1] == "/rig 0 755"
    assert lines[-1] == "readonly"


@pytest.mark.docker
def test_install_ran_without_network(client, rig_image):
    labels = client.images.get(rig_image).attrs["Config"]["Labels"]
    assert labels["cambrian.rig.build-network"] == "none"
    record = image.last_build_record()
    if record is not None:  # written by the build on this machine
        assert record["install_network_mode"] == "none"
        assert record["tag"] == rig_image


@pytest.mark.docker
def test_verify_image_rejects_a_wrong_pin(client, rig_image):
    ok = image.verify_image(client, rig_image)
    assert ok["packages"]["aiohttp"] == image.read_pins()["aiohttp"]
    with pytest.raises(image.ImageBuildError, match="aiohttp is .* pinned 0.0.1"):
        image.verify_image(client, rig_image, pins={**image.read_pins(), "aiohttp": "0.0.1"})
    # every locked transitive package is checked too, and nothing unlocked may be present
    assert ok["locked_ok"] is True
    with pytest.raises(image.ImageBuildError, match="locked multidict==0.0.1, installed"):
        image.verify_image(client, rig_image, locked={**image.read_lock(), "multidict": "0.0.1"})
    trimmed = {k: v for k, v in image.read_lock().items() if k != "yarl"}
    with pytest.raises(image.ImageBuildError, match="not in the lock: yarl=="):
        image.verify_image(client, rig_image, locked=trimmed)


@pytest.mark.docker
def test_stale_build_containers_of_other_caches_are_left_alone(client, rig_image, tmp_path):
    """A build removes what a crashed build of its own cache left, never the build
    containers of another cache (another home or user building on the same engine)."""
    import uuid

    ours, theirs = image.build_owner(tmp_path / "a"), image.build_owner(tmp_path / "b")
    assert ours != theirs and image.build_owner(tmp_path / "a") == ours
    tag = uuid.uuid4().hex[:6]
    made = {who: client.containers.create(rig_image, ["true"], name=f"{image.BUILD_CONTAINER_PREFIX}{who}{tag}")
            for who in (ours, theirs)}
    try:
        said: list[str] = []
        image._cleanup_stale(client, said.append, ours)
        left = {c.name for c in client.containers.list(all=True, filters={"name": tag})}
        assert left == {f"{image.BUILD_CONTAINER_PREFIX}{theirs}{tag}"}
        assert any(ours in line for line in said)
    finally:
        for c in made.values():
            try:
                c.remove(force=True)
            except Exception:  # noqa: BLE001 - the one the cleanup removed
                pass
