"""Suite-wide fixtures: Docker availability policy and the rig image."""

from __future__ import annotations

import os
import uuid

import pytest

from tests import docker_policy

# Every rig container this test session starts (directly or through an engine it spawns,
# which inherits the environment) carries this label, so that leftover checks and
# reconciles look only at the session's own containers, never at a user's campaign on the
# same engine.
SESSION_LABEL_KEY = "cambrian.test-session"
SESSION_LABEL_VALUE = uuid.uuid4().hex[:12]


def pytest_configure(config):
    os.environ["CAMBRIAN_RIG_LABELS"] = f"{SESSION_LABEL_KEY}={SESSION_LABEL_VALUE}"


def pytest_collection_modifyitems(session, config, items):
    """The real-server tests (marker local_llm) run last, and when the llama-server cache is
    cold its build starts now in the background at idle priority: by the time they run, the
    rest of the suite has left it the CPU it did not use (tests/llamacpp.py)."""
    local = [item for item in items if item.get_closest_marker("local_llm")]
    if not local:
        return
    others = [item for item in items if not item.get_closest_marker("local_llm")]
    items[:] = others + local
    from tests import llamacpp

    llamacpp.start_background_build()


def pytest_sessionfinish(session, exitstatus):
    from tests import llamacpp

    llamacpp.stop_background_build()


def session_labels() -> dict[str, str]:
    return {SESSION_LABEL_KEY: SESSION_LABEL_VALUE}


@pytest.fixture(scope="session")
def require_docker():
    """Skip without Docker, unless CAMBRIAN_REQUIRE_DOCKER=1 (CI): then fail."""
    docker_policy.require_docker()


@pytest.fixture(scope="session")
def rig_ready(require_docker):
    from rig.image import ensure_image

    return ensure_image(progress=lambda line: None)


@pytest.fixture
def children():
    """Start child processes with deadlines on every read; all stopped in teardown."""
    from tests.childproc import Children

    started = Children()
    try:
        yield started
    finally:
        started.stop_all()
