"""Suite-wide fixtures: Docker availability policy and the rig image."""

from __future__ import annotations

import os

import pytest


def docker_reachable() -> tuple[bool, str]:
    try:
        from rig.image import docker_client

        docker_client().ping()
        return True, ""
    except Exception as exc:  # noqa: BLE001
        return False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


@pytest.fixture(scope="session")
def require_docker():
    """Skip without Docker, unless CAMBRIAN_REQUIRE_DOCKER=1 (CI): then fail."""
    ok, why = docker_reachable()
    if not ok:
        if os.environ.get("CAMBRIAN_REQUIRE_DOCKER") == "1":
            pytest.fail(f"CAMBRIAN_REQUIRE_DOCKER=1 but Docker is unreachable: {why}")
        pytest.skip(f"Docker unreachable: {why}")


@pytest.fixture(scope="session")
def rig_ready(require_docker):
    from rig.image import ensure_image

    return ensure_image(progress=lambda line: None)
