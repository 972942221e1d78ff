"""Suite-wide fixtures: Docker availability policy and the rig image."""

from __future__ import annotations

import pytest

from tests import docker_policy


@pytest.fixture(scope="session")
def require_docker():
    """Skip without Docker, unless CAMBRIAN_REQUIRE_DOCKER=1 (CI): then fail."""
    docker_policy.require_docker()


@pytest.fixture(scope="session")
def rig_ready(require_docker):
    from rig.image import ensure_image

    return ensure_image(progress=lambda line: None)
