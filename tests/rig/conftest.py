"""Shared fixtures for the rig tests.

* ``docker_engine``: skips the test when Docker is unreachable — unless
  CAMBRIAN_REQUIRE_DOCKER=1, in which case the test FAILS.
* ``rig_image``: session-scoped; ensures the rig image once (rig.image.ensure_image).
  CAMBRIAN_RIG_IMAGE overrides the tag (development only).
* ``hello_artifact``: a minimal viable aiohttp service (1 test, spec with 2 vectors),
  built in tmp by :func:`make_hello_artifact`.
* At session end, no rig container of this test session (its session label) may remain.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from rig.hashing import artifact_hash_of, sha256_hex
from tests import docker_policy

from tests.organisms import HELLO_APP, HELLO_PORT, HELLO_SPEC, HELLO_TEST, hello_files  # noqa: F401 - re-exported to the rig tests

def write_artifact(root: Path, files: dict[str, str | bytes], *, generation: int = 3,
                   entry: dict[str, str] | None = None, contracts: list | None = None,
                   manifest_overrides: dict | None = None) -> Path:
    """Write files + a correct manifest.json (hash, spec hash) under root."""
    root.mkdir(parents=True, exist_ok=True)
    data = {k: (v.encode() if isinstance(v, str) else v) for k, v in files.items()}
    for rel, content in data.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    spec = next(k for k in data if k.startswith("spec/"))
    manifest = {
        "cambrian-version": 1, "generation": generation, "parent-generation": max(0, generation - 1),
        "spec-hash": sha256_hex(data[spec]), "artifact-hash": artifact_hash_of(data),
        "producer-model": "test-fixture", "token-usage": {"input": 1200, "output": 3400},
        "files": sorted(list(data) + ["manifest.json"]),
        "created-at": datetime.now(timezone.utc).isoformat(),
        "entry": entry or {"build": "python -m compileall -q app.py",
                           "test": "python -m pytest -q", "start": "python app.py",
                           "health": f"http://localhost:{HELLO_PORT}/health"},
    }
    if contracts is not None:
        manifest["contracts"] = contracts
    manifest.update(manifest_overrides or {})
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root


def hello_files() -> dict[str, str]:
    return {"app.py": HELLO_APP, "tests/test_app.py": HELLO_TEST,
            "pytest.ini": "[pytest]\nasyncio_mode = auto\n", "spec/hello.md": HELLO_SPEC}


def make_hello_artifact(root: Path, generation: int = 3) -> Path:
    contracts = [{"name": "hello-contract", "type": "http", "method": "GET", "path": "/hello",
                  "expect": {"status": 200, "body_has_keys": ["message", "generation"]}}]
    return write_artifact(root, hello_files(), generation=generation, contracts=contracts)


@pytest.fixture
def hello_artifact(tmp_path: Path) -> Path:
    return make_hello_artifact(tmp_path / "hello")


# --- docker ---------------------------------------------------------------------------

_DOCKER_USED = {"used": False}


@pytest.fixture(scope="session")
def docker_engine() -> None:
    docker_policy.require_docker()
    _DOCKER_USED["used"] = True


@pytest.fixture(scope="session")
def rig_image(docker_engine) -> str:
    if os.environ.get("CAMBRIAN_RIG_IMAGE"):
        return os.environ["CAMBRIAN_RIG_IMAGE"]
    import sys

    from rig.image import ensure_image

    return ensure_image(progress=lambda m: print(f"[rig image] {m}", file=sys.stderr))


def labelled_containers() -> list[str]:
    """This test session's rig containers (its session label), running or not."""
    from tests.conftest import SESSION_LABEL_KEY, SESSION_LABEL_VALUE

    r = subprocess.run(["docker", "ps", "-a", "-q", "--filter", "label=cambrian.rig=1",
                        "--filter", f"label={SESSION_LABEL_KEY}={SESSION_LABEL_VALUE}"],
                       capture_output=True, text=True, timeout=30)
    return r.stdout.split()


@pytest.fixture(scope="session", autouse=True)
def _no_rig_containers_left():
    yield
    if _DOCKER_USED["used"]:
        # Only this session's containers (its label); one being removed right now may
        # still be listed: poll briefly, fail only on what stays.
        import time

        deadline = time.monotonic() + 45
        left = labelled_containers()
        while left and time.monotonic() < deadline:
            time.sleep(1.0)
            left = [c for c in labelled_containers() if c in left]
        assert not left, f"rig containers left behind after the docker tests: {left}"


# --- bwrap ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bwrap_available() -> None:
    from rig.backends.bwrap import bwrap_problem

    problem = bwrap_problem()
    if problem is not None:
        if os.environ.get("CAMBRIAN_REQUIRE_BWRAP") == "1":
            pytest.fail(f"CAMBRIAN_REQUIRE_BWRAP=1 but bubblewrap is unusable: {problem}")
        pytest.skip(f"bubblewrap unusable here: {problem}")
